/**
 * A causal language model one token at a time with a KV cache: each new token costs one step over
 * cached keys and values, not a pass over the whole window. Prefill and step run the model's own forward
 * function (its CausalLm) with a different attention, so they compute what training computes.
 */
import { nn, numpy as np, tree } from "@jax-js/jax";
import { fused } from "../engine/fused.js";
import { compile, onEngine, put, read, type Tensor } from "../engine/program.js";
import { causal } from "../model/attention.js";
import { gpt } from "../model/gpt.js";
import { oneHot } from "../model/layers.js";
import type { CausalLm, GptConfig } from "../model/model.js";
import type { Params } from "../model/params.js";

/**
 * Keys and values of every block, `k0`, `v0`, `k1`, ...: [1, kvHeads, context, D] each, heads first, so
 * a step's attention reads them as they lie (no transpose of the whole cache per token).
 */
type Cache = Record<string, np.Array>;
type EngineCache = Record<string, Tensor>;

export interface Decoder {
  readonly context: number;
  /** Positions filled: the next token goes here. */
  readonly position: number;
  /** Start over with `tokens` (1 to context of them) at positions 0..n-1; the logits after the last. */
  prefill(tokens: ArrayLike<number>): Promise<Float32Array>;
  /** One token at the next position (which must be below the context); the logits after it. */
  step(token: number): Promise<Float32Array>;
  dispose(): void;
}

/** The softmax of attention scores over the last axis. */
const softmax = fused("softmax", (x: np.Array) => nn.softmax(x, -1));

/** `cache` [1, heads, T, D] with `row` [1, heads, 1, D] written at the position the one-hot `at` [T] marks. */
const cacheWrite = fused("cache_write", (cache: np.Array, row: np.Array, at: np.Array) => {
  const T = at.shape[0]!;
  return cache.mul(at.ref.mul(-1).add(1).reshape([1, 1, T, 1])).add(row.mul(at.reshape([1, 1, T, 1])));
});

/** A decoder over `params` (a full GPT tree on either engine, which it keeps until disposed). */
export function gptDecoder(c: GptConfig, params: Record<string, Tensor>): Decoder {
  return languageDecoder(gpt(c).lm!, params);
}

/** A decoder of the language model `c` over `params` (its full tree on either engine, kept until disposed). */
export function languageDecoder(c: CausalLm, params: Record<string, Tensor>): Decoder {
  const T = c.context;
  // The prompt padded to a power of two (at least 16, at most the context): one compiled prefill per
  // length, and a short prompt costs a short pass, not one over the whole window. Causal attention makes
  // the padding invisible to every real position; the cache is padded on to the context, and later steps
  // mask out what is not yet written.
  const prefill = compile(
    (p: Params, tokens: np.Array) => {
      const P = tokens.shape[1]!;
      const cache: Cache = {};
      const cached = (x: np.Array) => np.pad(x.transpose([0, 2, 1, 3]), [[0, 0], [0, 0], [0, T - P], [0, 0]]);
      const logits = c.forward(p, tokens, null, (q, k, v, l) => {
        cache[`k${l}`] = cached(k.ref);
        cache[`v${l}`] = cached(v.ref);
        return causal(q, k, v, l);
      });
      return { logits: logits.reshape([P, c.vocab]), cache };
    },
    { name: "decoder prefill" },
  );

  const D = c.headDim;
  const step = compile(
    (p: Params, cache: Cache, token: np.Array, pos: np.Array) => {
      const at = oneHot(pos.ref, T);
      const next: Cache = {};
      // Positions after this one are not yet written: -inf before the softmax.
      const unwritten = np.where(np.arange(T).less(pos.add(1)), 0, -Infinity);
      const logits = c.forward(p, token, at.ref, (q, k, v, l) => {
        const K = cacheWrite(cache[`k${l}`]!, k.transpose([0, 2, 1, 3]), at.ref.reshape([T]));
        const V = cacheWrite(cache[`v${l}`]!, v.transpose([0, 2, 1, 3]), at.ref.reshape([T]));
        next[`k${l}`] = K.ref;
        next[`v${l}`] = V.ref;
        // Query heads in groups, one group per cached key/value head: [1, kvHeads, heads / kvHeads, D]
        // (this block's: a pruned GPT's blocks keep different heads).
        const heads = q.shape[2]!;
        const kvHeads = K.shape[1]!;
        const grouped = q.reshape([1, kvHeads, heads / kvHeads, D]).mul(1 / Math.sqrt(D));
        const scores = np.matmul(grouped, K.transpose([0, 1, 3, 2])).add(unwritten.ref);
        return np.matmul(softmax(scores), V).reshape([1, 1, heads, D]);
      });
      at.dispose();
      unwritten.dispose();
      return { logits: logits.reshape([c.vocab]), cache: next };
    },
    // Each step's cache is the next step's input; the logits are copied out at once.
    { name: "decoder step", recycle: 2 },
  );

  let cache: EngineCache | null = null;
  let position = 0;
  // The parameters move to the engine once, at the first call.
  let onIt: Promise<Record<string, Tensor>> | null = null;
  const weights = () => (onIt ??= onEngine(params));
  const int32 = (values: number[], shape: number[]) => put(new Int32Array(values), shape);
  return {
    context: T,
    get position() {
      return position;
    },
    async prefill(tokens) {
      const n = tokens.length;
      if (n < 1 || n > T) throw new RangeError(`prefill takes 1 to ${T} tokens, got ${n}`);
      const P = Math.min(T, Math.max(16, 2 ** Math.ceil(Math.log2(n))));
      const padded = new Array<number>(P).fill(0);
      for (let i = 0; i < n; i++) padded[i] = tokens[i]!;
      if (cache) tree.dispose(cache);
      const out = await prefill(tree.ref(await weights()), int32(padded, [1, P]));
      cache = out.cache;
      position = n;
      const all = await read(out.logits);
      return all.slice((n - 1) * c.vocab, n * c.vocab);
    },
    async step(token) {
      if (!cache) throw new Error("step before prefill");
      if (position >= T) throw new RangeError(`the cache holds ${T} positions; prefill a shorter window to go on`);
      const out = await step(tree.ref(await weights()), cache, int32([token], [1, 1]), int32([position], [1]));
      cache = out.cache;
      position++;
      return read(out.logits);
    },
    dispose() {
      if (cache) tree.dispose(cache);
      cache = null;
      if (onIt) void onIt.then((p) => tree.dispose(p));
      else tree.dispose(params);
    },
  };
}
