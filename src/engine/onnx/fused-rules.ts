/**
 * ONNX for the engine's fused operations (engine/fused.ts): each forward as one of onnxruntime's
 * whole operators where one exists, each backward as the short chain of nodes the derivative needs.
 * The inference build of onnxruntime-node has no gradient operators, so backward passes are written
 * here from MatMul, Conv, ConvTranspose and elementwise nodes.
 */
import type { FusedRule, Operand } from "./fused-rule.js";
import type { Graph } from "./graph.js";

const f32 = (shape: readonly number[]) => ({ shape: [...shape], dtype: "float32" as const });
const permute = (shape: readonly number[], perm: readonly number[]) => perm.map((p) => shape[p]!);
/** All axes but the last: the rows a per-feature parameter's gradient sums over. */
const leading = (shape: readonly number[]) => shape.slice(0, -1).map((_, i) => i);

function transpose(g: Graph, x: Operand, perm: number[]): Operand {
  const shape = permute(x.shape, perm);
  return { name: g.op("Transpose", [x.name], f32(shape), { perm }), shape };
}

/** GPT-2's LayerNorm over the last axis, eps 1e-5: inputs x, gain, bias. */
const layerNorm: FusedRule = {
  inputs: 3,
  outputs: 1,
  outShapes: ([x]) => [[...x!]],
  forward(g, [x, gain, bias]) {
    const stat = [...x!.shape.slice(0, -1), 1];
    const [y, mean, inv] = g.ops("LayerNormalization", [x!.name, gain!.name, bias!.name], [f32(x!.shape), f32(stat), f32(stat)], { axis: -1, epsilon: { float: 1e-5 } });
    return { outs: [y!], saved: { mean: mean!, inv: inv! } };
  },
  backward(g, [x, gain], fwd, [dy], needed) {
    const shape = x!.shape;
    const stat = [...shape.slice(0, -1), 1];
    const rows = g.ints(leading(shape));
    const xhat = g.op("Mul", [g.op("Sub", [x!.name, fwd.saved.mean!], f32(shape)), fwd.saved.inv!], f32(shape));
    const C = shape.at(-1)!;
    const dgain = needed[1] ? g.op("ReduceSum", [g.op("Mul", [dy!, xhat], f32(shape)), rows], f32([C]), { keepdims: 0 }) : null;
    const dbias = needed[2] ? g.op("ReduceSum", [dy!, rows], f32([C]), { keepdims: 0 }) : null;
    if (!needed[0]) return [null, dgain, dbias];
    const last = g.ints([-1]);
    const dxhat = g.op("Mul", [dy!, gain!.name], f32(shape));
    const meanD = g.op("ReduceMean", [dxhat, last], f32(stat), { keepdims: 1 });
    const meanDX = g.op("ReduceMean", [g.op("Mul", [dxhat, xhat], f32(shape)), last], f32(stat), { keepdims: 1 });
    const centred = g.op("Sub", [g.op("Sub", [dxhat, meanD], f32(shape)), g.op("Mul", [xhat, meanDX], f32(shape))], f32(shape));
    return [g.op("Mul", [centred, fwd.saved.inv!], f32(shape)), dgain, dbias];
  },
};

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
const gelu: FusedRule = {
  inputs: 1,
  outputs: 1,
  outShapes: ([x]) => [[...x!]],
  forward: (g, [x]) => ({ outs: [g.op("Gelu", [x!.name], f32(x!.shape), { approximate: "tanh" })], saved: {} }),
  backward(g, [x], _fwd, [dy]) {
    // d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) u', t = tanh(u), u = c (x + a x^3), u' = c (1 + 3 a x^2).
    const s = f32(x!.shape);
    const k = (v: number) => g.scalar("float32", v);
    const xx = g.op("Mul", [x!.name, x!.name], s);
    const u = g.op("Mul", [x!.name, g.op("Add", [g.op("Mul", [xx, k(SQRT_2_OVER_PI * GELU_CUBIC)], s), k(SQRT_2_OVER_PI)], s)], s);
    const t = g.op("Tanh", [u], s);
    const half = g.op("Add", [g.op("Mul", [t, k(0.5)], s), k(0.5)], s);
    const slope = g.op("Add", [g.op("Mul", [xx, k(1.5 * SQRT_2_OVER_PI * GELU_CUBIC)], s), k(0.5 * SQRT_2_OVER_PI)], s);
    const sech2 = g.op("Sub", [k(1), g.op("Mul", [t, t], s)], s);
    const d = g.op("Add", [half, g.op("Mul", [g.op("Mul", [x!.name, sech2], s), slope], s)], s);
    return [g.op("Mul", [dy!, d], s)];
  },
};

/**
 * Causal softmax attention of q over k and v, each [B, T, heads, D] (jax-js's dotProductAttention with
 * isCausal), as two batched MatMuls around one Softmax; the backward recomputes nothing.
 */
const causalAttention: FusedRule = {
  inputs: 3,
  outputs: 1,
  outShapes: ([q]) => [[...q!]],
  forward(g, [q, k, v]) {
    const [B, T, H, D] = q!.shape as [number, number, number, number];
    const heads = [0, 2, 1, 3];
    const scaled = { name: g.op("Mul", [q!.name, g.scalar("float32", 1 / Math.sqrt(D))], f32(q!.shape)), shape: q!.shape };
    const qh = transpose(g, scaled, heads);
    const kh = transpose(g, k!, heads);
    const vh = transpose(g, v!, heads);
    const kt = transpose(g, kh, [0, 1, 3, 2]);
    const scores = f32([B, H, T, T]);
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -Infinity;
    const s = g.op("Add", [g.op("MatMul", [qh.name, kt.name], scores), g.constant("float32", [T, T], mask)], scores);
    const p = g.op("Softmax", [s], scores, { axis: -1 });
    const o = { name: g.op("MatMul", [p, vh.name], f32(qh.shape)), shape: qh.shape };
    return { outs: [transpose(g, o, heads).name], saved: { qh: qh.name, kh: kh.name, vh: vh.name, p } };
  },
  backward(g, [q], fwd, [dy], needed) {
    const [B, T, H, D] = q!.shape as [number, number, number, number];
    const heads = [0, 2, 1, 3];
    const bh = [B, H, T, D];
    const scores = [B, H, T, T];
    const { qh, kh, vh, p } = fwd.saved as Record<"qh" | "kh" | "vh" | "p", string>;
    const swap = (name: string, shape: number[]) => transpose(g, { name, shape }, [0, 1, 3, 2]).name;
    const back = (name: string) => transpose(g, { name, shape: bh }, heads).name;
    const doh = transpose(g, { name: dy!, shape: q!.shape }, heads).name;
    const dv = needed[2] ? back(g.op("MatMul", [swap(p, scores), doh], f32(bh))) : null;
    if (!needed[0] && !needed[1]) return [null, null, dv];
    const dp = g.op("MatMul", [doh, swap(vh, bh)], f32(scores));
    const rowDot = g.op("ReduceSum", [g.op("Mul", [dp, p], f32(scores)), g.ints([-1])], f32([B, H, T, 1]), { keepdims: 1 });
    const ds = g.op("Mul", [p, g.op("Sub", [dp, rowDot], f32(scores))], f32(scores));
    const scale = g.scalar("float32", 1 / Math.sqrt(D));
    const dq = needed[0] ? back(g.op("Mul", [g.op("MatMul", [ds, kh], f32(bh)), scale], f32(bh))) : null;
    // qh already carries the scale.
    const dk = needed[1] ? back(g.op("MatMul", [swap(ds, scores), qh], f32(bh))) : null;
    return [dq, dk, dv];
  },
};

/** Mean cross-entropy of logits [N, V] against target weights [N, V] (one-hot rows): -sum(w * logSoftmax(logits)) / N. */
const crossEntropy: FusedRule = {
  inputs: 2,
  outputs: 1,
  outShapes: () => [[]],
  forward(g, [logits, targets]) {
    const s = f32(logits!.shape);
    const lp = g.op("LogSoftmax", [logits!.name], s, { axis: -1 });
    const total = g.op("ReduceSum", [g.op("Mul", [lp, targets!.name], s)], f32([]), { keepdims: 0 });
    return { outs: [g.op("Mul", [total, g.scalar("float32", -1 / logits!.shape[0]!)], f32([]))], saved: { lp } };
  },
  backward(g, [logits, targets], fwd, [dl], needed) {
    const [N] = logits!.shape as [number];
    const s = f32(logits!.shape);
    const scale = g.op("Mul", [dl!, g.scalar("float32", 1 / N)], f32([]));
    const rowMass = g.op("ReduceSum", [targets!.name, g.ints([-1])], f32([N, 1]), { keepdims: 1 });
    const dlogits = needed[0] ? g.op("Mul", [g.op("Sub", [g.op("Mul", [g.op("Exp", [fwd.saved.lp!], s), rowMass], s), targets!.name], s), scale], s) : null;
    const dtargets = needed[1] ? g.op("Mul", [fwd.saved.lp!, g.op("Neg", [scale], f32([]))], s) : null;
    return [dlogits, dtargets];
  },
};

/**
 * 3x3 convolution, stride 1, zero 'same' padding, on NHWC images with HWIO kernels: ONNX Conv in
 * NCHW between transposes (onnxruntime cancels those it can), the input gradient as ConvTranspose
 * with the same kernel, the kernel gradient as a Conv of the images by the output gradients.
 */
const conv3x3: FusedRule = {
  inputs: 3,
  outputs: 1,
  outShapes: ([x, w]) => [[...x!.slice(0, 3), w![3]!]],
  forward(g, [x, w, b]) {
    const xc = transpose(g, x!, [0, 3, 1, 2]);
    const wc = transpose(g, w!, [3, 2, 0, 1]);
    const [B, , H, W] = xc.shape as [number, number, number, number];
    const O = w!.shape[3]!;
    const yc = { name: g.op("Conv", [xc.name, wc.name, b!.name], f32([B, O, H, W]), { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }), shape: [B, O, H, W] };
    return { outs: [transpose(g, yc, [0, 2, 3, 1]).name], saved: { xc: xc.name, wc: wc.name } };
  },
  backward(g, [x, w], fwd, [dy], needed) {
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const O = w!.shape[3]!;
    const dyc = transpose(g, { name: dy!, shape: [B, H, W, O] }, [0, 3, 1, 2]);
    const db = needed[2] ? g.op("ReduceSum", [dyc.name, g.ints([0, 2, 3])], f32([O]), { keepdims: 0 }) : null;
    let dx: string | null = null;
    if (needed[0]) {
      const dxc = { name: g.op("ConvTranspose", [dyc.name, fwd.saved.wc!], f32([B, C, H, W]), { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }), shape: [B, C, H, W] };
      dx = transpose(g, dxc, [0, 2, 3, 1]).name;
    }
    let dw: string | null = null;
    if (needed[1]) {
      // The C input channels as a batch of images of B channels each, convolved by the O output
      // gradients as kernels of B x H x W: each output is one kernel tap, [C, O, 3, 3].
      const xs = transpose(g, { name: fwd.saved.xc!, shape: [B, C, H, W] }, [1, 0, 2, 3]);
      const ks = transpose(g, dyc, [1, 0, 2, 3]);
      const dwc = { name: g.op("Conv", [xs.name, ks.name], f32([C, O, 3, 3]), { pads: [1, 1, 1, 1], kernel_shape: [H, W] }), shape: [C, O, 3, 3] };
      dw = transpose(g, dwc, [2, 3, 0, 1]).name;
    }
    return [dx, dw, db];
  },
};

export const FUSED_RULES: ReadonlyMap<string, FusedRule> = new Map([
  ["mcnc_layer_norm", layerNorm],
  ["mcnc_gelu", gelu],
  ["mcnc_causal_attention", causalAttention],
  ["mcnc_cross_entropy", crossEntropy],
  ["mcnc_conv3x3", conv3x3],
]);
