/**
 * A large ONNX model compressed within --max-memory, self-contained and saved with external data (its
 * weights in a file beside it, as exporters save large models): an MLP of `--layers` MatMuls of
 * `--width`² float32 weights (8 x 4096² by default, 537 MB). Each row runs `mcnc compress` in its
 * own process and reports its seconds, its peak memory, the file it wrote, and the largest change of
 * the output on 8 random inputs against the original in onnxruntime. Prints JSON.
 *
 *   node dist/bench/large-onnx.js [--layers 8] [--width 4096] [--methods rtn4,rtn8-float] [--max-memory MIB]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { initEngine } from "../src/engine/engine.js";
import { openModelSession } from "../src/engine/model-session.js";
import { f32, Graph } from "../src/engine/onnx/graph.js";
import { allTensors } from "../src/format/onnx-external.js";
import { encodeOnnx, readOnnx } from "../src/format/onnx.js";
import { option } from "./bench-args.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/**
 * An ONNX model saved with each float tensor's bytes in the file `location(name)` names, relative to
 * `folder`, as onnx.save_model(..., save_as_external_data=True) does. Returns the model's path.
 */
export function saveWithExternalData(model: Uint8Array, folder: string, location: (name: string) => string): string {
  mkdirSync(folder, { recursive: true });
  const m = readOnnx(model).message;
  const files = new Map<string, Uint8Array[]>();
  for (const t of allTensors(m.graph)) {
    if (t.dataType !== 1 || !t.rawData?.length) continue;
    const file = location(t.name ?? "");
    const parts = files.get(file) ?? [];
    const offset = parts.reduce((n, p) => n + p.length, 0);
    parts.push(t.rawData);
    files.set(file, parts);
    t.externalData = [{ key: "location", value: file }, { key: "offset", value: String(offset) }, { key: "length", value: String(t.rawData.length) }];
    t.dataLocation = 1;
    t.rawData = new Uint8Array();
  }
  for (const [file, parts] of files) {
    mkdirSync(dirname(join(folder, file)), { recursive: true });
    writeFileSync(join(folder, file), Buffer.concat(parts));
  }
  const path = join(folder, "model.onnx");
  writeFileSync(path, encodeOnnx(m));
  return path;
}

/** Deterministic uniform numbers in [-scale, scale]. */
function uniform(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = scale * (s / 2 ** 31 - 1);
  }
  return out;
}

function mlp(layers: number, width: number): Uint8Array {
  const g = new Graph();
  let h = g.input("x", f32([8, width]));
  for (let l = 0; l < layers; l++) {
    const w = g.constant("float32", [width, width], uniform(width * width, l + 1, Math.sqrt(3 / width)));
    h = g.op("MatMul", [h, w], f32([8, width]));
    if (l < layers - 1) h = g.op("Tanh", [h], f32([8, width]));
  }
  g.output("y", h);
  return g.encode();
}

async function outputOf(model: string, x: Float32Array, width: number): Promise<Float32Array> {
  const s = await openModelSession(model, model);
  const y = (await s.run({ x: { type: "float32", data: x, dims: [8, width] } })).y!.data as Float32Array;
  await s.close();
  return y;
}

const METHODS: Record<string, string[]> = {
  rtn4: ["--method", "rtn", "--bits", "4"],
  rtn8: ["--method", "rtn", "--bits", "8"],
  "rtn8-float": ["--method", "rtn", "--bits", "8", "--float"],
  "svd-0.5": ["--method", "svd", "--reduction", "0.5"],
};

/** A chain of `n` MatMuls by 4x4 weights: many small initializers, where a step per weight over all of them is quadratic. */
function manySmall(n: number): Uint8Array {
  const g = new Graph();
  let h = g.input("x", f32([1, 4]));
  for (let i = 0; i < n; i++) h = g.op("MatMul", [h, g.constant("float32", [4, 4], uniform(16, i + 1, 0.5))], f32([1, 4]));
  g.output("y", h);
  return g.encode();
}

function compressOnce(input: string, out: string, method: string, maxMemory: string): { seconds: number; peak_rss_mib?: number; error?: string } {
  const started = performance.now();
  const r = spawnSync(process.execPath, [CLI, "compress", "--in", input, "--out", out, "--max-memory", maxMemory, "--json", "--quiet", ...METHODS[method]!], { encoding: "utf8", maxBuffer: 2 ** 26 });
  const seconds = Number(((performance.now() - started) / 1000).toFixed(2));
  if (r.status !== 0) return { seconds, error: r.stderr.trim().split("\n").at(-1)! };
  return { seconds, peak_rss_mib: (JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { peak_rss_mib: number }).peak_rss_mib };
}

async function main(): Promise<void> {
  const flag = option;
  const initializers = Number(flag("initializers", "0"));
  if (initializers > 0) {
    // The whole command's wall time, from start to exit: reading, compressing and writing.
    const dir = mkdtempSync(join(tmpdir(), "mcnc-many-onnx-"));
    try {
      const input = join(dir, "many.onnx");
      writeFileSync(input, manySmall(initializers));
      const rows = ["rtn8", "svd-0.5"].map((method) => ({ method, ...compressOnce(input, join(dir, "out.onnx"), method, "4096") }));
      console.log(JSON.stringify({ bench: "many-onnx-initializers", initializers, model_bytes: statSync(input).size, rows }, null, 1));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const [layers, width] = [Number(flag("layers", "8")), Number(flag("width", "4096"))];
  const methods = flag("methods", "rtn4,rtn8-float").split(",");
  const maxMemory = flag("max-memory", "2048");
  await initEngine({ engine: "native" });
  const dir = mkdtempSync(join(tmpdir(), "mcnc-large-onnx-"));
  try {
    const inline = join(dir, "inline.onnx");
    const bytes = mlp(layers, width);
    writeFileSync(inline, bytes);
    const external = saveWithExternalData(bytes, join(dir, "external"), () => "model.onnx.data");
    const x = uniform(8 * width, 99, 1);
    const original = await outputOf(inline, x, width);
    const rows = [];
    for (const [form, input] of [["inline", inline], ["external data", external]] as const) {
      for (const method of methods) {
        const out = join(dir, `${method}.onnx`);
        const r = spawnSync(process.execPath, [CLI, "compress", "--in", input, "--out", out, "--max-memory", maxMemory, "--json", "--quiet", ...METHODS[method]!], { encoding: "utf8", maxBuffer: 2 ** 26 });
        if (r.status !== 0) {
          rows.push({ form, method, error: r.stderr.trim().split("\n").at(-1) });
          continue;
        }
        const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { compress_seconds: number; peak_rss_mib: number; file_bytes: { in: number; out: number } };
        const y = await outputOf(out, x, width);
        let change = 0;
        for (let i = 0; i < y.length; i++) change = Math.max(change, Math.abs(y[i]! - original[i]!));
        rows.push({ form, method, in_bytes: j.file_bytes.in, out_bytes: statSync(out).size, compress_seconds: j.compress_seconds, peak_rss_mib: j.peak_rss_mib, max_abs_output_change: Number(change.toPrecision(3)) });
        rmSync(out);
      }
    }
    console.log(JSON.stringify({ bench: "large-onnx", layers, width, params: layers * width * width, model_bytes: statSync(inline).size, max_memory_mib: Number(maxMemory), rows }, null, 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
