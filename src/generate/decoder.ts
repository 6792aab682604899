/**
 * The GPT one token at a time with a KV cache: each new token costs one step over cached keys and
 * values, not a pass over the whole window. Prefill and step run the model's own forward function
 * (model/gpt.ts) with a different attention, so they compute what training computes.
 */
import { nn, numpy as np, tree } from "@jax-js/jax";
import { compile, onEngine, put, read, type Tensor } from "../engine/program.js";
import { causalAttention, forward } from "../model/gpt.js";
import type { GptConfig } from "../model/model.js";
import type { Params } from "../model/params.js";

/** Keys and values of every block, `k0`, `v0`, `k1`, ...: [1, context, heads, D] each. */
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

/** A decoder over `params` (a full GPT tree on either engine, which it keeps until disposed). */
export function gptDecoder(c: GptConfig, params: Record<string, Tensor>): Decoder {
  const T = c.context;
  // One compiled prefill: the window padded to the context. Causal attention makes the padding
  // invisible to every real position, and later steps mask it out of the cache.
  const prefill = compile(
    (p: Params, tokens: np.Array) => {
      const cache: Cache = {};
      const logits = forward(c, p, tokens, p["wpe.weight"]!, (q, k, v, l) => {
        cache[`k${l}`] = k.ref;
        cache[`v${l}`] = v.ref;
        return causalAttention(q, k, v);
      });
      return { logits: logits.reshape([T, c.vocab]), cache };
    },
    { name: "gpt prefill" },
  );

  const step = compile((p: Params, cache: Cache, token: np.Array, pos: np.Array) => {
    const at = nn.oneHot(pos.ref, T).astype(p["wpe.weight"]!.dtype);
    const next: Cache = {};
    const keep = at.ref.mul(-1).add(1).reshape([1, T, 1, 1]);
    const put = at.ref.reshape([1, T, 1, 1]);
    const positions = np.matmul(at, p["wpe.weight"]!);
    const logits = forward(c, p, token, positions, (q, k, v, l) => {
      const K = cache[`k${l}`]!.mul(keep.ref).add(k.mul(put.ref));
      const V = cache[`v${l}`]!.mul(keep.ref).add(v.mul(put.ref));
      next[`k${l}`] = K.ref;
      next[`v${l}`] = V.ref;
      return nn.dotProductAttention(q, K, V, { keyValueSeqLengths: pos.ref.add(1) });
    });
    keep.dispose();
    put.dispose();
    pos.dispose();
    return { logits: logits.reshape([c.vocab]), cache: next };
  }, { name: "gpt generation step" });

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
      const padded = new Array<number>(T).fill(0);
      for (let i = 0; i < n; i++) padded[i] = tokens[i]!;
      if (cache) tree.dispose(cache);
      const out = await prefill(tree.ref(await weights()), int32(padded, [1, T]));
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
      return new Float32Array(await read(out.logits));
    },
    dispose() {
      if (cache) tree.dispose(cache);
      cache = null;
      if (onIt) void onIt.then((p) => tree.dispose(p));
      else tree.dispose(params);
    },
  };
}
