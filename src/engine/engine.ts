/**
 * The one place that starts the tensor engine. Everything else imports arrays from `@jax-js/jax`
 * and assumes `initEngine` has run.
 */
import "./preload.js";
import { init, defaultDevice } from "@jax-js/jax";
import { forbidRelaxedSimd } from "./deterministic-wasm.js";
import { loadNative } from "./native.js";
import { workerShimThreads } from "./node-gaps.js";
import { ENGINE_NAMES, useEngine, type EngineName } from "./program.js";

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
  /**
   * Same bits on every runtime (default true): no fused multiply-add from relaxed SIMD, so a file
   * rebuilds to identical weights in Node and in any browser. Must be chosen before the first kernel.
   */
  deterministic?: boolean;
  /**
   * Where repeated programs run (program.ts): `native` (onnxruntime-node, Node only) or `wasm`.
   * Default: MCNC_ENGINE, else native where onnxruntime-node loads, else wasm with one line saying so.
   */
  engine?: EngineName;
  /** Where the engine's one-line notes go (default: stderr). */
  onNote?: (line: string) => void;
}

/** Worker threads one process may ask for. */
export const MAX_THREADS = 64;

let started: { threads: number; engine: EngineName } | null = null;

export function resolveThreads(requested?: number): number {
  const fromEnv = onNode() ? process.env.MCNC_THREADS : undefined;
  const t = requested ?? (fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : DEFAULT_THREADS);
  if (!Number.isInteger(t) || t < 1 || t > MAX_THREADS) {
    throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${String(requested ?? fromEnv)}`);
  }
  return t;
}

/**
 * Start the Wasm backend once per process. On Node the thread count is fixed when jax-js loads
 * (preload.ts reads MCNC_THREADS), so asking for another count afterwards is an error, not a no-op.
 */
export async function initEngine(options: EngineOptions = {}): Promise<{ threads: number; engine: EngineName }> {
  const threads = resolveThreads(options.threads);
  const available = onNode() ? workerShimThreads() : threads;
  if (threads !== available) {
    throw new RangeError(`the engine was loaded with ${available} thread(s); set MCNC_THREADS=${threads} before mcnc is imported`);
  }
  const requested = resolveEngine(options.engine);
  if (started && (requested === undefined || requested === started.engine)) return started;
  if (!started) {
    if (options.deterministic ?? true) forbidRelaxedSimd();
    // A bare init() probes WebGPU, which throws on Node 20.
    await init("wasm");
    defaultDevice("wasm");
  }
  const engine = await startEngine(requested, options.onNote);
  useEngine(engine, threads, options.onNote);
  started = { threads, engine };
  return started;
}

/** The engine asked for: the option, else MCNC_ENGINE, else undefined (the default). */
export function resolveEngine(requested?: string): EngineName | undefined {
  const fromEnv = onNode() ? process.env.MCNC_ENGINE : undefined;
  const name = requested ?? (fromEnv === "" ? undefined : fromEnv);
  if (name !== undefined && !ENGINE_NAMES.includes(name as EngineName)) throw new RangeError(`the engine must be ${ENGINE_NAMES.join(" or ")}, got ${String(name).slice(0, 40)}`);
  return name as EngineName | undefined;
}

/** Native where asked for or by default on Node, if onnxruntime-node loads; else wasm, said in one line. */
async function startEngine(requested: EngineName | undefined, onNote?: (line: string) => void): Promise<EngineName> {
  if (requested === "wasm" || (!onNode() && requested === undefined)) return "wasm";
  const say = onNote ?? ((line: string) => void process.stderr.write(`mcnc: ${line}\n`));
  if (!onNode()) {
    say("the native engine runs only on Node; using wasm");
    return "wasm";
  }
  const loaded = await loadNative();
  if (loaded.ok) return "native";
  say(requested === "native" ? `the native engine cannot start: ${loaded.reason}; using wasm` : `${loaded.reason}; using the wasm engine (install onnxruntime-node for native speed)`);
  return "wasm";
}

function onNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}
