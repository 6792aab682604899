import assert from "node:assert/strict";
import { test } from "node:test";
import { numpy as np, random } from "@jax-js/jax";
import { initEngine, resolveEngine, resolveThreads } from "../src/engine/engine.js";
import { loadNative } from "../src/engine/native.js";
import { compile, currentEngine, put, read, sessionCosts } from "../src/engine/program.js";
import { DEFAULT_MEMORY_LIMIT, setMemoryLimit } from "../src/limits.js";
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

test("the engine is chosen by option or MCNC_ENGINE, native by default where onnxruntime-node loads", async (t) => {
  t.after(() => initEngine());
  const native = await loadNative();
  assert.equal((await initEngine()).engine, native.ok ? "native" : "wasm");
  assert.equal((await initEngine({ engine: "wasm" })).engine, "wasm");
  assert.equal(currentEngine(), "wasm");
  assert.throws(() => resolveEngine("gpu"), /the engine must be native or wasm, got gpu/);
  process.env.MCNC_ENGINE = "wasm";
  try {
    assert.equal(resolveEngine(), "wasm");
  } finally {
    delete process.env.MCNC_ENGINE;
  }
});

test("a program with a primitive ONNX lacks runs on wasm, said in one line, with wasm's result", { skip: !(await loadNative()).ok }, async () => {
  const lines: string[] = [];
  await initEngine({ engine: "native", onNote: (l) => lines.push(l) });
  // Threefry random bits have no ONNX operator.
  const noisy = (x: np.Array) => x.add(random.uniform(random.key(7), [4]));
  const [onNative, onWasm] = await Promise.all([compile(noisy, { name: "noisy" })(put(new Float32Array(4), [4])), compile(noisy, { name: "noisy", engine: "wasm" })(put(new Float32Array(4), [4], "wasm"))]);
  assert.deepEqual(await read(onNative), await read(onWasm));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^the native engine cannot run noisy: (random_bits|dtype uint32) has no ONNX lowering; that program runs on wasm$/);
  await initEngine();
});

test("native sessions are made once per input shape, and a graph above the memory limit is refused before it is made", { skip: !(await loadNative()).ok }, async (t) => {
  await initEngine({ engine: "native" });
  const square = compile((x: np.Array) => np.matmul(x.ref, x), { name: "square" });
  const before = sessionCosts().length;
  for (let i = 0; i < 3; i++) await square(put(new Float32Array(16), [4, 4]));
  await square(put(new Float32Array(64), [8, 8]));
  const made = sessionCosts().slice(before);
  assert.deepEqual(
    made.map((c) => c.program),
    ["square", "square"],
  );
  assert.ok(made.every((c) => c.trace >= 0 && c.lower >= 0 && c.session >= 0 && c.peakBytes > 0));
  setMemoryLimit(2 ** 20);
  t.after(() => setMemoryLimit(DEFAULT_MEMORY_LIMIT));
  await assert.rejects(square(put(new Float32Array(512 * 512), [512, 512])), /the native engine's square program needs about 2\.0 MiB, above the limit of 1\.0 MiB/);
});
