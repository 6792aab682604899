/**
 * The engine's gaps on Node 20, filled in one place and only where missing, so a newer Node or a
 * browser runs jax-js untouched.
 *
 * - `Float16Array` / `Math.f16round`: jax-js tests `instanceof Float16Array` on every typed array it
 *   receives, which throws a ReferenceError where the class does not exist. We never use float16, so a
 *   class that exists (and refuses to be built) is enough; `f16round` is exact, since it is cheap.
 * - Iterator helpers (`iterator.map`, `.filter`): jax-js's einsum parser (used by its attention) maps
 *   over `String.prototype.matchAll`; Node 20's iterators have no such methods. Lazy generators with the
 *   standard's meaning, installed on the shared iterator prototype only where absent.
 * - `Worker`: jax-js runs its Wasm threads as Web Workers built from a Blob URL, which Node cannot load.
 *   `installWorkerShim` maps such a Worker onto `worker_threads` with the same message protocol.
 */
import type { Worker as NodeWorker } from "node:worker_threads";

type Global = typeof globalThis & Record<string, unknown>;
const g = globalThis as Global;

export function fillNodeGaps(): void {
  if (typeof g.Float16Array === "undefined") {
    g.Float16Array = class Float16ArrayUnavailable {
      constructor() {
        throw new Error("float16 arrays need Node 22 or newer; mcnc stores float32");
      }
    };
  }
  const math = Math as unknown as Record<string, unknown>;
  if (typeof math.f16round !== "function") math.f16round = f16round;
  fillIteratorHelpers();
}

function fillIteratorHelpers(): void {
  const proto = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as Record<string, unknown>;
  const define = (name: string, fn: (this: Iterator<unknown>, f: (v: unknown, i: number) => unknown) => Generator<unknown>) => {
    if (typeof proto[name] !== "function") Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true });
  };
  define("map", function* (f) {
    let i = 0;
    for (let r = this.next(); !r.done; r = this.next()) yield f(r.value, i++);
  });
  define("filter", function* (f) {
    let i = 0;
    for (let r = this.next(); !r.done; r = this.next()) if (f(r.value, i++)) yield r.value;
  });
}

/** Round a number to the nearest IEEE half-precision value (ties to even). */
export function f16round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  // Below 2^-14 the spacing is fixed at 2^-24 (subnormals); above, 10 mantissa bits.
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const ulp = 2 ** (e - 10);
  let q = a / ulp;
  const f = Math.floor(q);
  const r = q - f;
  q = r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.sign(x) * q * ulp;
}

const WORKER_PRELUDE = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
globalThis.postMessage = (m) => parentPort.postMessage(m);
parentPort.on("message", (data) => globalThis.self.onmessage({ data }));
`;

let shimThreads = 1;

/** Threads the worker shim gives jax-js (1: no shim, kernels run on the calling thread). */
export function workerShimThreads(): number {
  return shimThreads;
}

/**
 * Make jax-js's Wasm worker pool work on Node with `threads` workers. Must run before jax-js is
 * evaluated: it builds its Wasm backend, shared memory and worker pool at import time.
 */
export function installWorkerShim(threads: number): void {
  if (shimThreads > 1 || typeof g.Worker !== "undefined" || typeof SharedArrayBuffer === "undefined") return;
  // Looked up at run time (Node 20.16+), so that no bundle for the browser ever sees node:worker_threads.
  const workerThreads = process.getBuiltinModule?.("node:worker_threads") as typeof import("node:worker_threads") | undefined;
  if (!workerThreads) return;
  const NodeWorkerClass = workerThreads.Worker;
  shimThreads = threads;
  const blobs = new Map<string, Blob>();
  const createObjectURL = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj: Blob) => {
    const url = createObjectURL(obj);
    blobs.set(url, obj);
    return url;
  };

  class NodeBackedWorker {
    onmessage: ((e: { data: unknown }) => void) | null = null;
    onerror: ((e: { message: string }) => void) | null = null;
    #worker: NodeWorker | null = null;
    #pending: unknown[] = [];
    #terminated = false;
    #awaiting = 0;

    constructor(url: string | URL) {
      const blob = blobs.get(String(url));
      if (!blob) throw new Error(`mcnc worker shim: unknown worker script ${String(url)}`);
      void blob.text().then((source) => {
        if (this.#terminated) return;
        const worker: NodeWorker = new NodeWorkerClass(WORKER_PRELUDE + source, { eval: true });
        worker.on("message", (data: unknown) => {
          // Every message jax-js posts is answered once; an idle worker must not keep a finished
          // process alive, but a busy one must (or Node exits with work still in flight).
          if (--this.#awaiting === 0) worker.unref();
          this.onmessage?.({ data });
        });
        worker.on("error", (err: Error) => this.onerror?.({ message: err.message }));
        this.#worker = worker;
        for (const m of this.#pending) worker.postMessage(m);
        this.#pending = [];
        if (this.#awaiting === 0) worker.unref();
      });
    }

    postMessage(message: unknown): void {
      this.#awaiting++;
      this.#worker?.ref();
      if (this.#worker) this.#worker.postMessage(message);
      else this.#pending.push(message);
    }

    terminate(): void {
      this.#terminated = true;
      void this.#worker?.terminate();
    }
  }

  g.Worker = NodeBackedWorker;
  // jax-js sizes its pool from navigator.hardwareConcurrency (Node 20 has no navigator).
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  Object.defineProperty(g, "navigator", {
    value: new Proxy(nav, {
      get: (target, prop) => (prop === "hardwareConcurrency" ? threads : Reflect.get(target, prop)),
    }),
    configurable: true,
    writable: true,
  });
}
