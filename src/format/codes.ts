/**
 * How the .mcnc container stores numbers below 32 bits: integer codes of 1-8 bits packed into one
 * little-endian bit stream, and the per-tensor 8-bit affine codes of `q8` (docs/format.md).
 */

export type CodeBits = 8 | 4 | 3 | 2 | 1;

/** Codes of `bits` bits each (every code below 2^bits), packed into one little-endian bit stream. */
export function packCodes(codes: Uint8Array, bits: CodeBits): Uint8Array {
  if (bits === 8) return codes.slice();
  const out = new Uint8Array(Math.ceil((codes.length * bits) / 8));
  for (let i = 0, bit = 0; i < codes.length; i++, bit += bits) {
    // A 3-bit code may straddle two bytes.
    const v = codes[i]! << (bit & 7);
    out[bit >> 3]! |= v & 0xff;
    if (v > 0xff) out[(bit >> 3) + 1]! |= v >> 8;
  }
  return out;
}

export function unpackCodes(packed: Uint8Array, bits: CodeBits, count: number): Uint8Array {
  if (bits === 8) return packed.slice(0, count);
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(count);
  for (let i = 0, bit = 0; i < count; i++, bit += bits) {
    const at = bit >> 3;
    const word = packed[at]! | ((packed[at + 1] ?? 0) << 8);
    out[i] = (word >> (bit & 7)) & mask;
  }
  return out;
}

/** Min-max affine 8-bit codes for `data`; `dequantize` of them is what a reader gets back. */
export function quantize8(data: Float32Array): { codes: Uint8Array; min: number; step: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (data.length === 0) [lo, hi] = [0, 0];
  const min = Math.fround(lo);
  const step = hi > lo ? Math.fround((hi - lo) / 255) : 0;
  const codes = new Uint8Array(data.length);
  if (step > 0) for (let i = 0; i < data.length; i++) codes[i] = Math.max(0, Math.min(255, Math.round((data[i]! - min) / step)));
  return { codes, min, step };
}

export function dequantize8(codes: Uint8Array, min: number, step: number): Float32Array {
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = min + codes[i]! * step;
  return out;
}
