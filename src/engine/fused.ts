/**
 * Operations the native engine runs whole, each with its backward written by hand (onnx/rules/):
 * layer norm, GELU, causal attention, cross-entropy, 3x3 convolution, 2x2 max pooling (alone or after
 * a ReLU), softmax, a KV-cache write, MCNC's rows scaled on the sphere. Lowered primitive by primitive
 * they would be tens of small elementwise nodes, which onnxruntime runs one pass at a time.
 *
 * A model writes each of them once, as a plain jax-js function, and wraps it here. On Wasm the
 * function runs as written, so those programs are exactly what they were. While the native engine
 * traces a program, the function is called as a jit named `mcnc_<name>`, which stays one equation in
 * the traced program; the lowering finds it by name, and its own differentiation (onnx/backward.ts)
 * uses the rule's backward. The parity tests hold each rule to its function.
 */
import { jit, type numpy as np } from "@jax-js/jax";

export type FusedName = "layer_norm" | "gelu" | "causal_attention" | "cross_entropy" | "conv3x3" | "max_pool2" | "relu_max_pool2" | "softmax" | "cache_write" | "sphere_scale";

let tracing = 0;

/** Runs `trace` with the fused operations marked, for the native engine's lowering. */
export function markingFused<T>(trace: () => T): T {
  tracing++;
  try {
    return trace();
  } finally {
    tracing--;
  }
}

export function fused<F extends (...args: np.Array[]) => np.Array>(name: FusedName, body: F): F {
  const named = { [`mcnc_${name}`]: (...args: np.Array[]) => body(...args) }[`mcnc_${name}`]!;
  const marked = jit(named) as unknown as F;
  return ((...args: np.Array[]) => (tracing > 0 ? marked(...args) : body(...args))) as F;
}
