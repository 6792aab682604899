/** Reading a .mcnc file from disk (Node). The codec itself, model-file.ts, runs anywhere. */
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { UserError } from "../errors.js";
import { decodeModelFile, type DecodeOptions, type LoadedModel } from "./model-file.js";
import type { ByteSource } from "./safetensors.js";

/** Any file larger than this is refused before it is read. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

function cannotRead(path: string, e: unknown): UserError {
  return e instanceof UserError ? e : new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
}

function fileSize(path: string): number {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserError(`${path} is not a file`);
    return st.size;
  } catch (e) {
    throw cannotRead(path, e);
  }
}

/** A file read piece by piece, so that a model larger than memory can be streamed. */
export function fileSource(path: string): ByteSource {
  const size = fileSize(path);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw cannotRead(path, e);
  }
  return {
    size,
    read(offset, length) {
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, out, got, length - got, offset + got);
        if (n === 0) throw new UserError(`${path}: the file shrank while it was read`);
        got += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}

/** A whole file, its size checked first: `what` names the files that may not be larger. */
export function readWholeFile(path: string, what = "file"): Uint8Array {
  const size = fileSize(path);
  if (size > MAX_FILE_BYTES) throw new UserError(`${path}: ${size} bytes is larger than any ${what} this reader accepts`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw cannotRead(path, e);
  }
}

export function readModelFile(path: string, options?: DecodeOptions): LoadedModel {
  return decodeModelFile(readWholeFile(path, ".mcnc"), path, options);
}
