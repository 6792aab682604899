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

/**
 * The issue-12 view of a run over several sizes: per budget, a row per training-set size and a column
 * per method, each cell the mean over seeds and its range; the dense reference beside them.
 */
function bySize(runs: readonly Run[], samples: (r: Run) => string, metricName: string): string[] {
  const labels = [...new Set(runs.map((r) => r.label))];
  const sizes = [...new Set(runs.map(samples))];
  const dense = runs.filter((r) => r.label === "dense");
  const out: string[] = [];
  for (const budget of [...new Set(runs.map((r) => r.budget))].filter((b) => b.endsWith("x") && b !== "1x")) {
    const columns = labels.filter((l) => runs.some((r) => r.label === l && r.budget === budget));
    out.push(`${metricName} at ${budget}, by training samples (mean, and min - max over seeds):`, "", `| training samples | dense | ${columns.join(" | ")} |`, `|---|---|${columns.map(() => "---|").join("")}`);
    for (const size of sizes) {
      const at = (rs: readonly Run[]) => {
        const scores = rs.filter((r) => samples(r) === size && r.score !== null).map((r) => r.score!);
        return scores.length === 0 ? "-" : `${mean(scores).toFixed(3)} (${Math.min(...scores).toFixed(3)}-${Math.max(...scores).toFixed(3)})`;
      };
      out.push(`| ${size} | ${at(dense)} | ${columns.map((l) => at(runs.filter((r) => r.label === l && r.budget === budget))).join(" | ")} |`);
    }
    out.push("");
  }
  return out;
}

/** Writes the three files; returns the table's lines. */
export function writeReport(runs: readonly Run[], o: ReportOptions): string[] {
  const metricName = o.metric === "accuracy" ? "accuracy" : "bits per byte";
  // Runs over several training-set sizes (--limits) carry their limit: a column, and a series each.
  const sized = runs.some((r) => r.limit !== undefined);
  const samples = (r: Run) => (r.limit ? String(r.limit) : "all");
  // One row per (method, budget, size): mean and range over seeds.
  const groups = new Map<string, Run[]>();
  for (const r of runs) groups.set(`${r.label}@${r.budget}@${r.limit}`, [...(groups.get(`${r.label}@${r.budget}@${r.limit}`) ?? []), r]);
  const lines = [
    o.heading,
    `Command: \`${o.command}\``,
    "",
    `| method | budget |${sized ? " training samples |" : ""} stored numbers | file bytes | bits/param | ${metricName} (mean) | min - max | train s (mean) |`,
    `|---|---|${sized ? "---|" : ""}---|---|---|---|---|---|`,
  ];
  const series = new Map<string, Series>();
  const cell = (scores: number[]) => `${mean(scores).toFixed(4)} | ${Math.min(...scores).toFixed(4)} - ${Math.max(...scores).toFixed(4)}`;
  for (const rs of groups.values()) {
    const r0 = rs[0]!;
    const head = `| ${r0.label} | ${r0.budget} |${sized ? ` ${samples(r0)} |` : ""}`;
    const scores = rs.map((r) => r.score).filter((s): s is number => s !== null);
    if (scores.length === 0) {
      lines.push(`${head} - | - | - | out of reach | ${r0.note ?? ""} | - |`);
      continue;
    }
    const size = r0.file_bytes === 0 ? "- | - | -" : `${r0.stored_params} | ${r0.file_bytes} | ${r0.bits_per_param}`;
    lines.push(`${head} ${size} | ${cell(scores)} | ${mean(rs.map((r) => r.train_seconds)).toFixed(1)} |`);
    if (r0.file_bytes === 0) continue;
    const name = sized ? `${r0.label}, ${samples(r0)} samples` : r0.label;
    const s = series.get(name) ?? { name, points: [] };
    s.points.push({ x: r0.file_bytes, y: mean(scores), lo: Math.min(...scores), hi: Math.max(...scores) });
    series.set(name, s);
  }
  if (sized) lines.push("", ...bySize(runs, samples, metricName));
  mkdirSync(dirname(o.out), { recursive: true });
  const text = (t: string) => new TextEncoder().encode(t);
  writeFileAtomic(`${o.out}.md`, text(`${lines.join("\n")}\n`));
  writeFileAtomic(`${o.out}.jsonl`, text(runs.map((r) => JSON.stringify(r)).join("\n") + "\n"));
  const yLabel = o.metric === "accuracy" ? "test accuracy" : "validation bits per byte";
  writeFileAtomic(`${o.out}.svg`, text(qualityPlot([...series.values()], o.title.replace("%s", metricName), yLabel)));
  return lines;
}
