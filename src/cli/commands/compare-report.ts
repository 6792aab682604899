/** What mcnc compare writes: a markdown table (mean and range over seeds), an SVG plot, and every run as JSON lines. */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { writeFileAtomic } from "../../format/atomic-write.js";
import type { Run } from "./compare.js";
import { qualityPlot, type Series } from "./svg-plot.js";

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export interface ReportOptions {
  /** Path without extension: .md, .svg and .jsonl are written beside each other. */
  out: string;
  command: string;
  heading: string;
  metric: "accuracy" | "bits_per_byte";
  /** The plot's title, `%s` standing for the metric's name. */
  title: string;
}

/** Writes the three files; returns the table's lines. */
export function writeReport(runs: readonly Run[], o: ReportOptions): string[] {
  const metricName = o.metric === "accuracy" ? "accuracy" : "bits per byte";
  // One row per (method, budget): mean and range over seeds.
  const groups = new Map<string, Run[]>();
  for (const r of runs) groups.set(`${r.label}@${r.budget}`, [...(groups.get(`${r.label}@${r.budget}`) ?? []), r]);
  const lines = [
    o.heading,
    `Command: \`${o.command}\``,
    "",
    `| method | budget | stored numbers | file bytes | bits/param | ${metricName} (mean) | min - max | train s (mean) |`,
    "|---|---|---|---|---|---|---|---|",
  ];
  const series = new Map<string, Series>();
  for (const rs of groups.values()) {
    const r0 = rs[0]!;
    const scores = rs.map((r) => r.score).filter((s): s is number => s !== null);
    if (scores.length === 0) {
      lines.push(`| ${r0.label} | ${r0.budget} | - | - | - | out of reach | ${r0.note ?? ""} | - |`);
      continue;
    }
    const size = r0.file_bytes === 0 ? "- | - | -" : `${r0.stored_params} | ${r0.file_bytes} | ${r0.bits_per_param}`;
    lines.push(
      `| ${r0.label} | ${r0.budget} | ${size} | ${mean(scores).toFixed(4)} | ${Math.min(...scores).toFixed(4)} - ${Math.max(...scores).toFixed(4)} | ${mean(rs.map((r) => r.train_seconds)).toFixed(1)} |`,
    );
    if (r0.file_bytes === 0) continue;
    const s = series.get(r0.label) ?? { name: r0.label, points: [] };
    s.points.push({ x: r0.file_bytes, y: mean(scores), lo: Math.min(...scores), hi: Math.max(...scores) });
    series.set(r0.label, s);
  }
  mkdirSync(dirname(o.out), { recursive: true });
  const text = (t: string) => new TextEncoder().encode(t);
  writeFileAtomic(`${o.out}.md`, text(`${lines.join("\n")}\n`));
  writeFileAtomic(`${o.out}.jsonl`, text(runs.map((r) => JSON.stringify(r)).join("\n") + "\n"));
  const yLabel = o.metric === "accuracy" ? "test accuracy" : "validation bits per byte";
  writeFileAtomic(`${o.out}.svg`, text(qualityPlot([...series.values()], o.title.replace("%s", metricName), yLabel)));
  return lines;
}
