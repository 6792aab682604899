/**
 * Image layers in NHWC, as the models write them: the 3x3 convolution and 2x2 max pooling, alone or
 * after a ReLU.
 */
import type { FusedRule, Operand } from "../fused-rule.js";
import type { Graph } from "../graph.js";
import { f32, transpose } from "./shared.js";

/**
 * The im2col rows of NHWC images x [B, H, W, C] for a 3x3 'same' convolution: [B*H*W, 9C], tap-major
 * then channel, the order of an HWIO kernel flattened to [9C, O]. From eight channels up, one Gather of
 * pixels from the padded images (3.5 ms against 6.9 for nine slices and a Concat, LeNet's second layer
 * at batch 128); below, the Gather's copies of a few floats each cost more than the slices.
 */
function im2col(g: Graph, x: Operand): string {
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const padded = g.op("Pad", [x.name, g.ints([0, 1, 1, 0, 0, 1, 1, 0]), g.scalar("float32", 0)], f32([B, H + 2, W + 2, C]), { mode: "constant" });
  const rows = f32([B * H * W, 9 * C]);
  if (C >= 8) {
    const pixels = g.op("Reshape", [padded, g.ints([B, (H + 2) * (W + 2), C])], f32([B, (H + 2) * (W + 2), C]));
    const at = new BigInt64Array(H * W * 9);
    let k = 0;
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) at[k++] = BigInt((i + dy) * (W + 2) + j + dx);
    const taps = g.op("Gather", [pixels, g.constant("int64", [at.length], at)], f32([B, H * W * 9, C]), { axis: 1 });
    return g.op("Reshape", [taps, g.ints(rows.shape)], rows);
  }
  const taps: string[] = [];
  for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) taps.push(g.op("Slice", [padded, g.ints([dy, dx]), g.ints([dy + H, dx + W]), g.ints([1, 2])], f32([B, H, W, C])));
  return g.op("Reshape", [g.op("Concat", taps, f32([B, H, W, 9 * C]), { axis: 3 }), g.ints(rows.shape)], rows);
}

/**
 * 3x3 convolution, stride 1, zero 'same' padding, on NHWC images with HWIO kernels, as im2col rows
 * times the kernel: one MatMul, in the images' own layout, and the rows are kept for the kernel's
 * gradient (rows^T times the output gradient). The input gradient is ConvTranspose in NCHW between
 * transposes. Measured on LeNet at batch 128 against ONNX Conv between transposes: the first layer's
 * forward 9.4 ms to about 3 (its one input channel made the transposed output the cost), the second
 * layer's the same, its kernel gradient 4 ms less (no second im2col); as a Conv with an image-sized
 * kernel, that gradient took 1.7x the MatMul's time.
 */
export const conv3x3: FusedRule = {
  inputs: 3,
  outputs: 1,
  outShapes: ([x, w]) => [[...x!.slice(0, 3), w![3]!]],
  forward(g, [x, w, b]) {
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const O = w!.shape[3]!;
    const cols = im2col(g, x!);
    const kernel = g.op("Reshape", [w!.name, g.ints([9 * C, O])], f32([9 * C, O]));
    const y = g.op("Add", [g.op("MatMul", [cols, kernel], f32([B * H * W, O])), b!.name], f32([B * H * W, O]));
    return { outs: [g.op("Reshape", [y, g.ints([B, H, W, O])], f32([B, H, W, O]))], saved: { cols } };
  },
  backward(g, [x, w], fwd, [dy], needed) {
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const O = w!.shape[3]!;
    const rows = g.op("Reshape", [dy!, g.ints([B * H * W, O])], f32([B * H * W, O]));
    // The bias gradient as ones times the rows, a MatMul: a ReduceSum down a tall matrix ran 3x slower.
    const ones = g.constant("float32", [1, B * H * W], new Float32Array(B * H * W).fill(1));
    const db = needed[2] ? g.op("Reshape", [g.op("MatMul", [ones, rows], f32([1, O])), g.ints([O])], f32([O])) : null;
    let dx: string | null = null;
    if (needed[0]) {
      const dyc = transpose(g, { name: dy!, shape: [B, H, W, O] }, [0, 3, 1, 2]);
      const wc = transpose(g, w!, [3, 2, 0, 1]);
      const dxc = { name: g.op("ConvTranspose", [dyc.name, wc.name], f32([B, C, H, W]), { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }), shape: [B, C, H, W] };
      dx = transpose(g, dxc, [0, 2, 3, 1]).name;
    }
    let dw: string | null = null;
    if (needed[1]) {
      const cols = transpose(g, { name: fwd.saved.cols!, shape: [B * H * W, 9 * C] }, [1, 0]);
      dw = g.op("Reshape", [g.op("MatMul", [cols.name, rows], f32([9 * C, O])), g.ints([3, 3, C, O])], f32([3, 3, C, O]));
    }
    return [dx, dw, db];
  },
};

/** The four strided quarters of NHWC images, whose elementwise max is 2x2 max pooling. */
function quarters(g: Graph, x: Operand): string[] {
  const [B, H, W, C] = x.shape as [number, number, number, number];
  return [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ].map(([r, c]) => g.op("Slice", [x.name, g.ints([r!, c!]), g.ints([H, W]), g.ints([1, 2]), g.ints([2, 2])], f32([B, H / 2, W / 2, C])));
}

/** Four quarter-size cotangents put back in their places: [B, H, W, C]. */
function interleave(g: Graph, parts: string[], [B, H, W, C]: readonly number[]): string {
  const spread = parts.map((p) => g.op("Unsqueeze", [p, g.ints([2, 4])], f32([B!, H! / 2, 1, W! / 2, 1, C!])));
  const pair = f32([B!, H! / 2, 1, W! / 2, 2, C!]);
  const rows = [g.op("Concat", [spread[0]!, spread[1]!], pair, { axis: 4 }), g.op("Concat", [spread[2]!, spread[3]!], pair, { axis: 4 })];
  const whole = g.op("Concat", rows, f32([B!, H! / 2, 2, W! / 2, 2, C!]), { axis: 2 });
  return g.op("Reshape", [whole, g.ints([B!, H!, W!, C!])], f32([B!, H!, W!, C!]));
}

/**
 * 2x2 max pooling, stride 2, on NHWC images: the larger of four strided slices. The cotangent is
 * shared among the inputs equal to the maximum, as jax-js's max does, and put back by two Concats.
 * Measured against the reduction over a 6-D view that jax-js writes: 2.0x faster (LeNet, batch 64).
 */
export const maxPool2: FusedRule = {
  inputs: 1,
  outputs: 1,
  outShapes: ([x]) => [[x![0]!, x![1]! / 2, x![2]! / 2, x![3]!]],
  forward(g, [x]) {
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const q = quarters(g, x!);
    return { outs: [g.op("Max", q, f32([B, H / 2, W / 2, C]))], saved: Object.fromEntries(q.map((n, i) => [`q${i}`, n])) };
  },
  backward(g, [x], fwd, [dy]) {
    const half = f32(fwd.outs[0] ? g.info.get(fwd.outs[0])!.shape : []);
    const hits = [0, 1, 2, 3].map((i) => g.op("Cast", [g.op("Equal", [fwd.saved[`q${i}`]!, fwd.outs[0]!], { shape: half.shape, dtype: "bool" })], half, { to: 1 }));
    const share = g.op("Div", [dy!, g.op("Sum", hits, half)], half);
    return [interleave(g, hits.map((h) => g.op("Mul", [h, share], half)), x!.shape)];
  },
};

/**
 * ReLU then 2x2 max pooling (NHWC), as jax-js computes max(relu(x)) and differentiates it, with the
 * ReLU on the pooled quarter: relu of the max is the max of the relus. The backward needs no pass
 * over the whole input but the final interleave: an input keeps cotangent exactly where it equals the
 * pooled maximum (for a window all at or below zero, where it is zero), and the share divides by the
 * tied inputs of relu(x), all four where the maximum is not positive. Saves the ReLU's three whole
 * passes (forward, the mask and its select; 8 ms of LeNet's step at batch 128).
 */
export const reluMaxPool2: FusedRule = {
  inputs: 1,
  outputs: 1,
  outShapes: maxPool2.outShapes,
  forward(g, [x]) {
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const half = f32([B, H / 2, W / 2, C]);
    const q = quarters(g, x!);
    const top = g.op("Max", q, half);
    return { outs: [g.op("Relu", [top], half)], saved: { top, ...Object.fromEntries(q.map((n, i) => [`q${i}`, n])) } };
  },
  backward(g, [x], fwd, [dy]) {
    const y = fwd.outs[0]!;
    const half = f32(g.info.get(y)!.shape);
    const bools = { shape: half.shape, dtype: "bool" as const };
    const hits = [0, 1, 2, 3].map((i) => g.op("Cast", [g.op("Equal", [fwd.saved[`q${i}`]!, y], bools)], half, { to: 1 }));
    const ties = g.op("Where", [g.op("Greater", [y, g.scalar("float32", 0)], bools), g.op("Sum", hits, half), g.scalar("float32", 4)], half);
    const share = g.op("Div", [dy!, ties], half);
    return [interleave(g, hits.map((h) => g.op("Mul", [h, share], half)), x!.shape)];
  },
};
