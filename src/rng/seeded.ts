/**
 * Seeded random numbers that are part of the file format. Every generator weight, initial weight and
 * minibatch order is a function of (seed, stream path) alone, through jax-js's threefry2x32 (integer
 * arithmetic: identical on every platform and backend). Bits become floats here, in plain JS, by an
 * exact rule, so no backend's float unit is involved: changing anything in this file changes every
 * stored model, and test vectors in test/rng.test.ts pin it.
 */
import { random, numpy as np } from "@jax-js/jax";

export const RNG_ALGORITHM = "threefry2x32";

/**
 * Top-level streams under `key(seed)`. A path [s, i, ...] means `split(split(key(seed))[s])[i]...`;
 * with JAX's partitionable threefry, child i of a split does not depend on how many were split.
 * Never renumber: the numbers are in stored files.
 */
export const STREAM = { generator: 0, init: 1, latent: 2, shuffle: 3, split: 4, sample: 5, dropout: 6 } as const;

export type KeyPath = readonly number[];

export const MAX_SEED = 2 ** 31 - 1;

export function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new RangeError(`seed must be an integer from 0 to ${MAX_SEED}, got ${seed}`);
  }
  return seed;
}

function keyAt(seed: number, path: KeyPath): np.Array {
  let key = random.key(checkSeed(seed));
  for (const index of path) {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`bad key path step ${index}`);
    key = random.split(key, index + 1).slice(index);
  }
  return key;
}

/** `size` raw threefry2x32 words (JAX `random.bits`) at `path` under `seed`. */
export async function seededBits(seed: number, path: KeyPath, size: number): Promise<Uint32Array> {
  if (size === 0) return new Uint32Array(0);
  const bits = random.bits(keyAt(seed, path), [size]);
  return new Uint32Array((await bits.data()) as Uint32Array);
}

const TWO_POW_24 = 2 ** 24;

/**
 * Uniform floats in [lo, hi): the top 24 bits of each word give u = b / 2^24, exact in float32; the
 * value is `fround(lo + (hi - lo) * u)` computed in float64, which IEEE makes the same everywhere.
 */
export async function seededUniform(
  seed: number,
  path: KeyPath,
  size: number,
  lo: number,
  hi: number,
): Promise<Float32Array> {
  const bits = await seededBits(seed, path, size);
  const out = new Float32Array(size);
  const span = hi - lo;
  for (let i = 0; i < size; i++) out[i] = lo + span * ((bits[i]! >>> 8) / TWO_POW_24);
  return out;
}

/** A permutation of 0..n-1 (Fisher-Yates over threefry words; bias below 2^-32 * n). */
export async function seededPermutation(seed: number, path: KeyPath, n: number): Promise<Uint32Array> {
  const bits = await seededBits(seed, path, n);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor((bits[i]! / 2 ** 32) * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}
