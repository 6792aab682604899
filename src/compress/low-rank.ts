/**
 * The low-rank family's shared part: a rank per leaf from the budget, and the factors of a weight
 * matrix projected onto an r-dimensional subspace of its outputs, W ~ (W V) V^T. Written as a `lora`
 * file (`<leaf>.down` = W V, `<leaf>.up` = V^T, not residual), so any mcnc reader rebuilds it.
 */
import { UserError } from "../errors.js";
import type { MethodOption, OptionValues, StoredTensor } from "../methods/index.js";
import { DOWN, UP } from "../methods/lora/index.js";
import type { CompressedLeaf, LeafToCompress } from "./compressor.js";
import { matmul } from "../linalg.js";
import { topOutputVectors, type OutputMoment } from "../output-moment.js";

export interface LowRankConfig {
  /** Fraction of each leaf's parameters removed (the ROM paper's budgets: 0.2, 0.33, 0.5). */
  reduction?: number;
  rank?: number;
}

export const LOW_RANK_OPTIONS: MethodOption[] = [
  { name: "reduction", type: "float", help: "fraction of each compressed matrix's parameters removed, in (0, 1): 0.2 keeps 80%" },
  { name: "rank", type: "int", help: "one rank for every matrix (instead of --reduction)" },
];

export function configureLowRank(values: OptionValues): LowRankConfig {
  const { reduction, rank } = values;
  if ((reduction === undefined) === (rank === undefined)) throw new UserError("give --reduction (a fraction of parameters removed) or --rank, one of them");
  if (reduction !== undefined && !(typeof reduction === "number" && reduction > 0 && reduction < 1)) throw new UserError(`--reduction must be in (0, 1), got ${String(reduction)}`);
  if (rank !== undefined && !(typeof rank === "number" && Number.isInteger(rank) && rank >= 1)) throw new UserError(`--rank must be a positive integer, got ${String(rank)}`);
  return reduction !== undefined ? { reduction } : { rank: rank as number };
}

/** A matrix whose factors at this budget would not be smaller, or would not fit. */
export function lowRankSkips(config: LowRankConfig, rows: number, cols: number): string | undefined {
  const r = rankFor(config, rows, cols);
  if (r > Math.min(rows, cols)) return `rank ${r} is larger than a ${rows}x${cols} matrix allows`;
  if (r < 1) return `--reduction ${config.reduction} leaves a ${rows}x${cols} matrix no rank at all`;
  if (r * (rows + cols) >= rows * cols) return `rank ${r} factors of a ${rows}x${cols} matrix are no smaller than it`;
  return undefined;
}

/** The largest rank whose factors hold at most (1 - reduction) of the matrix's parameters. */
export function rankFor(config: LowRankConfig, rows: number, cols: number): number {
  if (config.rank !== undefined) return config.rank;
  return Math.min(rows, cols, Math.floor(((1 - config.reduction!) * rows * cols) / (rows + cols)));
}

/**
 * W projected onto the top-r eigenvectors V of an output moment ([cols, cols], symmetric): the best
 * rank-r approximation in the norm that moment defines (W^T W: the SVD's Frobenius norm; W^T H W:
 * the error on the calibration outputs). With `outputScale` s, the moment is of W diag(s) and the
 * result (W diag(s))_r diag(s)^-1: errors weighed by s per output, as FWSVD weighs them.
 */
export function projectOutputs(leaf: LeafToCompress, outputMoment: OutputMoment, r: number, outputScale?: Float64Array): CompressedLeaf {
  const { rows, cols, weight, spec } = leaf;
  const vectors = topOutputVectors(outputMoment, cols, r);
  const s = outputScale ?? new Float64Array(cols).fill(1);
  // down = W diag(s) V, up = V^T diag(s)^-1.
  const V = new Float64Array(cols * r);
  for (let i = 0; i < cols; i++) for (let j = 0; j < r; j++) V[i * r + j] = s[i]! * vectors[i * r + j]!;
  const down = Float32Array.from(matmul(weight, V, rows, cols, r));
  const up = new Float32Array(r * cols);
  for (let j = 0; j < r; j++) for (let i = 0; i < cols; i++) up[j * cols + i] = vectors[i * r + j]! / s[i]!;
  const stored: StoredTensor[] = [
    { name: spec.name + DOWN, shape: [rows, r], data: down },
    { name: spec.name + UP, shape: [r, cols], data: up },
  ];
  return { stored, weight: Float32Array.from(matmul(down, up, rows, r, cols)) };
}

/** The `lora` file these factors make: one rank per leaf, not residual. */
export function lowRankStorage(compressed: ReadonlyArray<{ stored: StoredTensor[] }>, compress: string[]): { method: string; config: object } {
  const ranks = compressed.map((c) => c.stored[0]!.shape[1]!);
  return { method: "lora", config: { rank: Math.max(...ranks), ranks, residual: false, compress } };
}
