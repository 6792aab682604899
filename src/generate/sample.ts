/**
 * Text from a GPT, token by token: temperature and top-k sampling from seeded uniforms (the same seed
 * gives the same text in Node and in a browser), a window that slides when the context is full, and
 * memory bounded by the context, however many tokens are asked for.
 */
import { seededUniform, STREAM } from "../rng/seeded.js";
import type { Decoder } from "./decoder.js";

export interface SampleOptions {
  /** Tokens (bytes, for mcnc's own GPT) to produce. */
  tokens: number;
  /** 0: always the most likely token. */
  temperature: number;
  /** Sample among the k most likely tokens only (0: all). */
  topK: number;
  seed: number;
  /** The token an empty prompt starts from (default: a newline byte, as a document after a paragraph break). */
  start?: number;
}

/** Uniforms drawn at once, per key path [sample, block]. */
const BLOCK = 1024;

/** The token to emit for `logits`, given a uniform `u` in [0, 1). Ties go to the lower id. */
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
 * Tokens continuing `prompt`'s. A prompt longer than the context keeps its last `context` tokens; when
 * the cache is full, generation goes on from the last half of the window (re-prefilled).
 */
export async function* generate(decoder: Decoder, prompt: ArrayLike<number>, o: SampleOptions): AsyncGenerator<number> {
  const T = decoder.context;
  let window = prompt.length > 0 ? Array.from(prompt).slice(Math.max(0, prompt.length - T)) : [o.start ?? 0x0a];
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
