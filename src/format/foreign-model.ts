/**
 * Models mcnc did not train, in the formats they come in (safetensors, ONNX, TensorFlow.js): their
 * float tensors to read, and the whole model written back in the same format with some tensors
 * replaced, so the tools that ran it before run it after with no change.
 */
import { existsSync, renameSync, statSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic, writeFileAtomicBy } from "./atomic-write.js";
import { checkShape, elements } from "./container.js";
import { readOnnx, type OnnxModel } from "./onnx.js";
import { fileSource, readWholeFile } from "./read-file.js";
import { narrow, readSafetensors, safetensorsHeader, widen, type SafetensorsDtype } from "./safetensors.js";
import type { MatrixLayout } from "../model/tensors.js";


export interface ForeignTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  layout: MatrixLayout;
  /** A weight a layer multiplies, as far as the format tells (ONNX: a Conv, Gemm, MatMul or RNN uses it). */
  weight: boolean;
}

export interface ForeignModel {
  format: "safetensors" | "onnx" | "tfjs";
  tensors: ForeignTensor[];
  read(name: string): Float32Array;
  /** An ONNX model's decoded graph (for calibration and compact writing). */
  onnx?: OnnxModel;
  /** The model in its own format at `out`, each tensor through `map` (streamed where the format allows). */
  writeBack(out: string, map: (t: ForeignTensor, data: Float32Array) => Float32Array, note: Record<string, string>): void;
  close(): void;
}

export function foreignFormat(path: string): ForeignModel["format"] | undefined {
  if (path.endsWith(".safetensors")) return "safetensors";
  if (path.endsWith(".onnx")) return "onnx";
  if (path.endsWith(".json")) return "tfjs";
  return undefined;
}

/** PyTorch's conventions, where safetensors files mostly come from: Linear [out, in], Conv [out, in, kh, kw]. */
export function openSafetensors(path: string, layout?: MatrixLayout): ForeignModel {
  const source = fileSource(path);
  try {
    const reader = readSafetensors(source, path);
    // In data order, so the output is written front to back.
    const tensors = [...reader.entries]
      .sort((a, b) => a.begin - b.begin)
      .map((e): ForeignTensor => ({ name: e.name, dtype: e.dtype, shape: e.shape, layout: layout ?? (e.shape.length > 2 ? "out-first" : "out-in"), weight: true }));
    return {
      format: "safetensors",
      tensors,
      read: reader.read,
      writeBack(out, map, note) {
        writeFileAtomicBy(out, (write) => {
          write(safetensorsHeader(tensors, { ...reader.metadata, ...note }).prefix);
          for (const t of tensors) write(narrow(map(t, reader.read(t.name)), t.dtype));
        });
      },
      close: () => source.close?.(),
    };
  } catch (e) {
    source.close?.();
    throw e;
  }
}

export function openOnnx(path: string, layout?: MatrixLayout): ForeignModel {
  const model = readOnnx(readWholeFile(path), path);
  const tensors = model.weights.map((w) => ({ name: w.name, dtype: w.dtype, shape: w.shape, layout: layout ?? w.layout, weight: w.multiplied }));
  return {
    format: "onnx",
    tensors,
    read: model.read,
    onnx: model,
    writeBack(out, map) {
      for (const t of tensors) model.write(t.name, map(t, model.read(t.name)));
      writeFileAtomic(out, model.encode());
    },
    close: () => undefined,
  };
}

interface TfjsWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

const TFJS_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/**
 * A TensorFlow.js graph or layers model: model.json, whose weightsManifest lists groups of weights
 * stored back to back across the group's shard files. Float32 weights are read; the others pass
 * through untouched.
 */
export function openTfjs(path: string, layout: MatrixLayout = "in-out"): ForeignModel {
  let json: { weightsManifest?: Array<{ paths: string[]; weights: TfjsWeight[] }> } & Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(readWholeFile(path)));
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: not a TensorFlow.js model.json (not JSON)`);
  }
  const manifest = json.weightsManifest;
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
      return join(dir, p);
    });
    const size = shards.reduce((n, s) => n + (existsSync(s) ? statSync(s).size : Number.NaN), 0);
    if (!(size === at)) throw new UserError(`${path}: group ${g}'s shards hold ${Number.isNaN(size) ? "missing files" : `${size} bytes`}, its weights need ${at}`);
    return { paths: group.paths, shards, weights, bytes: at };
  });
  const byName = new Map(groups.flatMap((g) => g.weights.map((w) => [w.weight.name, { group: g, span: w }] as const)));
  const load = (g: (typeof groups)[number]) => {
    const all = new Uint8Array(g.bytes);
    let at = 0;
    for (const s of g.shards) {
      const part = readWholeFile(s);
      all.set(part, at);
      at += part.length;
    }
    return all;
  };
  const cache = new Map<(typeof groups)[number], Uint8Array>();
  const bytesOf = (g: (typeof groups)[number]) => cache.get(g) ?? (cache.set(g, load(g)), cache.get(g)!);
  const tensors = groups.flatMap((g) => g.weights.filter((w) => w.weight.dtype === "float32").map((w) => ({ name: w.weight.name, dtype: "F32" as const, shape: w.shape, layout, weight: true })));
  return {
    format: "tfjs",
    tensors,
    read(name) {
      const hit = byName.get(name);
      if (!hit || hit.span.weight.dtype !== "float32") throw new UserError(`${path}: no float32 weight ${name}`);
      return widen(bytesOf(hit.group).subarray(hit.span.begin, hit.span.end), "F32");
    },
    writeBack(out, map, note) {
      if (basename(out) === basename(path) && dirname(out) === dir) throw new UserError("--out would overwrite the input model");
      const outDir = dirname(out);
      const stem = basename(out).replace(/\.json$/, "");
      // Shards first under their final names' temporary twins, model.json last: a reader never sees a half model.
      const written: Array<[string, string]> = [];
      try {
        const newManifest = groups.map((g, gi) => {
          const data = bytesOf(g).slice();
          for (const w of g.weights) {
            if (w.weight.dtype !== "float32") continue;
            const t = { name: w.weight.name, dtype: "F32" as const, shape: w.shape, layout, weight: true };
            data.set(narrow(map(t, widen(data.subarray(w.begin, w.end), "F32")), "F32"), w.begin);
          }
          const shard = `${stem}.group${gi + 1}-shard1of1.bin`;
          const tmp = join(outDir, `${shard}.${process.pid}.part`);
          writeFileAtomic(tmp, data);
          written.push([tmp, join(outDir, shard)]);
          return { paths: [shard], weights: g.weights.map((w) => w.weight) };
        });
        for (const [tmp, final] of written) renameSync(tmp, final);
        writeFileAtomic(out, new TextEncoder().encode(JSON.stringify({ ...json, weightsManifest: newManifest, mcnc: note })));
      } catch (e) {
        for (const [tmp] of written) if (existsSync(tmp)) unlinkSync(tmp);
        throw e;
      }
    },
    close: () => cache.clear(),
  };
}

export function openForeign(path: string, layout?: MatrixLayout): ForeignModel {
  const format = foreignFormat(path);
  if (format === "safetensors") return openSafetensors(path, layout);
  if (format === "onnx") return openOnnx(path, layout);
  if (format === "tfjs") return openTfjs(path, layout);
  throw new UserError(`${path}: not a model mcnc reads (.mcnc, .safetensors, .onnx, or a TF.js model.json)`);
}
