/**
 * Models mcnc did not train, in the formats they come in (safetensors, ONNX, TensorFlow.js): their
 * float tensors to read, and the whole model written back in the same format with some tensors
 * replaced, so the tools that ran it before run it after with no change.
 */
import { dirname } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic, writeFileAtomicBy } from "./atomic-write.js";
import { readOnnx, type OnnxModel } from "./onnx.js";
import { openTfjs, TFJS_STORES, type TfjsGraph } from "./tfjs.js";

export { openTfjs };
import { fileSource, readWholeFile } from "../files.js";
import { narrow, readSafetensors, safetensorsHeader, type SafetensorsDtype } from "./safetensors.js";
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
  /** A TF.js graph model's topology and the model TF.js runs (for calibration and --eval). */
  tfjs?: TfjsGraph;
  /**
   * The model in its own format at `out`, each tensor through `map` (streamed where the format allows),
   * float tensors stored as `store` says (one of STORES[format]; the input's dtypes by default).
   */
  writeBack(out: string, map: (t: ForeignTensor, data: Float32Array) => Float32Array, note: Record<string, string>, store?: string): string[];
  /** The files the model was read from (model.json and its shards, for TF.js). */
  files: string[];
  close(): void;
}

/** How each format can store float weights when written back (compress --store). */
export const STORES: Record<ForeignModel["format"], readonly string[]> = { safetensors: ["float32", "float16", "bfloat16"], tfjs: TFJS_STORES, onnx: [] };
const SAFETENSORS_STORE: Record<string, SafetensorsDtype> = { float32: "F32", float16: "F16", bfloat16: "BF16" };

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
      writeBack(out, map, note, store) {
        const as = store === undefined ? undefined : SAFETENSORS_STORE[store];
        const written = as ? tensors.map((t) => ({ ...t, dtype: as })) : tensors;
        writeFileAtomicBy(out, (write) => {
          write(safetensorsHeader(written, { ...reader.metadata, ...note }).prefix);
          for (const [i, t] of tensors.entries()) write(narrow(map(t, reader.read(t.name)), written[i]!.dtype));
        });
        return [out];
      },
      files: [path],
      close: () => source.close?.(),
    };
  } catch (e) {
    source.close?.();
    throw e;
  }
}

export function openOnnx(path: string, layout?: MatrixLayout): ForeignModel {
  const model = readOnnx(readWholeFile(path), path, { dir: dirname(path), inPlace: true });
  const tensors = model.weights.map((w) => ({ name: w.name, dtype: w.dtype, shape: w.shape, layout: layout ?? w.layout, weight: w.multiplied }));
  return {
    format: "onnx",
    tensors,
    read: model.read,
    onnx: model,
    writeBack(out, map) {
      for (const t of tensors) model.write(t.name, map(t, model.read(t.name)));
      writeFileAtomic(out, model.encode());
      return [out];
    },
    files: [path, ...model.externalFiles],
    close: () => undefined,
  };
}

export function openForeign(path: string, layout?: MatrixLayout): ForeignModel {
  const format = foreignFormat(path);
  if (format === "safetensors") return openSafetensors(path, layout);
  if (format === "onnx") return openOnnx(path, layout);
  if (format === "tfjs") return openTfjs(path, layout);
  throw new UserError(`${path}: not a model mcnc reads (.mcnc, .safetensors, .onnx, or a TF.js model.json)`);
}
