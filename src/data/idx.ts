/**
 * The IDX format of MNIST-style data sets (big-endian dims, unsigned bytes), plain or gzipped.
 * The header is read first (from a gzipped file, by inflating only its beginning), and what it
 * declares is checked against the memory limit and then against the data, before the data is made.
 */
import { constants, gunzipSync } from "node:zlib";
import { UserError } from "../errors.js";
import { MAX_FILE_BYTES, readStart, readWholeFile } from "../files.js";
import { checkMemory } from "../limits.js";

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/** The shape an IDX header declares, and its length in bytes. */
function parseHeader(bytes: Uint8Array, name: string): { shape: number[]; headerBytes: number; count: number } {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new UserError(`${name}: not an IDX file (bad magic)`);
  if (bytes[2] !== UBYTE) throw new UserError(`${name}: IDX type 0x${bytes[2]!.toString(16)} is not supported (only unsigned bytes)`);
  const ndim = bytes[3]!;
  if (ndim < 1 || ndim > 4) throw new UserError(`${name}: IDX with ${ndim} dimensions is not supported`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) throw new UserError(`${name}: truncated IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    const dim = view.getUint32(4 + 4 * i, false);
    shape.push(dim);
    count *= dim;
  }
  return { shape, headerBytes, count };
}

export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  const { shape, headerBytes, count } = parseHeader(bytes, name);
  if (count !== bytes.length - headerBytes) {
    throw new UserError(`${name}: IDX header says ${count} values but the file holds ${bytes.length - headerBytes}`);
  }
  return { shape, data: bytes.subarray(headerBytes) };
}

const isGzip = (raw: Uint8Array) => raw[0] === 0x1f && raw[1] === 0x8b;

/** The first `want` bytes a gzip stream inflates to (fewer if it is shorter), inflating no more than a bounded prefix. */
function gunzipStart(raw: Uint8Array, want: number, name: string): Uint8Array {
  for (let n = 256; ; n *= 16) {
    let part: Uint8Array;
    try {
      // A sync flush returns what a truncated stream has inflated so far instead of failing on its end.
      part = gunzipSync(raw.subarray(0, n), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 1 << 26 });
    } catch (e) {
      throw new UserError(`${name}: corrupt gzip data (${(e as Error).message.split("\n")[0]})`);
    }
    if (part.length >= want || n >= raw.length) return part;
  }
}

/** What an IDX file declares, from its first mebibyte alone. */
export function readIdxShape(path: string): number[] {
  const start = readStart(path, 1 << 20);
  return parseHeader(isGzip(start) ? gunzipStart(start, 4 + 4 * 4, path) : start, path).shape;
}

export function readIdxFile(path: string): IdxArray {
  return decodeIdx(readWholeFile(path, "data file"), path);
}

/** An IDX file's bytes as read from disk, gzipped or not. */
export function decodeIdx(raw: Uint8Array, path: string): IdxArray {
  if (!isGzip(raw)) return parseIdx(raw, path);
  const { headerBytes, count } = parseHeader(gunzipStart(raw, 4 + 4 * 4, path), path);
  const declared = headerBytes + count;
  checkMemory(declared, `${path} (${count} values when inflated)`);
  if (declared > MAX_FILE_BYTES) throw new UserError(`${path}: its header declares ${declared} bytes, more than any data file this reader accepts (${MAX_FILE_BYTES})`);
  let bytes: Uint8Array;
  try {
    // One byte more than declared: a stream that inflates past its header's size is refused there.
    bytes = gunzipSync(raw, { maxOutputLength: declared + 1 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw new UserError(`${path}: inflates to more than the ${declared} bytes its IDX header declares`);
    throw new UserError(`${path}: corrupt gzip data (${(e as Error).message.split("\n")[0]})`);
  }
  return parseIdx(bytes, path);
}
