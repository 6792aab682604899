/**
 * NumPy's .npy arrays (format versions 1-3): a magic string, a header dictionary (dtype, order, shape),
 * then the data. Image data sets as numpy.save writes them: uint8 pixels, or floats on the same 0-255
 * scale, and integer labels. The header is checked against the file's length before anything is made.
 */
import { UserError } from "../errors.js";
import { readStart, readWholeFile } from "../files.js";
import type { IdxArray } from "./idx.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Element types read, by their descr; the values become bytes (pixels 0..255, labels 0..255). */
const TYPES: Record<string, { bytes: number; read: (v: DataView, at: number) => number }> = {
  "|u1": { bytes: 1, read: (v, at) => v.getUint8(at) },
  "|b1": { bytes: 1, read: (v, at) => v.getUint8(at) },
  "<i4": { bytes: 4, read: (v, at) => v.getInt32(at, true) },
  "<i8": { bytes: 8, read: (v, at) => Number(v.getBigInt64(at, true)) },
  "<f4": { bytes: 4, read: (v, at) => v.getFloat32(at, true) },
  "<f8": { bytes: 8, read: (v, at) => v.getFloat64(at, true) },
};

/** The dtype, order and shape an .npy header declares, and where its data starts. */
export function parseHeader(bytes: Uint8Array, name: string): { descr: string; shape: number[]; start: number } {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) throw new UserError(`${name}: not an .npy file (bad magic)`);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new UserError(`${name}: .npy version ${major} is not supported`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  if (headerLength > 1 << 16 || start > bytes.length) throw new UserError(`${name}: truncated .npy header`);
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || dims === undefined) throw new UserError(`${name}: .npy header lacks descr, fortran_order or shape`);
  const type = TYPES[descr];
  if (!type) throw new UserError(`${name}: .npy dtype ${descr.slice(0, 16)} is not supported (${Object.keys(TYPES).join(", ")})`);
  if (fortran === "True") throw new UserError(`${name}: Fortran-ordered .npy arrays are not supported (save with C order)`);
  const shape = dims
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "")
    .map((d) => {
      if (!/^\d{1,10}$/.test(d)) throw new UserError(`${name}: bad .npy dimension ${d.slice(0, 16)}`);
      return Number(d);
    });
  return { descr, shape, start };
}

/** What an .npy file declares, from its first 64 KiB alone. */
export function readNpyShape(path: string): number[] {
  return parseHeader(readStart(path, 1 << 16), path).shape;
}

export function readNpyFile(path: string): IdxArray {
  const raw = readWholeFile(path, ".npy array");
  return parseNpy(raw, path);
}

/** An .npy file's array as IDX-like bytes; integer values must lie in 0..255, floats are rounded into it. */
export function parseNpy(bytes: Uint8Array, name: string): IdxArray {
  const { descr, shape, start } = parseHeader(bytes, name);
  const type = TYPES[descr]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count * type.bytes !== bytes.length - start) throw new UserError(`${name}: .npy header says ${count} values of ${type.bytes} bytes but the file holds ${bytes.length - start} bytes`);
  const data = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = type.read(view, start + i * type.bytes);
    const b = descr.includes("f") ? Math.round(v) : v;
    if (!(b >= 0 && b <= 255)) throw new UserError(`${name}: value ${v} at index ${i} is outside 0..255 (pixels and labels are bytes)`);
    data[i] = b;
  }
  return { shape, data };
}
