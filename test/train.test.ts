import assert from "node:assert/strict";
import { test } from "node:test";
import { loadDataset } from "../src/data/dataset.js";
import { initEngine } from "../src/engine/engine.js";
import { decodeModelFile, encodeModelFile, timedRebuild } from "../src/format/model-file.js";
import { findMethod } from "../src/methods/index.js";
import { buildModel } from "../src/model/models.js";
import { countParams } from "../src/model/params.js";
import { imageTask } from "../src/train/tasks.js";
import { train } from "../src/train/trainer.js";

await initEngine();

const data10k = loadDataset(undefined, { trainLimit: 10_000, testLimit: 2_000 });

test("MCNC at 100x on a 10k subset: one epoch lands well above chance, and the file rebuilds it exactly", async () => {
  const model = buildModel({ name: "mlp", input: data10k.imageShape, classes: data10k.numClasses });
  const mcnc = findMethod("mcnc")!;
  const config = mcnc.configure({ ratio: 100 }, model.specs);
  const result = await train(model, mcnc, config, imageTask(data10k, model), { epochs: 1, batch: 128, seed: 0 });
  // Chance is 0.1; this run measures about 0.75 (docs/results.md).
  assert.ok(result.metrics.accuracy! > 0.65, `accuracy ${result.metrics.accuracy!}`);
  const stored = countParams(mcnc.trainableShapes(config, model.specs));
  assert.ok(countParams(model.specs) / stored >= 100);

  const bytes = encodeModelFile({ model: { name: "mlp", input: data10k.imageShape, classes: 10 }, method: { name: "mcnc", config }, seed: 0, trainable: result.trainable }, model, mcnc);
  const rebuilt = await timedRebuild(decodeModelFile(bytes), 1);
  for (const s of model.specs) {
    assert.ok(rebuilt.params[s.name]!.every((v, i) => Object.is(v, result.params[s.name]![i])), `${s.name} differs after the round trip`);
  }
});

test("dense training through the same loop reaches the reference's range", async () => {
  const model = buildModel({ name: "mlp", input: data10k.imageShape, classes: data10k.numClasses });
  const dense = findMethod("dense")!;
  const result = await train(model, dense, {}, imageTask(data10k, model), { epochs: 1, batch: 128, seed: 0 });
  assert.ok(result.metrics.accuracy! > 0.75, `accuracy ${result.metrics.accuracy!}`);
  assert.equal(result.history.length, 1);
  // The rate is what it says: every training sample of the epoch over the seconds spent training (not evaluating).
  assert.equal(result.steps, Math.floor(data10k.train.count / 128));
  assert.ok(Math.abs(result.rate - (result.steps * 128) / result.trainSeconds) <= 1e-6 * result.rate, `${result.rate} against ${(result.steps * 128) / result.trainSeconds}`);
});

test("training is deterministic for a seed and changes with it", async () => {
  const small = loadDataset(undefined, { trainLimit: 1024, testLimit: 200 });
  const model = buildModel({ name: "mlp", input: small.imageShape, classes: small.numClasses });
  const mcnc = findMethod("mcnc")!;
  const config = mcnc.configure({ k: 8, d: 800, hidden: [32] }, model.specs);
  const run = (seed: number) => train(model, mcnc, config, imageTask(small, model), { epochs: 2, batch: 64, seed });
  const [a, b, c] = [await run(3), await run(3), await run(4)];
  assert.deepEqual(Array.from(a.trainable.alpha!), Array.from(b.trainable.alpha!));
  assert.deepEqual(Array.from(a.params.w1!), Array.from(b.params.w1!));
  assert.notDeepEqual(Array.from(a.trainable.alpha!), Array.from(c.trainable.alpha!));
});

test("LeNet with MCNC trains through convolutions (small subset)", async () => {
  const small = loadDataset(undefined, { trainLimit: 1024, testLimit: 500 });
  const model = buildModel({ name: "lenet", input: small.imageShape, classes: small.numClasses });
  const mcnc = findMethod("mcnc")!;
  const config = mcnc.configure({ ratio: 100 }, model.specs);
  const result = await train(model, mcnc, config, imageTask(small, model), { epochs: 1, batch: 64, seed: 0 });
  assert.ok(result.history[0]!.loss < 2.25, `loss ${result.history[0]!.loss} did not fall below chance (ln 10 = 2.30)`);
  assert.ok(result.metrics.accuracy! > 0.25, `accuracy ${result.metrics.accuracy!}`);
});
