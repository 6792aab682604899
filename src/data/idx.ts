/**
 * The IDX format of MNIST-style data sets (big-endian dims, unsigned bytes), plain or gzipped.
 * Everything in the header is checked against the file's length before any array is made.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { UserError } from "../errors.js";

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;
const MAX_IDX_BYTES = 1 << 30;

export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
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
  if (count !== bytes.length - headerBytes) {
    throw new UserError(`${name}: IDX header says ${count} values but the file holds ${bytes.length - headerBytes}`);
  }
  return { shape, data: bytes.subarray(headerBytes) };
}

export function readIdxFile(path: string): IdxArray {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let bytes: Uint8Array = raw;
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw, { maxOutputLength: MAX_IDX_BYTES });
    } catch (e) {
      throw new UserError(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return parseIdx(bytes, path);
}
