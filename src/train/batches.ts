/** Minibatches on the host: a seeded order per epoch, copied into reused buffers. */
import type { Split } from "../data/dataset.js";
import { seededPermutation, STREAM } from "../rng/seeded.js";

export interface HostBatch {
  x: Float32Array;
  /** One-hot labels, [batch, classes]. */
  y: Float32Array;
  size: number;
}

/** The epoch's sample order: a pure function of (seed, epoch), so runs repeat exactly. */
export function epochOrder(seed: number, epoch: number, count: number): Promise<Uint32Array> {
  return seededPermutation(seed, [STREAM.shuffle, epoch], count);
}

/**
 * Full batches in `order` (a final partial batch is dropped, so every step has one shape and one
 * compiled kernel set; the order changes each epoch, so no sample is dropped for good).
 */
export function* batches(split: Split, order: Uint32Array, batch: number, classes: number): Generator<HostBatch> {
  const sample = split.x.length / split.count;
  const x = new Float32Array(batch * sample);
  const y = new Float32Array(batch * classes);
  for (let start = 0; start + batch <= order.length; start += batch) {
    y.fill(0);
    for (let i = 0; i < batch; i++) {
      const s = order[start + i]!;
      x.set(split.x.subarray(s * sample, (s + 1) * sample), i * sample);
      y[i * classes + split.y[s]!] = 1;
    }
    yield { x, y, size: batch };
  }
}
