/**
 * What the lowering needs of a fused operation (engine/fused.ts): its ONNX forward, and its backward
 * written by hand, in place of the many small elementwise nodes jax-js's autodiff would leave.
 */
import type { Graph } from "./graph.js";

export interface Operand {
  name: string;
  shape: readonly number[];
}

export interface Forward {
  outs: string[];
  /** Tensors of the forward pass the backward reads (a softmax's probabilities, a norm's statistics). */
  saved: Record<string, string>;
}

export interface FusedRule {
  inputs: number;
  outputs: number;
  /** The shapes of the outputs, from those of the inputs (a traced call is checked against them). */
  outShapes(ins: ReadonlyArray<readonly number[]>): number[][];
  forward(g: Graph, ins: readonly Operand[]): Forward;
  /**
   * Cotangents of the inputs from those of the outputs; `needed` says which inputs want one
   * (the others may be left null).
   */
  backward(g: Graph, ins: readonly Operand[], fwd: Forward, cotangents: readonly string[], needed: readonly boolean[]): Array<string | null>;
}
