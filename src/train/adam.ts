/**
 * Adam over a flat parameter tree (there is no optimiser package for jax-js on the registry).
 * Bias corrections are computed on the host and passed in as scalars, so one jitted step serves
 * every iteration and every learning rate.
 */
import { numpy as np } from "@jax-js/jax";
import { put, type Tensor } from "../engine/program.js";
import type { HostParams, Params } from "../model/params.js";

// A type alias, not an interface: jax-js trees must be index-signature compatible.
export type AdamState = { m: Params; v: Params };

export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** Zero moments on the engine, flat, for tensors the size of `shapes`' entries. */
export function adamInit(shapes: HostParams): { m: Record<string, Tensor>; v: Record<string, Tensor> } {
  const zeros = () => Object.fromEntries(Object.entries(shapes).map(([name, data]) => [name, put(new Float32Array(data.length), [data.length])]));
  return { m: zeros(), v: zeros() };
}

/** Host-side scalars for step t (1-based): PyTorch's Adam, exactly. */
export function adamScalars(lr: number, t: number): { stepSize: number; bias2: number } {
  return { stepSize: lr / (1 - ADAM.beta1 ** t), bias2: Math.sqrt(1 - ADAM.beta2 ** t) };
}

/**
 * One update. Consumes params, grads and state; stepSize = lr / (1 - b1^t), bias2 = sqrt(1 - b2^t).
 * Moments are kept flat, so leaves may have any shape.
 */
export function adamUpdate(params: Params, grads: Params, state: AdamState, stepSize: np.Array, bias2: np.Array): [Params, AdamState] {
  const next: Params = {};
  const m: Params = {};
  const v: Params = {};
  const names = Object.keys(params);
  names.forEach((name, i) => {
    const p = params[name]!;
    const shape = p.shape;
    const g = grads[name]!.reshape([-1]);
    const mi = state.m[name]!.mul(ADAM.beta1).add(g.ref.mul(1 - ADAM.beta1));
    const vi = state.v[name]!.mul(ADAM.beta2).add(g.ref.mul(g).mul(1 - ADAM.beta2));
    const last = i === names.length - 1;
    const denom = np.sqrt(vi.ref).div(last ? bias2 : bias2.ref).add(ADAM.eps);
    const update = mi.ref.div(denom).mul(last ? stepSize : stepSize.ref);
    next[name] = p.reshape([-1]).sub(update).reshape(shape);
    m[name] = mi;
    v[name] = vi;
  });
  if (names.length === 0) {
    stepSize.dispose();
    bias2.dispose();
  }
  return [next, { m, v }];
}

