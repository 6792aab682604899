/** Write a whole file or nothing: a crash or an error never leaves a half-written output. */
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { UserError } from "../errors.js";

export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  writeFileAtomicBy(path, (write) => write(bytes));
}

/**
 * The same for a file produced piece by piece (`produce` calls `write` in order), so that an output
 * larger than memory never has to exist whole. An error from `produce` is passed on, the file unwritten.
 */
export function writeFileAtomicBy(path: string, produce: (write: (bytes: Uint8Array) => void) => void): void {
  const tmp = `${path}.${process.pid}.tmp`;
  let fd: number | undefined;
  const cannot = (e: unknown) => new UserError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  try {
    fd = openSync(tmp, "w");
  } catch (e) {
    throw cannot(e);
  }
  try {
    produce((bytes) => {
      for (let at = 0; at < bytes.length; ) {
        try {
          at += writeSync(fd!, bytes, at, bytes.length - at);
        } catch (e) {
          throw cannot(e);
        }
      }
    });
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
    throw e instanceof UserError || !(e as NodeJS.ErrnoException).code ? e : cannot(e);
  }
}
