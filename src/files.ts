/**
 * Reading files from disk, bounded: only regular files (a FIFO would block forever, a link to
 * /dev/zero never ends), their size checked before anything is read. Every reader in Node goes
 * through here.
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { systemReason, UserError } from "./errors.js";
import type { ByteSource } from "./format/safetensors.js";

/** Any file larger than this is refused before it is read. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

function cannotRead(path: string, e: unknown): UserError {
  return e instanceof UserError ? e : new UserError(`cannot read ${path}: ${systemReason(e)}`);
}

/** The size of `path`, which must be a regular file (links followed). */
export function regularFileSize(path: string): number {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserError(`${path} is not a regular file`);
    return st.size;
  } catch (e) {
    throw cannotRead(path, e);
  }
}

/** A file read piece by piece, so that a model larger than memory can be streamed. */
export function fileSource(path: string): ByteSource {
  const size = regularFileSize(path);
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

/** A whole file, its size checked first against `maxBytes`: `what` names the files that may not be larger. */
export function readWholeFile(path: string, what = "file", maxBytes = MAX_FILE_BYTES): Uint8Array {
  const size = regularFileSize(path);
  if (size > maxBytes) throw new UserError(`${path}: ${size} bytes is larger than any ${what} this reader accepts (${maxBytes})`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw cannotRead(path, e);
  }
}

/** A JSON file that must hold an object (a config, a tokenizer), its size checked first. */
export function readJsonObject(path: string, what: string, maxBytes: number): Record<string, unknown> {
  const bytes = readWholeFile(path, what, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new UserError(`${path}: ${what} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UserError(`${path}: ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** A file's first `n` bytes (fewer if it is shorter): enough to read a header without reading the data. */
export function readStart(path: string, n: number): Uint8Array {
  const source = fileSource(path);
  try {
    return source.read(0, Math.min(n, source.size));
  } finally {
    source.close!();
  }
}

/** `n` bytes at `offset`, refused if the file is shorter. */
export function readAt(path: string, offset: number, n: number): Uint8Array {
  const source = fileSource(path);
  try {
    if (offset + n > source.size) throw new UserError(`${path}: shorter than its header says`);
    return source.read(offset, n);
  } finally {
    source.close!();
  }
}

/**
 * The real path of `name` beside a model in `dir`, refused unless it lies inside that folder once links
 * are followed: a model's data files are its own, never whatever a link or a `..` points to.
 */
export function insideFolder(dir: string, name: string, what: string): string {
  let path: string;
  try {
    path = realpathSync(resolve(dir, name));
  } catch {
    throw new UserError(`${what}, ${name.slice(0, 120)}, which cannot be found beside the model`);
  }
  const inside = relative(realpathSync(dir), path);
  if (isAbsolute(name) || inside === "" || inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) throw new UserError(`${what}, ${name.slice(0, 120)}, which lies outside the model's folder`);
  return path;
}
