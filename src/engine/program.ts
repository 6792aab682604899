/**
 * The seam every repeated program goes through (training steps, evaluation, generation, calibration):
 * `compile` takes a pure jax-js function of array trees and returns an async function that runs it on
 * the engine chosen when mcnc started. Nothing above src/engine calls jax-js's `jit` itself.
 *
 * - `wasm`: jax-js's own jit. The reference, the browser's engine, and always the engine of rebuilds
 *   from files, which must give the same bits everywhere.
 * - `native`: the same function traced, lowered to ONNX and run by onnxruntime-node (native.ts).
 *   Its sums differ from Wasm's in the last bits; the parity tests bound by how much.
 *
 * Programs take and give `Tensor`s: jax-js arrays on Wasm, NativeTensors on native. Both follow jax-js's
 * ownership rule (a call consumes its arguments; `.ref` keeps one), which the native engine's
 * host arrays simply ignore.
 */
import { jit, numpy as np, tree, valueAndGrad, type JsTreeDef } from "@jax-js/jax";
import { checkMemory } from "../limits.js";
import { NativeTensor, nativeProgram, toNative, type HostArray, type SessionCost } from "./native.js";
import type { Unlowerable } from "./onnx/lower.js";

export { NativeTensor, type HostArray };

export type EngineName = "wasm" | "native";
export const ENGINE_NAMES: readonly EngineName[] = ["native", "wasm"];

/** What code written for either engine may do with a value. */
export interface Tensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly ref: Tensor;
  dispose(): void;
  data(): Promise<unknown>;
}

/** A jax-js function's arguments and results with every array a Tensor. */
export type Lifted<T> = T extends np.Array ? Tensor : { [K in keyof T]: Lifted<T[K]> };
export type Program<F extends (...args: any[]) => any> = (...args: Lifted<Parameters<F>>) => Promise<Lifted<ReturnType<F>>>;

let engine: EngineName = "wasm";
let nativeThreads = 1;
const costs: SessionCost[] = [];
let note: (line: string) => void = (line) => void (typeof process !== "undefined" ? process.stderr.write(`mcnc: ${line}\n`) : console.warn(`mcnc: ${line}`));

/** Set by initEngine. */
export function useEngine(name: EngineName, threads: number, onNote?: (line: string) => void): void {
  engine = name;
  nativeThreads = threads;
  if (onNote) note = onNote;
}

export const currentEngine = (): EngineName => engine;
/** The native engine's thread count (initEngine's), which other sessions on onnxruntime share. */
export const engineThreads = (): number => nativeThreads;
/** What each native session cost to create: trace, lowering and onnxruntime's own setup, per input shape. */
export const sessionCosts = (): readonly SessionCost[] => costs;

export interface CompileOptions {
  /** Names the program in messages and in sessionCosts. */
  name: string;
  /** This engine rather than the current one (rebuilds from files are always `wasm`). */
  engine?: EngineName;
  /** See NativeOptions.recycle: results valid only until this many more calls (native engine). */
  recycle?: number;
  /** See NativeOptions.outputs: the arrays the native engine writes results into. */
  outputs?: () => HostArray[];
}

/** `fn` compiled on the engine (once per input shape, when first called). */
export function compile<F extends (...args: any[]) => any>(fn: F, options: CompileOptions): Program<F> {
  return compiled(fn, fn, options, false) as Program<F>;
}

/** A scalar loss of a tree (differentiated) and anything else. */
export type Loss = (wrt: any, ...rest: any[]) => np.Array;

/**
 * The value of a scalar `loss` and its gradient with respect to its first argument (a tree of arrays),
 * compiled on the engine: jax-js's valueAndGrad on Wasm; on native, the lowering differentiates.
 */
export function compileGrad<F extends Loss>(loss: F, options: CompileOptions): Program<(...args: Parameters<F>) => [np.Array, Parameters<F>[0]]> {
  const withGrad = (...args: unknown[]) => (valueAndGrad(loss) as (...a: unknown[]) => unknown)(...args);
  return compiled(loss, withGrad, options, true) as Program<(...args: Parameters<F>) => [np.Array, Parameters<F>[0]]>;
}

/** `traced` on native (differentiated when `grad`), `onWasm` on Wasm and where native cannot lower it. */
function compiled(traced: (...args: any[]) => any, onWasm: (...args: any[]) => any, options: CompileOptions, grad: boolean) {
  if ((options.engine ?? engine) !== "native") return wasmProgram(onWasm);
  return nativeProgram(traced, {
    name: options.name,
    threads: nativeThreads,
    checkMemory,
    grad,
    onSession: (cost) => costs.push(cost),
    ...(options.recycle ? { recycle: options.recycle } : {}),
    ...(options.outputs ? { outputs: options.outputs } : {}),
    fallback: (reason: Unlowerable) => {
      note(`the native engine cannot run ${options.name}: ${reason.message}; that program runs on wasm`);
      const run = wasmProgram(onWasm);
      return async (...args: unknown[]) => tree.map((x: np.Array) => nativeOf(x), (await run(...args)) as never) as unknown;
    },
  });
}

/**
 * A rebuild of weights from stored numbers: always jax-js on Wasm, whatever the engine, so a file
 * gives the same bits everywhere; synchronous, as jax-js's own jit (its results are jax-js arrays).
 */
export function rebuildProgram<F extends (...args: any[]) => any>(fn: F): F {
  return jit(fn) as unknown as F;
}

function wasmProgram(fn: (...args: any[]) => any): (...args: unknown[]) => Promise<unknown> {
  const jitted = jit(fn);
  return async (...args: unknown[]) => jitted(...(tree.map((x: unknown) => (x instanceof NativeTensor ? upload(x) : x), args as never) as unknown[]));
}

function upload(x: NativeTensor): np.Array {
  return x.dtype === "bool" ? fromHost(x.values as Float32Array, x.shape).astype(np.bool) : fromHost(x.values as Float32Array | Int32Array, x.shape);
}

/**
 * Host numbers as a jax-js array. An empty array is made with zeros: jax-js's np.array fills a short
 * array whose entries are all equal with its first one, which an empty array does not have.
 */
export function fromHost(data: Float32Array | Int32Array, shape: readonly number[]): np.Array {
  const dtype = data instanceof Int32Array ? { dtype: np.int32 } : {};
  return data.length === 0 ? np.zeros([...shape], dtype) : np.array(data, dtype).reshape([...shape]);
}

/** A Wasm result as a NativeTensor (read synchronously: this is the slow path of an unlowerable program). */
function nativeOf(x: np.Array): NativeTensor {
  return new NativeTensor([...x.shape], x.dtype as NativeTensor["dtype"], x.dataSync() as HostArray);
}

/**
 * A tree's values on the engine `on` (default the current one): jax-js arrays are read out for the
 * native engine, native tensors copied into Wasm for the other. Consumes what it moves.
 */
export async function onEngine<T>(values: T, on: EngineName = engine): Promise<T> {
  const [leaves, def] = tree.flatten(values as never) as unknown as [unknown[], JsTreeDef];
  const moved = await Promise.all(leaves.map(async (x) => (on === "native" ? (x instanceof NativeTensor ? x : await toNative(x as np.Array)) : x instanceof NativeTensor ? upload(x) : x)));
  return tree.unflatten(def, moved) as T;
}

/** Waits until a tree's values are computed (jax-js runs work lazily; native values always are). */
export async function settle<T>(values: T): Promise<T> {
  await Promise.all((tree.leaves(values as never) as unknown[]).map((x) => (x instanceof NativeTensor ? x : (x as np.Array).blockUntilReady())));
  return values;
}

/** Host numbers as a Tensor of the engine (`on`, default the current one). Native tensors share `data`: do not change it while in use. */
export function put(data: Float32Array | Int32Array, shape: readonly number[], on: EngineName = engine): Tensor {
  if (on === "native") return new NativeTensor([...shape], data instanceof Int32Array ? "int32" : "float32", data);
  return fromHost(data, shape);
}

/** A scalar float Tensor. */
export const scalar = (value: number, on: EngineName = engine): Tensor => put(Float32Array.of(value), [], on);

/** Host parameters as Tensors, shaped by `specs`. */
export function putAll(specs: ReadonlyArray<{ name: string; shape: readonly number[] }>, host: Record<string, Float32Array>, on: EngineName = engine): Record<string, Tensor> {
  return Object.fromEntries(specs.map((s) => [s.name, put(host[s.name]!, s.shape, on)]));
}

/** A Tensor's numbers on the host (consumes it). */
export async function read<T extends Float32Array | Int32Array = Float32Array>(x: Tensor): Promise<T> {
  return (await x.data()) as T;
}

/** Every Tensor of a tree, read to the host by name (consumes them). */
export async function readAll(values: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(values)) out[name] = await read(v);
  return out;
}
