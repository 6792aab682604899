/**
 * What a post-training compression method is: given one trained weight matrix (and, for methods that
 * need data, the second moment of the inputs it multiplies on calibration data), the numbers a file
 * stores for it and the weights a reader rebuilds from them. A compressor writes the storage of an
 * existing file method (`quant`'s codes and scales, `prune`'s survivors, `lora`'s factors), so every
 * reader of `.mcnc` files reads its output with no change.
 */
import type { MethodOption, OptionValues, StoredTensor } from "../methods/index.js";
import type { ParamSpec } from "../model/params.js";
import { registry } from "../registry.js";

/** The inputs a leaf multiplies, summarised: H = X^T X over the calibration rows, [in, in] row-major. */
export interface InputMoments {
  hessian: Float64Array;
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
   * grouped Conv, whose columns see different input channels, can then share one input moment (the
   * groups' sum) as an approximation. Methods that mix columns (low rank) cannot.
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
}

const compressors = registry<Compressor>("compressor");

/** One line per compressor in compress/index.ts. */
export function registerCompressor<C extends object>(c: Compressor<C>): void {
  compressors.register(c as unknown as Compressor);
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
