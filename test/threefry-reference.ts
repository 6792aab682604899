/**
 * An independent, plain-JS threefry2x32 (Salmon et al. 2011, 20 rounds, as in JAX), used only by the
 * tests to show that the words behind every stored model are standard threefry, derived by JAX's
 * partitionable rules, and not an accident of the engine's current version.
 */
const ROTATIONS = [13, 15, 26, 6, 17, 29, 16, 24];

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

export function threefry2x32(key: readonly [number, number], x: readonly [number, number]): [number, number] {
  const ks = [key[0] >>> 0, key[1] >>> 0, (key[0] ^ key[1] ^ 0x1bd11bda) >>> 0];
  let x0 = (x[0] + ks[0]!) >>> 0;
  let x1 = (x[1] + ks[1]!) >>> 0;
  for (let block = 0; block < 5; block++) {
    const rot = block % 2 === 0 ? ROTATIONS.slice(0, 4) : ROTATIONS.slice(4);
    for (const r of rot) {
      x0 = (x0 + x1) >>> 0;
      x1 = rotl(x1, r) ^ x0;
    }
    x0 = (x0 + ks[(block + 1) % 3]!) >>> 0;
    x1 = (x1 + ks[(block + 2) % 3]! + block + 1) >>> 0;
  }
  return [x0, x1];
}

/** JAX's key(seed) for a 32-bit seed. */
export function refKey(seed: number): [number, number] {
  return [0, seed >>> 0];
}

/** JAX's partitionable split: child i is threefry(key, (0, i)). */
export function refSplit(key: [number, number], index: number): [number, number] {
  return threefry2x32(key, [0, index]);
}

/** JAX's partitionable 32-bit bits: word i is the xor of threefry(key, (0, i)). */
export function refBits(key: [number, number], n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const [a, b] = threefry2x32(key, [0, i]);
    out[i] = (a ^ b) >>> 0;
  }
  return out;
}
