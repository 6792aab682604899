/**
 * Write a whole file or nothing: a crash, an error or a signal never leaves a half-written output.
 * The bytes go to a temporary file beside the output, under a name nobody can predict, created
 * exclusively (never through a planted file or symlink); it is flushed to disk, renamed over the
 * output, and the directory is flushed so the rename survives a power cut. A run stopped by SIGINT
 * or SIGTERM removes its temporary files; one killed outright (SIGKILL) leaves a hidden
 * `.NAME.PID.RANDOM.tmp` that no reader takes for output, and the next write to NAME removes it once
 * that process is gone.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { systemReason, UserError } from "../errors.js";

const live = new Set<string>();
let handling = false;

function removeLive(): void {
  for (const tmp of live) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  live.clear();
}

/**
 * Signals wait for the write in progress (JavaScript runs the handler only after it), then the process
 * ends as the signal would have ended it, with no temporary file behind.
 */
function handleSignals(): void {
  if (handling) return;
  handling = true;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      removeLive();
      process.exit(code);
    });
  }
  process.on("exit", removeLive);
}

export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  writeFileAtomicBy(path, (write) => write(bytes));
}

/** Flush a directory's entries (the rename); not every platform can open a directory for that. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Windows and some file systems refuse; the rename itself is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether process `pid` is gone (a signal 0 to it finds nobody). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Temporary files of earlier writes to `path` whose writers were killed outright: removed. */
function removeStale(path: string): void {
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(\d{1,10})\.[0-9a-f]{16}\.tmp$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid === undefined || Number(pid) === process.pid || !gone(Number(pid))) continue;
    try {
      unlinkSync(join(dirname(path), name));
    } catch {
      // removed by another writer meanwhile
    }
  }
}

/**
 * The same for a file produced piece by piece (`produce` calls `write` in order), so that an output
 * larger than memory never has to exist whole. An error from `produce` is passed on, the file unwritten.
 */
export function writeFileAtomicBy(path: string, produce: (write: (bytes: Uint8Array) => void) => void): void {
  handleSignals();
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(8).toString("hex")}.tmp`);
  const cannot = (e: unknown) => new UserError(`cannot write ${path}: ${systemReason(e)}`);
  let fd: number | undefined;
  try {
    // An output in a folder not made yet (--out dir/model.json) makes it.
    mkdirSync(dirname(path), { recursive: true });
    removeStale(path);
    // "wx": O_CREAT | O_EXCL, which fails on any existing name, a symlink included.
    fd = openSync(tmp, "wx", 0o644);
  } catch (e) {
    throw cannot(e);
  }
  live.add(tmp);
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
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    live.delete(tmp);
    syncDirectory(dirname(path));
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    live.delete(tmp);
    try {
      unlinkSync(tmp);
    } catch {
      // renamed already, or never written
    }
    throw e instanceof UserError || !(e as NodeJS.ErrnoException).code ? e : cannot(e);
  }
}

/** Refuse an output folder that exists (before any work): a model folder is not merged into another. */
export function checkNewFolder(path: string, flag: string): void {
  if (existsSync(path)) throw new UserError(`${flag} ${path} exists: give a new folder`);
}

/**
 * A new folder written whole or not at all: `produce` fills a temporary folder beside `path`, which is
 * renamed into place (or removed, when it throws). `path` must not exist.
 */
export function writeFolderAtomic(path: string, produce: (dir: string) => void): void {
  checkNewFolder(path, "the output");
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(8).toString("hex")}.tmp`);
  try {
    mkdirSync(tmp, { recursive: true });
    produce(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot write ${path}: ${systemReason(e)}`);
  }
}
