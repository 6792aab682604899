import assert from "node:assert/strict";
import { test } from "node:test";
import { grad, numpy as np, tree } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import { decodeModelFile, encodeModelFile, rebuildParams } from "../src/format/model-file.js";
import { findMethod, materializer, methodNames } from "../src/methods/index.js";
import { roundTrip } from "../src/methods/method.js";
import { buildModel } from "../src/model/models.js";
import { countParams, toDevice, toHost, type Params } from "../src/model/params.js";
import { imageTask } from "../src/train/tasks.js";
import { assertClose, centralDifference } from "./numeric.js";

await initEngine();

// Small configurations of every method, the residual forms included. A method added to the registry
// without an entry here fails the coverage test below.
const CASES: Array<[string, Record<string, unknown>]> = [
  ["dense", {}],
  ["mcnc", { k: 3, d: 20, hidden: [8], L: 4 }],
  ["mcnc", { k: 3, d: 24, hidden: [8, 6], L: 2, residual: true, m: 2 }],
  ["lora", { rank: 2 }],
  ["lora", { rank: 3, residual: true, compress: "w1" }],
  ["lora", { ranks: [2, 1] }],
  ["mcnc-lora", { rank: 2, k: 3, d: 16, hidden: [8], L: 4 }],
  ["nola", { rank: 2, bases: 5 }],
  ["pranc", { bases: 7 }],
  ["pranc", { bases: 3, d: 500 }],
  ["prune", { sparsity: 0.7 }],
  ["prune", { sparsity: 0.5, "prune-scope": "layer", compress: "w1" }],
  ["quant", { bits: 4 }],
  ["quant", { bits: 2, group: 5 }],
  ["quant-lora", { bits: 3, rank: 2 }],
  ["prune-lora", { sparsity: 0.5, rank: 2 }],
  ["tt", { sites: 2, bond: 2 }],
  ["tt", { sites: 3, bond: 3, compress: "w1" }],
  ["vq", { codebooks: 2, "code-bits": 4, group: 4 }],
];

/** Methods whose gradient is defined, not measured: quantisation passes it straight through. */
const STRAIGHT_THROUGH = new Set(["quant"]);

// jax-js evaluates sin in float64 only to float32 accuracy: see generator.test.ts.
const FD_STEP = 1e-3;
const FD_TOL = 2e-3;

test("every registered method has a gradient case", () => {
  assert.deepEqual([...new Set(CASES.map(([m]) => m))].sort(), methodNames().sort());
});

const model = buildModel({ name: "mlp", input: [4, 4, 1], classes: 3 });

for (const [name, values] of CASES) {
  test(`${name} ${JSON.stringify(values)}: gradients through its stages match finite differences (float64)`, async () => {
    const method = findMethod(name)!;
    const config = method.configure(values, model.specs);
    const shapes = method.trainableShapes(config, model.specs);
    const init = await method.init(config, model.specs, 11);
    assert.deepEqual(Object.keys(init).sort(), shapes.map((s) => s.name).sort(), "init gives exactly the stored tensors");
    // Move off the initial point (zero factors would zero some gradients).
    const host64 = Object.fromEntries(shapes.map((s) => [s.name, Float64Array.from(init[s.name]!, (v, i) => v + 0.1 * Math.sin(1 + i))]));
    const frozen64 = tree.map((a: np.Array) => a.astype(np.float64), await method.frozen(config, model.specs, 11)) as Params;
    const stages = method.stages(config, model.specs);
    const probe = np.array(new Float64Array(countParams(model.specs)).map((_, i) => Math.sin(i * 0.37)));
    const objective = (t: Params) => {
      let carry: Params = {};
      for (const s of stages) carry = s(carry, tree.ref(t), tree.ref(frozen64));
      tree.dispose(t);
      let total: np.Array = np.zeros([], { dtype: np.float64 });
      let at = 0;
      for (const spec of model.specs) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        total = total.add(carry[spec.name]!.reshape([n]).mul(probe.ref.slice([at, at + n])).sum());
        at += n;
      }
      return total;
    };
    const toTree = (h: Record<string, Float64Array>) => Object.fromEntries(shapes.map((s) => [s.name, np.array(h[s.name]!).reshape(s.shape)])) as Params;
    const g = grad(objective)(toTree(host64)) as Params;
    if (STRAIGHT_THROUGH.has(name)) {
      // The gradient of every leaf is the probe itself, as if the quantiser were the identity.
      const probeHost = (await probe.data()) as Float64Array;
      let at = 0;
      for (const spec of model.specs) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        assertClose((await g[spec.name]!.data()) as Float64Array, probeHost.subarray(at, at + n), 1e-12, `${name} ${spec.name}`);
        at += n;
      }
      return;
    }
    for (const s of shapes) {
      const analytic = (await g[s.name]!.data()) as Float64Array;
      // Up to 40 coordinates per tensor keep the test quick on the larger ones.
      const idx = [...Array(Math.min(40, analytic.length)).keys()].map((j) => Math.floor((j * analytic.length) / Math.min(40, analytic.length)));
      const numeric = await centralDifference(
        async (x) => {
          const v = Float64Array.from(host64[s.name]!);
          idx.forEach((i, j) => (v[i] = x[j]!));
          return ((await objective(toTree({ ...host64, [s.name]: v })).data()) as Float64Array)[0]!;
        },
        Float64Array.from(idx, (i) => host64[s.name]![i]!),
        FD_STEP,
      );
      assertClose(Float64Array.from(idx, (i) => analytic[i]!), numeric, FD_TOL, `${name} ${s.name}`);
    }
  });

  test(`${name} ${JSON.stringify(values)}: a file round trip rebuilds the same weights`, async () => {
    const method = findMethod(name)!;
    const config = method.configure(values, model.specs);
    const trainable = await method.init(config, model.specs, 5);
    const names = model.specs.map((s) => s.name);
    const trained = await toHost(names, materializer(method, config, model.specs)(toDevice(method.trainableShapes(config, model.specs), trainable), await method.frozen(config, model.specs, 5)));
    // A codec's file holds an encoding of the weights: it must give back exactly what the in-memory codec gives.
    const stored = method.codec ? trained : trainable;
    const bytes = encodeModelFile({ model: { name: "mlp", input: [4, 4, 1], classes: 3 }, method: { name, config }, seed: 5, trainable: stored }, model, method);
    const loaded = decodeModelFile(bytes);
    assert.deepEqual(loaded.config, config);
    const direct = roundTrip(method, config, model.specs, trained);
    const rebuilt = await toHost(names, await rebuildParams(loaded));
    for (const n of names) assert.ok(rebuilt[n]!.every((v, i) => Object.is(v, direct[n]![i])), n);
  });
}

test("lora: weights are down @ up, start at the standard scale, and ranks are checked per layer", async () => {
  const big = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const lora = findMethod("lora")!;
  const config = lora.configure({ rank: 8, compress: "w1" }, big.specs);
  const init = await lora.init(config, big.specs, 0);
  const w = await toHost(["w1"], materializer(lora, config, big.specs)(toDevice(lora.trainableShapes(config, big.specs), init), {}));
  const [down, up] = [init["w1.down"]!, init["w1.up"]!];
  for (const [i, j] of [[0, 0], [5, 17], [783, 255]] as const) {
    let s = 0;
    for (let r = 0; r < 8; r++) s += down[i * 8 + r]! * up[r * 256 + j]!;
    assert.ok(Math.abs(w.w1![i * 256 + j]! - s) < 1e-6);
  }
  const variance = w.w1!.reduce((a, v) => a + v * v, 0) / w.w1!.length;
  assert.ok(Math.abs(variance * 3 * 784 - 1) < 0.1, `variance ratio ${variance * 3 * 784}`);
  assert.throws(() => lora.configure({ rank: 11 }, big.specs), /rank 11 is larger than layer w2 \(256x10\) allows: 1\.\.10/);
  assert.throws(() => lora.configure({ rank: 2, compress: "b1" }, big.specs), /b1 has one axis/);
  assert.throws(() => findMethod("mcnc-lora")!.configure({ rank: 8, compress: "w1", ratio: 2 }, big.specs), /already stores fewer/);
});

test("mcnc-lora: --ratio counts against the model's parameters", () => {
  const big = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const method = findMethod("mcnc-lora")!;
  for (const ratio of [100, 300]) {
    const config = method.configure({ rank: 8, ratio }, big.specs);
    const stored = countParams(method.trainableShapes(config, big.specs));
    assert.ok(countParams(big.specs) / stored >= ratio, `${countParams(big.specs) / stored} < ${ratio}`);
  }
});

test("lora and mcnc-lora train through the common loop (small subset)", async () => {
  const { loadDataset } = await import("../src/data/dataset.js");
  const { train } = await import("../src/train/trainer.js");
  const data = loadDataset(undefined, { trainLimit: 2048, testLimit: 500 });
  const mlp = buildModel({ name: "mlp", input: data.imageShape, classes: data.numClasses });
  for (const [name, values] of [
    ["lora", { rank: 4 }],
    ["mcnc-lora", { rank: 8, ratio: 100 }],
    ["nola", { rank: 4, ratio: 100 }],
  ] as const) {
    const method = findMethod(name)!;
    const r = await train(mlp, method, method.configure(values, mlp.specs), imageTask(data, mlp), { epochs: 1, batch: 64, seed: 0 });
    assert.ok(r.history[0]!.loss < 2.0, `${name}: mean loss ${r.history[0]!.loss} (chance: 2.30)`);
    assert.ok(r.metrics.accuracy! > 0.45, `${name}: accuracy ${r.metrics.accuracy!}`);
  }
});

test("mcnc's default layout keeps weight leaves shorter than a chunk dense, within the budget, or else compresses them all", () => {
  const mcnc = findMethod("mcnc")!;
  const lenet = buildModel({ name: "lenet", input: [28, 28, 1], classes: 10 });
  const mlp = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const stored = (model: typeof lenet, values: Record<string, unknown>) => {
    const config = mcnc.configure(values, model.specs);
    return { config: config as { d: number; compress: string[] }, stored: countParams(mcnc.trainableShapes(config, model.specs)) };
  };
  // LeNet at 100x: the 288-weight first kernel and the 1,280-weight classifier stay dense, the budget holds.
  const lenet100 = stored(lenet, { ratio: 100 });
  assert.deepEqual(lenet100.config.compress, ["c2", "w1"]);
  assert.ok(lenet100.stored <= countParams(lenet.specs) / 100, String(lenet100.stored));
  // Naming the leaves (or 'weights') is taken as given.
  assert.deepEqual(stored(lenet, { ratio: 100, compress: "weights" }).config.compress, ["c1", "c2", "w1", "w2"]);
  // The MLP at 100x: both weight matrices are longer than a chunk of 1,960.
  assert.deepEqual(stored(mlp, { ratio: 100 }).config, { ...stored(mlp, { ratio: 100, compress: "weights" }).config });
  // At 200x the MLP's classifier (2,560) is shorter than a chunk (4,624) but the budget (1,017) cannot keep it dense.
  const mlp200 = stored(mlp, { ratio: 200 });
  assert.deepEqual(mlp200.config.compress, ["w1", "w2"]);
  assert.ok(mlp200.stored <= countParams(mlp.specs) / 200);
});

test("the default batch halves, down to 32, until an epoch has 64 steps", async () => {
  const { defaultBatch } = await import("../src/train/tasks.js");
  const classifier = { kind: "classifier" as const };
  assert.deepEqual([60_000, 10_000, 8_000, 4_000, 2_000, 100].map((n) => defaultBatch(classifier, n)), [128, 128, 64, 32, 32, 32]);
  assert.equal(defaultBatch(classifier), 128);
  assert.equal(defaultBatch({ kind: "language" }, 2_000), 32);
});
