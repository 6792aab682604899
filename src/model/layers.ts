/**
 * Layers as plain functions of arrays. Each consumes its array arguments (jax-js ownership rules).
 * Images are NHWC and kernels HWIO, so a 3x3 convolution is one im2col matmul: on the Wasm backend
 * that is 20-30x faster than lax.conv (docs/results.md).
 */
import { nn, numpy as np } from "@jax-js/jax";
import { fused } from "../engine/fused.js";
import type { LeafTap } from "./model.js";

/** Sees the rows [N, in] a weight matrix multiplies (calibration for post-training methods); consumes them. */
export type RowsTap = (rows: np.Array) => void;

/** A model's tap narrowed to one leaf's rows. */
export function tapOf(tap: LeafTap | undefined, leaf: string): RowsTap | undefined {
  return tap && ((rows) => tap(leaf, rows));
}

export function dense(x: np.Array, w: np.Array, b: np.Array, tap?: RowsTap): np.Array {
  tap?.(x.ref);
  return np.matmul(x, w).add(b);
}

/**
 * Input channels below which a convolution is a sum of per-tap, per-channel broadcast products rather
 * than im2col: with 1-3 channels the im2col columns are too narrow for jax-js's matmul, whose kernel
 * gradient then cost 90-470 ms at LeNet's first layer against 10-33 ms this way (bench/probes.ts conv-first).
 */
const FEW_CHANNELS = 4;

/**
 * 3x3 convolution, stride 1, zero 'same' padding. x: [B,H,W,C], w: [3,3,C,O], b: [O]. The native
 * engine runs it as one ONNX Conv (engine/fused.ts); a tap sees the im2col rows.
 */
export function conv3x3(x: np.Array, w: np.Array, b: np.Array, tap?: RowsTap): np.Array {
  return tap ? conv3x3Rows(x, w, b, tap) : fusedConv3x3(x, w, b);
}

const fusedConv3x3 = fused("conv3x3", (x: np.Array, w: np.Array, b: np.Array) => conv3x3Rows(x, w, b));

function conv3x3Rows(x: np.Array, w: np.Array, b: np.Array, tap?: RowsTap): np.Array {
  const [batch, h, wd, c] = x.shape as [number, number, number, number];
  const out = w.shape[3]!;
  const padded = np.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  if (c < FEW_CHANNELS && !tap) {
    let y: np.Array | null = null;
    for (let dy = 0; dy < 3; dy++) {
      for (let dx = 0; dx < 3; dx++) {
        for (let ch = 0; ch < c; ch++) {
          const term = padded.ref.slice([], [dy, dy + h], [dx, dx + wd], [ch, ch + 1]).mul(w.ref.slice(dy, dx, ch).reshape([1, 1, 1, out]));
          y = y ? y.add(term) : term;
        }
      }
    }
    padded.dispose();
    w.dispose();
    return y!.add(b);
  }
  // Tap-major then channel, the order of the HWIO kernel flattened to [9C, O], built in two stages (the
  // three column shifts, then the three row shifts of those): jax-js concatenates as a sum of padded
  // views, so each stage costs a term per piece, and 3 + 3 terms beat 9 (bench/probes.ts conv).
  const rows = np.concatenate([0, 1, 2].map((dx) => padded.ref.slice([], [], [dx, dx + wd], [])), 3);
  padded.dispose();
  const cols = np.concatenate([0, 1, 2].map((dy) => rows.ref.slice([], [dy, dy + h], [], [])), 3).reshape([batch * h * wd, 9 * c]);
  rows.dispose();
  return dense(cols, w.reshape([9 * c, out]), b, tap).reshape([batch, h, wd, out]);
}

/** 2x2 max pooling, stride 2. */
export const maxPool2 = fused("max_pool2", (x: np.Array): np.Array => {
  const [batch, h, w, c] = x.shape as [number, number, number, number];
  return x.reshape([batch, h / 2, 2, w / 2, 2, c]).max([2, 4]);
});

export const relu = nn.relu;

/** ReLU then 2x2 max pooling, one operation for the native engine (engine/fused.ts). */
export const reluMaxPool2 = fused("relu_max_pool2", (x: np.Array): np.Array => maxPool2(relu(x)));

/** GELU, tanh form (jax-js's default, GPT-2's). */
export const gelu = fused("gelu", (x: np.Array) => nn.gelu(x));

/** LayerNorm over the last axis (eps 1e-5, as GPT-2). Consumes its arguments. */
export const layerNorm = fused("layer_norm", (x: np.Array, gain: np.Array, bias: np.Array): np.Array => {
  const centred = x.ref.sub(x.mean(-1, { keepdims: true }));
  const variance = centred.ref.mul(centred.ref).mean(-1, { keepdims: true });
  return centred.div(np.sqrt(variance.add(1e-5))).mul(gain).add(bias);
});

/**
 * Rows of `n` zeros with a one at each of `indices` (float32), by comparison with 0..n-1: jax-js's
 * nn.oneHot slices an n x n identity, 10 GB for GPT-2's 50,257 tokens. Consumes `indices`.
 */
export function oneHot(indices: np.Array, n: number): np.Array {
  const shape = indices.shape;
  return np.equal(indices.reshape([...shape, 1]), np.arange(n).reshape([...shape.map(() => 1), n])).astype(np.float32);
}
