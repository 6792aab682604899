/**
 * A user's own inputs for a model they brought (`--calib DIR`, `--eval DIR`): one .npy array per graph
 * input, named by it, whose first axis counts samples; or, for a model with one image input, a folder
 * of PNG or JPEG files prepared as the flags say. Read a batch at a time from disk, so the samples'
 * count is bounded by the disk, not by memory.
 */
import { readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { systemReason, UserError } from "../errors.js";
import { checkMemory } from "../limits.js";
import type { Feed, FeedData, FeedType } from "../engine/model-session.js";
import { ONNX_TYPE, type GraphInput } from "../format/onnx-graph.js";
import { prepareImage, type ImagePrep } from "./prepare-image.js";
import { parseHeader } from "./npy.js";
import { readAt, readStart } from "../files.js";

export type { ImagePrep };

export interface ModelInputs {
  samples: number;
  /** Samples per run: 1 where an input takes one sample whole (its first axis is not a batch axis). */
  batchSize: number;
  /** The feeds of samples [from, to). */
  batch(from: number, to: number): Record<string, Feed>;
  /** Each sample's file, where samples are files (images). */
  names?: string[];
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;
/** Samples per run where the model's batch axis is free. */
const BATCH = 8;

/** .npy element types, and the graph input types each may feed (converted on the way). */
const NPY: Record<string, { bytes: number; read: (v: DataView, at: number) => number | bigint; feeds: number[] }> = {
  "<f4": { bytes: 4, read: (v, at) => v.getFloat32(at, true), feeds: [ONNX_TYPE.float, ONNX_TYPE.double] },
  "<f8": { bytes: 8, read: (v, at) => v.getFloat64(at, true), feeds: [ONNX_TYPE.float, ONNX_TYPE.double] },
  "<i8": { bytes: 8, read: (v, at) => v.getBigInt64(at, true), feeds: [ONNX_TYPE.int64, ONNX_TYPE.int32] },
  "<i4": { bytes: 4, read: (v, at) => v.getInt32(at, true), feeds: [ONNX_TYPE.int64, ONNX_TYPE.int32] },
  "|u1": { bytes: 1, read: (v, at) => v.getUint8(at), feeds: [ONNX_TYPE.uint8, ONNX_TYPE.bool] },
  "|b1": { bytes: 1, read: (v, at) => v.getUint8(at), feeds: [ONNX_TYPE.bool, ONNX_TYPE.uint8] },
};
const FEED_OF: Record<number, { type: FeedType; make: (n: number) => FeedData }> = {
  [ONNX_TYPE.float]: { type: "float32", make: (n) => new Float32Array(n) },
  [ONNX_TYPE.double]: { type: "float64", make: (n) => new Float64Array(n) },
  [ONNX_TYPE.int64]: { type: "int64", make: (n) => new BigInt64Array(n) },
  [ONNX_TYPE.int32]: { type: "int32", make: (n) => new Int32Array(n) },
  [ONNX_TYPE.uint8]: { type: "uint8", make: (n) => new Uint8Array(n) },
  [ONNX_TYPE.bool]: { type: "bool", make: (n) => new Uint8Array(n) },
};

const sizeOf = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** The files a --calib/--eval/--image path names: a folder's, in name order, or one image file alone. */
function listed(path: string, flag: string): { dir: string; names: string[] } {
  try {
    if (IMAGE_FILE.test(path) && statSync(path).isFile()) return { dir: dirname(path), names: [basename(path)] };
    if (!statSync(path).isDirectory()) throw new UserError(`${flag} ${path} is not a folder`);
    return { dir: path, names: readdirSync(path).sort() };
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${flag}: cannot read ${path}: ${systemReason(e)}`);
  }
}

/** The PNG and JPEG files `path` names (an image, or a folder of them). */
export function imagePaths(path: string, flag: string): string[] {
  const { dir, names } = listed(path, flag);
  const images = names.filter((n) => IMAGE_FILE.test(n));
  if (images.length === 0) throw new UserError(`${flag} ${path} holds no PNG or JPEG images`);
  return images.map((n) => join(dir, n));
}

export function openModelInputs(path: string, inputs: readonly GraphInput[], prep: ImagePrep, flag: string, limit?: number): ModelInputs {
  const { dir, names } = listed(path, flag);
  const arrays = names.filter((n) => n.endsWith(".npy"));
  const images = names.filter((n) => IMAGE_FILE.test(n));
  if (arrays.length === 0 && images.length === 0) throw new UserError(`${flag} ${dir} holds no .npy arrays (one per model input: ${inputs.map((i) => `${i.name}.npy`).join(", ")}) and no PNG or JPEG images`);
  const opened = arrays.length > 0 ? npyInputs(dir, arrays, inputs, flag) : imageInputs(dir, images, inputs, prep, flag);
  const samples = Math.min(opened.samples, limit ?? Infinity);
  checkMemory(opened.sampleBytes * opened.batchSize, `a batch of ${flag} samples`);
  return { ...opened, samples };
}

/** One .npy array per input: [N, ...the input's shape] (one sample per run) or [N, ...] along its batch axis. */
function npyInputs(dir: string, files: string[], inputs: readonly GraphInput[], flag: string): ModelInputs & { sampleBytes: number } {
  const byName = new Map(inputs.map((i) => [i.name, i]));
  for (const f of files) if (!byName.has(f.slice(0, -4))) throw new UserError(`${flag}: ${f} names no input of the model (its inputs: ${inputs.map((i) => i.name).join(", ")})`);
  const opened = inputs.map((input) => {
    const file = join(dir, `${input.name}.npy`);
    if (!files.includes(`${input.name}.npy`)) throw new UserError(`${flag}: no ${input.name}.npy for the model's input ${input.name}`);
    if (!statSync(file).isFile()) throw new UserError(`${flag}: ${file} is not a regular file`);
    const { descr, shape, start } = parseHeader(readStart(file, 1 << 16), file);
    const npy = NPY[descr];
    const feed = FEED_OF[input.elemType];
    if (!feed) throw new UserError(`${flag}: input ${input.name} has an element type (${input.elemType}) mcnc does not feed`);
    if (!npy || !npy.feeds.includes(input.elemType)) throw new UserError(`${flag}: ${input.name}.npy holds ${descr}, which cannot feed the input's ${feed.type}`);
    const rank = input.dims.length;
    const whole = shape.length === rank + 1;
    if (!whole && shape.length !== rank) throw new UserError(`${flag}: ${input.name}.npy is [${shape.join(", ")}]; the input has ${rank} axes, so the array needs ${rank + 1} (samples first) or ${rank} (along its batch axis)`);
    const sample = shape.slice(1);
    input.dims.forEach((d, i) => {
      const have = whole ? shape[i + 1] : i === 0 ? undefined : shape[i];
      if (typeof d === "number" && have !== undefined && have !== d) throw new UserError(`${flag}: ${input.name}.npy is [${shape.join(", ")}]; axis ${i} of the input is fixed at ${d}`);
    });
    const bytes = statSync(file).size;
    if (bytes !== start + sizeOf(shape) * npy.bytes) throw new UserError(`${flag}: ${input.name}.npy's header says [${shape.join(", ")}] of ${descr}, the file holds ${bytes - start} bytes of data`);
    const single = whole || typeof input.dims[0] === "number";
    return { input, file, npy, feed, start, count: shape[0]!, sample, whole, single };
  });
  const count = opened[0]!.count;
  for (const o of opened) if (o.count !== count) throw new UserError(`${flag}: ${o.input.name}.npy holds ${o.count} samples, ${opened[0]!.input.name}.npy ${count}`);
  if (count < 1) throw new UserError(`${flag}: the arrays hold no samples`);
  // Non-finite values named before any work, a bounded chunk at a time.
  for (const o of opened) if (o.npy.feeds.includes(ONNX_TYPE.float)) checkFinite(o.file, o.start, count * sizeOf(o.sample), o.npy, sizeOf(o.sample), `${flag}: ${o.input.name}.npy`);
  const batchSize = opened.some((o) => o.single) ? 1 : BATCH;
  return {
    samples: count,
    batchSize,
    sampleBytes: opened.reduce((n, o) => n + sizeOf(o.sample) * 8, 0),
    batch(from, to) {
      return Object.fromEntries(
        opened.map((o) => {
          const per = sizeOf(o.sample);
          const raw = readAt(o.file, o.start + from * per * o.npy.bytes, (to - from) * per * o.npy.bytes);
          const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
          const data = o.feed.make((to - from) * per);
          const int = o.feed.type === "int64";
          for (let i = 0; i < data.length; i++) {
            const v = o.npy.read(view, i * o.npy.bytes);
            (data as unknown as Array<number | bigint>)[i] = int ? BigInt(v) : Number(v);
          }
          return [o.input.name, { type: o.feed.type, data, dims: o.whole ? o.sample : [to - from, ...o.sample] }];
        }),
      );
    },
  };
}

const CHUNK = 1 << 22;

function checkFinite(file: string, start: number, count: number, npy: (typeof NPY)[string], per: number, what: string): void {
  for (let at = 0; at < count; at += CHUNK) {
    const n = Math.min(CHUNK, count - at);
    const raw = readAt(file, start + at * npy.bytes, n * npy.bytes);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) if (!Number.isFinite(Math.fround(Number(npy.read(view, i * npy.bytes))))) throw new UserError(`${what} holds a value that is not a finite float32 (sample ${Math.floor((at + i) / per)})`);
  }
}

/** A folder of images for a model with one image input, [N, C, H, W] or [N, H, W, C]. */
function imageInputs(dir: string, files: string[], inputs: readonly GraphInput[], prep: ImagePrep, flag: string): ModelInputs & { sampleBytes: number } {
  const input = inputs[0]!;
  if (inputs.length !== 1 || input.dims.length !== 4 || input.elemType !== ONNX_TYPE.float) {
    throw new UserError(`${flag}: images feed a model with one float input of 4 axes; this one takes ${inputs.map((i) => `${i.name} (${i.dims.length} axes)`).join(", ")}: give one .npy array per input instead`);
  }
  const channelsLast = typeof input.dims[3] === "number" && input.dims[3] <= 4 && !(typeof input.dims[1] === "number" && input.dims[1] <= 4);
  const [c, h, w] = channelsLast ? [input.dims[3], input.dims[1], input.dims[2]] : [input.dims[1], input.dims[2], input.dims[3]];
  const channels = typeof c === "number" ? c : 3;
  if (channels !== 1 && channels !== 3) throw new UserError(`${flag}: the input ${input.name} takes ${channels} channels; images give 1 or 3`);
  const size = prep.size ?? (typeof h === "number" && typeof w === "number" ? ([h, w] as [number, number]) : undefined);
  if (!size) throw new UserError(`${flag}: the model leaves its image size free: give --input-size HxW`);
  if (typeof h === "number" && h !== size[0]) throw new UserError(`--input-size: the model's input is fixed at height ${h}`);
  if (typeof w === "number" && w !== size[1]) throw new UserError(`--input-size: the model's input is fixed at width ${w}`);
  const paths = files.map((f) => join(dir, f));
  const per = channels * size[0] * size[1];
  return {
    samples: paths.length,
    names: paths,
    batchSize: typeof input.dims[0] === "number" ? 1 : BATCH,
    sampleBytes: per * 4,
    batch(from, to) {
      const data = new Float32Array((to - from) * per);
      for (let i = from; i < to; i++) data.set(prepareImage(paths[i]!, size, channels, channelsLast, prep), (i - from) * per);
      const dims = channelsLast ? [to - from, size[0], size[1], channels] : [to - from, channels, size[0], size[1]];
      return { [input.name]: { type: "float32", data, dims } };
    },
  };
}
