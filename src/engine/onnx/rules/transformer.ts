/**
 * The transformer's fused operations: layer norm, GELU, causal attention and the cross-entropy of its
 * loss in training; softmax and the KV-cache write of a generation step.
 */
import type { FusedRule } from "../fused-rule.js";
import { f32, transpose } from "./shared.js";

/** All axes but the last: the rows a per-feature parameter's gradient sums over. */
const leading = (shape: readonly number[]) => shape.slice(0, -1).map((_, i) => i);

/** GPT-2's LayerNorm over the last axis, eps 1e-5: inputs x, gain, bias. */
export const layerNorm: FusedRule = {
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
export const gelu: FusedRule = {
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
export const causalAttention: FusedRule = {
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

/** Softmax over the last axis. */
export const softmax: FusedRule = {
  inputs: 1,
  outputs: 1,
  outShapes: ([x]) => [[...x!]],
  forward: (g, [x]) => {
    const y = g.op("Softmax", [x!.name], f32(x!.shape), { axis: -1 });
    return { outs: [y], saved: { y } };
  },
  backward(g, [x], fwd, [dy]) {
    const s = f32(x!.shape);
    const y = fwd.saved.y!;
    const rowDot = g.op("ReduceSum", [g.op("Mul", [dy!, y], s), g.ints([-1])], f32([...x!.shape.slice(0, -1), 1]), { keepdims: 1 });
    return [g.op("Mul", [y, g.op("Sub", [dy!, rowDot], s)], s)];
  },
};

/**
 * A key/value cache [.., T, D] with `row` [.., 1, D] written at the position `at` marks (a one-hot
 * [T]): one ScatterElements, where the arithmetic form (cache * (1 - at) + row * at) is three passes.
 */
export const cacheWrite: FusedRule = {
  inputs: 3,
  outputs: 1,
  outShapes: ([cache]) => [[...cache!]],
  forward(g, [cache, row, at]) {
    const rowShape = row!.shape;
    const where = g.op("ArgMax", [at!.name], { shape: [1], dtype: "int64" }, { axis: 0, keepdims: 1 });
    const index = g.op("Expand", [g.op("Reshape", [where, g.ints(rowShape.map(() => 1))], { shape: rowShape.map(() => 1), dtype: "int64" }), g.ints(rowShape)], { shape: rowShape, dtype: "int64" });
    return { outs: [g.op("ScatterElements", [cache!.name, index, row!.name], f32(cache!.shape), { axis: cache!.shape.length - 2 })], saved: {} };
  },
  backward() {
    throw new Error("cache_write is written for generation, which is not differentiated");
  },
};

/** Mean cross-entropy of logits [N, V] against target weights [N, V] (one-hot rows): -sum(w * logSoftmax(logits)) / N. */
export const crossEntropy: FusedRule = {
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
