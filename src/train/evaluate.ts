/** Accuracy of a parameter tree on a split, in fixed-size batches. */
import { numpy as np, tree } from "@jax-js/jax";
import { compile, onEngine, put, read, type Program, type Tensor } from "../engine/program.js";
import type { Split } from "../data/dataset.js";
import type { ImageShape, Model } from "../model/models.js";
import type { Params } from "../model/params.js";

export const EVAL_BATCH = 1000;

export type Predictor = Program<(params: Params, x: np.Array) => np.Array>;

/** The argmax of the model's logits, compiled on the engine; build once per model and reuse. */
export function predictor(model: Model): Predictor {
  return compile((params: Params, x: np.Array) => np.argmax(model.apply(params, x), -1), { name: `${model.name} prediction` });
}

/** Fraction of `split` classified correctly. Does not consume `params`. */
export async function accuracy(predict: Predictor, params: Record<string, Tensor>, split: Split, imageShape: ImageShape, progress?: (done: number) => void): Promise<number> {
  const sample = split.x.length / split.count;
  const onIt = await onEngine(tree.ref(params));
  let correct = 0;
  for (let start = 0; start < split.count; start += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, split.count - start);
    const x = put(split.x.subarray(start * sample, (start + n) * sample), [n, ...imageShape]);
    const pred = await read<Int32Array>(await predict(tree.ref(onIt), x));
    for (let i = 0; i < n; i++) if (pred[i] === split.y[start + i]) correct++;
    progress?.((start + n) / split.count);
  }
  tree.dispose(onIt);
  return correct / split.count;
}
