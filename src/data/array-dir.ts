/**
 * A directory of four arrays, in the order training images, training labels, test images, test labels:
 * MNIST's IDX files (plain or gzipped), or NumPy arrays (numpy.save). Their headers are read and checked
 * against the memory limit before any data is.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { checkMemory } from "../limits.js";
import { MAX_IMAGE_SIDE, type RawData } from "./raw.js";
import { readIdxFile, readIdxShape, type IdxArray } from "./idx.js";
import { readNpyFile, readNpyShape } from "./npy.js";

const FORMATS = [
  { name: "IDX", files: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], suffixes: ["", ".gz"], readShape: readIdxShape, read: readIdxFile },
  { name: ".npy", files: ["train-images.npy", "train-labels.npy", "test-images.npy", "test-labels.npy"], suffixes: [""], readShape: readNpyShape, read: readNpyFile },
] as const;

export const ARRAY_DIR_HELP = `four IDX files (${FORMATS[0].files.join(", ")}, gzipped or not) or four .npy files (${FORMATS[1].files.join(", ")})`;

/** The four files of a layout in `dir`, or undefined when it has none of them. */
export function findArrayFiles(dir: string): { paths: string[]; format: (typeof FORMATS)[number] } | undefined {
  for (const format of FORMATS) {
    const paths = format.files.map((f) => format.suffixes.map((s) => join(dir, f + s)).find(existsSync));
    if (paths.every((p) => p !== undefined)) return { paths: paths as string[], format };
    // A directory with some files of a layout is meant to be that layout: name what is missing.
    if (paths.some((p) => p !== undefined)) throw new UserError(`${dir} is not a complete ${format.name} data directory: missing ${format.files.filter((_, i) => !paths[i]).join(", ")}`);
  }
  return undefined;
}

/** The four headers agree (images and labels counted alike, training and test images of one size), before any data is read. */
function checkShapes([trainImages, trainLabels, testImages, testLabels]: number[][]): void {
  const pair = (images: number[], labels: number[], what: string) => {
    const channels = images[3] ?? 1;
    if (images.length < 3 || images.length > 4 || channels > 4) throw new UserError(`${what} images must be an array of [count, height, width] or [count, height, width, channels <= 4]`);
    if (labels.length !== 1) throw new UserError(`${what} labels must be a 1-D array`);
    if (images[0] !== labels[0]) throw new UserError(`${what}: ${images[0]} images but ${labels[0]} labels`);
    if (images[0] === 0) throw new UserError(`${what}: the data holds no images`);
  };
  pair(trainImages!, trainLabels!, "training");
  pair(testImages!, testLabels!, "test");
  if (trainImages!.slice(1).join("x") !== testImages!.slice(1).join("x")) throw new UserError(`training images are ${trainImages!.slice(1).join("x")}, test images ${testImages!.slice(1).join("x")}: they differ in size`);
}

/**
 * Bytes the four files imply once read: each value as a byte, each kept image value again as float32.
 * From their headers alone, so a small file declaring a huge array is refused before it is inflated.
 */
function checkDeclared(paths: string[], readShape: (path: string) => number[], keep: { train?: number; test?: number }): void {
  const shapes = paths.map(readShape);
  for (const [i, s] of shapes.entries()) {
    if (i % 2 === 0 && s.length >= 3 && (s[1]! > MAX_IMAGE_SIDE || s[2]! > MAX_IMAGE_SIDE)) throw new UserError(`${paths[i]}: images of ${s[1]}x${s[2]} exceed ${MAX_IMAGE_SIDE} pixels a side`);
  }
  checkShapes(shapes);
  const values = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const kept = (s: number[], limit?: number) => (s.length >= 3 ? ((limit ? Math.min(limit, s[0]!) : s[0]!) * values(s)) / s[0]! : 0);
  // Each file as read (an .npy of floats is 4-8 bytes a value), its values as bytes (twice for a gzipped
  // file: inflating gathers pieces, then joins them), the kept images as float32.
  const read = paths.reduce((n, p) => n + statSync(p).size, 0);
  const inflated = shapes.reduce((n, s, i) => n + (paths[i]!.endsWith(".gz") ? 2 : 1) * values(s), 0);
  const bytes = read + inflated + 4 * (kept(shapes[0]!, keep.train) + kept(shapes[2]!, keep.test));
  checkMemory(bytes, `the data in ${paths[0]!.replace(/\/[^/]*$/, "")}`);
}

export function readArrayDir(found: NonNullable<ReturnType<typeof findArrayFiles>>, keep: { train?: number; test?: number }): RawData {
  const { paths, format } = found;
  checkDeclared(paths, format.readShape, keep);
  const [trainImages, trainLabels, testImages, testLabels] = paths.map((p) => format.read(p)) as [IdxArray, IdxArray, IdxArray, IdxArray];
  // The data read is what the headers declared (a file may have changed since): checked again.
  checkShapes([trainImages.shape, trainLabels.shape, testImages.shape, testLabels.shape]);
  const shape: [number, number, number] = [trainImages.shape[1]!, trainImages.shape[2]!, trainImages.shape[3] ?? 1];
  return {
    shape,
    scale: "pixels",
    train: { values: trainImages.data, labels: trainLabels.data, count: trainImages.shape[0]! },
    test: { values: testImages.data, labels: testLabels.data, count: testImages.shape[0]! },
  };
}
