/**
 * A TensorFlow.js graph model mcnc did not write, compressed with calibration on the user's inputs or
 * measured on them (`--eval DIR`), both run by TF.js itself (compress/calibrate-tfjs.ts); written back
 * as a TF.js model (its converter's shards and weight quantisations) or as .mcnc. Data-free methods
 * without --eval stream through compress-tensors.ts instead.
 */
import { statSync } from "node:fs";
import { calibrateTfjs, uncalibratableTfjs } from "../../compress/calibrate-tfjs.js";
import type { WaveLeaf } from "../../compress/calibrate-waves.js";
import type { Compressor } from "../../compress/compressor.js";
import { openModelInputs, type ImagePrep } from "../../data/model-inputs.js";
import { openTfjsSession } from "../../engine/tfjs-session.js";
import { UserError } from "../../errors.js";
import type { ForeignModel } from "../../format/foreign-model.js";
import { tfjsInputs } from "../../format/tfjs-graph.js";
import { readTfjsArtifacts } from "../../format/tfjs.js";
import type { StoredTensor } from "../../methods/index.js";
import { round } from "../command.js";
import { compareOutputs } from "./compare-outputs.js";
import { compressEach, foreignLeaf, gzippedSize, mcncOfCompressed, reachable, waveLine } from "./compress-tensors.js";

export interface TfjsJob {
  compressor: Compressor;
  config: object;
  chosen: string[];
  out: string;
  named: boolean;
  calib?: { dir: string; samples?: number };
  evaluate?: { dir: string; samples?: number };
  prep: ImagePrep;
  /** How written float weights are stored (TF.js's float16, uint16, uint8); the input's otherwise. */
  store?: string;
  log(line: string): void;
}

export async function compressTfjs(model: ForeignModel, job: TfjsJob): Promise<Record<string, unknown>> {
  const graph = model.tfjs;
  if (!graph) throw new UserError(`${model.files[0]}: a TF.js layers model; calibration and --eval run graph models (tensorflowjs_converter --output_format tfjs_graph_model)`);
  const { compressor, config, log } = job;
  const started = performance.now();
  const tensorOf = new Map(model.tensors.map((t) => [t.name, t]));
  let leaves: WaveLeaf[] = job.chosen.map((name) => tensorOf.get(name)!);
  const leafOf = (leaf: WaveLeaf, index: number) => foreignLeaf(leaf, model.read(leaf.name), index);
  const inputs = tfjsInputs(graph.topology);
  const evalInputs = job.evaluate && openModelInputs(job.evaluate.dir, inputs, job.prep, "--eval", job.evaluate.samples);
  const calibInputs = job.calib && openModelInputs(job.calib.dir, inputs, job.prep, "--calib", job.calib.samples);
  const filesIn = { bytes: model.files.reduce((n, f) => n + statSync(f).size, 0), gzip: await gzippedSize(model.files) };
  let stored = new Map<string, StoredTensor[]>();
  let weights = new Map<string, Float32Array>();
  if (job.calib && calibInputs) {
    leaves = reachable(leaves, (leaf) => uncalibratableTfjs(graph, leaf), job.named, log);
    log(`calibrating on ${calibInputs.samples} samples of ${job.calib.dir} (run by TF.js)`);
    ({ stored, weights } = await calibrateTfjs(graph, leaves, calibInputs, async (leaf, index, moments) => compressor.compressLeaf(config, { ...leafOf(leaf, index), moments }), waveLine(log)));
  } else stored = await compressEach(leaves, compressor, config, model.read, (leaf, w) => weights.set(leaf.name, w), log);
  const seconds = round((performance.now() - started) / 1000, 2);
  const names = leaves.map((l) => l.name);
  let report: Record<string, unknown>;
  if (job.out.endsWith(".mcnc")) {
    report = { ...(await mcncOfCompressed(model, compressor, config, names, job.out, stored)), compress_seconds: seconds };
  } else {
    const files = model.writeBack(job.out, (t, data) => weights.get(t.name) ?? data, { compressed_with: compressor.name }, job.store);
    const bytesOut = files.reduce((n, f) => n + statSync(f).size, 0);
    report = { model: "tfjs", compressed: names.length, leaves: names, compress_seconds: seconds, file_bytes: { in: filesIn.bytes, out: bytesOut, files: files.length, in_gzip: filesIn.gzip, out_gzip: await gzippedSize(files) } };
  }
  if (evalInputs) {
    // The written files as TF.js loads them (their quantised weights too), or, for .mcnc, the weights it rebuilds.
    const after = job.out.endsWith(".mcnc") ? graph.artifacts(weights) : readTfjsArtifacts(job.out);
    report.quality = await compareOutputs([await openTfjsSession(graph.artifacts(), "the original model"), await openTfjsSession(after, "the compressed model")], evalInputs);
  }
  return report;
}
