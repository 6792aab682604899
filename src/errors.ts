/**
 * An error caused by what the user gave us (a flag, a file, a directory). The CLI prints its message
 * as one line and exits non-zero; anything else escaping is a bug and is reported as one.
 */
export class UserError extends Error {
  override name = "UserError";
}
