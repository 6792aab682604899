/**
 * The memory a piece of work may take, checked before anything is allocated: a file's header, a
 * flag set or a data set's header says how much it implies (generator and basis sizes, weights to
 * rebuild, images to hold), and anything above the limit is refused in one line naming both numbers.
 * A small file must not cost gigabytes, whatever it claims.
 */
import { UserError } from "./errors.js";

const MiB = 2 ** 20;

/**
 * 2 GiB by default: half of the 4 GiB a Wasm engine can address at all, and well under a laptop's
 * memory. `--max-memory MiB` (or setMemoryLimit) raises or lowers it.
 */
export const DEFAULT_MEMORY_LIMIT = 2048 * MiB;

let limit = DEFAULT_MEMORY_LIMIT;

export function setMemoryLimit(bytes: number): void {
  if (!(Number.isFinite(bytes) && bytes >= MiB)) throw new UserError(`the memory limit must be at least 1 MiB, got ${String(bytes)} bytes`);
  limit = bytes;
}

export const memoryLimit = (): number => limit;

const mib = (bytes: number) => (bytes >= 10 * MiB ? Math.round(bytes / MiB).toLocaleString("en-US") : (bytes / MiB).toFixed(1));

/** Refuse `what` if it needs more than the limit. */
export function checkMemory(bytes: number, what: string, max = limit): void {
  // An estimate that is not a number is a bug in the estimate, never a message with NaN in it.
  if (Number.isNaN(bytes)) throw new Error(`the memory estimate for ${what} is not a number`);
  if (!(bytes <= max)) throw new UserError(`${what} needs about ${mib(bytes)} MiB, above the limit of ${mib(max)} MiB (raise it with --max-memory MIB)`);
}

