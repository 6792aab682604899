/**
 * A model mcnc cannot run (another tool's safetensors, ONNX or TF.js), compressed tensor by tensor
 * with a data-free method: written back in its own format with the weights materialised (streamed,
 * one tensor in memory at a time), or as an .mcnc file that stores the compressed form and rebuilds
 * the tensors (`mcnc decompress --template` puts them back into the model).
 */
import { createReadStream, statSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { compressModel } from "../../compress/compress-model.js";
import type { CalibrationProgress } from "../../compress/calibrate-waves.js";
import { leafWorkingBytes, seeingLeaves } from "../../compress/compressor.js";
import type { Compressor } from "../../compress/index.js";
import { UserError } from "../../errors.js";
import { elements, LIMITS } from "../../format/container.js";
import { checkMemory } from "../../limits.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import type { ForeignModel } from "../../format/foreign-model.js";
import { decodeModelFile, encodeModelFile } from "../../format/model-file.js";
import { findMethod, type StoredTensor } from "../../methods/index.js";
import type { HostParams } from "../../model/params.js";
import { asMatrix, tensorsModel, type MatrixLayout, type OriginalShape, type StoredTensorSpec, type TensorsDescription } from "../../model/tensors.js";
import { round } from "../command.js";
import { fileSize } from "./shared.js";

/** The tensors to compress: --compress, or every weight matrix the format marks. */
export function tensorsToCompress(model: ForeignModel, given: unknown): string[] {
  if (given === undefined) return model.tensors.filter((t) => t.weight && t.shape.length >= 2 && elements(t.shape) > 0).map((t) => t.name);
  const names = model.tensors.map((t) => t.name);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const chosen = String(given).split(",");
  for (const name of chosen) {
    const t = byName.get(name);
    if (!t) throw new UserError(`--compress: no tensor '${name.slice(0, 100)}' in the model (it has ${names.slice(0, 8).join(", ")}${names.length > 8 ? ", ..." : ""})`);
    if (t.shape.length < 2) throw new UserError(`--compress: ${name} has one axis; these methods compress matrices`);
    if (elements(t.shape) === 0) throw new UserError(`--compress: ${name} is empty ([${t.shape.join(", ")}]); there is nothing to compress`);
  }
  return chosen;
}

/**
 * What compressing `chosen` holds at once, checked before any work: the widest matrix's working memory
 * beside what stays resident: for .mcnc output every tensor twice (as read and as stored); for ONNX the
 * model read whole, its external data and the file it encodes to (and onnxruntime's copy when
 * calibrating); for a TF.js model that is run (`runs`: calibrated or measured with --eval), four. Safetensors
 * and TF.js written back stream one tensor at a time.
 */
export function checkForeignMemory(model: ForeignModel, compressor: Compressor, chosen: readonly string[], toMcnc: boolean, path: string, runs: boolean): void {
  const selected = new Set(chosen);
  let widest = { bytes: 0, name: "", rows: 0, cols: 0 };
  for (const t of model.tensors) {
    if (!selected.has(t.name)) continue;
    const { rows, cols } = asMatrix(t.shape, t.layout);
    const bytes = leafWorkingBytes(compressor, rows, cols);
    if (bytes > widest.bytes) widest = { bytes, name: t.name, rows, cols };
  }
  const floats = model.tensors.reduce((n, t) => n + 4 * elements(t.shape), 0);
  const files = model.files.reduce((n, f) => n + statSync(f).size, 0);
  // A TF.js model run (calibrated or measured) is held as read, as the copy TF.js loads, and as TF.js's
  // tensors, twice when the compressed model runs beside the original.
  const held = model.format === "onnx" ? (compressor.calibrated ? 3 : 2) : model.format === "tfjs" && runs ? 4 : 0;
  const resident = held * files + (toMcnc ? 2 * floats : 0);
  checkMemory(resident + widest.bytes, `compressing ${path} (its largest matrix to compress, ${widest.name.slice(0, 80)}, is ${widest.rows}x${widest.cols})`);
}

/**
 * Whether an .mcnc file can hold the model with `compressed` of its tensors stored as `perLeaf` tensors
 * each, checked before the work (at one per leaf) and again after the first leaf (at what it stored):
 * the container holds at most LIMITS.tensors tensors and a header of LIMITS.headerBytes, which names
 * each tensor about three times (the description, the original shapes and the payload's table).
 */
export function checkMcncLimits(model: ForeignModel, compressed: number, perLeaf: number): void {
  const entries = model.tensors.length - compressed + perLeaf * compressed;
  const names = model.tensors.reduce((n, t) => n + t.name.length, 0);
  const header = 3 * names + 60 * entries;
  const why = entries > LIMITS.tensors ? `${entries} stored tensors` : header > LIMITS.headerBytes ? `a header of about ${(header / 2 ** 20).toFixed(1)} MiB` : undefined;
  if (why) throw new UserError(`an .mcnc file of this model needs ${why} (${model.tensors.length} tensors, ${compressed} compressed${perLeaf > 1 ? ` into ${perLeaf} each` : ""}), beyond the container's ${LIMITS.tensors} tensors and ${LIMITS.headerBytes / 2 ** 20} MiB header: write it back as ${model.format} instead`);
}

type Laid = { name: string; shape: number[]; layout: MatrixLayout };

/** A foreign tensor's spec as a compressor's leaf: [inputs, outputs], whatever its layout. */
export function leafSpec(t: Laid) {
  const { rows, cols } = asMatrix(t.shape, t.layout);
  return { name: t.name, shape: [rows, cols], role: "weight" as const, fanIn: rows };
}

/** A foreign tensor, `data` in its own shape and layout, as a compressor's leaf. */
export function foreignLeaf(t: Laid, data: Float32Array, index: number) {
  const spec = leafSpec(t);
  return { spec, rows: spec.shape[0]!, cols: spec.shape[1]!, weight: asMatrix(t.shape, t.layout).toMatrix(data), seed: 0, index };
}

/**
 * The chosen leaves calibration can reach (`why` says why not); the others stay as they are, and one
 * named with --compress is an error.
 */
export function reachable<L extends { name: string }>(leaves: L[], why: (leaf: L) => string | undefined, named: boolean, log: (s: string) => void): L[] {
  const reached = leaves.filter((leaf) => {
    const reason = why(leaf);
    if (reason && named) throw new UserError(`--compress: ${leaf.name}: ${reason}`);
    if (reason) log(`stays as it is: ${leaf.name}: ${reason}`);
    return !reason;
  });
  if (reached.length === 0) throw new UserError("calibration reaches none of the chosen weights");
  return reached;
}

/** Leaves compressed already (`done`: what each stores) written as .mcnc: the writer only lays out what they store. */
export function mcncOfCompressed(model: ForeignModel, compressor: Compressor, config: object, names: string[], out: string, done: ReadonlyMap<string, StoredTensor[]>): Promise<Record<string, unknown>> {
  const replay: Compressor = { ...compressor, calibrated: false, compressLeaf: (_c, leaf) => ({ stored: done.get(leaf.spec.name)!, weight: leaf.weight }) };
  return compressToMcnc(model, replay, config, names, out, () => undefined);
}

/**
 * Each leaf compressed data-free, the weight it rebuilds (in the leaf's own shape and layout) handed to
 * `write`; what each stores, by name.
 */
export async function compressEach(leaves: readonly Laid[], compressor: Compressor, config: object, read: (name: string) => Float32Array, write: (leaf: Laid, weight: Float32Array) => void, log: (s: string) => void): Promise<Map<string, StoredTensor[]>> {
  const done = new Map<string, StoredTensor[]>();
  for (const [i, leaf] of leaves.entries()) {
    const t = performance.now();
    const compressed = await compressor.compressLeaf(config, foreignLeaf(leaf, read(leaf.name), i));
    write(leaf, asMatrix(leaf.shape, leaf.layout).fromMatrix(compressed.weight));
    done.set(leaf.name, compressed.stored);
    log(`[${i + 1}/${leaves.length}] ${leaf.name} ${((performance.now() - t) / 1000).toFixed(1)}s`);
  }
  return done;
}

/** The progress line of a calibration wave. */
export const waveLine = (log: (s: string) => void) => (p: CalibrationProgress) => log(`[wave ${p.wave}/${p.waves}] ${p.leaves} matri${p.leaves === 1 ? "x" : "ces"} ${p.seconds.toFixed(1)}s`);

/** The bytes gzip makes of files (paths) or buffers, each on its own, streamed: nothing is held whole. */
export async function gzippedSize(parts: Array<string | Uint8Array>): Promise<number> {
  let n = 0;
  for (const part of parts) {
    const source = typeof part === "string" ? createReadStream(part) : Readable.from(chunks(part));
    await pipeline(source, createGzip(), new Writable({ write: (chunk: Buffer, _e, done) => ((n += chunk.length), done()) }));
  }
  return n;
}

function* chunks(bytes: Uint8Array, size = 2 ** 20): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/** Every selected tensor compressed and materialised, the model written back in its own format. */
export function writeBackCompressed(model: ForeignModel, compressor: Compressor, config: object, chosen: string[], out: string, log: (s: string) => void, store?: string): Record<string, unknown> {
  const started = performance.now();
  let storedBytes = 0;
  let params = 0;
  let done = 0;
  const selected = new Set(chosen);
  const files = model.writeBack(
    out,
    (t, data) => {
      params += data.length;
      if (!selected.has(t.name)) {
        storedBytes += data.length * 4;
        return data;
      }
      const started = performance.now();
      const leaf = compressor.compressLeaf(config, foreignLeaf(t, data, done));
      // Data-free compressors answer at once; only calibrated ones (never here) take time.
      if (leaf instanceof Promise) throw new Error(`${compressor.name} cannot compress a model mcnc cannot run`);
      storedBytes += leaf.stored.reduce((n, s) => n + ("codes" in s ? Math.ceil((s.codes.length * s.bits) / 8) : 4 * s.data.length), 0);
      log(`[${++done}/${chosen.length}] ${t.name} ${((performance.now() - started) / 1000).toFixed(1)}s`);
      return asMatrix(t.shape, t.layout).fromMatrix(leaf.weight);
    },
    { compressed_with: compressor.name },
    store,
  );
  const bytes = (paths: string[]) => paths.reduce((n, p) => n + statSync(p).size, 0);
  return {
    model: model.format,
    compressed: chosen.length,
    compress_seconds: round((performance.now() - started) / 1000, 2),
    params,
    stored_payload_bytes: storedBytes,
    file_bytes: { in: bytes(model.files), out: bytes(files), files: files.length },
  };
}

/**
 * The float tensors as an .mcnc file: each selected matrix compressed as [inputs, outputs], with the
 * shape and layout it had, the rest kept. The whole model is held in memory (the .mcnc writer lays
 * out every stored tensor at once); writing back in the model's own format streams instead.
 */
export async function compressToMcnc(model: ForeignModel, compressor: Compressor, config: object, chosen: string[], out: string, log: (s: string) => void): Promise<Record<string, unknown>> {
  const params: StoredTensorSpec[] = [];
  const originals: OriginalShape[] = [];
  const weights: HostParams = {};
  const selected = new Set(chosen);
  for (const t of model.tensors) {
    const data = model.read(t.name);
    if (selected.has(t.name)) {
      const view = asMatrix(t.shape, t.layout);
      params.push({ name: t.name, shape: [view.rows, view.cols], role: "weight" });
      originals.push({ name: t.name, shape: t.shape, layout: t.layout });
      weights[t.name] = view.toMatrix(data);
    } else {
      params.push({ name: t.name, shape: t.shape, role: t.weight && t.shape.length >= 2 ? "weight" : "bias" });
      weights[t.name] = data;
    }
  }
  const description: TensorsDescription = { name: "tensors", format: model.format, params, originals };
  const network = tensorsModel(description);
  // The limits again after the first leaf, at the tensors the method stores per leaf.
  let first = true;
  const checked = seeingLeaves(compressor, (_leaf, out) => {
    if (first) checkMcncLimits(model, chosen.length, out.stored.length);
    first = false;
  });
  const run = await compressModel(network, weights, checked, config, chosen, [], 0, (p) => log(`[${p.index + 1}/${p.of}] ${p.leaf} ${p.seconds.toFixed(1)}s`));
  const bytes = encodeModelFile({ model: description, method: run.method, seed: 0, trainable: {}, meta: { compressed: { method: compressor.name, config } } }, network, findMethod(run.method.name)!, {
    encoded: run.stored,
  });
  // Read back before it is written: the file counted is a file mcnc reads.
  const loaded = decodeModelFile(bytes, "the compressed model");
  writeFileAtomic(out, bytes);
  return { model: model.format, compressed: chosen.length, storage: run.method.name, compress_seconds: round(run.seconds, 2), size: fileSize(loaded) };
}
