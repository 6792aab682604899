/** What the fused operations' rules share: float tensors' types and transposes of operands. */
import type { Operand } from "../fused-rule.js";
import { f32, type Graph } from "../graph.js";

export { f32 };
const permute = (shape: readonly number[], perm: readonly number[]) => perm.map((p) => shape[p]!);

export function transpose(g: Graph, x: Operand, perm: number[]): Operand {
  const shape = permute(x.shape, perm);
  return { name: g.op("Transpose", [x.name], f32(shape), { perm }), shape };
}
