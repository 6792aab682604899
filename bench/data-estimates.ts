/**
 * What each data reader says a data set will cost, against what loading it costs: the estimate that
 * --max-memory is checked against (read from its refusal) beside the peak resident memory of
 * `train --steps 1` on the same data, less the same command's peak on a tiny set of the same kind. An
 * estimate at or above the measured cost is what the limit needs; far above it wastes the limit.
 *
 *   node dist/bench/data-estimates.js [--scale 1]   (JSON on stdout)
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { PNG } from "pngjs";
import { option } from "./bench-args.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/** An IDX file: its header, then its bytes. */
function idx(shape: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 8;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

/** Four IDX files of `train` and `test` images a side of `side`, gzipped or not. */
function idxDir(dir: string, train: number, test: number, side: number, gzip: boolean): string {
  mkdirSync(dir, { recursive: true });
  const images = (n: number) => Uint8Array.from({ length: n * side * side }, (_, i) => (i * 7 + (i >> 9)) % 251);
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
  const files: Array<[string, Uint8Array]> = [
    ["train-images-idx3-ubyte", idx([train, side, side], images(train))],
    ["train-labels-idx1-ubyte", idx([train], labels(train))],
    ["t10k-images-idx3-ubyte", idx([test, side, side], images(test))],
    ["t10k-labels-idx1-ubyte", idx([test], labels(test))],
  ];
  for (const [name, bytes] of files) writeFileSync(join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes, { level: 1 }) : bytes);
  return dir;
}

/** A table of `rows` rows: `columns` numbers and a label of two classes. */
function table(path: string, rows: number, columns: number): string {
  const lines = [Array.from({ length: columns }, (_, j) => `c${j}`).join(",") + ",label"];
  for (let i = 0; i < rows; i++) lines.push(`${Array.from({ length: columns }, (_, j) => (i * 31 + j * 7) % 97).join(",")},${"ab"[i % 2]}`);
  const text = `${lines.join("\n")}\n`;
  writeFileSync(path, path.endsWith(".gz") ? gzipSync(text) : text);
  return path;
}

/** Class folders of `count` PNG images a side of `side`. */
function imageFolder(dir: string, count: number, side: number): string {
  for (let i = 0; i < count; i++) {
    const folder = join(dir, `class${i % 4}`);
    mkdirSync(folder, { recursive: true });
    const image = new PNG({ width: side, height: side });
    for (let p = 0; p < side * side; p++) image.data.set([(p * 3 + i) % 256, (p * 5) % 256, (p * 7 + i) % 256, 255], 4 * p);
    writeFileSync(join(folder, `${i}.png`), PNG.sync.write(image));
  }
  return dir;
}

function train(data: string, out: string, maxMemory: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, "train", "--method", "dense", "--data", data, "--steps", "1", "--batch", "2", "--test-limit", "8", "--out", out, "--max-memory", maxMemory, "--json", "--quiet"], { encoding: "utf8" });
}

/**
 * The peak of a full and a tiny run, and the estimate: read from the refusal at 60% of the measured cost
 * (a lower limit can stop an earlier, cruder check first). A run that passes there has an estimate below it.
 */
function measure(kind: string, data: string, tiny: string, out: string): Record<string, unknown> {
  const peak = (path: string) => {
    const r = train(path, out, "65536");
    if (r.status !== 0) throw new Error(`${kind}: ${r.stderr.trim().split("\n").at(-1)}`);
    return (JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { peak_rss_mib: number }).peak_rss_mib;
  };
  const [full, base] = [peak(data), peak(tiny)];
  const cost = Math.round(full - base);
  const limit = Math.max(1, Math.floor(0.6 * cost));
  const refused = train(data, out, String(limit));
  const estimate = Number(/needs about ([\d,.]+) MiB/.exec(refused.stderr)?.[1]?.replace(/,/g, "") ?? NaN);
  const found = refused.status === 2 && Number.isFinite(estimate);
  return {
    data: kind,
    peak_mib: full,
    tiny_peak_mib: base,
    cost_mib: cost,
    estimate_mib: found ? estimate : `below ${limit}`,
    estimate_over_cost: found ? Number((estimate / cost).toFixed(2)) : null,
    at_limit: `${limit}: ${refused.stderr.trim().split("\n").at(-1)?.slice(0, 140) ?? "passed"}`,
  };
}

async function main(): Promise<void> {
  const scale = Number(option("scale", "1"));
  const dir = mkdtempSync(join(tmpdir(), "mcnc-estimates-"));
  const out = join(dir, "x.mcnc");
  try {
    const n = Math.round(60000 * scale);
    const rows = [
      measure("IDX, gzipped, 28x28", idxDir(join(dir, "idx-gz"), n, n / 6, 28, true), idxDir(join(dir, "idx-gz-tiny"), 20, 20, 28, true), out),
      measure("IDX, plain, 28x28", idxDir(join(dir, "idx"), n, n / 6, 28, false), idxDir(join(dir, "idx-tiny"), 20, 20, 28, false), out),
      measure("IDX, gzipped, 64x64", idxDir(join(dir, "idx64"), n / 2, n / 12, 64, true), idxDir(join(dir, "idx64-tiny"), 20, 20, 64, true), out),
      measure("CSV, gzipped, 1 column", table(join(dir, "short.csv.gz"), 50 * n, 1), table(join(dir, "short-tiny.csv.gz"), 40, 1), out),
      measure("CSV, 64 columns", table(join(dir, "wide.csv"), n, 64), table(join(dir, "wide-tiny.csv"), 40, 64), out),
      measure("PNG folder, 32x32", imageFolder(join(dir, "png"), n / 20, 32), imageFolder(join(dir, "png-tiny"), 20, 32), out),
    ];
    console.log(JSON.stringify({ bench: "data-estimates", scale, rows }, null, 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
