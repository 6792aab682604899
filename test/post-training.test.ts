import assert from "node:assert/strict";
import { test } from "node:test";
import { initEngine } from "../src/engine/engine.js";
import { packCodes, unpackCodes } from "../src/format/codes.js";
import { decodeContainer, encodeContainer } from "../src/format/container.js";
import { decodeModelFile, encodeModelFile } from "../src/format/model-file.js";
import { findMethod } from "../src/methods/index.js";
import { materializer, roundTrip } from "../src/methods/method.js";
import { sparsityAt, type PruneConfig } from "../src/methods/prune/index.js";
import { riceDecode, riceEncode } from "../src/methods/prune/rice.js";
import { buildModel } from "../src/model/models.js";
import { countParams, initParams, toDevice, toHost } from "../src/model/params.js";
import { imageTask } from "../src/train/tasks.js";

await initEngine();

const mlp = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
const fileModel = mlp.description;

/** A deterministic pseudo-random stream for masks and weights. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test("packed 1/2/3/4/8-bit codes round-trip through a file", () => {
  const next = lcg(1);
  // The layout is one little-endian bit stream: a u4's code 0 is byte 0's low nibble, a u3's code 2 straddles bytes 0 and 1.
  assert.deepEqual(Array.from(packCodes(Uint8Array.of(1, 2, 3), 4)), [0x21, 0x03]);
  assert.deepEqual(Array.from(packCodes(Uint8Array.of(7, 0, 5), 3)), [0x47, 0x01]);
  for (const bits of [1, 2, 3, 4, 8] as const) {
    for (const n of [0, 1, 7, 8, 9, 1001]) {
      const codes = Uint8Array.from({ length: n }, () => Math.floor(next() * 2 ** bits));
      assert.deepEqual(unpackCodes(packCodes(codes, bits), bits, n), codes);
      assert.equal(packCodes(codes, bits).length, Math.ceil((n * bits) / 8));
      const file = encodeContainer({}, [{ name: "c", shape: [n], codes, bits }]);
      assert.deepEqual(decodeContainer(file).codes("c"), codes);
    }
  }
  assert.throws(() => encodeContainer({}, [{ name: "c", shape: [1], codes: Uint8Array.of(4), bits: 2 }]), /does not fit in 2 bits/);
});

test("Rice-coded positions round-trip, and a damaged stream is refused", () => {
  const next = lcg(2);
  for (const density of [0, 0.001, 0.01, 0.3, 0.9, 1]) {
    for (const size of [1, 300, 5000]) {
      const keep = Uint8Array.from({ length: size }, () => (next() < density ? 1 : 0));
      keep[size - 1] = density > 0.5 ? 1 : keep[size - 1]!;
      const positions = [...keep.keys()].filter((i) => keep[i]);
      const bits = riceEncode(keep);
      assert.deepEqual([...riceDecode(bits, positions.length, size)], positions);
      if (positions.length > 0) assert.throws(() => riceDecode(bits.subarray(0, bits.length - 1), positions.length, size), /ends early|past the end/);
    }
  }
  // Near the entropy bound for random positions: 1% density costs under 10 bits a survivor.
  const keep = Uint8Array.from({ length: 100000 }, () => (next() < 0.01 ? 1 : 0));
  const survivors = keep.reduce((a, b) => a + b, 0);
  assert.ok(riceEncode(keep).length / survivors < 10, `${riceEncode(keep).length / survivors} bits a survivor`);
});

test("prune: the cubic schedule, and the file keeps exactly the largest weights", async () => {
  const prune = findMethod("prune")!;
  const config = prune.configure({ sparsity: 0.95, "prune-start": 0.2, "prune-end": 0.6 }, mlp.specs) as PruneConfig;
  assert.equal(sparsityAt(config, 10, 100), 0);
  assert.equal(sparsityAt(config, 20, 100), 0);
  assert.ok(Math.abs(sparsityAt(config, 40, 100) - 0.95 * (1 - 0.5 ** 3)) < 1e-12);
  assert.equal(sparsityAt(config, 60, 100), 0.95);
  assert.equal(sparsityAt(config, 99, 100), 0.95);
  assert.ok(prune.refresh!.due(config, 20, 100) && prune.refresh!.due(config, 60, 100) && !prune.refresh!.due(config, 61, 100));

  const weights = await initParams(mlp.specs, 3);
  const bytes = encodeModelFile({ model: fileModel, method: { name: "prune", config }, seed: 3, trainable: weights }, mlp, prune);
  const loaded = decodeModelFile(bytes);
  const compressed = mlp.specs.filter((s) => s.role === "weight");
  const all = compressed.flatMap((s) => [...weights[s.name]!].map(Math.abs));
  const kept = compressed.flatMap((s) => [...loaded.file.trainable[s.name]!].filter((v) => v !== 0));
  assert.equal(kept.length, Math.round(all.length * 0.05));
  const smallestKept = Math.min(...kept.map(Math.abs));
  assert.equal(all.filter((v) => v > smallestKept).length, kept.length - 1, "survivors are the largest magnitudes");
  for (const s of compressed) {
    loaded.file.trainable[s.name]!.forEach((v, i) => v !== 0 && assert.equal(v, weights[s.name]![i]));
  }
  assert.deepEqual(loaded.file.trainable.b1, weights.b1);
  // Bytes: 4 per survivor, about 10 bits of position each, the float32 biases, a header.
  const payload = 4 * kept.length + 4 * 266;
  assert.ok(bytes.length > payload && bytes.length < payload + kept.length * 1.5 + 1500, `${bytes.length} bytes`);
});

test("prune: 'layer' scope prunes every leaf to the same sparsity", async () => {
  const prune = findMethod("prune")!;
  const config = prune.configure({ sparsity: 0.8, "prune-scope": "layer" }, mlp.specs);
  const out = roundTrip(prune, config, mlp.specs, await initParams(mlp.specs, 4));
  for (const name of ["w1", "w2"]) {
    const w = out[name]!;
    assert.equal(w.filter((v) => v !== 0).length, Math.round(w.length * 0.2), name);
  }
});

test("quant: stored weights are on a 2^bits grid per channel, within half a step, and match the trained forward pass", async () => {
  const quant = findMethod("quant")!;
  const weights = await initParams(mlp.specs, 6);
  for (const [bits, group] of [
    [8, 0],
    [4, 0],
    [3, 0],
    [2, 64],
  ] as const) {
    const config = quant.configure({ bits, group }, mlp.specs);
    const bytes = encodeModelFile({ model: fileModel, method: { name: "quant", config }, seed: 6, trainable: weights }, mlp, quant);
    const loaded = decodeModelFile(bytes);
    const rebuilt = loaded.file.trainable;
    const [rows, cols] = [784, 256];
    const rowsPerGroup = group === 0 ? rows : group;
    for (let c = 0; c < cols; c += 37) {
      const column = Array.from({ length: rowsPerGroup }, (_, r) => weights.w1![r * cols + c]!);
      const lo = Math.min(...column);
      const step = (Math.max(...column) - lo) / (2 ** bits - 1);
      const values = new Set<number>();
      for (let r = 0; r < rowsPerGroup; r++) {
        const v = rebuilt.w1![r * cols + c]!;
        values.add(v);
        assert.ok(Math.abs(v - weights.w1![r * cols + c]!) <= step / 2 + 1e-7, `bits ${bits}: off by more than half a step`);
      }
      assert.ok(values.size <= 2 ** bits);
    }
    const codeBytes = Math.ceil((rows * cols * bits) / 8) + Math.ceil((256 * 10 * bits) / 8);
    const scaleBytes = 8 * (Math.ceil(rows / rowsPerGroup) * cols + Math.ceil(256 / (group || 256)) * 10);
    assert.ok(bytes.length - codeBytes - scaleBytes - 4 * 266 < 1500, `${bytes.length} bytes at ${bits} bits`);
    // Training saw the numbers the file stores: a weight within float rounding of a rounding tie may
    // land one step over (jax-js and the host divide differently), nothing else.
    const forward = await toHost(["w1"], materializer(quant, config, mlp.specs)(toDevice(mlp.specs, weights), {}));
    let differ = 0;
    forward.w1!.forEach((v, i) => {
      const gap = Math.abs(v - rebuilt.w1![i]!);
      if (gap > 1e-6) differ++;
      assert.ok(gap < 0.2 * 2 ** (2 - bits) + 1e-6, `bits ${bits}: forward pass and file differ by ${gap}`);
    });
    assert.ok(differ <= forward.w1!.length * 1e-4, `${differ} weights differ at ${bits} bits`);
  }
  assert.throws(() => quant.configure({ bits: 5 }, mlp.specs), /--bits must be one of 8, 4, 3, 2, got 5/);
  assert.throws(() => findMethod("prune")!.configure({ sparsity: 1 }, mlp.specs), /--sparsity must be in \[0, 1\), got 1/);
});

test("pranc: whole-network bases when they fit, chunks when not, and --ratio holds", () => {
  const pranc = findMethod("pranc")!;
  const small = pranc.configure({ bases: 50 }, mlp.specs) as { d: number; bases: number };
  assert.equal(small.d, 203264, "50 whole-network bases fit");
  for (const ratio of [50, 100, 200]) {
    const config = pranc.configure({ ratio }, mlp.specs) as { d: number; bases: number };
    const stored = countParams(pranc.trainableShapes(config, mlp.specs));
    assert.ok(203530 / stored >= ratio && 203530 / stored < ratio * 1.1, `${203530 / stored} at ${ratio}`);
    assert.ok(config.bases * config.d <= 2 ** 24);
  }
  assert.throws(() => pranc.configure({ bases: 2000, d: 203264 }, mlp.specs), /GiB; give a smaller --d/);
});

test("prune, quant and pranc learn through the common loop (small subset); quant at 8 bits after training costs almost nothing", async () => {
  const { loadDataset } = await import("../src/data/dataset.js");
  const { train } = await import("../src/train/trainer.js");
  const data = loadDataset(undefined, { trainLimit: 2048, testLimit: 500 });
  const dense = await train(mlp, findMethod("dense")!, {}, imageTask(data, mlp), { epochs: 1, batch: 64, seed: 0 });
  for (const [name, values, floor] of [
    ["prune", { sparsity: 0.9 }, 0.6],
    ["quant", { bits: 4 }, 0.6],
    ["pranc", { ratio: 100, d: 4096 }, 0.45],
  ] as const) {
    const method = findMethod(name)!;
    const config = method.configure(values, mlp.specs);
    const r = await train(mlp, method, config, imageTask(data, mlp), { epochs: 1, batch: 64, seed: 0 });
    assert.ok(r.metrics.accuracy! > floor, `${name}: accuracy ${r.metrics.accuracy!}`);
    if (name === "prune") {
      const nonzero = ["w1", "w2"].reduce((n, w) => n + r.params[w]!.filter((v) => v !== 0).length, 0);
      assert.equal(nonzero, Math.round(0.1 * (784 * 256 + 256 * 10)), "trained to the target sparsity");
    }
  }
  // Post-training: no steps, the dense weights encoded at 8 bits.
  const quant = findMethod("quant")!;
  const ptq = await train(mlp, quant, quant.configure({ bits: 8 }, mlp.specs), imageTask(data, mlp), { epochs: 0, batch: 64, seed: 0, start: dense.params });
  assert.ok(Math.abs(ptq.metrics.accuracy! - dense.metrics.accuracy!) < 0.01, `8-bit ${ptq.metrics.accuracy!} vs dense ${dense.metrics.accuracy!}`);
  await assert.rejects(train(mlp, findMethod("mcnc")!, findMethod("mcnc")!.configure({}, mlp.specs), imageTask(data, mlp), { epochs: 0, batch: 64, seed: 0, start: dense.params }), /cannot start from trained weights/);
});

test("prune and quant refuse stored tensors that are missing, extra or inconsistent", async () => {
  const { memoryReader } = await import("../src/methods/method.js");
  const weights = await initParams(mlp.specs, 8);
  for (const [name, values] of [
    ["prune", { sparsity: 0.99 }],
    ["quant", { bits: 2 }],
  ] as const) {
    const method = findMethod(name)!;
    const config = method.configure(values, mlp.specs);
    const tensors = method.codec!.encode(config, mlp.specs, weights);
    const decode = (ts: typeof tensors) => method.codec!.decode(config, mlp.specs, memoryReader(ts));
    assert.doesNotThrow(() => decode(tensors));
    assert.throws(() => decode(tensors.slice(1)), /no stored tensor|values/);
    assert.throws(() => decode([...tensors, { name: "extra", shape: [1], data: new Float32Array(1) }]), /unexpected tensors extra/);
    const shortened = tensors.map((t) => ("data" in t && (t.name.endsWith(".values") || t.name.endsWith(".min")) ? { ...t, data: t.data.subarray(1), shape: [t.data.length - 1] } : t));
    assert.throws(() => decode(shortened), /left over|do not fit/);
  }
});
