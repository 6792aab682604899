/**
 * Any ONNX model (through onnxruntime) or TF.js graph model (through TF.js) run on a user's inputs, one
 * sample at a time: each output as class rankings where it is one row of scores, otherwise its shape
 * and range (or its values, when asked for).
 */
import type { ModelInputs } from "../data/model-inputs.js";
import { feedValues, openModelSession, type ModelSession } from "../engine/model-session.js";
import { classScores, topK, type Ranked } from "./top-k.js";

export interface OutputPrediction {
  name: string;
  dims: number[];
  top?: Ranked[];
  /** For one sequence of score rows ([1, positions, classes]): the best class at each position. */
  best?: number[];
  range?: { min: number; max: number; mean: number };
  data?: number[];
}

export interface Prediction {
  /** The sample: its file where it came from one. */
  sample: string;
  outputs: OutputPrediction[];
}

export interface PredictOptions {
  top: number;
  classes?: readonly string[];
  /** Every output's values too. */
  raw?: boolean;
}

/** `model`: the file's bytes or its path (a model with external data needs its path). */
export async function* predictOnnx(model: Uint8Array | string, inputs: ModelInputs, o: PredictOptions): AsyncGenerator<Prediction> {
  yield* predictWith(await openModelSession(model, "the model"), inputs, o);
}

/** Predictions of a model open in its runtime; the session is closed when they end. */
export async function* predictWith(session: ModelSession, inputs: ModelInputs, o: PredictOptions): AsyncGenerator<Prediction> {
  try {
    for (let i = 0; i < inputs.samples; i++) {
      const out = await session.run(inputs.batch(i, i + 1));
      const outputs = Object.entries(out).map(([name, f]): OutputPrediction => {
        const values = f.type === "float16" || f.type === "bool" ? undefined : feedValues(f);
        const dims = [...f.dims];
        if (!values) return { name, dims };
        let [min, max, sum] = [Infinity, -Infinity, 0];
        for (const v of values) [min, max, sum] = [Math.min(min, v), Math.max(max, v), sum + v];
        return {
          name,
          dims,
          ...(classScores(dims) ? { top: topK(values, o.top, o.classes) } : { range: { min, max, mean: sum / Math.max(1, values.length) } }),
          ...(dims.length === 3 && dims[0] === 1 && dims[2]! >= 2 ? { best: argmaxRows(values, dims[2]!) } : {}),
          ...(o.raw ? { data: [...values] } : {}),
        };
      });
      yield { sample: inputs.names?.[i] ?? `sample ${i}`, outputs };
    }
  } finally {
    await session.close();
  }
}

function argmaxRows(values: Float64Array, width: number): number[] {
  return Array.from({ length: values.length / width }, (_, r) => {
    let best = 0;
    for (let k = 1; k < width; k++) if (values[r * width + k]! > values[r * width + best]!) best = k;
    return best;
  });
}
