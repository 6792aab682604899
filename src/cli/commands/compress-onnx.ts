/**
 * An ONNX model mcnc did not write, compressed: data-free, or calibrated on the user's inputs through
 * onnxruntime (compress/calibrate-onnx.ts); written back as ONNX in compact forms onnxruntime runs
 * (format/onnx-compact.ts), or as .mcnc; and measured on the user's inputs (`--eval DIR`) against the
 * original, in the same run.
 */
import { gzipSync } from "node:zlib";
import { calibrateOnnx, calibrationGraph, uncalibratable, type OnnxLeaf } from "../../compress/calibrate-onnx.js";
import type { Compressor, CompressedLeaf } from "../../compress/compressor.js";
import { openModelInputs, type ImagePrep } from "../../data/model-inputs.js";
import { UserError } from "../../errors.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import type { ForeignModel } from "../../format/foreign-model.js";
import { writeCompact, type CompactForm } from "../../format/onnx-compact.js";
import { graphInputs } from "../../format/onnx-graph.js";
import type { ModelMessage, OnnxModel } from "../../format/onnx.js";
import type { StoredTensor } from "../../methods/index.js";
import { asMatrix } from "../../model/tensors.js";
import { round } from "../command.js";
import { compareOutputs } from "./compare-outputs.js";
import { compressToMcnc } from "./compress-tensors.js";

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

/** The chosen weights calibration can reach; the others stay as they are (named ones are an error). */
function calibratable(model: OnnxModel, graph: ModelMessage, leaves: OnnxLeaf[], job: OnnxJob): OnnxLeaf[] {
  const { named, log } = job;
  const reached = leaves.filter((leaf) => {
    const { name } = leaf;
    const why = uncalibratable(model, graph, leaf, job.compressor.columnwise);
    if (why && named) throw new UserError(`--compress: ${name}: ${why}`);
    if (why) log(`stays as it is: ${name}: ${why}`);
    return !why;
  });
  if (reached.length === 0) throw new UserError("calibration reaches none of the chosen weights");
  return reached;
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

export async function compressOnnx(model: ForeignModel, source: Uint8Array, job: OnnxJob): Promise<Record<string, unknown>> {
  const onnx = model.onnx!;
  const { compressor, config, chosen, log } = job;
  const started = performance.now();
  let leaves: OnnxLeaf[] = chosen.map((name) => {
    const t = model.tensors.find((e) => e.name === name)!;
    return { name, shape: t.shape, layout: t.layout, value: onnx.weights.find((w) => w.name === name)!.value };
  });
  const specOf = (leaf: OnnxLeaf) => {
    const { rows, cols } = asMatrix(leaf.shape, leaf.layout);
    return { name: leaf.name, shape: [rows, cols], role: "weight" as const, fanIn: rows };
  };
  const leafOf = (leaf: OnnxLeaf, index: number) => {
    const view = asMatrix(leaf.shape, leaf.layout);
    return { spec: specOf(leaf), rows: view.rows, cols: view.cols, weight: view.toMatrix(onnx.read(leaf.name)), seed: 0, index };
  };
  // Both folders checked before any work.
  const evalInputs = job.evaluate && openModelInputs(job.evaluate.dir, graphInputs(onnx.message), job.prep, "--eval", job.evaluate.samples);
  const calibInputs = job.calib && openModelInputs(job.calib.dir, graphInputs(onnx.message), job.prep, "--calib", job.calib.samples);
  let done: Map<string, CompressedLeaf>;
  if (job.calib && calibInputs) {
    const inputs = calibInputs;
    const graph = await calibrationGraph(onnx, inputs);
    leaves = calibratable(onnx, graph, leaves, job);
    log(`calibrating on ${inputs.samples} samples of ${job.calib.dir}`);
    done = await calibrateOnnx(onnx, graph, leaves, inputs, async (leaf, index, moments) => compressor.compressLeaf(config, { ...leafOf(leaf, index), moments }), (p) =>
      log(`[wave ${p.wave}/${p.waves}] ${p.leaves} matri${p.leaves === 1 ? "x" : "ces"} ${p.seconds.toFixed(1)}s`),
    );
  } else {
    done = new Map();
    for (const [i, leaf] of leaves.entries()) {
      const t = performance.now();
      done.set(leaf.name, await compressor.compressLeaf(config, leafOf(leaf, i)));
      log(`[${i + 1}/${leaves.length}] ${leaf.name} ${((performance.now() - t) / 1000).toFixed(1)}s`);
    }
  }
  const seconds = round((performance.now() - started) / 1000, 2);
  const names = leaves.map((l) => l.name);
  // The model as the compressed weights rebuild it, in float: what .mcnc output and --float write.
  for (const leaf of leaves) onnx.write(leaf.name, asMatrix(leaf.shape, leaf.layout).fromMatrix(done.get(leaf.name)!.weight));
  const dense = onnx.encode();
  let report: Record<string, unknown>;
  let written = dense;
  if (job.out.endsWith(".mcnc")) {
    // Every leaf is compressed already: the .mcnc writer only lays out what they store.
    const replay: Compressor = { ...compressor, calibrated: false, compressLeaf: (_c, leaf) => done.get(leaf.spec.name)! };
    report = { ...(await compressToMcnc(model, replay, config, names, job.out, () => undefined)), compress_seconds: seconds };
  } else {
    const compressed = leaves.map((l) => ({ spec: specOf(l), stored: done.get(l.name)!.stored }));
    const forms = job.float ? {} : writeForms(onnx, leaves, done, compressor.storage(config, compressed, names), job.qdq);
    written = job.float ? dense : onnx.encode();
    writeFileAtomic(job.out, written);
    report = { model: "onnx", compressed: names.length, leaves: names, compress_seconds: seconds, forms, file_bytes: { in: source.length, out: written.length, in_gzip: gzipSync(source).length, out_gzip: gzipSync(written).length } };
  }
  if (evalInputs) report.quality = await compareOutputs(source, written, evalInputs);
  return report;
}

/** Each compressed weight in its compact form where it has one, dense otherwise; the forms counted. */
function writeForms(onnx: OnnxModel, leaves: OnnxLeaf[], done: Map<string, CompressedLeaf>, storage: { method: string; config: object }, qdq: boolean): Record<string, number> {
  const forms: Record<string, number> = {};
  for (const leaf of leaves) {
    const form = compactForm(done.get(leaf.name)!.stored, storage);
    const how = (form && writeCompact(onnx, onnx.weights.find((w) => w.name === leaf.name)!, form, qdq)) ?? "float (no compact form here)";
    forms[how] = (forms[how] ?? 0) + 1;
  }
  return forms;
}
