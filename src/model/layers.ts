/**
 * Layers as plain functions of arrays. Each consumes its array arguments (jax-js ownership rules).
 * Images are NHWC and kernels HWIO, so a 3x3 convolution is one im2col matmul: on the Wasm backend
 * that is 20-30x faster than lax.conv (docs/results.md).
 */
import { nn, numpy as np } from "@jax-js/jax";
import { fused } from "../engine/fused.js";
import { causalAttention } from "./attention.js";
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

/**
 * The outputs, and the zero padding before and after, of one axis of a convolution: 'same' as TF and
 * PyTorch split it (the odd one after), 'valid' none. TF.js calibration cuts a Conv2D's patches by it too.
 */
export function convPadding(size: number, k: number, stride: number, same: boolean, dilation = 1): { out: number; before: number; after: number } {
  const span = (k - 1) * dilation + 1;
  const out = same ? Math.ceil(size / stride) : Math.floor((size - span) / stride) + 1;
  const pad = same ? Math.max(0, (out - 1) * stride + span - size) : 0;
  return { out, before: Math.floor(pad / 2), after: pad - Math.floor(pad / 2) };
}

/** convPadding, with enough after for every tap's strided run of `out * stride` to be sliced whole. */
function convAxis(size: number, k: number, stride: number, same: boolean): { out: number; before: number; after: number } {
  const { out, before, after } = convPadding(size, k, stride, same);
  return { out, before, after: after + Math.max(0, k - 1 + out * stride - (size + before + after)) };
}

/** The output side of a convolution along one axis. */
export const convOutput = (size: number, k: number, stride: number, same: boolean) => convPadding(size, k, stride, same).out;

/**
 * Every `stride`-th of `count` entries along `axis` of x, from `start`: a slice of count * stride,
 * reshaped so that the stride is its own axis, and its first entry taken (jax-js slices without steps).
 */
function strided(x: np.Array, axis: number, start: number, count: number, stride: number): np.Array {
  const run = x.slice(...x.shape.map((_, i): [] | [number, number] => (i === axis ? [start, start + count * stride] : [])));
  if (stride === 1) return run;
  const shape = [...run.shape];
  shape.splice(axis, 1, count, stride);
  return run.reshape(shape).slice(...shape.map((_, i): [] | number => (i === axis + 1 ? 0 : [])));
}

/**
 * A k x k convolution with stride and 'same' or 'valid' zero padding, as one im2col matmul. x:
 * [B,H,W,C], w: [k,k,C,O], b: [O] or none. The patches are built in two stages (the k column runs,
 * then the k row runs of those), as conv3x3's are; a tap sees them as rows [B*H'*W', k*k*C].
 */
export function conv(x: np.Array, w: np.Array, b: np.Array | undefined, stride: number, same: boolean, tap?: RowsTap): np.Array {
  const [batch, h, wd, c] = x.shape as [number, number, number, number];
  const [k, , , out] = w.shape as [number, number, number, number];
  const [y, z] = [convAxis(h, k, stride, same), convAxis(wd, k, stride, same)];
  const padded = np.pad(x, [[0, 0], [y.before, y.after], [z.before, z.after], [0, 0]]);
  const cols = np.concatenate(Array.from({ length: k }, (_, j) => strided(padded.ref, 2, j, z.out, stride)), 3);
  padded.dispose();
  const patches = np.concatenate(Array.from({ length: k }, (_, i) => strided(cols.ref, 1, i, y.out, stride)), 3).reshape([batch * y.out * z.out, k * k * c]);
  cols.dispose();
  tap?.(patches.ref);
  const product = np.matmul(patches, w.reshape([k * k * c, out]));
  return (b ? product.add(b) : product).reshape([batch, y.out, z.out, out]);
}

/**
 * Group normalisation (eps 1e-5): the last axis's C channels in `groups` groups, each normalised over
 * its channels and every position; then scaled and shifted per channel. With one group over features,
 * a LayerNorm. Consumes its arguments.
 */
export function groupNorm(x: np.Array, gain: np.Array, bias: np.Array, groups: number): np.Array {
  const shape = x.shape;
  const c = shape.at(-1)!;
  const grouped = x.reshape([shape[0]!, -1, groups, c / groups]);
  const centred = grouped.ref.sub(grouped.mean([1, 3], { keepdims: true }));
  const variance = centred.ref.mul(centred.ref).mean([1, 3], { keepdims: true });
  return centred.div(np.sqrt(variance.add(1e-5))).reshape(shape).mul(gain).add(bias);
}

/** A dense layer on the last axis of features [B, F] or a sequence [B, T, F]. */
export function denseLast(x: np.Array, w: np.Array, b: np.Array, tap?: RowsTap): np.Array {
  if (x.shape.length === 2) return dense(x, w, b, tap);
  const [batch, t, f] = x.shape as [number, number, number];
  return dense(x.reshape([batch * t, f]), w, b, tap).reshape([batch, t, w.shape[1]!]);
}

/** The mean over an image's positions or a sequence's tokens: [B,H,W,C] or [B,T,C] to [B,C]. */
export const meanPool = (x: np.Array): np.Array => x.mean(x.shape.length === 4 ? [1, 2] : [1]);

/**
 * Multi-head self-attention over x [B, T, C]: q|k|v from one projection (GPT-2's c_attn layout, [C,
 * 3C]), softmax(q k^T / sqrt(D)) v per head, then the output projection. Causal: a position sees only
 * itself and those before (the language models' fused rule); else every position. Consumes x.
 */
export function selfAttention(x: np.Array, qkvW: np.Array, qkvB: np.Array, projW: np.Array, projB: np.Array, heads: number, isCausal: boolean, tap?: (leaf: "qkv" | "proj", rows: np.Array) => void): np.Array {
  const [batch, t, c] = x.shape as [number, number, number];
  const d = c / heads;
  const qkv = dense(x.reshape([batch * t, c]), qkvW, qkvB, tap && ((rows) => tap("qkv", rows))).reshape([batch, t, 3, heads, d]);
  const part = (i: number) => qkv.ref.slice([], [], i).reshape([batch, t, heads, d]);
  const [q, k, v] = [part(0), part(1), part(2)];
  qkv.dispose();
  const y = isCausal ? causalAttention(q, k, v) : nn.dotProductAttention(q, k, v);
  return dense(y.reshape([batch * t, c]), projW, projB, tap && ((rows) => tap("proj", rows))).reshape([batch, t, c]);
}
