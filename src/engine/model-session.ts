/**
 * Models that mcnc did not write, run as they are by onnxruntime-node: calibration, quality checks
 * and `mcnc predict` on a user's ONNX model go through here, on the engine's thread count.
 */
import { UserError } from "../errors.js";
import { loadNative, nativeRuntime, type OrtSession } from "./native.js";
import { engineThreads } from "./program.js";

/** Element types a feed or a result may have, by onnxruntime's names. */
export type FeedType = "float32" | "float64" | "int64" | "int32" | "uint8" | "int8" | "bool" | "float16";
export type FeedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Uint16Array;

export interface Feed {
  type: FeedType;
  data: FeedData;
  dims: readonly number[];
}

export interface ModelSession {
  /** Runs the model; `fetch` names the outputs wanted (all by default). */
  run(feeds: Record<string, Feed>, fetch?: readonly string[]): Promise<Record<string, Feed>>;
  close(): Promise<void>;
}

/** onnxruntime-node, or a one-line reason why `what` cannot run without it. */
async function runtime(what: string) {
  const loaded = await loadNative();
  if (!loaded.ok) throw new UserError(`${what} needs onnxruntime-node (npm install onnxruntime-node): ${loaded.reason}`);
  return nativeRuntime()!;
}

/** `model`: the file's bytes, or its path (which a model with external data needs, to find them). */
export async function openModelSession(model: Uint8Array | string, what: string): Promise<ModelSession> {
  const ort = await runtime(what);
  let session: OrtSession & { inputNames?: readonly string[] };
  try {
    const options = { intraOpNumThreads: engineThreads(), interOpNumThreads: 1, graphOptimizationLevel: "all", logSeverityLevel: 3 } as const;
    session = await ort.InferenceSession.create(model, options);
  } catch (e) {
    throw new UserError(`onnxruntime cannot load ${what}: ${oneLine(e)}`);
  }
  return {
    async run(feeds, fetch) {
      const inputs = Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, new ort.Tensor(f.type, f.data as never, f.dims)]));
      let out: Record<string, { data: unknown; dims: readonly number[]; type?: string }>;
      try {
        out = fetch ? await (session.run as unknown as (f: unknown, names: readonly string[]) => Promise<typeof out>)(inputs, fetch) : await session.run(inputs);
      } catch (e) {
        throw new UserError(`onnxruntime could not run ${what}: ${oneLine(e)}`);
      }
      return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, { type: (t.type ?? "float32") as FeedType, data: t.data as FeedData, dims: [...t.dims] }]));
    },
    close: () => session.release(),
  };
}

const oneLine = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 2400);

/** A result's values as float64, whatever its element type. */
export function feedValues(f: Feed): Float64Array {
  if (f.type === "float16") throw new UserError("a float16 result cannot be compared here");
  const out = new Float64Array(f.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(f.data[i]!);
  return out;
}
