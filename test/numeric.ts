import assert from "node:assert/strict";
import { grad, numpy as np } from "@jax-js/jax";
import type { Model, Training } from "../src/model/model.js";
import type { Params } from "../src/model/params.js";

/** Central differences of a scalar function of a float64 vector. */
export async function centralDifference(f: (x: Float64Array) => Promise<number>, x: Float64Array, h: number): Promise<Float64Array> {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const plus = Float64Array.from(x);
    const minus = Float64Array.from(x);
    plus[i]! += h;
    minus[i]! -= h;
    out[i] = ((await f(plus)) - (await f(minus))) / (2 * h);
  }
  return out;
}

/** Every entry within tol relative to the largest entry. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ""): void {
  assert.equal(actual.length, expected.length);
  let scale = 1e-12;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!) / scale;
    assert.ok(err < tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (relative error ${err.toExponential(2)})`);
  }
}

/**
 * A model's parameter gradients against central differences, in float64, at four coordinates spread
 * over each leaf. The loss is a polynomial of the logits (exact in float64), so the differences
 * measure the network alone; `step` and `tol` allow for what the network computes only to float32
 * accuracy (jax-js's exp, sin and tanh).
 */
export async function checkModelGradients(model: Model, params64: Record<string, Float64Array>, x: np.Array, probe: np.Array, step: number, tol: number, training?: () => Training): Promise<void> {
  const toTree = (h: Record<string, Float64Array>) => Object.fromEntries(model.specs.map((s) => [s.name, np.array(h[s.name]!).reshape(s.shape)])) as Params;
  const loss = (p: Params) => {
    const logits = model.apply(p, x.ref, undefined, training?.());
    return logits.ref.mul(probe.ref).sum().add(logits.ref.mul(logits).sum().mul(0.5));
  };
  const g = grad(loss)(toTree(params64)) as Params;
  for (const s of model.specs) {
    const analytic = (await g[s.name]!.data()) as Float64Array;
    const scale = Math.max(...analytic.map(Math.abs), 1e-8);
    for (const i of [0, Math.floor(analytic.length / 3), Math.floor((2 * analytic.length) / 3), analytic.length - 1]) {
      const f = async (v: Float64Array) => {
        const h = { ...params64, [s.name]: Float64Array.from(params64[s.name]!) };
        h[s.name]![i] = v[0]!;
        return ((await loss(toTree(h)).data()) as Float64Array)[0]!;
      };
      const [numeric] = await centralDifference(f, Float64Array.of(params64[s.name]![i]!), step);
      assert.ok(Math.abs(analytic[i]! - numeric!) / scale < tol, `${s.name}[${i}]: ${analytic[i]} vs ${numeric}`);
    }
  }
}
