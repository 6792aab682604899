/** MCNC's own step, fused: the generator's rows on the unit sphere, scaled by beta. */
import type { FusedRule } from "../fused-rule.js";
import { f32 } from "./shared.js";

/**
 * MCNC's chunks: generator rows h [m * chunks, d] scaled to unit length (sqrt(sum h^2 + 1e-30)) and by
 * beta [m, chunks]: [m, chunks, d]. Two passes forward and four back, where the decomposed form
 * makes three and six over the whole flat weight vector.
 */
export const sphereScale: FusedRule = {
  inputs: 2,
  outputs: 1,
  outShapes: ([h, beta]) => [[beta![0]!, beta![1]!, h![1]!]],
  forward(g, [h, beta]) {
    const [R, d] = h!.shape as [number, number];
    const [m, chunks] = beta!.shape as [number, number];
    const col = f32([R, 1]);
    const norm = g.op("Sqrt", [g.op("Add", [g.op("ReduceSumSquare", [h!.name, g.ints([-1])], col, { keepdims: 1 }), g.scalar("float32", 1e-30)], col)], col);
    const a = g.op("Div", [g.op("Reshape", [beta!.name, g.ints([R, 1])], col), norm], col);
    const y = g.op("Mul", [h!.name, a], f32([R, d]));
    return { outs: [g.op("Reshape", [y, g.ints([m, chunks, d])], f32([m, chunks, d]))], saved: { norm, a } };
  },
  backward(g, [h, beta], fwd, [dy], needed) {
    const [R, d] = h!.shape as [number, number];
    const col = f32([R, 1]);
    const rows = g.op("Reshape", [dy!, g.ints([R, d])], f32([R, d]));
    const { norm, a } = fwd.saved as Record<"norm" | "a", string>;
    // s = sum(dy * h): the cotangent along each row's own direction.
    const s = g.op("ReduceSum", [g.op("Mul", [rows, h!.name], f32([R, d])), g.ints([-1])], col, { keepdims: 1 });
    const dbeta = needed[1] ? g.op("Reshape", [g.op("Div", [s, norm], col), g.ints(beta!.shape)], f32(beta!.shape)) : null;
    if (!needed[0]) return [null, dbeta];
    const b = g.op("Div", [g.op("Mul", [a, s], col), g.op("Mul", [norm, norm], col)], col);
    return [g.op("Sub", [g.op("Mul", [rows, a], f32([R, d])), g.op("Mul", [h!.name, b], f32([R, d]))], f32([R, d])), dbeta];
  },
};
