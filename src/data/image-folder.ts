/**
 * Folders of PNG or JPEG images, one folder per class (named by it): DIR/train/CLASS/* and
 * DIR/test/CLASS/*, or DIR/CLASS/* split by the fixed rule of data/raw.ts. Decoded by pngjs and jpeg-js
 * (pure JavaScript, MIT and BSD). Every image must have the first one's size; sizes are read from
 * each file's header and the whole set checked against the memory limit before any image is decoded.
 * Colour images keep three channels (alpha is dropped); a set where every pixel is grey keeps one.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { UserError } from "../errors.js";
import { readStart, readWholeFile } from "../files.js";
import { checkMemory } from "../limits.js";
import { fixedOrder, heldOutSplit, MAX_CLASSES, MAX_IMAGE_SIDE, type RawData, type RawSplit } from "./raw.js";

export const IMAGE_FOLDER_HELP = "folders of PNG or JPEG images by class (train/CLASS/*, test/CLASS/*, or CLASS/*)";
const IMAGE_FILE = /\.(png|jpe?g)$/i;
/** Channel values further apart than this (JPEG's colour rounding) make a pixel a colour one. */
const GREY_TOLERANCE = 8;

interface Sample {
  file: string;
  className: string;
}

export interface ImageFolders {
  classes: string[];
  train: Sample[];
  test: Sample[];
}

const visible = (dir: string) =>
  readdirSync(dir)
    .filter((n) => !n.startsWith("."))
    .sort();
const isDir = (p: string) => statSync(p).isDirectory();

/** Each class folder's images, by folder name; undefined when `dir` has no folder holding an image. */
function classFolders(dir: string): Map<string, string[]> | undefined {
  const folders = visible(dir).filter((n) => isDir(join(dir, n)));
  const out = new Map<string, string[]>();
  for (const name of folders) {
    const entries = visible(join(dir, name));
    const other = entries.find((e) => !IMAGE_FILE.test(e));
    if (other !== undefined && entries.some((e) => IMAGE_FILE.test(e))) throw new UserError(`${join(dir, name, other)} is not a .png or .jpg image (a class folder holds only images)`);
    if (other === undefined && entries.length > 0) out.set(name, entries.map((e) => join(dir, name, e)));
  }
  if (out.size === 0) return undefined;
  const empty = folders.find((n) => !out.has(n));
  if (empty !== undefined) throw new UserError(`${join(dir, empty)} holds no .png or .jpg images (every class folder needs some)`);
  return out;
}

const samples = (folders: Map<string, string[]>): Sample[] => [...folders].flatMap(([className, files]) => files.map((file) => ({ file, className })));

export function findImageFolders(dir: string): ImageFolders | undefined {
  const [trainDir, testDir] = [join(dir, "train"), join(dir, "test")];
  const split = visible(dir).includes("train") && visible(dir).includes("test") && isDir(trainDir) && isDir(testDir);
  if (split) {
    const [train, test] = [classFolders(trainDir), classFolders(testDir)];
    if (!train || !test) return undefined;
    const unknown = [...test.keys()].find((c) => !train.has(c));
    if (unknown !== undefined) throw new UserError(`${join(testDir, unknown)}: class '${unknown}' has no training folder`);
    return { classes: [...train.keys()], train: samples(train), test: samples(test) };
  }
  const all = classFolders(dir);
  // Images with no class folders: the remedy first, since a long line is cut.
  if (!all && visible(dir).some((n) => IMAGE_FILE.test(n))) throw new UserError(`put each class's images in a folder named after the class (${join(dir, "CLASS", "1.png")}): ${dir} holds images but no class folders`);
  if (!all) return undefined;
  const list = samples(all);
  const { train, test } = heldOutSplit(list.length);
  return { classes: [...all.keys()], train: train.map((i) => list[i]!), test: test.map((i) => list[i]!) };
}

export const readBytes = (file: string): Uint8Array => readWholeFile(file, "image");

/** Width and height from a PNG's IHDR or a JPEG's start-of-frame marker, without decoding. */
export function imageSize(bytes: Uint8Array, file: string): { width: number; height: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 24 && view.getUint32(0) === 0x89504e47 && view.getUint32(12) === 0x49484452) return { width: view.getUint32(16), height: view.getUint32(20) };
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 <= bytes.length && bytes[at] === 0xff) {
      const marker = bytes[at + 1]!;
      // SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC), carry the frame's size.
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return { height: view.getUint16(at + 5), width: view.getUint16(at + 7) };
      at += 2 + view.getUint16(at + 2);
    }
  }
  throw new UserError(`${file}: not a PNG or JPEG image (or its header is damaged)`);
}

/** Bytes read for a size: a PNG's is in its first 24, a JPEG's frame header after its APP segments (usually EXIF, under 64 KiB). */
const HEADER_BYTES = 1 << 16;

/** A file's image size from its start, or from the whole file when a JPEG's frame header lies further in. */
function headerSize(file: string): { width: number; height: number } {
  const start = readStart(file, HEADER_BYTES);
  try {
    return imageSize(start, file);
  } catch (e) {
    if (start.length < HEADER_BYTES) throw e;
    return imageSize(readBytes(file), file);
  }
}

/**
 * A PNG's IHDR is its only one: the decoder takes the last it sees, so a second one would decode at a
 * size nobody measured (a 28x28 header, then 30000x30000).
 */
function checkPngChunks(bytes: Uint8Array, file: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headers = 0;
  for (let at = 8; at + 8 <= bytes.length; at += 12 + view.getUint32(at)) {
    const type = view.getUint32(at + 4);
    if (type === 0x49484452 && ++headers > 1) throw new UserError(`${file}: a PNG with a second IHDR chunk (one image, one header)`);
    if (type === 0x49454e44) return;
  }
}

/** RGBA pixels of a PNG or JPEG whose header declared `pixels` (imageSize, checked by the caller); any other size is refused. */
export function decodeImage(bytes: Uint8Array, file: string, pixels: number): Uint8Array {
  let rgba: Uint8Array;
  try {
    if (bytes[0] === 0x89) {
      checkPngChunks(bytes, file);
      rgba = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).data;
    } else rgba = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: pixels / 1e6 + 1, maxMemoryUsageInMB: Math.ceil((pixels * 16) / 2 ** 20) + 64 }).data;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${file}: cannot decode: ${String((e as Error).message ?? e).slice(0, 200)}`);
  }
  if (rgba.length !== 4 * pixels) throw new UserError(`${file}: decodes to ${rgba.length / 4} pixels, where its header declares ${pixels}`);
  return rgba;
}

export function readImageFolders(found: ImageFolders, known?: string[]): RawData {
  const classes = known ?? found.classes;
  if (classes.length > MAX_CLASSES) throw new UserError(`${classes.length} class folders, above the limit of ${MAX_CLASSES}`);
  const index = new Map(classes.map((c, i) => [c, i]));
  const all = [...found.train, ...found.test];
  for (const s of all) if (!index.has(s.className)) throw new UserError(`${s.file}: class '${s.className}' is not one of the model's classes (${classes.slice(0, 8).join(", ")})`);
  checkMemory(all.reduce((n, s) => n + statSync(s.file).size, 0), "the image files");

  // Sizes first, from the headers: the set's memory is known before any image is decoded.
  let size: { width: number; height: number } | undefined;
  for (const s of all) {
    const own = headerSize(s.file);
    size ??= own;
    if (own.width !== size.width || own.height !== size.height) throw new UserError(`${s.file} is ${own.width}x${own.height}, but ${all[0]!.file} is ${size.width}x${size.height} (resize the images to one size)`);
  }
  const { width, height } = size!;
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width < 1 || height < 1) throw new UserError(`images of ${width}x${height} are outside 1 to ${MAX_IMAGE_SIDE} pixels a side`);
  const pixels = width * height;
  checkMemory(all.length * pixels * 3 * (1 + 4) + pixels * 4, `${all.length} images of ${width}x${height}`);

  let grey = true;
  const readSplit = (list: Sample[]): RawSplit => {
    const order = fixedOrder(list.length);
    const values = new Uint8Array(list.length * pixels * 3);
    const labels = new Uint8Array(list.length);
    order.forEach((s, i) => {
      const rgba = decodeImage(readBytes(list[s]!.file), list[s]!.file, pixels);
      for (let p = 0, at = i * pixels * 3; p < pixels; p++, at += 3) {
        const [r, g, b] = [rgba[4 * p]!, rgba[4 * p + 1]!, rgba[4 * p + 2]!];
        values[at] = r;
        values[at + 1] = g;
        values[at + 2] = b;
        if (grey && Math.max(r, g, b) - Math.min(r, g, b) > GREY_TOLERANCE) grey = false;
      }
      labels[i] = index.get(list[s]!.className)!;
    });
    return { values, labels, count: list.length };
  };
  const train = readSplit(found.train);
  const test = readSplit(found.test);
  if (grey) {
    for (const split of [train, test]) {
      const rgb = split.values;
      const one = new Uint8Array(split.count * pixels);
      for (let i = 0; i < one.length; i++) one[i] = Math.round((rgb[3 * i]! + rgb[3 * i + 1]! + rgb[3 * i + 2]!) / 3);
      split.values = one;
    }
  }
  return { shape: [height, width, grey ? 1 : 3], scale: "pixels", train, test, classNames: classes };
}
