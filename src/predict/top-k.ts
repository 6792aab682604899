/** Scores to the few best classes: a model's raw outputs as a person reads them. */

export interface Ranked {
  class: number;
  name?: string;
  /** A probability: the output itself where it already is a distribution, its softmax otherwise. */
  p: number;
}

/** The `k` best of `scores`, named by `classes` where given. */
export function topK(scores: ArrayLike<number>, k: number, classes?: readonly string[]): Ranked[] {
  const n = scores.length;
  let sum = 0;
  let distribution = true;
  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (!(s >= 0 && s <= 1)) distribution = false;
    sum += s;
  }
  if (Math.abs(sum - 1) > 1e-3) distribution = false;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, scores[i]!);
  let total = 0;
  const p = Float64Array.from({ length: n }, (_, i) => (distribution ? scores[i]! : Math.exp(scores[i]! - max)));
  for (let i = 0; i < n; i++) total += p[i]!;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b]! - p[a]!);
  return order.slice(0, Math.min(k, n)).map((i) => ({ class: i, ...(classes?.[i] !== undefined ? { name: classes[i] } : {}), p: p[i]! / total }));
}

/** Whether an output of these dims is one row of class scores per sample. */
export const classScores = (dims: readonly number[]): boolean => dims.length >= 1 && dims.length <= 2 && (dims.length === 1 || dims[0] === 1) && dims.at(-1)! >= 2;
