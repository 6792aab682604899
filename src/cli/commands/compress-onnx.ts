/**
 * An ONNX model mcnc did not write, compressed: data-free, or calibrated on the user's inputs through
 * onnxruntime (compress/calibrate-onnx.ts); written back as ONNX in compact forms onnxruntime runs
 * (format/onnx-compact.ts), or as .mcnc; and measured on the user's inputs (`--eval DIR`) against the
 * original, in the same run.
 */
import { statSync } from "node:fs";
import { calibrateOnnx, calibrationGraph, uncalibratable, type OnnxLeaf } from "../../compress/calibrate-onnx.js";
import type { Compressor } from "../../compress/compressor.js";
import { openModelInputs, type ImagePrep } from "../../data/model-inputs.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import type { ForeignModel } from "../../format/foreign-model.js";
import { writeCompactAll, type CompactForm } from "../../format/onnx-compact.js";
import { graphInputs } from "../../format/onnx-graph.js";
import { openModelSession } from "../../engine/model-session.js";
import type { OnnxModel } from "../../format/onnx.js";
import type { StoredTensor } from "../../methods/index.js";
import { round } from "../command.js";
import { compareOutputs } from "./compare-outputs.js";
import { compressEach, foreignLeaf, gzippedSize, leafSpec, mcncOfCompressed, reachable, waveLine } from "./compress-tensors.js";

export interface OnnxJob {
  compressor: Compressor;
  config: object;
  chosen: string[];
  out: string;
  /** Write the compressed weights as float (the input's dtypes), not in compact forms. */
  float: boolean;
  /** 8-bit per-channel codes as DequantizeLinear (QDQ) rather than the form onnxruntime folds at load. */
  qdq: boolean;
  calib?: { dir: string; samples?: number };
  /** The chosen weights were named (--compress): one calibration cannot reach is an error. */
  named: boolean;
  evaluate?: { dir: string; samples?: number };
  prep: ImagePrep;
  log(line: string): void;
}

/** What a compressed leaf stores, as a compact form for ONNX, where it is one. */
function compactForm(stored: StoredTensor[], storage: { method: string; config: object }): CompactForm | undefined {
  const get = (suffix: string) => stored.find((s) => s.name.endsWith(suffix));
  const config = storage.config as { group?: number };
  if (storage.method === "quant") {
    const codes = get(".codes");
    const [mins, steps] = [get(".min"), get(".step")];
    if (!codes || !("codes" in codes) || !mins || !("data" in mins) || !steps || !("data" in steps)) return undefined;
    return { kind: "quant", bits: codes.bits, group: config.group ?? 0, codes: codes.codes, mins: mins.data, steps: steps.data };
  }
  if (storage.method === "lora") {
    const [down, up] = [get(".down"), get(".up")];
    if (!down || !("data" in down) || !up || !("data" in up)) return undefined;
    return { kind: "low-rank", rank: down.shape[1]!, down: down.data, up: up.data };
  }
  return undefined;
}

export async function compressOnnx(model: ForeignModel, job: OnnxJob): Promise<Record<string, unknown>> {
  const onnx = model.onnx!;
  const { compressor, config, chosen, log } = job;
  const started = performance.now();
  const tensorOf = new Map(model.tensors.map((t) => [t.name, t]));
  const weightOf = new Map(onnx.weights.map((w) => [w.name, w]));
  let leaves: OnnxLeaf[] = chosen.map((name) => {
    const t = tensorOf.get(name)!;
    return { name, shape: t.shape, layout: t.layout, value: weightOf.get(name)!.value };
  });
  const leafOf = (leaf: OnnxLeaf, index: number) => foreignLeaf(leaf, onnx.read(leaf.name), index);
  // Both folders checked before any work.
  const evalInputs = job.evaluate && openModelInputs(job.evaluate.dir, graphInputs(onnx.message), job.prep, "--eval", job.evaluate.samples);
  const calibInputs = job.calib && openModelInputs(job.calib.dir, graphInputs(onnx.message), job.prep, "--calib", job.calib.samples);
  // The input's size before its weights are overwritten by the compressed ones (and its bytes with them).
  const filesIn = { bytes: model.files.reduce((n, f) => n + statSync(f).size, 0), gzip: await gzippedSize(model.files) };
  // What each leaf stores; the weights it rebuilds go into the model at once (the model is not held twice).
  let done = new Map<string, StoredTensor[]>();
  if (job.calib && calibInputs) {
    const inputs = calibInputs;
    onnx.inlineExternal();
    const graph = await calibrationGraph(onnx, inputs);
    leaves = reachable(leaves, (leaf) => uncalibratable(onnx, graph, leaf, compressor.columnwise), job.named, log);
    log(`calibrating on ${inputs.samples} samples of ${job.calib.dir}`);
    // The model read, its graph with calibration outputs encoded, and onnxruntime's copy (checkForeignMemory's count).
    const held = 3 * filesIn.bytes;
    done = await calibrateOnnx(onnx, graph, leaves, inputs, async (leaf, index, moments) => compressor.compressLeaf(config, { ...leafOf(leaf, index), moments }), waveLine(log), held);
  } else done = await compressEach(leaves, compressor, config, onnx.read, (leaf, w) => onnx.write(leaf.name, w), log);
  const seconds = round((performance.now() - started) / 1000, 2);
  const names = leaves.map((l) => l.name);
  let report: Record<string, unknown>;
  let written: Uint8Array;
  if (job.out.endsWith(".mcnc")) {
    report = { ...(await mcncOfCompressed(model, compressor, config, names, job.out, done)), compress_seconds: seconds };
    written = evalInputs ? onnx.encode() : new Uint8Array();
  } else {
    const compressed = leaves.map((l) => ({ spec: leafSpec(l), stored: done.get(l.name)! }));
    const forms = job.float ? {} : writeForms(onnx, leaves, done, compressor.storage(config, compressed, names), job.qdq);
    written = onnx.encode();
    writeFileAtomic(job.out, written);
    report = { model: "onnx", compressed: names.length, leaves: names, compress_seconds: seconds, forms, file_bytes: { in: filesIn.bytes, out: written.length, in_gzip: filesIn.gzip, out_gzip: await gzippedSize([written]) } };
  }
  // The original is read again from its file(s): its bytes in memory now hold the compressed weights.
  if (evalInputs) report.quality = await compareOutputs([await openModelSession(model.files[0]!, "the original model"), await openModelSession(written, "the compressed model")], evalInputs);
  return report;
}

/** Each compressed weight in its compact form where it has one, dense otherwise; the forms counted. */
function writeForms(onnx: OnnxModel, leaves: OnnxLeaf[], done: Map<string, StoredTensor[]>, storage: { method: string; config: object }, qdq: boolean): Record<string, number> {
  const forms: Record<string, number> = {};
  const weightOf = new Map(onnx.weights.map((w) => [w.name, w]));
  const items = leaves.flatMap((leaf) => {
    const form = compactForm(done.get(leaf.name)!, storage);
    return form ? [{ w: weightOf.get(leaf.name)!, form }] : [];
  });
  const written = [...writeCompactAll(onnx, items, qdq), ...Array<undefined>(leaves.length - items.length)];
  for (const how of written.map((h) => h ?? "float (no smaller compact form here)")) forms[how] = (forms[how] ?? 0) + 1;
  return forms;
}
