/** Survivor positions as a Golomb-Rice code of the gaps between them (the `positions` tensor of a prune file). */
import { UserError } from "../../errors.js";

/** Bits of the Rice parameter at the head of a position stream. */
const RICE_K_BITS = 5;

/** Gaps between survivors: the number of pruned weights before each one. */
function gapsOf(keep: Uint8Array): number[] {
  const gaps: number[] = [];
  let gap = 0;
  for (const k of keep) {
    if (k) {
      gaps.push(gap);
      gap = 0;
    } else gap++;
  }
  return gaps;
}

/**
 * Survivor positions as a Golomb-Rice code of their gaps (a bit each): k in 5 bits, then per gap
 * g = q 2^k + r, q ones, a zero and r's k bits (low first). Near the entropy of randomly placed
 * survivors: about log2(mean gap) + 1.5 bits each.
 */
export function riceEncode(keep: Uint8Array): Uint8Array {
  const gaps = gapsOf(keep);
  let best = 0;
  let bestBits = Infinity;
  for (let k = 0; k < 2 ** RICE_K_BITS; k++) {
    const bits = gaps.reduce((n, g) => n + Math.floor(g / 2 ** k) + 1 + k, RICE_K_BITS);
    if (bits < bestBits) [best, bestBits] = [k, bits];
  }
  const out = new Uint8Array(bestBits);
  let at = 0;
  for (let b = 0; b < RICE_K_BITS; b++) out[at++] = (best >> b) & 1;
  for (const g of gaps) {
    for (let q = Math.floor(g / 2 ** best); q > 0; q--) out[at++] = 1;
    out[at++] = 0;
    const r = g % 2 ** best;
    for (let b = 0; b < best; b++) out[at++] = Math.floor(r / 2 ** b) % 2;
  }
  return out;
}

/** The positions of `count` survivors in a leaf of `size`; the stream must hold exactly them. */
export function riceDecode(bits: Uint8Array, count: number, size: number): Uint32Array {
  let at = 0;
  const read = () => {
    if (at >= bits.length) throw new UserError("position stream ends early");
    return bits[at++]!;
  };
  let k = 0;
  for (let b = 0; b < RICE_K_BITS; b++) k |= read() << b;
  const out = new Uint32Array(count);
  let position = -1;
  for (let i = 0; i < count; i++) {
    let q = 0;
    while (read() === 1) if (++q > size) throw new UserError("position stream holds a gap longer than the leaf");
    let r = 0;
    for (let b = 0; b < k; b++) r += read() * 2 ** b;
    position += q * 2 ** k + r + 1;
    if (position >= size) throw new UserError(`a position runs past the end of the leaf (${size} weights)`);
    out[i] = position;
  }
  if (at !== bits.length) throw new UserError(`position stream has ${bits.length - at} bits left over`);
  return out;
}
