/**
 * The one place that starts the tensor engine. Everything else imports arrays from `@jax-js/jax`
 * and assumes `initEngine` has run.
 */
import { init, defaultDevice } from "@jax-js/jax";

/**
 * Default Wasm threads. Measured on the 2-core CI machine (docs/results.md, `npm run bench`): two
 * worker threads speed big matmuls (rebuilding 10M weights) but slow the small, many-kernel training
 * steps this library runs most, because each kernel dispatch becomes a round trip between threads.
 * One thread (no workers: kernels run on the calling thread) is the better default; `--threads`
 * or `MCNC_THREADS` opts in.
 */
export const DEFAULT_THREADS = 1;

export interface EngineOptions {
  /** Wasm threads; 1 runs every kernel on the calling thread. */
  threads?: number;
}

let started: { threads: number } | null = null;

export function resolveThreads(requested?: number): number {
  const fromEnv = onNode() ? process.env.MCNC_THREADS : undefined;
  const t = requested ?? (fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : DEFAULT_THREADS);
  if (!Number.isInteger(t) || t < 1 || t > 64) {
    throw new RangeError(`threads must be an integer from 1 to 64, got ${String(requested ?? fromEnv)}`);
  }
  return t;
}

/** Start the Wasm backend once per process; later calls must agree on the thread count. */
export async function initEngine(options: EngineOptions = {}): Promise<{ threads: number }> {
  const threads = resolveThreads(options.threads);
  if (started) {
    if (options.threads !== undefined && started.threads !== threads) {
      throw new Error(`engine already started with ${started.threads} thread(s); cannot switch to ${threads}`);
    }
    return started;
  }
  if (onNode()) {
    // Loaded only on Node, so a browser bundle never sees node:worker_threads.
    const gaps = await import("./node-gaps.js");
    gaps.fillNodeGaps();
    if (threads > 1) gaps.installWorkerShim(threads);
  }
  // A bare init() probes WebGPU, which throws on Node 20.
  await init("wasm");
  defaultDevice("wasm");
  started = { threads };
  return started;
}

function onNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}
