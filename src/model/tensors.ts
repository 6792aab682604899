/**
 * Another tool's model as mcnc stores it compressed: a named list of tensors, with no network mcnc can
 * run. Its matrices are held as [inputs, outputs], as every method compresses them; each one records
 * the shape and layout it had in its own format, so decompressing restores it there exactly.
 */
import { UserError } from "../errors.js";
import type { Model } from "./model.js";
import { sizeOf, type ParamSpec } from "./params.js";

/**
 * How a weight tensor is a matrix of inputs by outputs. in-out: every axis but the last indexes
 * inputs (MatMul, TF.js Dense and Conv2D, mcnc's own). out-in: the last axis indexes inputs, the rest
 * outputs (PyTorch's Linear, Gemm with transB, LSTM). out-first: the first axis indexes outputs, the
 * rest inputs (PyTorch's and ONNX's Conv).
 */
export type MatrixLayout = "in-out" | "out-in" | "out-first";
export const MATRIX_LAYOUTS: readonly MatrixLayout[] = ["in-out", "out-in", "out-first"];

export interface MatrixView {
  rows: number;
  cols: number;
  toMatrix(d: Float32Array): Float32Array;
  fromMatrix(m: Float32Array): Float32Array;
}

export function asMatrix(shape: readonly number[], layout: MatrixLayout): MatrixView {
  const n = sizeOf(shape);
  if (layout === "in-out") {
    const cols = shape.at(-1)!;
    return { rows: n / cols, cols, toMatrix: (d) => d, fromMatrix: (m) => m };
  }
  // Stored [outputs, inputs]: transposed on the way in and out.
  const outs = layout === "out-first" ? shape[0]! : n / shape.at(-1)!;
  const ins = n / outs;
  const t = (d: Float32Array, r: number, c: number) => {
    const o = new Float32Array(n);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) o[j * r + i] = d[i * c + j]!;
    return o;
  };
  return { rows: ins, cols: outs, toMatrix: (d) => t(d, outs, ins), fromMatrix: (m) => t(m, ins, outs) };
}

export interface StoredTensorSpec {
  name: string;
  /** As stored: [inputs, outputs] for a matrix mcnc compressed, the tool's own shape otherwise. */
  shape: number[];
  role: ParamSpec["role"];
}

/** A stored matrix's shape and layout in its own format. */
export interface OriginalShape {
  name: string;
  shape: number[];
  layout: MatrixLayout;
}

export interface TensorsDescription {
  name: "tensors";
  /** The format the tensors came from (safetensors, onnx, tfjs). */
  format: string;
  params: StoredTensorSpec[];
  /** The matrices stored as [inputs, outputs], as they were. */
  originals: OriginalShape[];
}

/** Most tensors a description may list, and the longest name (ONNX models have thousands, named by path). */
const LIMITS = { tensors: 1 << 16, name: 1024, rank: 8 } as const;

function shapeOf(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length > LIMITS.rank || !v.every((d) => Number.isSafeInteger(d) && d >= 0 && d <= 2 ** 31)) throw new UserError(`${what}: shape must be a list of at most ${LIMITS.rank} sizes`);
  return v as number[];
}

function entries(v: unknown, what: string): Array<Record<string, unknown>> {
  if (!Array.isArray(v) || v.length > LIMITS.tensors || !v.every((e) => typeof e === "object" && e !== null)) throw new UserError(`${what} must be a list of at most ${LIMITS.tensors} entries`);
  return v as Array<Record<string, unknown>>;
}

/** A description from a file's header, checked entry by entry before anything is sized from it; `maxParams` bounds the total. */
export function parseTensorsDescription(raw: Record<string, unknown>, what: string, maxParams: number): TensorsDescription {
  const { format } = raw;
  if (typeof format !== "string" || format.length > 32) throw new UserError(`${what}.format must name the tensors' format`);
  const listed = entries(raw.params, `${what}.params`);
  if (listed.length === 0) throw new UserError(`${what}.params lists no tensors`);
  const shapes = new Map<string, number[]>();
  let total = 0;
  const params = listed.map(({ name, shape, role }, i): StoredTensorSpec => {
    const at = `${what}.params[${i}]`;
    if (typeof name !== "string" || name === "" || name.length > LIMITS.name || shapes.has(name)) throw new UserError(`${at}: names must be distinct strings of 1 to ${LIMITS.name} characters`);
    const dims = shapeOf(shape, at);
    shapes.set(name, dims);
    total += sizeOf(dims);
    if (total > maxParams) throw new UserError(`${what}: more than ${maxParams} parameters; refusing to build the model`);
    if (role !== "weight" && role !== "bias" && role !== "gain") throw new UserError(`${at}: role must be weight, bias or gain`);
    return { name, shape: dims, role };
  });
  const originals = entries(raw.originals ?? [], `${what}.originals`).map(({ name, shape, layout }, i): OriginalShape => {
    const at = `${what}.originals[${i}]`;
    const stored = typeof name === "string" ? shapes.get(name) : undefined;
    if (!stored) throw new UserError(`${at} names no stored tensor`);
    const from = shapeOf(shape, at);
    if (!MATRIX_LAYOUTS.includes(layout as MatrixLayout)) throw new UserError(`${at}.layout must be ${MATRIX_LAYOUTS.join(", ")}`);
    const view = asMatrix(from, layout as MatrixLayout);
    if (stored.length !== 2 || view.rows !== stored[0] || view.cols !== stored[1]) throw new UserError(`${at}: [${stored.join(", ")}] is not ${from.join("x")} (${String(layout)}) as a matrix`);
    return { name: name as string, shape: from, layout: layout as MatrixLayout };
  });
  return { name: "tensors", format, params, originals };
}

/** Each tensor in the shape and layout it had in its own format, from the stored ones. */
export function originalTensors(d: TensorsDescription, stored: Record<string, Float32Array>): Map<string, { shape: number[]; data: Float32Array }> {
  const originals = new Map(d.originals.map((o) => [o.name, o]));
  return new Map(
    d.params.map((p) => {
      const o = originals.get(p.name);
      return [p.name, o ? { shape: o.shape, data: asMatrix(o.shape, o.layout).fromMatrix(stored[p.name]!) } : { shape: p.shape, data: stored[p.name]! }];
    }),
  );
}

/** The tensors as a model: parameters to store and rebuild, and no forward pass. */
export function tensorsModel(d: TensorsDescription): Model {
  return {
    name: `${d.format} tensors`,
    kind: "tensors",
    description: d,
    specs: d.params.map((p) => ({ name: p.name, shape: [...p.shape], role: p.role, fanIn: p.shape.length === 2 ? p.shape[0]! : 1 })),
    apply() {
      throw new UserError(`these are the tensors of a ${d.format} model, which mcnc cannot run: decompress them (with --template, back into the model)`);
    },
  };
}
