/** Reading a .mcnc file from disk (Node). The codec itself, model-file.ts, runs anywhere. */
import { readFileSync, statSync } from "node:fs";
import { UserError } from "../errors.js";
import { decodeModelFile, type LoadedModel } from "./model-file.js";

/** Any file larger than this is refused before it is read. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

export function readModelFile(path: string): LoadedModel {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserError(`${path} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (size > MAX_FILE_BYTES) throw new UserError(`${path}: ${size} bytes is larger than any .mcnc this reader accepts`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return decodeModelFile(bytes, path);
}
