/**
 * An error caused by what the user gave us (a flag, a file, a directory). The CLI prints its message
 * as one line and exits non-zero; anything else escaping is a bug and is reported as one.
 */
export class UserError extends Error {
  override name = "UserError";
}

const REASONS: Record<string, string> = {
  ENOENT: "no such file or folder",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a folder",
  ENOTDIR: "a part of the path is not a folder",
  ENOSPC: "no space left on the device",
  EEXIST: "a file of that name exists already",
  EROFS: "the file system is read-only",
};

/** Why the system refused a file operation, in words, with its code for searching: "no such file or folder (ENOENT)". */
export function systemReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === undefined ? String((e as Error).message ?? e) : REASONS[code] ? `${REASONS[code]} (${code})` : code;
}
