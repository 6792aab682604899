import assert from "node:assert/strict";

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
