/**
 * Every post-training method at the field's budgets on one trained model, through the CLI: quality
 * against stored bytes, compression time and peak memory. Writes OUT.md (table), OUT.jsonl (every
 * run) and OUT.svg (one line per method).
 *
 *   node dist/bench/compress-sweep.js --in data/models/gpt-sotu.mcnc --out docs/compress/gpt-sotu [--only rom,svd] [--append] [-- extra compress flags]
 *
 * --append keeps OUT.jsonl's runs of the methods not run this time, so one method can be added or redone
 * (`--only none --append` runs nothing and writes the table and plot again).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { qualityPlot, type Series } from "../src/cli/commands/svg-plot.js";

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const extra = dash >= 0 ? argv.slice(dash + 1) : [];
const own = dash >= 0 ? argv.slice(0, dash) : argv;
const arg = (name: string, fallback?: string) => {
  const i = own.indexOf(`--${name}`);
  return i >= 0 ? own[i + 1]! : fallback;
};
if (own.includes("--help") || !arg("in") || !arg("out")) {
  process.stdout.write("node dist/bench/compress-sweep.js --in MODEL --out PATH_WITHOUT_EXTENSION [--only rom,svd,...] [-- extra mcnc compress flags]\n");
  process.exit(own.includes("--help") ? 0 : 2);
}
const input = arg("in")!;
const out = arg("out")!;

/** The ROM paper's budgets (20%, 33%, 50% fewer parameters), the same fractions pruned, 2:4, and 8/4/3 bits. */
const FRACTIONS = ["0.2", "0.33", "0.5"];
const PLAN: Record<string, string[][]> = {
  svd: FRACTIONS.map((r) => ["--reduction", r]),
  rom: FRACTIONS.map((r) => ["--reduction", r]),
  fwsvd: FRACTIONS.map((r) => ["--reduction", r]),
  tt: [...FRACTIONS.map((r) => ["--reduction", r]), ...FRACTIONS.map((r) => ["--reduction", r, "--sites", "3"])],
  structured: [...FRACTIONS.map((r) => ["--reduction", r]), ...FRACTIONS.map((r) => ["--reduction", r, "--heal-steps", "200"])],
  // The GPT's blocks: one or two of four removed, without and with a 200-step healing fine-tune.
  "drop-blocks": [["--drop", "1"], ["--drop", "2"], ["--drop", "1", "--heal-steps", "200"], ["--drop", "2", "--heal-steps", "200"]],
  magnitude: [...FRACTIONS.map((s) => ["--sparsity", s]), ["--pattern", "2:4"]],
  wanda: [...FRACTIONS.map((s) => ["--sparsity", s]), ["--pattern", "2:4"]],
  rtn: ["8", "4", "3"].map((b) => ["--bits", b]),
  gptq: ["8", "4", "3", "2"].map((b) => ["--bits", b]),
  // Two and three 8-bit codes per group of 8: 2 and 3 code bits per weight, plus the codebooks.
  vq: ["2", "3"].map((b) => ["--bits", b]),
  eora: [
    ["--bits", "4", "--rank", "4"],
    ["--bits", "3", "--rank", "4"],
    ["--bits", "3", "--rank", "16"],
    ["--on", "wanda", "--sparsity", "0.5", "--rank", "4"],
    ["--on", "wanda", "--pattern", "2:4", "--rank", "4"],
  ],
  // Chunks of 32, 64 and 256 weights for 17 stored numbers: about 1.9x, 3.8x and 15x on the compressed layers.
  "mcnc-fit": ["32", "64", "256"].map((d) => ["--d", d]),
};
const only = arg("only")?.split(",") ?? Object.keys(PLAN);

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "mcnc-sweep-"));
type Row = Record<string, unknown> & { before?: Record<string, number>; after?: Record<string, number> };
const rows: Array<{ method: string; budget: string; row: Row }> = [];
if (own.includes("--append") && existsSync(`${out}.jsonl`)) {
  for (const line of readFileSync(`${out}.jsonl`, "utf8").trim().split("\n")) {
    const { method, budget, ...row } = JSON.parse(line) as Row & { method: string; budget: string };
    if (!only.includes(method)) rows.push({ method, budget, row });
  }
}
for (const method of only) {
  for (const budget of PLAN[method] ?? []) {
    const args = [CLI, "compress", "--method", method, ...budget, "--in", input, "--out", join(scratch, "out.mcnc"), "--json", "--quiet", ...extra];
    const r = spawnSync(process.execPath, args, { encoding: "utf8" });
    const label = budget.join(" ").replace(/--/g, "");
    if (r.status !== 0) {
      process.stderr.write(`${method} ${label}: ${r.stderr.trim()}\n`);
      continue;
    }
    const row = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Row;
    rows.push({ method, budget: label, row });
    process.stderr.write(`${method} ${label}: ${JSON.stringify(row.after)} ${String(row.file_bytes)} bytes ${String(row.compress_seconds)} s\n`);
  }
}
rmSync(scratch, { recursive: true, force: true });
if (rows.length === 0) process.exit(1);
// The table in the plan's order, whichever run came first.
const order = Object.keys(PLAN);
rows.sort((a, b) => order.indexOf(a.method) - order.indexOf(b.method));

const metric = rows[0]!.row.after?.accuracy !== undefined ? "accuracy" : "bits_per_byte";
const score = (m?: Record<string, number>) => m?.[metric] ?? NaN;
const base = score(rows[0]!.row.before);
// The command that remakes the whole table (every method), whatever subset this run redid.
const command = `node dist/bench/compress-sweep.js --in ${input} --out ${out}${extra.length ? ` -- ${extra.join(" ")}` : ""}`;
const lines = [
  `Command: \`${command}\``,
  "",
  `Uncompressed: ${metric.replace(/_/g, " ")} ${base.toFixed(4)}, ${String(rows[0]!.row.params)} float32 parameters (${4 * Number(rows[0]!.row.params)} bytes).`,
  "",
  `| method | budget | file bytes | bits/param | ${metric.replace(/_/g, " ")} | change | compress s | peak MiB |`,
  "|---|---|---|---|---|---|---|---|",
  ...rows.map(({ method, budget, row }) => {
    const s = score(row.after);
    return `| ${method} | ${budget} | ${String(row.file_bytes)} | ${Number(row.bits_per_param).toFixed(2)} | ${s.toFixed(4)} | ${(s - base >= 0 ? "+" : "") + (s - base).toFixed(4)} | ${String(row.compress_seconds)} | ${String(row.peak_rss_mib)} |`;
  }),
];
const series = new Map<string, Series>();
for (const { method, budget, row } of rows) {
  // A method's rows over another number of sites (tt), or healed by fine-tuning, are a line of their own.
  const variant = /(sites \d+|heal-steps \d+)/.exec(budget)?.[1];
  const name = variant ? `${method}, ${variant}` : method;
  const s = series.get(name) ?? { name, points: [] };
  const y = score(row.after);
  s.points.push({ x: Number(row.file_bytes), y, lo: y, hi: y });
  series.set(name, s);
}
series.set("float32", { name: "float32", points: [{ x: 4 * Number(rows[0]!.row.params), y: base, lo: base, hi: base }] });
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.md`, `${lines.join("\n")}\n`);
writeFileSync(`${out}.jsonl`, rows.map((r) => JSON.stringify({ method: r.method, budget: r.budget, ...r.row })).join("\n") + "\n");
const yLabel = metric === "accuracy" ? "test accuracy" : "validation bits per byte";
writeFileSync(`${out}.svg`, qualityPlot([...series.values()], `post-training compression of ${input.split("/").at(-1)}: ${yLabel} against file bytes`, yLabel));
process.stdout.write(`${lines.join("\n")}\n`);
