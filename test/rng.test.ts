import assert from "node:assert/strict";
import { test } from "node:test";
import { initEngine } from "../src/engine/engine.js";
import { crc32 } from "../src/format/crc32.js";
import { generatorDims, generatorWeights } from "../src/methods/mcnc/generator.js";
import { checkSeed, seededBits, seededPermutation, seededUniform } from "../src/rng/seeded.js";
import { refBits, refKey, refSplit, threefry2x32 } from "./threefry-reference.js";

await initEngine();

function littleEndianCrc(a: Float32Array): string {
  const bytes = new Uint8Array(a.length * 4);
  const view = new DataView(bytes.buffer);
  a.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return crc32(bytes).toString(16);
}

test("the plain-JS threefry2x32 reproduces the Random123 known-answer vectors", () => {
  assert.deepEqual(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
  assert.deepEqual(threefry2x32([0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]), [0x1cb996fc, 0xbb002be7]);
  assert.deepEqual(threefry2x32([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3]), [0xc4923a9c, 0x483df7a0]);
});

test("the engine's words are JAX's partitionable threefry, derived independently", async () => {
  for (const [seed, path] of [
    [0, [0]],
    [1234, [0, 0]],
    [7, [3, 5]],
    [2 ** 31 - 1, [2, 0, 1]],
  ] as Array<[number, number[]]>) {
    let key = refKey(seed);
    for (const i of path) key = refSplit(key, i);
    assert.deepEqual(Array.from(await seededBits(seed, path, 37)), Array.from(refBits(key, 37)), `seed ${seed} path ${path}`);
  }
});

test("pinned vectors: a change here silently alters every stored file", async () => {
  assert.deepEqual(Array.from(await seededBits(1234, [0, 0], 4)), [2658453403, 2895010155, 3856152720, 1421615052]);
  assert.deepEqual(Array.from(await seededUniform(1234, [0, 1], 4, -0.25, 0.25)), [
    -0.047100961208343506, 0.24075505137443542, 0.02712234854698181, -0.2004755139350891,
  ]);
  const weights = await generatorWeights(1234, generatorDims(16, [64, 64], 1600));
  assert.deepEqual(
    weights.map((w) => [w.length, littleEndianCrc(w), w[0], w.at(-1)]),
    [
      [1024, "637c51d9", 0.014871172606945038, -0.04005975276231766],
      [4096, "1fc3b71d", -0.057686660438776016, 0.016249068081378937],
      [102400, "e94358d2", -0.12953439354896545, -0.04485131427645683],
    ],
  );
});

test("uniform draws are exact functions of the words and stay in range", async () => {
  const bits = await seededBits(99, [1, 2], 1000);
  const u = await seededUniform(99, [1, 2], 1000, -3, 5);
  for (let i = 0; i < bits.length; i++) {
    assert.equal(u[i], Math.fround(-3 + 8 * ((bits[i]! >>> 8) / 2 ** 24)));
    assert.ok(u[i]! >= -3 && u[i]! < 5);
  }
  const mean = u.reduce((a, b) => a + b, 0) / u.length;
  assert.ok(Math.abs(mean - 1) < 0.3, `mean ${mean}`);
});

test("bits are a prefix-stable stream and distinct paths give distinct streams", async () => {
  const long = await seededBits(5, [3, 0], 100);
  const short = await seededBits(5, [3, 0], 10);
  assert.deepEqual(Array.from(long.subarray(0, 10)), Array.from(short));
  const other = await seededBits(5, [3, 1], 10);
  assert.notDeepEqual(Array.from(other), Array.from(short));
});

test("permutations are permutations, and repeat for a seed", async () => {
  const p = await seededPermutation(3, [3, 0], 1000);
  assert.deepEqual([...p].sort((a, b) => a - b), [...Array(1000).keys()]);
  assert.deepEqual(Array.from(await seededPermutation(3, [3, 0], 1000)), Array.from(p));
  assert.notDeepEqual(Array.from(await seededPermutation(3, [3, 1], 1000)), Array.from(p));
});

test("seeds outside 0..2^31-1 are refused", () => {
  assert.throws(() => checkSeed(-1), /seed/);
  assert.throws(() => checkSeed(2 ** 31), /seed/);
  assert.throws(() => checkSeed(1.5), /seed/);
  assert.equal(checkSeed(0), 0);
});
