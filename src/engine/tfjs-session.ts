/**
 * TensorFlow.js graph models that mcnc did not write, run as they are by TF.js itself (tfjs-core with
 * its CPU back end and tfjs-converter's GraphModel, optional peer dependencies): calibration and
 * quality checks on a user's TF.js model go through here. Running the model in its own runtime keeps
 * every op's semantics TF.js's own, where converting the graph to ONNX would have meant re-deriving
 * each TF op (StridedSlice's masks, SparseToDense, ScatterNd, ...) and trusting the copy.
 */
import { UserError } from "../errors.js";
import type { TfjsArtifacts } from "../format/tfjs.js";
import type { Feed, FeedData, ModelSession } from "./model-session.js";

/**
 * The part of TF.js used here, declared here: mcnc's published types must not name packages a user
 * may not have installed.
 */
export interface TfTensor {
  shape: number[];
  dtype: string;
  data(): Promise<Float32Array | Int32Array | Uint8Array>;
  dispose(): void;
}
type Data = Float32Array | Int32Array | Uint8Array;
interface Core {
  tensor(values: Data, shape: number[], dtype: string): TfTensor;
  reshape(x: TfTensor, shape: number[]): TfTensor;
  pad(x: TfTensor, paddings: Array<[number, number]>): TfTensor;
  stridedSlice(x: TfTensor, begin: number[], end: number[], strides: number[]): TfTensor;
  concat(xs: TfTensor[], axis: number): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA: boolean, transposeB: boolean): TfTensor;
  tidy<T extends TfTensor>(f: () => T): T;
  enableProdMode(): void;
  setBackend(name: string): Promise<boolean>;
  io: { fromMemory(artifacts: unknown): unknown };
}
interface GraphModel {
  outputs: Array<{ name: string }>;
  execute(inputs: Record<string, TfTensor>, outputs: string[]): TfTensor | TfTensor[];
  executeAsync(inputs: Record<string, TfTensor>, outputs: string[]): Promise<TfTensor | TfTensor[]>;
  dispose(): void;
}
interface Converter {
  loadGraphModel(handler: unknown): Promise<GraphModel>;
}

let loaded: Promise<{ tf: Core; converter: Converter }> | undefined;

/** tfjs-core on its CPU back end and tfjs-converter, or a one-line reason why `what` cannot run without them. */
export async function loadTfjs(what: string): Promise<{ tf: Core; converter: Converter }> {
  loaded ??= (async () => {
    const tf = (await import("@tensorflow/tfjs-core")) as unknown as Core;
    await import("@tensorflow/tfjs-backend-cpu");
    const converter = (await import("@tensorflow/tfjs-converter")) as unknown as Converter;
    // Before the back end starts: it would print a note recommending tfjs-node.
    tf.enableProdMode();
    await tf.setBackend("cpu");
    return { tf, converter };
  })();
  try {
    return await loaded;
  } catch (e) {
    loaded = undefined;
    throw new UserError(`${what} needs TensorFlow.js (npm install @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 @tensorflow/tfjs-converter@4.22.0): ${oneLine(e)}`);
  }
}

const oneLine = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 2400);

export interface TfjsSession extends ModelSession {
  /** The values named (any node's output, "node" or "node:1"), left in TF.js for the caller to reduce and dispose. */
  tensors(feeds: Record<string, Feed>, fetch: readonly string[]): Promise<TfTensor[]>;
  tf: Core;
}

export async function openTfjsSession(artifacts: TfjsArtifacts, what: string): Promise<TfjsSession> {
  const { tf, converter } = await loadTfjs(what);
  let model: GraphModel;
  try {
    model = await converter.loadGraphModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    throw new UserError(`TF.js cannot load ${what}: ${oneLine(e)}`);
  }
  const outputs = model.outputs.map((o) => o.name);
  // execute() where the graph allows it: executeAsync() on a graph without dynamic ops prints a note each call.
  let dynamic = false;
  const tensors = async (feeds: Record<string, Feed>, fetch: readonly string[]) => {
    const inputs = Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, toTensor(tf, f)]));
    let out: TfTensor[] = [];
    try {
      if (!dynamic) {
        try {
          out = [model.execute(inputs, [...fetch])].flat();
        } catch (e) {
          if (!/executeAsync/.test(String((e as Error)?.message))) throw e;
          dynamic = true;
        }
      }
      if (dynamic) out = [await model.executeAsync(inputs, [...fetch])].flat();
      return out;
    } catch (e) {
      throw new UserError(`TF.js could not run ${what}: ${oneLine(e)}`);
    } finally {
      // An input fetched as a value is the caller's to dispose.
      for (const t of Object.values(inputs)) if (!out.includes(t)) t.dispose();
    }
  };
  return {
    tf,
    tensors,
    async run(feeds, fetch) {
      const names = fetch ?? outputs;
      const out = await tensors(feeds, names);
      const result: Record<string, Feed> = {};
      for (const [i, t] of out.entries()) {
        result[names[i]!] = { type: t.dtype === "bool" ? "bool" : t.dtype === "int32" ? "int32" : "float32", data: (await t.data()) as FeedData, dims: [...t.shape] };
        t.dispose();
      }
      return result;
    },
    close: async () => model.dispose(),
  };
}

function toTensor(tf: Core, f: Feed): TfTensor {
  if (f.type === "float32" || f.type === "float64") return tf.tensor(Float32Array.from(f.data as Float32Array), [...f.dims], "float32");
  if (f.type === "bool") return tf.tensor(Uint8Array.from(f.data as Uint8Array), [...f.dims], "bool");
  // TF.js runs integers as int32 (int64 inputs included).
  return tf.tensor(Int32Array.from(f.data as Int32Array, Number), [...f.dims], "int32");
}
