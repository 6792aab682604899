/**
 * What every data reader hands over before normalisation: values sample-major, class indices, and how
 * the values are to be scaled. Also the one rule every reader follows for order and held-out splits.
 */
import { UserError } from "../errors.js";

export interface RawSplit {
  /** Sample-major values, `count` samples of height*width*channels each. */
  values: Uint8Array | Float32Array;
  /** Class indices 0..K-1. */
  labels: Uint8Array;
  count: number;
}

export interface RawData {
  /** [height, width, channels]; a table is [1, 1, columns]. */
  shape: [number, number, number];
  /**
   * pixels: values on a 0-255 scale, normalised by one mean and spread over all of them (in [0, 1]
   * units, as torchvision does); columns: each channel (a table's column) by its own, in its own units.
   */
  scale: "pixels" | "columns";
  train: RawSplit;
  test: RawSplit;
  /** The classes' names, in index order, where the data names them (folder names, text labels). */
  classNames?: string[];
  /** A table's label column, by header name or 0-based index. */
  labelColumn?: string;
}

/** Images larger than this on a side are refused from the header (a model's input is bounded the same way). */
export const MAX_IMAGE_SIDE = 4096;
/** Class indices are stored as bytes. */
export const MAX_CLASSES = 256;
/** A file or folder that is not split already holds out every fifth sample of a fixed order for testing. */
export const HELD_OUT_EVERY = 5;

/**
 * A fixed pseudo-random order of `n` items (Fisher-Yates over a 32-bit xorshift stream, integer
 * arithmetic only: the same on every platform), so that `--limit` on a folder sorted by class, or a
 * table sorted by label, still keeps a mix of classes.
 */
export function fixedOrder(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let s = 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Indices of samples into training and test: every HELD_OUT_EVERY-th of the fixed order is held out. */
export function heldOutSplit(n: number): { train: number[]; test: number[] } {
  const order = fixedOrder(n);
  const train: number[] = [];
  const test: number[] = [];
  order.forEach((s, i) => ((i + 1) % HELD_OUT_EVERY === 0 ? test : train).push(s));
  return { train, test };
}

/**
 * Class indices for labels given as text: integers 0..255 are indices already; any other label makes
 * them all names, numbered in sorted order of the training names (or by `known`, a trained model's own).
 */
export function classIndices(train: string[], test: string[], known?: string[]): { train: Uint8Array; test: Uint8Array; names?: string[] } {
  const isIndex = (l: string) => /^\d{1,3}$/.test(l) && Number(l) < MAX_CLASSES;
  const isNumber = (l: string) => l.trim() !== "" && Number.isFinite(Number(l));
  if (!known && train.every(isIndex) && test.every(isIndex)) return { train: Uint8Array.from(train, Number), test: Uint8Array.from(test, Number) };
  // Numbers that are not class indices are a measurement, not a class: most likely the wrong column.
  const stray = train.find((l) => !isIndex(l)) ?? test.find((l) => !isIndex(l));
  if (!known && train.every(isNumber) && test.every(isNumber)) throw new UserError(`the labels are numbers but ${JSON.stringify(stray!.slice(0, 20))} is not a class index 0..${MAX_CLASSES - 1} (is it the label column?)`);
  const names = known ?? [...new Set(train)].sort();
  if (names.length > MAX_CLASSES) throw new UserError(`the labels name ${names.length} classes, above the limit of ${MAX_CLASSES}`);
  const index = new Map(names.map((n, i) => [n, i]));
  const map = (labels: string[], where: string) =>
    Uint8Array.from(labels, (l) => {
      const i = index.get(l);
      if (i === undefined) throw new UserError(`${where} label ${JSON.stringify(l.slice(0, 40))} is not one of the ${known ? "model's" : "training"} classes (${names.slice(0, 8).join(", ")}${names.length > 8 ? ", ..." : ""})`);
      return i;
    });
  return { train: map(train, "training"), test: map(test, "test"), names };
}
