/**
 * Image classification data from a directory of MNIST-format IDX files or of NumPy arrays (one to four
 * channels). The default is Fashion-MNIST, vendored under data/fashion-mnist (MIT, from Debian's
 * dataset-fashion-mnist): nothing is fetched.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { bundledPath } from "./bundled.js";
import { checkMemory } from "../limits.js";
import { readIdxFile, readIdxShape, type IdxArray } from "./idx.js";
import { readNpyFile, readNpyShape } from "./npy.js";

export interface Split {
  /** Normalised pixels, sample-major, each sample height*width*channels (HWC). */
  x: Float32Array;
  y: Uint8Array;
  count: number;
}

export interface Dataset {
  name: string;
  /** [height, width, channels] */
  imageShape: [number, number, number];
  numClasses: number;
  train: Split;
  test: Split;
  /** Pixel mean and spread of the training images (in [0, 1] units), used to normalise both splits. */
  mean: number;
  std: number;
}

export interface LoadOptions {
  /** Keep the first `trainLimit` training samples (0 or undefined: all). */
  trainLimit?: number;
  testLimit?: number;
  /**
   * Pixel statistics to normalise with instead of this training split's: a trained model's own (its
   * file records them), so that data it is measured on is scaled as its training data was.
   */
  normalisation?: { mean: number; std: number };
}

export const DEFAULT_DATA_DIR = bundledPath("fashion-mnist");

/**
 * The layouts a data directory may have, each four files in the order training images, training labels,
 * test images, test labels: MNIST's IDX files (plain or gzipped), or NumPy arrays (numpy.save).
 */
const FORMATS = [
  { name: "IDX", files: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], suffixes: ["", ".gz"], readShape: readIdxShape, read: readIdxFile },
  { name: ".npy", files: ["train-images.npy", "train-labels.npy", "test-images.npy", "test-labels.npy"], suffixes: [""], readShape: readNpyShape, read: readNpyFile },
] as const;

function findFiles(dir: string): { paths: string[]; format: (typeof FORMATS)[number] } {
  for (const format of FORMATS) {
    const paths = format.files.map((f) => format.suffixes.map((s) => join(dir, f + s)).find(existsSync));
    if (paths.every((p) => p !== undefined)) return { paths: paths as string[], format };
    // A directory with some files of a layout is meant to be that layout: name what is missing.
    if (paths.some((p) => p !== undefined)) throw new UserError(`${dir} is not a complete ${format.name} data directory: missing ${format.files.filter((_, i) => !paths[i]).join(", ")}`);
  }
  throw new UserError(`${dir} is not a data directory: it needs four IDX files (${FORMATS[0].files.join(", ")}, gzipped or not) or four .npy files (${FORMATS[1].files.join(", ")})`);
}

function checkPair(images: IdxArray, labels: IdxArray, what: string): void {
  const channels = images.shape[3] ?? 1;
  if (images.shape.length < 3 || images.shape.length > 4 || channels > 4) throw new UserError(`${what} images must be an array of [count, height, width] or [count, height, width, channels <= 4]`);
  if (labels.shape.length !== 1) throw new UserError(`${what} labels must be a 1-D IDX array`);
  if (images.shape[0] !== labels.shape[0]) {
    throw new UserError(`${what}: ${images.shape[0]} images but ${labels.shape[0]} labels`);
  }
}

function limitCount(total: number, limit: number | undefined): number {
  if (limit === undefined || limit === 0) return total;
  if (!Number.isInteger(limit) || limit < 0) throw new UserError(`sample limit must be a non-negative integer, got ${limit}`);
  return Math.min(total, limit);
}

function normalise(images: IdxArray, count: number, mean: number, std: number): Float32Array {
  const size = count * images.shape[1]! * images.shape[2]! * (images.shape[3] ?? 1);
  const out = new Float32Array(size);
  const scale = 1 / (255 * std);
  const shift = mean / std;
  for (let i = 0; i < size; i++) out[i] = images.data[i]! * scale - shift;
  return out;
}

/** Images larger than this on a side are refused from the header (a model's input is bounded the same way). */
export const MAX_IMAGE_SIDE = 4096;

/**
 * Bytes the four files imply once read: each value as a byte, each kept image value again as float32.
 * From their headers alone, so a small file declaring a huge array is refused before it is inflated.
 */
function checkDeclared(paths: string[], readShape: (path: string) => number[], options: LoadOptions): void {
  const shapes = paths.map(readShape);
  for (const [i, s] of shapes.entries()) {
    if (i % 2 === 0 && s.length >= 3 && (s[1]! > MAX_IMAGE_SIDE || s[2]! > MAX_IMAGE_SIDE)) throw new UserError(`${paths[i]}: images of ${s[1]}x${s[2]} exceed ${MAX_IMAGE_SIDE} pixels a side`);
  }
  const values = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const kept = (s: number[], limit?: number) => (s.length >= 3 ? ((limit ? Math.min(limit, s[0]!) : s[0]!) * values(s)) / s[0]! : 0);
  // Each file as read (an .npy of floats is 4-8 bytes a value), its values as bytes, the kept images as float32.
  const read = paths.reduce((n, p) => n + statSync(p).size, 0);
  const bytes = read + shapes.reduce((n, s) => n + values(s), 0) + 4 * (kept(shapes[0]!, options.trainLimit) + kept(shapes[2]!, options.testLimit));
  checkMemory(bytes, `the data in ${paths[0]!.replace(/\/[^/]*$/, "")}`);
}

export function loadDataset(dir: string = DEFAULT_DATA_DIR, options: LoadOptions = {}): Dataset {
  if (!existsSync(dir)) {
    // The npm package leaves the 30 MB image set out; the repository carries it.
    if (dir === DEFAULT_DATA_DIR) throw new UserError("the bundled Fashion-MNIST ships with the mcnc repository, not the npm package: give --data DIR (its four IDX files, e.g. data/fashion-mnist of a clone)");
    throw new UserError(`data directory ${dir} does not exist`);
  }
  const { paths, format } = findFiles(dir);
  checkDeclared(paths, format.readShape, options);
  const [trainImages, trainLabels, testImages, testLabels] = paths.map((p) => format.read(p)) as [IdxArray, IdxArray, IdxArray, IdxArray];
  checkPair(trainImages, trainLabels, "training");
  checkPair(testImages, testLabels, "test");
  const [h, w, c] = [trainImages.shape[1]!, trainImages.shape[2]!, trainImages.shape[3] ?? 1];
  if (testImages.shape[1] !== h || testImages.shape[2] !== w || (testImages.shape[3] ?? 1) !== c) throw new UserError("training and test images differ in size");

  // Statistics over the whole training split, so a subset run normalises like a full one.
  let sum = 0;
  let sumSq = 0;
  for (const v of trainImages.data) {
    sum += v;
    sumSq += v * v;
  }
  const n = trainImages.data.length;
  const given = options.normalisation;
  if (given && !(Number.isFinite(given.mean) && Number.isFinite(given.std) && given.std > 0)) throw new UserError(`normalisation ${JSON.stringify(given).slice(0, 80)} needs a finite mean and a positive std`);
  const mean = given?.mean ?? sum / n / 255;
  const std = given?.std ?? Math.sqrt(Math.max(sumSq / n / (255 * 255) - mean * mean, 1e-12));

  // Classes are 0..K-1, each present in training: one stray large label must not widen the model.
  const counts = new Uint32Array(256);
  for (const l of trainLabels.data) counts[l]!++;
  const numClasses = counts.findLastIndex((c) => c > 0) + 1;
  const missing = counts.subarray(0, numClasses).findIndex((c) => c === 0);
  if (missing >= 0) {
    const present = counts.filter((c) => c > 0).length;
    throw new UserError(`training labels run from 0 to ${numClasses - 1}, but ${numClasses - present} of those classes never occur (the first: ${missing}); labels must be 0..K-1`);
  }
  for (const l of testLabels.data) {
    if (l >= numClasses) throw new UserError(`test label ${l} does not occur in the training labels`);
  }
  if (numClasses < 2) throw new UserError("the training labels hold fewer than two classes");

  const trainCount = limitCount(trainImages.shape[0]!, options.trainLimit);
  const testCount = limitCount(testImages.shape[0]!, options.testLimit);
  return {
    name: dir === DEFAULT_DATA_DIR ? "fashion-mnist" : dir,
    imageShape: [h, w, c],
    numClasses,
    mean,
    std,
    train: { x: normalise(trainImages, trainCount, mean, std), y: trainLabels.data.slice(0, trainCount), count: trainCount },
    test: { x: normalise(testImages, testCount, mean, std), y: testLabels.data.slice(0, testCount), count: testCount },
  };
}
