/**
 * TensorFlow.js models: model.json, whose weightsManifest lists groups of weights stored back to back
 * across the group's shard files. Float32 weights are read; the others pass through untouched. Written
 * back in shards of 4 MiB (the converter's size), with float weights stored as float32 or in the
 * converter's own quantisations (float16; uint16 and uint8 with one min and scale per tensor), which
 * TF.js dequantises when it loads the model.
 */
import { existsSync, renameSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "./atomic-write.js";
import { checkShape, elements } from "./container.js";
import type { ForeignModel, ForeignTensor } from "./foreign-model.js";
import { insideFolder, readWholeFile, regularFileSize } from "../files.js";
import { narrow, widen } from "./safetensors.js";
import type { MatrixLayout } from "../model/tensors.js";
import { MULTIPLIES, producerOf, useLayout, type TfjsTopology } from "./tfjs-graph.js";

interface TfjsWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

const TFJS_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
/** The converter's shard size. */
const SHARD = 4 * 1024 * 1024;
/** How float weights may be stored: the converter's quantisations. */
export const TFJS_STORES = ["float32", "float16", "uint16", "uint8"] as const;
export type TfjsStore = (typeof TFJS_STORES)[number];

/**
 * The weights a layer multiplies by, with the layout it multiplies them in: in a graph model, the
 * second input of MatMul and Conv ops (an embedding table, read by a Gather, is not one); in a layers
 * model, the kernels.
 */
function multipliedWeights(json: Record<string, unknown>, names: string[]): Map<string, MatrixLayout | undefined> {
  const nodes = (json.modelTopology as TfjsTopology | undefined)?.node;
  if (!Array.isArray(nodes)) return new Map(names.filter((n) => /kernel$/.test(n)).map((n) => [n, undefined]));
  const used = new Map<string, MatrixLayout>();
  for (const node of nodes) if (MULTIPLIES.has(node.op ?? "") && typeof node.input?.[1] === "string") used.set(producerOf(node.input[1]), useLayout(node));
  return new Map(names.filter((n) => used.has(n)).map((n) => [n, used.get(n)]));
}

/** A float tensor's bytes as `store` keeps them, and the manifest's note of how. */
function stored(data: Float32Array, store: TfjsStore): { bytes: Uint8Array; quantization?: Record<string, unknown> } {
  if (store === "float32") return { bytes: narrow(data, "F32") };
  if (store === "float16") return { bytes: narrow(data, "F16"), quantization: { dtype: "float16", original_dtype: "float32" } };
  let [min, max] = [Infinity, -Infinity];
  for (const v of data) [min, max] = [Math.min(min, v), Math.max(max, v)];
  if (data.length === 0) [min, max] = [0, 0];
  const levels = store === "uint8" ? 255 : 65535;
  const scale = max > min ? (max - min) / levels : 1;
  const out = store === "uint8" ? new Uint8Array(data.length) : new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.round((data[i]! - min) / scale);
  return { bytes: new Uint8Array(out.buffer), quantization: { dtype: store, min, scale, original_dtype: "float32" } };
}

/** A graph model as TF.js loads it from memory (tf.io.fromMemory): weights back to back in manifest order. */
export interface TfjsArtifacts {
  modelTopology: TfjsTopology;
  weightSpecs: TfjsWeight[];
  weightData: ArrayBuffer;
}

/** A graph model's topology, and the model TF.js runs with some of its float32 weights replaced. */
export interface TfjsGraph {
  topology: TfjsTopology;
  artifacts(replaced?: ReadonlyMap<string, Float32Array>): TfjsArtifacts;
}

/**
 * A model.json mcnc wrote, as TF.js loads it (quantised weights included: TF.js dequantises them).
 * Its shards are read whole, in manifest order; openTfjs has checked the model it came from.
 */
export function readTfjsArtifacts(path: string): TfjsArtifacts {
  const json = JSON.parse(new TextDecoder().decode(readWholeFile(path))) as { modelTopology: TfjsTopology; weightsManifest: Array<{ paths: string[]; weights: TfjsWeight[] }> };
  const parts = json.weightsManifest.flatMap((g) => g.paths.map((p) => readWholeFile(insideFolder(dirname(path), p, `${path}: a shard`))));
  return { modelTopology: runnable(json.modelTopology), weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData: concat(parts).buffer as ArrayBuffer };
}

/** tfjs-converter reads the topology's `versions`, which hand-written graphs may lack. */
const runnable = (topology: TfjsTopology): TfjsTopology => ({ versions: {}, ...topology });

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  return all;
}

export function openTfjs(path: string, layout?: MatrixLayout): ForeignModel {
  let json: { weightsManifest?: Array<{ paths: string[]; weights: TfjsWeight[] }> } & Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(readWholeFile(path)));
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: not a TensorFlow.js model.json (not JSON)`);
  }
  const manifest = typeof json === "object" && json !== null ? json.weightsManifest : undefined;
  if (!Array.isArray(manifest)) throw new UserError(`${path}: model.json has no weightsManifest`);
  const dir = dirname(path);
  const groups = manifest.map((group, g) => {
    if (!Array.isArray(group?.paths) || !Array.isArray(group.weights)) throw new UserError(`${path}: weightsManifest[${g}] needs paths and weights`);
    let at = 0;
    const weights = group.weights.map((w) => {
      if (typeof w?.name !== "string") throw new UserError(`${path}: a weight in group ${g} has no name`);
      if (w.quantization !== undefined) throw new UserError(`${path}: weight ${w.name} is stored quantised; mcnc reads float32 TF.js weights only`);
      const bytes = TFJS_BYTES[w.dtype];
      if (bytes === undefined) throw new UserError(`${path}: weight ${w.name} has dtype ${String(w.dtype).slice(0, 20)} (float32, int32 or bool)`);
      const shape = checkShape(w.shape, `${path}: weight ${w.name}`);
      const span = { weight: w, shape, begin: at, end: at + elements(shape) * bytes };
      at = span.end;
      return span;
    });
    const shards = group.paths.map((p) => {
      if (typeof p !== "string" || p.includes("/") || p.includes("\\") || p.startsWith(".")) throw new UserError(`${path}: shard path ${String(p).slice(0, 80)} must be a file name beside model.json`);
      return insideFolder(dir, p, `${path}: group ${g} keeps its weights in a shard`);
    });
    const size = shards.reduce((n, s) => n + regularFileSize(s), 0);
    if (size !== at) throw new UserError(`${path}: group ${g}'s shards hold ${size} bytes, its weights need ${at}`);
    return { paths: group.paths, shards, weights, bytes: at };
  });
  type Group = (typeof groups)[number];
  const byName = new Map(groups.flatMap((g) => g.weights.map((w) => [w.weight.name, { group: g, span: w }] as const)));
  const load = (g: Group) => concat(g.shards.map((s) => readWholeFile(s)));
  const cache = new Map<Group, Uint8Array>();
  const bytesOf = (g: Group) => cache.get(g) ?? (cache.set(g, load(g)), cache.get(g)!);
  const floats = groups.flatMap((g) => g.weights.filter((w) => w.weight.dtype === "float32"));
  const multiplied = multipliedWeights(json, floats.map((w) => w.weight.name));
  const tensorOf = (w: (typeof floats)[number]): ForeignTensor => ({ name: w.weight.name, dtype: "F32", shape: w.shape, layout: layout ?? multiplied.get(w.weight.name) ?? "in-out", weight: multiplied.has(w.weight.name) });
  const topology = (json.modelTopology ?? {}) as TfjsTopology;
  const specs = groups.flatMap((g) => g.weights.map((w) => w.weight));
  const weightBytes = (replaced?: ReadonlyMap<string, Float32Array>) =>
    groups.flatMap((g) =>
      g.weights.map((w) => {
        const r = replaced?.get(w.weight.name);
        return r ? narrow(r, "F32") : bytesOf(g).subarray(w.begin, w.end);
      }),
    );
  return {
    format: "tfjs",
    tensors: floats.map(tensorOf),
    // A layers model (Keras topology) would need tfjs-layers to run; only graph models are run here.
    ...(Array.isArray(topology.node) ? { tfjs: { topology, artifacts: (replaced) => ({ modelTopology: runnable(topology), weightSpecs: specs, weightData: concat(weightBytes(replaced)).buffer as ArrayBuffer }) } } : {}),
    read(name) {
      const hit = byName.get(name);
      if (!hit || hit.span.weight.dtype !== "float32") throw new UserError(`${path}: no float32 weight ${name}`);
      return widen(bytesOf(hit.group).subarray(hit.span.begin, hit.span.end), "F32");
    },
    writeBack(out, map, note, store = "float32") {
      if (basename(out) === basename(path) && dirname(out) === dir) throw new UserError("--out would overwrite the input model");
      const outDir = dirname(out);
      const stem = basename(out).replace(/\.json$/, "");
      // Shards first under their final names' temporary twins, model.json last: a reader never sees a half model.
      const written: Array<[string, string]> = [];
      try {
        const newManifest = groups.map((g, gi) => {
          const source = bytesOf(g);
          const parts: Uint8Array[] = [];
          const weights = g.weights.map((w) => {
            if (w.weight.dtype !== "float32") {
              parts.push(source.subarray(w.begin, w.end));
              return w.weight;
            }
            const s = stored(map(tensorOf(w), widen(source.subarray(w.begin, w.end), "F32")), store as TfjsStore);
            parts.push(s.bytes);
            return { ...w.weight, ...(s.quantization ? { quantization: s.quantization } : {}) };
          });
          const data = concat(parts);
          const count = Math.max(1, Math.ceil(data.length / SHARD));
          const paths = Array.from({ length: count }, (_, k) => {
            const shard = `${stem}.group${gi + 1}-shard${k + 1}of${count}.bin`;
            const tmp = join(outDir, `${shard}.${process.pid}.part`);
            writeFileAtomic(tmp, data.subarray(k * SHARD, (k + 1) * SHARD));
            written.push([tmp, join(outDir, shard)]);
            return shard;
          });
          return { paths, weights };
        });
        for (const [tmp, final] of written) renameSync(tmp, final);
        writeFileAtomic(out, new TextEncoder().encode(JSON.stringify({ ...json, weightsManifest: newManifest, mcnc: note })));
        return [out, ...written.map(([, final]) => final)];
      } catch (e) {
        for (const [tmp] of written) if (existsSync(tmp)) unlinkSync(tmp);
        throw e;
      }
    },
    files: [path, ...groups.flatMap((g) => g.shards)],
    close: () => cache.clear(),
  };
}
