/**
 * The frozen sine generator phi: R^k -> S^{d-1}. Its weights are regenerated from the seed, never
 * stored, so how they are drawn is part of the file format (docs/format.md) and pinned by tests.
 */
import { numpy as np } from "@jax-js/jax";
import { seededUniform, STREAM } from "../../rng/seeded.js";

/** Layer widths k -> hidden... -> d. */
export function generatorDims(k: number, hidden: readonly number[], d: number): number[] {
  return [k, ...hidden, d];
}

/**
 * Layer i's weights: uniform on (-b, b) at key path [generator, i], drawn row-major [in, out].
 * The first layer has b = 1/k and is scaled by L in the forward pass, so L alone sets the frequency
 * (SIREN's first-layer rule, as in the paper and the PyTorch peer); later layers have
 * b = sqrt(6 / in), which keeps sine pre-activations of order one at any width. The output scale is
 * irrelevant: rows are normalised onto the sphere.
 */
export function layerBound(layer: number, fanIn: number): number {
  return layer === 0 ? 1 / fanIn : Math.sqrt(6 / fanIn);
}

export async function generatorWeights(seed: number, dims: readonly number[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i + 1 < dims.length; i++) {
    const b = layerBound(i, dims[i]!);
    out.push(await seededUniform(seed, [STREAM.generator, i], dims[i]! * dims[i + 1]!, -b, b));
  }
  return out;
}

/**
 * Layer `i` of `depth`: sin(L x W0) first, sin(x Wi) hidden, x W linear last. Consumes x and w.
 * The generator is phi(alpha) = onSphere(layer_{depth-1}(... layer_0(alpha))).
 */
export function generatorLayer(x: np.Array, w: np.Array, i: number, depth: number, L: number): np.Array {
  const z = np.matmul(x, w);
  if (i === depth - 1) return z;
  return np.sin(i === 0 ? z.mul(L) : z);
}

/** Rows scaled to unit length. The tiny floor keeps an (measure-zero) all-zero row finite. */
export function onSphere(h: np.Array): np.Array {
  const norm = np.sqrt(h.ref.mul(h.ref).sum(-1, { keepdims: true }).add(1e-30));
  return h.div(norm);
}

/** phi: [rows, k] latents -> [rows, d] unit rows. Consumes its arguments. */
export function generate(latents: np.Array, weights: np.Array[], L: number): np.Array {
  let h = latents;
  weights.forEach((w, i) => (h = generatorLayer(h, w, i, weights.length, L)));
  return onSphere(h);
}

/** FLOPs of one generator pass over `rows` latents (matmuls, sines, normalisation). */
export function generatorFlops(rows: number, dims: readonly number[]): number {
  let flops = 0;
  for (let i = 0; i + 1 < dims.length; i++) {
    flops += 2 * rows * dims[i]! * dims[i + 1]!;
    if (i + 2 < dims.length) flops += rows * dims[i + 1]!; // one sine per hidden unit
  }
  return flops + 3 * rows * dims[dims.length - 1]!;
}
