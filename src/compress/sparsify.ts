/**
 * The pruning family's shared part: which weights survive, given a score per weight, at an
 * unstructured sparsity or an N:M pattern (N kept in every M consecutive inputs of an output, the
 * 2:4 that sparse tensor cores run). Written as a `prune` file (values and their positions).
 */
import { UserError } from "../errors.js";
import type { MethodOption, OptionValues, StoredTensor } from "../methods/index.js";
import { survivorTensors } from "../methods/prune/index.js";
import type { CompressedLeaf, LeafToCompress } from "./compressor.js";

export interface SparsifyConfig {
  /** Fraction of weights removed (unstructured), or absent for a pattern. */
  sparsity?: number;
  /** N:M: keep n of every m. */
  pattern?: { n: number; m: number };
}

export const SPARSIFY_OPTIONS: MethodOption[] = [
  { name: "sparsity", type: "float", help: "fraction of each matrix's weights removed, in (0, 1)" },
  { name: "pattern", type: "string", help: "N:M structured sparsity instead, e.g. 2:4 (N kept in every M inputs of an output)" },
];

export function configureSparsify(values: OptionValues): SparsifyConfig {
  const { sparsity, pattern } = values;
  if ((sparsity === undefined) === (pattern === undefined)) throw new UserError("give --sparsity (a fraction removed) or --pattern N:M, one of them");
  if (sparsity !== undefined) {
    if (!(typeof sparsity === "number" && sparsity > 0 && sparsity < 1)) throw new UserError(`--sparsity must be in (0, 1), got ${String(sparsity)}`);
    return { sparsity };
  }
  const m = /^(\d+):(\d+)$/.exec(String(pattern));
  const [n, of] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || n < 1 || n >= of || of > 64) throw new UserError(`--pattern must be N:M with 1 <= N < M <= 64, e.g. 2:4; got ${String(pattern).slice(0, 40)}`);
  return { pattern: { n, m: of } };
}

/**
 * Survivors of a [rows, cols] matrix by `score` (higher survives; ties to the earlier position).
 * `perOutput`: each column (output) keeps the same share of its inputs, as Wanda compares; else one
 * ranking over the whole matrix. A pattern always works per output.
 */
export function survivors(score: Float64Array, rows: number, cols: number, config: SparsifyConfig, perOutput: boolean): Uint8Array {
  const keep = new Uint8Array(rows * cols);
  const pick = (indices: number[], count: number) => {
    indices.sort((a, b) => score[b]! - score[a]! || a - b);
    for (let i = 0; i < count; i++) keep[indices[i]!] = 1;
  };
  if (config.pattern) {
    const { n, m } = config.pattern;
    for (let c = 0; c < cols; c++) {
      for (let a = 0; a < rows; a += m) {
        const block = Array.from({ length: Math.min(m, rows - a) }, (_, k) => (a + k) * cols + c);
        // A short last block keeps the same share, rounded up.
        pick(block, Math.ceil((block.length * n) / m));
      }
    }
  } else if (perOutput) {
    for (let c = 0; c < cols; c++) pick(Array.from({ length: rows }, (_, r) => r * cols + c), Math.round(rows * (1 - config.sparsity!)));
  } else pick(Array.from({ length: rows * cols }, (_, i) => i), Math.round(rows * cols * (1 - config.sparsity!)));
  return keep;
}

export function sparsifyLeaf(leaf: LeafToCompress, keep: Uint8Array): CompressedLeaf {
  const weight = leaf.weight.map((w, i) => (keep[i] ? w : 0));
  return { stored: survivorTensors(leaf.spec.name, weight, keep), weight };
}

/** The `prune` file these survivors make, with the sparsity they reached over all compressed leaves. */
export function sparsifyStorage(compressed: ReadonlyArray<{ spec: { shape: number[] }; stored: StoredTensor[] }>, compress: string[]): { method: string; config: object } {
  let total = 0;
  let kept = 0;
  for (const c of compressed) {
    total += c.spec.shape.reduce((a, b) => a * b, 1);
    kept += c.stored[0]!.shape[0]!;
  }
  return { method: "prune", config: { sparsity: total === 0 ? 0 : 1 - kept / total, start: 0, end: 0, every: 1, scope: "layer", compress } };
}
