/**
 * Text from a GPT, byte by byte: temperature and top-k sampling from seeded uniforms (the same seed
 * gives the same text in Node and in a browser), a window that slides when the context is full, and
 * memory bounded by the context, however many tokens are asked for.
 */
import { seededUniform, STREAM } from "../rng/seeded.js";
import type { Decoder } from "./decoder.js";

export interface SampleOptions {
  /** Tokens (bytes) to produce. */
  tokens: number;
  /** 0: always the most likely byte. */
  temperature: number;
  /** Sample among the k most likely bytes only (0: all). */
  topK: number;
  seed: number;
}

/** Uniforms drawn at once, per key path [sample, block]. */
const BLOCK = 1024;
/** A prompt that is empty starts from a newline, as a document does after a paragraph break. */
const START = 0x0a;

/** The byte to emit for `logits`, given a uniform `u` in [0, 1). Ties go to the lower byte. */
export function pick(logits: Float32Array, temperature: number, topK: number, u: number): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  let order = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) order = order.sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, topK).sort((a, b) => a - b);
  const weights = order.map((i) => Math.exp((logits[i]! - logits[best]!) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let j = 0; j < order.length; j++) {
    acc += weights[j]! / total;
    if (u < acc) return order[j]!;
  }
  return order[order.length - 1]!;
}

/**
 * Bytes continuing `prompt`. A prompt longer than the context keeps its last `context` bytes; when
 * the cache is full, generation goes on from the last half of the window (re-prefilled).
 */
export async function* generate(decoder: Decoder, prompt: Uint8Array, o: SampleOptions): AsyncGenerator<number> {
  const T = decoder.context;
  let window = Array.from(prompt.length > 0 ? prompt.subarray(Math.max(0, prompt.length - T)) : [START]);
  let logits = await decoder.prefill(window);
  let uniforms: Float32Array = new Float32Array(0);
  for (let i = 0; i < o.tokens; i++) {
    if (i % BLOCK === 0) uniforms = await seededUniform(o.seed, [STREAM.sample, i / BLOCK], BLOCK, 0, 1);
    const token = pick(logits, o.temperature, o.topK, uniforms[i % BLOCK]!);
    yield token;
    if (i + 1 === o.tokens) break;
    window.push(token);
    if (decoder.position < T) {
      logits = await decoder.step(token);
    } else {
      window = window.slice(window.length - Math.max(1, Math.floor(T / 2)));
      logits = await decoder.prefill(window);
    }
    if (window.length > T) window = window.slice(window.length - T);
  }
}
