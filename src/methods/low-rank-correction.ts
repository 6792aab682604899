/**
 * A low-rank correction stored over another encoding's rebuilt weights: W = base + down @ up. EoRA
 * fits it to a quantised (`quant-lora`) or pruned (`prune-lora`) matrix's error; the file methods share
 * its options, factors and reading here so each holds only its base encoding.
 */
import { UserError } from "../errors.js";
import { matmul } from "../linalg.js";
import { topOutputVectors, type OutputMoment } from "../output-moment.js";
import { sizeOf, type ParamSpec } from "../model/params.js";
import { DOWN, matrixShape, UP } from "./lora/index.js";
import type { MethodOption, OptionValues, StoredReader, StoredTensor } from "./method.js";

export const CORRECTION_OPTIONS: MethodOption[] = [
  { name: "rank", type: "int", help: "correction rank for every leaf (default 8)" },
  { name: "ranks", type: "int-list", help: "a correction rank per compressed leaf, in model order" },
];

/** --ranks, or --rank for every compressed leaf (default 8), each checked against its matrix. */
export function configureRanks(values: OptionValues, compress: readonly string[], specs: readonly ParamSpec[]): number[] {
  const given = values.ranks ?? (values.rank === undefined ? undefined : compress.map(() => values.rank));
  const ranks = (given ?? compress.map(() => 8)) as unknown[];
  if (!Array.isArray(ranks) || ranks.length !== compress.length) throw new UserError(`--ranks must list ${compress.length} ranks, one per compressed leaf`);
  compress.forEach((name, i) => {
    const [rows, cols] = matrixShape(specs.find((s) => s.name === name)!.shape);
    const r = ranks[i];
    if (!(typeof r === "number" && Number.isInteger(r) && r >= 1 && r <= Math.min(rows, cols))) throw new UserError(`correction rank ${String(r)} does not fit ${name} (${rows}x${cols})`);
  });
  return ranks as number[];
}

/** Factors of `error` [rows, cols] projected on the top-r eigenvectors of `outputMoment`: error ~ (error V) V^T. */
export function correctionFactors(error: Float32Array, rows: number, cols: number, outputMoment: OutputMoment, r: number): { down: Float32Array; up: Float32Array } {
  const V = topOutputVectors(outputMoment, cols, r);
  const up = new Float32Array(r * cols);
  for (let j = 0; j < r; j++) for (let i = 0; i < cols; i++) up[j * cols + i] = V[i * r + j]!;
  return { down: Float32Array.from(matmul(error, V, rows, cols, r)), up };
}

/** The correction's tensors, stored after the leaf's base tensors. */
export function correctionTensors(leaf: string, [rows, cols]: [number, number], down: Float32Array, up: Float32Array): StoredTensor[] {
  const r = up.length / cols;
  return [
    { name: leaf + DOWN, shape: [rows, r], data: down },
    { name: leaf + UP, shape: [r, cols], data: up },
  ];
}

/** Without calibration data: the truncated SVD of the error `weight - base` (its own Gram's eigenvectors). */
export function errorCorrection(leaf: string, [rows, cols]: [number, number], weight: Float32Array, base: Float32Array, r: number): StoredTensor[] {
  const error = weight.map((v, i) => v - base[i]!);
  const { down, up } = correctionFactors(error, rows, cols, { factor: error, m: rows }, r);
  return correctionTensors(leaf, [rows, cols], down, up);
}

/** `base` with the stored correction of rank r added (in place), checked against the matrix. */
export function addCorrection(leaf: string, [rows, cols]: [number, number], r: number, base: Float32Array, read: StoredReader): Float32Array {
  const down = read.floats(leaf + DOWN);
  const up = read.floats(leaf + UP);
  if (down.length !== rows * r || up.length !== r * cols) throw new UserError(`${leaf}: correction factors do not fit rank ${r} of a ${rows}x${cols} matrix`);
  const c = matmul(down, up, rows, r, cols);
  for (let i = 0; i < base.length; i++) base[i] = Math.fround(base[i]! + c[i]!);
  return base;
}

/** Multiply-adds of rebuilding the corrections (plus one pass over each leaf for its base). */
export function correctionFlops(ranks: readonly number[], compress: readonly string[], specs: readonly ParamSpec[]): number {
  return specs.filter((s) => compress.includes(s.name)).reduce((n, s, i) => n + 2 * sizeOf(s.shape) * (1 + ranks[i]!), 0);
}
