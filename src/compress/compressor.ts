/**
 * What a post-training compression method is: given one trained weight matrix (and, for methods that
 * need data, the second moment of the inputs it multiplies on calibration data), the numbers a file
 * stores for it and the weights a reader rebuilds from them. A compressor writes the storage of an
 * existing file method (`quant`'s codes and scales, `prune`'s survivors, `lora`'s factors), so every
 * reader of `.mcnc` files reads its output with no change.
 */
import type { MethodOption, OptionValues, StoredTensor } from "../methods/index.js";
import type { CalibrationBatch } from "./compress-model.js";
import type { Model, ModelDescription } from "../model/model.js";
import type { HostParams, ParamSpec } from "../model/params.js";
import { UserError } from "../errors.js";
import { registry } from "../registry.js";

/** The inputs a leaf multiplies, summarised: H = X^T X over the calibration rows, [in, in] row-major. */
export interface InputMoments {
  hessian: Float64Array;
  /**
   * A grouped Conv's: each group's own moment, for its block of output columns (in order, equal
   * blocks); `hessian` is their sum. Columnwise methods use each block's own.
   */
  columnGroups?: Float64Array[];
}

/** The moment output column `c` of `cols` sees: its group's, or the leaf's. */
export function momentOfColumn(moments: InputMoments, c: number, cols: number): Float64Array {
  const groups = moments.columnGroups;
  return groups ? groups[Math.floor((c * groups.length) / cols)]! : moments.hessian;
}

export interface LeafToCompress {
  spec: ParamSpec;
  /** The leaf as the matrix [rows = inputs, cols = outputs] it multiplies with. */
  rows: number;
  cols: number;
  weight: Float32Array;
  /** Present when the compressor is calibrated on `inputs`. */
  moments?: InputMoments;
  /**
   * Present when it is calibrated on `gradients`: the empirical Fisher information of each weight,
   * the squared loss gradient summed over calibration batches, [rows, cols].
   */
  fisher?: Float32Array;
  /** The file's seed (what regenerates frozen numbers) and the leaf's place among the compressed ones. */
  seed: number;
  index: number;
}

export interface CompressedLeaf {
  stored: StoredTensor[];
  /** The weights a reader rebuilds from `stored`: what the layers above are calibrated on. */
  weight: Float32Array;
}

export interface Compressor<Config extends object = object> {
  name: string;
  summary: string;
  options: MethodOption[];
  /**
   * What it needs of calibration data: `inputs`, each leaf's input moments measured through the
   * already-compressed layers below it; `gradients`, the loss gradients of the trained model; or nothing.
   */
  calibrated: false | "inputs" | "gradients";
  /**
   * Each output column is compressed on its own, its error spread over its rows (GPTQ, Wanda): a
   * grouped Conv, whose columns see different input channels, is then calibrated group by group, each
   * block of columns on its group's moment. Methods that mix columns (low rank) cannot be.
   */
  columnwise?: boolean;
  /** Validate the flags. Throws UserError. */
  configure(values: OptionValues): Config;
  compressLeaf(config: Config, leaf: LeafToCompress): CompressedLeaf | Promise<CompressedLeaf>;
  /** Why a [rows, cols] matrix cannot be compressed at this budget (it then stays as it is), if it cannot. */
  skips?(config: Config, rows: number, cols: number): string | undefined;
  /**
   * The file method whose storage `compressLeaf` wrote, and its configuration for these leaves; with
   * `tensors` where the file holds them joined (one MCNC latent table for all leaves) rather than per leaf.
   */
  storage(config: Config, compressed: ReadonlyArray<{ spec: ParamSpec; stored: StoredTensor[] }>, compress: string[]): { method: string; config: object; tensors?: StoredTensor[] };
  /**
   * A compressor that changes the network's shape (structured pruning) instead of compressing matrices
   * one by one: the smaller network's description and its weights, from the calibration inputs.
   */
  restructure?(config: Config, model: Model, weights: HostParams, batches: readonly CalibrationBatch[]): Promise<Restructured>;
}

/** The option of a compressor that reshapes a network: a healing fine-tune of what remains. */
export const HEAL_OPTION: MethodOption = { name: "heal-steps", type: "int", help: "fine-tuning steps of the smaller network on the training data (default 0)" };

export function healSteps(values: OptionValues): number {
  const steps = values["heal-steps"] ?? 0;
  if (!(typeof steps === "number" && Number.isInteger(steps) && steps >= 0 && steps <= 1_000_000)) throw new UserError(`--heal-steps must be an integer from 0 to 1000000, got ${String(steps)}`);
  return steps;
}

/** A smaller network: its description and weights, and the fine-tuning steps it asks for to heal (0: none). */
export interface Restructured {
  description: ModelDescription;
  weights: HostParams;
  heal?: number;
}

const compressors = registry<Compressor>("compressor");

/** One line per compressor in compress/index.ts. What any of them returns is checked to be finite. */
export function registerCompressor<C extends object>(c: Compressor<C>): void {
  compressors.register(seeingLeaves(c, (leaf, out) => checkFinite(c.name, leaf, out)) as unknown as Compressor);
}

/** `c`, with `see` handed each leaf it compresses (synchronously or not) before the caller gets it. */
export function seeingLeaves<C extends object>(c: Compressor<C>, see: (leaf: LeafToCompress, out: CompressedLeaf) => void): Compressor<C> {
  const seen = (leaf: LeafToCompress) => (out: CompressedLeaf) => (see(leaf, out), out);
  return {
    ...c,
    compressLeaf: (config, leaf) => {
      const out = c.compressLeaf(config, leaf);
      return out instanceof Promise ? out.then(seen(leaf)) : seen(leaf)(out);
    },
  };
}

/**
 * A compressor's output holds only finite numbers, or the command stops before writing: finite weights
 * near float32's limit can overflow inside a decomposition, and an Inf written is a model silently broken.
 */
function checkFinite(name: string, leaf: LeafToCompress, out: CompressedLeaf): void {
  const count = (a: Float32Array) => a.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
  const bad = count(out.weight) + out.stored.reduce((n, s) => n + ("data" in s ? count(s.data) : 0), 0);
  if (bad > 0) {
    const largest = leaf.weight.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    throw new UserError(`${leaf.spec.name}: ${name} gives ${bad} numbers that are not finite (its largest weight is ${largest.toExponential(2)}); nothing is written`);
  }
}

export const compressorNames = (): string[] => compressors.names();
export const findCompressor = (name: string): Compressor | undefined => compressors.find(name);

/**
 * The memory compressing one [rows, cols] matrix may take, counted before any is done: the matrix in
 * float32 a few times over (as read, as a matrix, as rebuilt, as written back), and the float64
 * matrices a decomposition of its small side or a calibrated method's input moments need.
 */
export function leafWorkingBytes(compressor: Pick<Compressor, "calibrated">, rows: number, cols: number): number {
  const small = Math.min(rows, cols);
  return 20 * rows * cols + 24 * small * small + (compressor.calibrated === "inputs" ? 24 * rows * rows : 0) + (compressor.calibrated === "gradients" ? 4 * rows * cols : 0);
}
