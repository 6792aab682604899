/** Accuracy of a parameter tree on a split, in fixed-size batches. */
import { jit, numpy as np, tree } from "@jax-js/jax";
import type { Split } from "../data/dataset.js";
import type { ImageShape, Model } from "../model/models.js";
import type { Params } from "../model/params.js";

export const EVAL_BATCH = 1000;

export type Predictor = (params: Params, x: np.Array) => np.Array;

/** A jitted argmax of the model's logits; build once per model and reuse. */
export function predictor(model: Model): Predictor {
  return jit((params: Params, x: np.Array) => np.argmax(model.apply(params, x), -1)) as unknown as Predictor;
}

/** Fraction of `split` classified correctly. Does not consume `params`. */
export async function accuracy(predict: Predictor, params: Params, split: Split, imageShape: ImageShape): Promise<number> {
  const sample = split.x.length / split.count;
  let correct = 0;
  for (let start = 0; start < split.count; start += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, split.count - start);
    const x = np.array(split.x.subarray(start * sample, (start + n) * sample)).reshape([n, ...imageShape]);
    const pred = (await predict(tree.ref(params), x).data()) as Int32Array;
    for (let i = 0; i < n; i++) if (pred[i] === split.y[start + i]) correct++;
  }
  return correct / split.count;
}
