import assert from "node:assert/strict";
import { test } from "node:test";
import { initEngine, resolveThreads } from "../src/engine/engine.js";
import { withoutRelaxedSimd } from "../src/engine/deterministic-wasm.js";
import { f16round } from "../src/engine/node-gaps.js";

await initEngine();

// jax-js's probe for relaxed SIMD: a function computing f32x4.relaxed_madd (0xfd 0x85 0x02).
const RELAXED_PROBE = "0061736d0100000001080160037b7b7b017b030201000a0d010b00200020012002fd85020b";
const EMPTY_MODULE = "0061736d01000000";
const bytes = (hex: string) => Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
// (The project compiles without the DOM library, which is where WebAssembly's value type lives.)
const wasm = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;

test("the deterministic engine reports no relaxed SIMD, so no fused multiply-add is ever emitted", () => {
  // On a runtime that has relaxed SIMD (Chromium; a later Node), the guard alone answers "invalid".
  const permissive = withoutRelaxedSimd(() => true);
  assert.equal(permissive(bytes(RELAXED_PROBE)), false);
  assert.equal(permissive(bytes(EMPTY_MODULE)), true);
  // And it is what this process's engine sees.
  assert.equal(wasm.validate(bytes(RELAXED_PROBE)), false);
  assert.equal(wasm.validate(bytes(EMPTY_MODULE)), true);
});

test("thread counts are validated and must match what the engine was loaded with", async () => {
  assert.throws(() => resolveThreads(0), /threads must be an integer from 1 to 64/);
  assert.throws(() => resolveThreads(1.5), /threads/);
  await assert.rejects(initEngine({ threads: 2 }), /loaded with 1 thread/);
});

test("f16round (Node 20's missing Math.f16round) rounds to half precision, ties to even", () => {
  assert.equal(f16round(1), 1);
  assert.equal(f16round(1 + 2 ** -11), 1); // tie, to even
  assert.equal(f16round(1 + 3 * 2 ** -11), 1 + 2 ** -9); // tie, to even (up)
  assert.equal(f16round(65504), 65504);
  assert.equal(f16round(70000), Infinity);
  assert.equal(f16round(2 ** -24), 2 ** -24);
  assert.equal(f16round(0.1), 0.0999755859375);
});
