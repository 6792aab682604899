/**
 * Classification data from a path: a directory of IDX or .npy arrays, a CSV/TSV table (or a directory
 * holding train and test tables), or a folder of PNG/JPEG images by class. Every reader hands over raw
 * values (data/raw.ts); here they are normalised and their labels checked, the same way for all. The
 * default is Fashion-MNIST, vendored under data/fashion-mnist (MIT, from Debian's
 * dataset-fashion-mnist; the npm package ships a subset): nothing is fetched.
 */
import { existsSync, statSync } from "node:fs";
import { UserError } from "../errors.js";
import { ARRAY_DIR_HELP, findArrayFiles, readArrayDir } from "./array-dir.js";
import { availableBundled, bundledPath } from "./bundled.js";
import { findImageFolders, readImageFolders, IMAGE_FOLDER_HELP } from "./image-folder.js";
import type { RawData, RawSplit } from "./raw.js";
import { findTables, readTables, TABLE_HELP } from "./table.js";

export interface Split {
  /** Normalised values, sample-major, each sample height*width*channels (HWC). */
  x: Float32Array;
  y: Uint8Array;
  count: number;
}

/**
 * How inputs were scaled, as a file records it so that other data is scaled the same way. Images:
 * (x / 255 - mean) / std with one mean and spread; tables: (x - mean[j]) / std[j] per column.
 */
export type Normalisation = { mean: number; std: number } | { mean: number[]; std: number[] };

export interface Dataset {
  name: string;
  /** [height, width, channels]; a table is [1, 1, columns]. */
  imageShape: [number, number, number];
  numClasses: number;
  train: Split;
  test: Split;
  normalisation: Normalisation;
  /** Class names in index order, where the data names its classes (image folders, text labels). */
  classNames?: string[];
  /** A table's label column, by header name or 0-based index. */
  labelColumn?: string;
  /** What the samples are, for people: "images" or "rows". */
  unit: "images" | "rows";
}

export interface LoadOptions {
  /** Keep the first `trainLimit` training samples (0 or undefined: all). */
  trainLimit?: number;
  testLimit?: number;
  /**
   * Statistics to normalise with instead of this training split's: a trained model's own (its file
   * records them), so that data it is measured on is scaled as its training data was.
   */
  normalisation?: Normalisation;
  /** A trained model's class names: labels map to the same indices it learnt. */
  classNames?: string[];
  /** A table's label column, by header name or 0-based index (default: label, class or target, else the last). */
  labelColumn?: string;
}

export const DEFAULT_DATA_DIR = bundledPath("fashion-mnist");

function limitCount(total: number, limit: number | undefined): number {
  if (limit === undefined || limit === 0) return total;
  if (!Number.isInteger(limit) || limit < 0) throw new UserError(`sample limit must be a non-negative integer, got ${limit}`);
  return Math.min(total, limit);
}

/** One mean and spread over all training values, in [0, 1] units (the whole split, so a subset run normalises like a full one). */
function pixelStatistics(values: RawSplit["values"]): { mean: number; std: number } {
  let sum = 0;
  let sumSq = 0;
  for (const v of values) {
    sum += v;
    sumSq += v * v;
  }
  const n = values.length;
  const mean = sum / n / 255;
  return { mean, std: Math.sqrt(Math.max(sumSq / n / (255 * 255) - mean * mean, 1e-12)) };
}

/**
 * Each channel's mean and spread over the training values; a constant column keeps spread 1. Rounded
 * to 6 significant digits, which the file records: a table's statistics are part of its size.
 */
function columnStatistics(values: RawSplit["values"], channels: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    sum[i % channels]! += values[i]!;
    sumSq[i % channels]! += values[i]! * values[i]!;
  }
  const n = values.length / channels;
  const round = (x: number) => Number(x.toPrecision(6));
  const mean = Array.from(sum, (s) => s / n);
  const std = mean.map((m, j) => {
    const v = sumSq[j]! / n - m * m;
    return v > 1e-12 * Math.max(1, m * m) ? round(Math.sqrt(v)) : 1;
  });
  return { mean: mean.map(round), std };
}

function checkNormalisation(given: Normalisation, raw: RawData): void {
  const ok = (m: number, s: number) => Number.isFinite(m) && Number.isFinite(s) && s > 0;
  const shown = JSON.stringify(given).slice(0, 80);
  if (raw.scale === "pixels") {
    if (!(typeof given.mean === "number" && typeof given.std === "number" && ok(given.mean, given.std))) throw new UserError(`normalisation ${shown} needs a finite mean and a positive std for images`);
    return;
  }
  const channels = raw.shape[2];
  if (!(Array.isArray(given.mean) && Array.isArray(given.std) && given.mean.length === channels && given.std.length === channels && given.mean.every((m, j) => ok(m, (given.std as number[])[j]!)))) {
    throw new UserError(`normalisation ${shown} needs a finite mean and a positive std for each of the table's ${channels} columns`);
  }
}

function normalise(split: RawSplit, count: number, sample: number, raw: RawData, n: Normalisation): Float32Array {
  const size = count * sample;
  const out = new Float32Array(size);
  if (typeof n.mean === "number") {
    const scale = 1 / (255 * (n.std as number));
    const shift = n.mean / (n.std as number);
    for (let i = 0; i < size; i++) out[i] = split.values[i]! * scale - shift;
  } else {
    const channels = raw.shape[2];
    const [mean, std] = [n.mean, n.std as number[]];
    for (let i = 0; i < size; i++) out[i] = (split.values[i]! - mean[i % channels]!) / std[i % channels]!;
  }
  return out;
}

/** Classes are 0..K-1, each present in training: one stray large label must not widen the model. */
function countClasses(raw: RawData): number {
  const counts = new Uint32Array(256);
  for (const l of raw.train.labels) counts[l]!++;
  const numClasses = Math.max(counts.findLastIndex((c) => c > 0) + 1, raw.classNames?.length ?? 0);
  const missing = counts.subarray(0, numClasses).findIndex((c) => c === 0);
  if (missing >= 0 && !raw.classNames) {
    const present = counts.filter((c) => c > 0).length;
    throw new UserError(`training labels run from 0 to ${numClasses - 1}, but ${numClasses - present} of those classes never occur (the first: ${missing}); labels must be 0..K-1`);
  }
  for (const l of raw.test.labels) {
    if (l >= numClasses) throw new UserError(`test label ${l} does not occur in the training labels`);
  }
  if (numClasses < 2) throw new UserError("the training labels hold fewer than two classes");
  return numClasses;
}

/** Raw values and labels to a normalised, checked data set. */
export function finishDataset(raw: RawData, name: string, options: LoadOptions = {}): Dataset {
  const given = options.normalisation;
  if (given) checkNormalisation(given, raw);
  const normalisation = given ?? (raw.scale === "pixels" ? pixelStatistics(raw.train.values) : columnStatistics(raw.train.values, raw.shape[2]));
  const numClasses = countClasses(raw);
  const sample = raw.shape[0] * raw.shape[1] * raw.shape[2];
  const split = (s: RawSplit, limit?: number): Split => {
    const count = limitCount(s.count, limit);
    return { x: normalise(s, count, sample, raw, normalisation), y: s.labels.slice(0, count), count };
  };
  return {
    name,
    imageShape: raw.shape,
    numClasses,
    normalisation,
    ...(raw.classNames ? { classNames: raw.classNames } : {}),
    ...(raw.labelColumn !== undefined ? { labelColumn: raw.labelColumn } : {}),
    unit: raw.scale === "pixels" ? "images" : "rows",
    train: split(raw.train, options.trainLimit),
    test: split(raw.test, options.testLimit),
  };
}

/**
 * What a model file records of its data so that other data is prepared the same way (its `meta`
 * fields): the normalisation, and the class names and label column where the data has them.
 */
export function dataRecord(d: Dataset): Record<string, unknown> {
  return { normalisation: d.normalisation, ...(d.classNames ? { classes: d.classNames } : {}), ...(d.labelColumn !== undefined ? { label_column: d.labelColumn } : {}) };
}

/** The meta fields dataRecord writes, besides the data set's name. */
export const DATA_RECORD_FIELDS = ["normalisation", "classes", "label_column"] as const;

/** Load options from what a file recorded (dataRecord); a malformed field is refused, not guessed at. */
export function recordedOptions(meta: Record<string, unknown> | undefined): Pick<LoadOptions, "normalisation" | "classNames" | "labelColumn"> {
  if (!meta) return {};
  const { normalisation, classes, label_column: labelColumn } = meta;
  if (classes !== undefined && !(Array.isArray(classes) && classes.length <= 256 && classes.every((c) => typeof c === "string"))) throw new UserError("the file's class names are malformed");
  if (labelColumn !== undefined && typeof labelColumn !== "string") throw new UserError("the file's label column is malformed");
  if (normalisation !== undefined && (typeof normalisation !== "object" || normalisation === null)) throw new UserError("the file's normalisation is malformed");
  return {
    ...(normalisation !== undefined ? { normalisation: normalisation as Normalisation } : {}),
    ...(classes !== undefined ? { classNames: classes as string[] } : {}),
    ...(labelColumn !== undefined ? { labelColumn } : {}),
  };
}

/** The reader a path calls for, tried in order; each says whether the path is its kind. */
function readRaw(path: string, options: LoadOptions): RawData {
  const keep = { train: options.trainLimit, test: options.testLimit };
  const table = findTables(path);
  if (table) return readTables(table, options);
  // A label column (from --label-column, or recorded by a model trained on a table) names a table's column.
  if (options.labelColumn !== undefined) throw new UserError(`a label column ('${options.labelColumn.slice(0, 40)}') is given, but ${path} is not a table (.csv or .tsv)`);
  if (!statSync(path).isDirectory()) throw new UserError(`${path} is a file, but not a table (.csv, .tsv, optionally .gz): give a data directory or a table`);
  const arrays = findArrayFiles(path);
  if (arrays) return readArrayDir(arrays, keep);
  const folders = findImageFolders(path);
  if (folders) return readImageFolders(folders, options.classNames);
  throw new UserError(`${path} is not a data directory: it needs ${ARRAY_DIR_HELP}, ${TABLE_HELP}, or ${IMAGE_FOLDER_HELP}`);
}

/**
 * The default is the bundled Fashion-MNIST, or where it is not installed (the npm package) its
 * 4,000-image subset: the result's `name` says which.
 */
export function loadDataset(path: string = DEFAULT_DATA_DIR, options: LoadOptions = {}): Dataset {
  let name = path;
  if (path === DEFAULT_DATA_DIR) {
    const available = availableBundled("fashion-mnist").name;
    [name, path] = [available, bundledPath(available)];
  }
  if (!existsSync(path)) throw new UserError(`data ${path} does not exist`);
  return finishDataset(readRaw(path, options), name, options);
}
