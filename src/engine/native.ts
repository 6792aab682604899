/**
 * The native back end: a program traced by jax-js, lowered to ONNX (onnx/lower.ts) and run by
 * onnxruntime-node on the CPU. onnxruntime-node is optional: it is loaded on demand, and where it
 * cannot load the engine says so in one line and stays on Wasm.
 *
 * Values live on the host as NativeTensors (typed arrays), so a training step's parameters and Adam
 * moments go in and come out without a copy through Wasm memory.
 */
import { makeJaxpr, tree, type numpy as np, type JsTreeDef } from "@jax-js/jax";
import { markingFused } from "./fused.js";
import { FUSED_RULES } from "./onnx/rules/index.js";
import { Graph } from "./onnx/graph.js";
import { lower, Unlowerable, type Lowered } from "./onnx/lower.js";
import type { ElementType } from "./onnx/proto.js";

export type HostArray = Float32Array | Int32Array | Uint8Array;

/**
 * A value of the native engine. It carries what jax-js reads of an abstract value (shape, dtype,
 * weakType), so a program can be traced from these alone, and the few methods of jax-js's arrays the
 * callers use (`ref`, `dispose`, `data`), so code written for either engine reads the same.
 */
export class NativeTensor {
  readonly weakType = false;
  constructor(
    readonly shape: number[],
    readonly dtype: ElementType,
    readonly values: HostArray,
  ) {}
  get ref(): this {
    return this;
  }
  dispose(): void {}
  /** A copy, as jax-js gives: the engine may write into `values` again (recycled buffers, Adam in place). */
  async data(): Promise<HostArray> {
    return this.values.slice();
  }
  get size(): number {
    return this.values.length;
  }
}

// The few parts of onnxruntime-node's API the engine uses; its own types stay out of mcnc's.
interface OrtTensor {
  data: HostArray | BigInt64Array;
  dims: readonly number[];
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  Tensor: new (type: string, data: HostArray | BigInt64Array | Uint16Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array | string, options: Record<string, unknown>): Promise<OrtSession> };
}

let ort: Ort | null = null;
let failure: string | null = null;
export const nativeRuntime = (): Ort | null => ort; // once loaded: model-session.ts runs other tools' models on it

/** Loads onnxruntime-node once; null and the reason where it cannot be loaded. */
export async function loadNative(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (ort) return { ok: true };
  if (failure) return { ok: false, reason: failure };
  try {
    // A name in a variable: bundlers leave the import alone, so a web page's bundle never pulls it in.
    const name = "onnxruntime-node";
    const module = (await import(name)) as { default?: Ort } & Ort;
    const loaded = module.default ?? module;
    // A tiny session proves the native library itself loads, not only its JavaScript.
    await loaded.InferenceSession.create(identityModel(), { logSeverityLevel: 3 });
    ort = loaded;
    return { ok: true };
  } catch (e) {
    failure = e instanceof Error && /Cannot find (module|package)/.test(e.message) ? "onnxruntime-node is not installed" : `onnxruntime-node did not load (${String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 200)})`;
    return { ok: false, reason: failure };
  }
}

/** A model of one Identity node on a float scalar. */
function identityModel(): Uint8Array {
  const g = new Graph();
  g.output("y", g.input("x", { shape: [], dtype: "float32" }));
  return g.encode();
}

export interface SessionCost {
  program: string;
  /** Seconds to trace, lower and create the session. */
  trace: number;
  lower: number;
  session: number;
  nodes: number;
  peakBytes: number;
}

interface Compiled {
  session: OrtSession;
  lowered: Lowered;
  outTree: JsTreeDef;
  /** Output buffers used in turn (NativeOptions.recycle), and whose turn is next. */
  buffers: Array<{ tensors: NativeTensor[]; fetches: Record<string, OrtTensor> }>;
  turn: number;
}

export interface NativeOptions {
  name: string;
  threads: number;
  /** Checked against the graph's tensors before a session is made (throws to refuse). */
  checkMemory(bytes: number, what: string): void;
  /** Where a program cannot be lowered: what runs instead. */
  fallback(reason: Unlowerable): (...args: unknown[]) => Promise<unknown>;
  onSession?(cost: SessionCost): void;
  /**
   * Write results into this many sets of buffers in turn instead of fresh arrays each call (V8 zeroes
   * and collects every large new array: a generation step's KV cache, every token). A result then
   * stays valid until `recycle` more calls, so only a loop that feeds each call's results to the next
   * and copies what it keeps may ask for it.
   */
  recycle?: number;
  /**
   * Arrays, one per output in order, that every call writes its results into (as `recycle: 1`, with
   * the caller's arrays): where results must land in memory the caller lays out.
   */
  outputs?: () => HostArray[];
  /**
   * `fn` is a scalar loss: the program gives it and its gradient with respect to the first argument
   * (a tree), differentiated by the lowering (onnx/backward.ts).
   */
  grad?: boolean;
}

type HostLeaf = NativeTensor | np.Array;

const allocate = (dtype: ElementType, n: number): HostArray => (dtype === "float32" ? new Float32Array(n) : dtype === "int32" ? new Int32Array(n) : new Uint8Array(n));

/**
 * The leaves of a tree of arguments, in jax-js's order (arrays by index, plain objects by their keys'
 * order, anything else a leaf), pushed onto `leaves`; returns a key of the tree's structure and the
 * leaves' types and shapes. jax-js's own flatten and treedef string cost 26 us for a GPT's 26 weights.
 */
function signature(node: unknown, leaves: HostLeaf[]): string {
  if (Array.isArray(node)) return `[${node.map((c) => signature(c, leaves)).join(",")}]`;
  if (typeof node === "object" && node !== null && node.constructor === Object) {
    let s = "{";
    for (const k in node as Record<string, unknown>) s += `${k}:${signature((node as Record<string, unknown>)[k], leaves)},`;
    return `${s}}`;
  }
  const x = node as HostLeaf;
  leaves.push(x);
  return `${x.dtype}[${x.shape}]`;
}

/** A tree shaped as `like` with its leaves replaced, in order, by `leaves`. */
function unflattenLike(like: unknown, leaves: readonly unknown[], at = { i: 0 }): unknown {
  if (Array.isArray(like)) return like.map((c) => unflattenLike(c, leaves, at));
  if (typeof like === "object" && like !== null && like.constructor === Object) return Object.fromEntries(Object.entries(like).map(([k, v]) => [k, unflattenLike(v, leaves, at)]));
  return leaves[at.i++];
}

/** A tensor of the native engine from a jax-js array (consumed) or a native one. */
export async function toNative(x: HostLeaf): Promise<NativeTensor> {
  if (x instanceof NativeTensor) return x;
  const dtype = x.dtype as ElementType;
  const shape = [...x.shape];
  return new NativeTensor(shape, dtype, (await x.data()) as HostArray);
}

/**
 * `fn` compiled for onnxruntime, once per input shape: the returned function takes trees of
 * NativeTensors (jax-js arrays are copied in) and resolves to a tree of NativeTensors.
 */
export function nativeProgram(fn: (...args: any[]) => any, options: NativeOptions): (...args: unknown[]) => Promise<unknown> {
  const compiled = new Map<string, Promise<Compiled | Unlowerable>>();
  let fallen: ((...args: unknown[]) => Promise<unknown>) | null = null;

  const compile = async (args: unknown[]): Promise<Compiled | Unlowerable> => {
    const t0 = performance.now();
    const traced = markingFused(() => makeJaxpr(fn)(...args));
    const { jaxpr } = traced;
    // A gradient program gives [loss, gradient shaped as the first argument].
    const [wrtLeaves] = tree.flatten(args[0] as never);
    const treedef = options.grad ? tree.flatten([0, args[0]] as never)[1] : traced.treedef;
    const t1 = performance.now();
    let lowered: Lowered;
    try {
      const consts = await Promise.all(jaxpr.consts.map(async (c) => (await (c as unknown as np.Array).ref.data()) as HostArray));
      lowered = lower(jaxpr, consts, FUSED_RULES, options.grad ? { wrt: wrtLeaves.length } : {});
    } catch (e) {
      if (e instanceof Unlowerable) return e;
      throw e;
    } finally {
      jaxpr.dispose();
    }
    const t2 = performance.now();
    options.checkMemory(lowered.peakBytes, `the native engine's ${options.name} program`);
    let session: OrtSession;
    try {
      session = await ort!.InferenceSession.create(lowered.bytes, {
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: "all",
        logSeverityLevel: 3,
      });
    } catch (e) {
      // A graph onnxruntime will not load is never retried: the program runs on Wasm.
      return new Unlowerable("", "", `onnxruntime refused its graph (${String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 160)})`);
    }
    const t3 = performance.now();
    options.onSession?.({ program: options.name, trace: (t1 - t0) / 1000, lower: (t2 - t1) / 1000, session: (t3 - t2) / 1000, nodes: lowered.stats.nodes, peakBytes: lowered.peakBytes });
    const given = options.outputs?.();
    const buffers = Array.from({ length: given ? 1 : (options.recycle ?? 0) }, () => {
      const tensors = lowered.outputs.map((o, i) => new NativeTensor([...o.shape], o.dtype, given?.[i] ?? allocate(o.dtype, o.shape.reduce((a, b) => a * b, 1))));
      const fetches = Object.fromEntries(lowered.outputs.map((o, i) => [o.name, new ort!.Tensor(o.dtype, tensors[i]!.values, o.shape)]));
      return { tensors, fetches };
    });
    return { session, lowered, outTree: treedef, buffers, turn: 0 };
  };

  return async (...args: unknown[]) => {
    if (fallen) return fallen(...args);
    const leaves: HostLeaf[] = [];
    const key = signature(args, leaves);
    // Tensors already native need no await (a generation step passes tens of them each token).
    const inputs = leaves.every((x) => x instanceof NativeTensor) ? (leaves as NativeTensor[]) : await Promise.all(leaves.map(toNative));
    let entry = compiled.get(key);
    if (!entry) {
      const [, inTree] = tree.flatten(args as never) as unknown as [HostLeaf[], JsTreeDef];
      entry = compile(tree.unflatten(inTree, inputs) as unknown[]);
      compiled.set(key, entry);
    }
    const c = await entry;
    if (c instanceof Unlowerable) {
      fallen = options.fallback(c);
      return fallen(...(unflattenLike(args, inputs) as unknown[]));
    }
    const feeds: Record<string, OrtTensor> = {};
    c.lowered.inputs.forEach((spec, i) => (feeds[spec.name] = new ort!.Tensor(spec.dtype, inputs[i]!.values, spec.shape)));
    if (c.buffers.length) {
      const set = c.buffers[c.turn++ % c.buffers.length]!;
      await c.session.run(feeds, set.fetches);
      return tree.unflatten(c.outTree, set.tensors);
    }
    const result = await c.session.run(feeds);
    const outs = c.lowered.outputs.map((spec) => new NativeTensor([...spec.shape], spec.dtype, result[spec.name]!.data as HostArray));
    return tree.unflatten(c.outTree, outs);
  };
}
