/**
 * Causal self-attention as the language models call it: queries [B, T, heads, D] over keys and values
 * [B, T, kvHeads, D]. With fewer key/value heads (grouped-query attention, LLaMA's), each serves
 * heads / kvHeads consecutive query heads, as transformers' repeat_kv has it.
 */
import { nn, numpy as np } from "@jax-js/jax";
import { fused } from "../engine/fused.js";

/**
 * Attention of queries over keys and values for block `layer`: causal over the window in training, or
 * over a cache of earlier positions when generating.
 */
export type Attend = (q: np.Array, k: np.Array, v: np.Array, layer: number) => np.Array;

/** Heads to heads: the native engine's rule (onnx/rules/transformer.ts) takes as many key heads as query heads. */
export const causalAttention = fused("causal_attention", (q: np.Array, k: np.Array, v: np.Array) => nn.dotProductAttention(q, k, v, { isCausal: true }));

/** Each of k's heads (axis 2) repeated to `heads`. Consumes k. */
function repeatHeads(k: np.Array, heads: number): np.Array {
  const kvHeads = k.shape[2]!;
  return kvHeads === heads ? k : np.repeat(k, heads / kvHeads, 2);
}

export const causal: Attend = (q, k, v) => {
  const heads = q.shape[2]!;
  return causalAttention(q, repeatHeads(k, heads), repeatHeads(v, heads));
};
