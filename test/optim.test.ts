import assert from "node:assert/strict";
import { test } from "node:test";
import { numpy as np, tree } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import { ADAM, adamInit, adamScalars, adamUpdate, type AdamState } from "../src/train/adam.js";
import { AdamArena } from "../src/train/adam-kernel.js";
import { Plateau } from "../src/train/plateau.js";

// jax-js's Adam, as the Wasm engine's steps run it.
await initEngine({ engine: "wasm" });

test("Adam matches the textbook update over several steps", async () => {
  const p0 = [0.5, -1, 2];
  const grads = [
    [0.1, -0.2, 0.3],
    [0.05, 0.1, -0.3],
    [-0.4, 0.0, 0.2],
  ];
  const lr = 0.01;
  let params = { w: np.array(new Float32Array(p0)) };
  let state = adamInit({ w: new Float32Array(3) }) as AdamState;
  const ref = { p: [...p0], m: [0, 0, 0], v: [0, 0, 0] };
  for (let t = 1; t <= grads.length; t++) {
    const { stepSize, bias2 } = adamScalars(lr, t);
    [params, state] = adamUpdate(params, { w: np.array(new Float32Array(grads[t - 1]!)) }, state, np.array(stepSize), np.array(bias2)) as [typeof params, typeof state];
    for (let i = 0; i < 3; i++) {
      const g = grads[t - 1]![i]!;
      ref.m[i] = ADAM.beta1 * ref.m[i]! + (1 - ADAM.beta1) * g;
      ref.v[i] = ADAM.beta2 * ref.v[i]! + (1 - ADAM.beta2) * g * g;
      const mh = ref.m[i]! / (1 - ADAM.beta1 ** t);
      const vh = ref.v[i]! / (1 - ADAM.beta2 ** t);
      ref.p[i] = ref.p[i]! - (lr * mh) / (Math.sqrt(vh) + ADAM.eps);
    }
  }
  const got = (await params.w.data()) as Float32Array;
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i]! - ref.p[i]!) < 1e-6, `${got[i]} vs ${ref.p[i]}`);
});

test("the native engine's Adam (a Wasm SIMD kernel over one arena) follows jax-js's Adam over 20 steps, tensor sizes not whole vectors", async () => {
  // 1001 and 3 floats: the kernel runs over whole vectors of four, and the padding must change nothing.
  const sizes = [
    ["w", 1001],
    ["b", 3],
  ] as const;
  const start = Object.fromEntries(sizes.map(([name, n]) => [name, Float32Array.from({ length: n }, (_, i) => Math.sin(i + n))]));
  const gradAt = (t: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.37 + t) * (i % 7 === 0 ? 1e-6 : 0.1));
  let params = Object.fromEntries(sizes.map(([name]) => [name, np.array(start[name]!)]));
  let state = adamInit(start) as AdamState;
  const arena = new AdamArena(sizes);
  for (const [name] of sizes) arena.params[name]!.set(start[name]!);
  for (let t = 1; t <= 20; t++) {
    const { stepSize, bias2 } = adamScalars(0.01, t);
    const grads = Object.fromEntries(sizes.map(([name, n]) => [name, gradAt(t, n)]));
    [params, state] = adamUpdate(params, Object.fromEntries(sizes.map(([name]) => [name, np.array(grads[name]!)])), state, np.array(stepSize), np.array(bias2)) as [typeof params, typeof state];
    for (const [name] of sizes) arena.grads[name]!.set(grads[name]!);
    arena.update(stepSize, bias2);
  }
  for (const [name, n] of sizes) {
    const got = (await params[name]!.data()) as Float32Array;
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - arena.params[name]![i]!));
    assert.ok(worst < 1e-6, `${name}: largest difference ${worst}`);
  }
  tree.dispose(state);
});

test("reduce-on-plateau halves the rate after `patience` epochs without improvement", () => {
  const s = new Plateau(1, { patience: 2, factor: 0.5, threshold: 1e-4, minLr: 0.1 });
  assert.equal(s.step(1.0), 1);
  assert.equal(s.step(0.9), 1);
  assert.equal(s.step(0.95), 1);
  assert.equal(s.step(0.95), 1);
  assert.equal(s.step(0.95), 0.5);
  assert.equal(s.step(0.8), 0.5);
  for (let i = 0; i < 20; i++) s.step(1);
  assert.equal(s.lr, 0.1, "never below minLr");
});
