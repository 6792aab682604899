/**
 * Layers that train differently from how they evaluate: dropout (seeded noise, inverted scaling) and
 * batch normalisation (the batch's moments in training, statistics measured after training and stored).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { numpy as np } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import type { Dataset } from "../src/data/dataset.js";
import { buildModel, parseDescription } from "../src/model/models.js";
import type { Params } from "../src/model/params.js";
import { imageTask } from "../src/train/tasks.js";
import { batchStatistics, stepNoise } from "../src/train/train-mode.js";
import { putAll, readAll } from "../src/engine/program.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";
import { assertClose, checkModelGradients } from "./numeric.js";

await initEngine();

const pseudo = (n: number, s: number) => new Float64Array(n).map((_, i) => Math.sin(i * 12.9898 + s) * 0.5);
const tree64 = (model: ReturnType<typeof buildModel>, h: Record<string, Float64Array>): Params => Object.fromEntries(model.specs.map((s) => [s.name, np.array(h[s.name]!).reshape(s.shape)]));

test("dropout: the identity in evaluation; in training each value is kept where its noise reaches the rate, scaled by 1 / (1 - rate); gradients under fixed noise match finite differences", async () => {
  const model = buildModel(parseDescription({ name: "sequential", input: [2, 3, 1], classes: 2, layers: ["flatten", { type: "dropout", rate: 0.25 }, { type: "dense", units: 2 }] }, "spec"));
  assert.deepEqual(model.noise, [{ name: "l1", shape: [6] }]);
  const [B, F] = [4, 6];
  const x = pseudo(B * F, 1);
  const u = Float64Array.from({ length: B * F }, (_, i) => (i * 0.37) % 1);
  const p = { "l2.weight": pseudo(F * 2, 2), "l2.bias": pseudo(2, 3) };
  const run = async (training: boolean) => (await model.apply(tree64(model, p), np.array(x).reshape([B, 2, 3, 1]), undefined, training ? { noise: { l1: np.array(u).reshape([B, F]) } } : undefined).data()) as Float64Array;
  const logits = (kept: (i: number) => number) =>
    Float64Array.from({ length: B * 2 }, (_, k) => {
      const [n, o] = [Math.floor(k / 2), k % 2];
      let s = p["l2.bias"][o]!;
      for (let f = 0; f < F; f++) s += x[n * F + f]! * kept(n * F + f) * p["l2.weight"][f * 2 + o]!;
      return s;
    });
  assertClose(await run(false), logits(() => 1), 1e-12);
  assertClose(await run(true), logits((i) => (u[i]! >= 0.25 ? 1 / 0.75 : 0)), 1e-12);
  await checkModelGradients(model, p, np.array(x).reshape([B, 2, 3, 1]), np.array(pseudo(B * 2, 4)).reshape([B, 2]), 1e-6, 1e-6, () => ({ noise: { l1: np.array(u).reshape([B, F]) } }));
  // A step's noise is a function of (seed, step, layer) alone, uniform on [0, 1).
  const draw = async (seed: number, t: number) => (await (await stepNoise(model, seed, t, 64)).l1!.data()) as Float32Array;
  const [a, again, next, other] = [await draw(0, 3), await draw(0, 3), await draw(0, 4), await draw(1, 3)];
  assert.deepEqual(a, again);
  assert.notDeepEqual(a, next);
  assert.notDeepEqual(a, other);
  assert.ok(a.every((v) => v >= 0 && v < 1));
  assert.ok(Math.abs(a.filter((v) => v < 0.25).length / a.length - 0.25) < 0.06);
});

test("batch normalisation: training normalises by the batch's moments, evaluation by the stored statistics; gradients both ways match finite differences", async () => {
  const spec = { name: "sequential", input: [3, 2, 2], classes: 2, layers: [{ type: "conv", channels: 3, useBias: false }, { type: "batchnorm" }, "relu", "flatten", { type: "dense", units: 2 }] };
  const model = buildModel(parseDescription(spec, "spec"));
  assert.deepEqual(model.specs.filter((s) => s.name.startsWith("l1.")).map((s) => [s.name, s.role]), [["l1.gain", "gain"], ["l1.bias", "bias"], ["l1.mean", "statistic"], ["l1.var", "statistic"]]);
  const p = Object.fromEntries(model.specs.map((s, j) => [s.name, Float64Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => (s.name === "l1.var" ? 1.5 : s.role === "gain" ? 1 : 0) + 0.4 * Math.sin(i * 1.7 + j))]));
  const [B, C] = [4, 3];
  const x = np.array(pseudo(B * 12, 5).map((v) => v * 3)).reshape([B, 3, 2, 2]);
  const probe = np.array(pseudo(B * 2, 6)).reshape([B, 2]);
  await checkModelGradients(model, p, x, probe, 1e-6, 1e-5);
  await checkModelGradients(model, p, x, probe, 1e-6, 1e-5, () => ({}));
  // The normalised conv outputs, taken out of the network: a batchnorm on the input itself.
  const bn = buildModel(parseDescription({ name: "sequential", input: [2, 2, C], classes: 12, layers: [{ type: "batchnorm" }, "flatten"] }, "spec"));
  const v = pseudo(B * 12, 7).map((a, i) => a * (1 + (i % C)) + (i % C));
  const h = { "l0.gain": Float64Array.of(1, 2, 3), "l0.bias": Float64Array.of(0, 1, -1), "l0.mean": Float64Array.of(0.5, -1, 2), "l0.var": Float64Array.of(4, 0.25, 1) };
  const out = async (training?: object) => (await bn.apply(tree64(bn, h), np.array(v).reshape([B, 2, 2, C]), undefined, training).data()) as Float64Array;
  const normalised = (mean: number[], variance: number[]) => v.map((a, i) => ((a - mean[i % C]!) / Math.sqrt(variance[i % C]! + 1e-5)) * h["l0.gain"][i % C]! + h["l0.bias"][i % C]!);
  assertClose(await out(), normalised([...h["l0.mean"]], [...h["l0.var"]]), 1e-9);
  const moments = (c: number) => {
    const of = v.filter((_, i) => i % C === c);
    const m = of.reduce((a, b) => a + b, 0) / of.length;
    return [m, of.reduce((a, b) => a + (b - m) ** 2, 0) / of.length] as const;
  };
  const batch = [0, 1, 2].map(moments);
  assertClose(await out({}), normalised(batch.map((m) => m[0]), batch.map((m) => m[1])), 1e-9);
});

test("statistics are measured over the training samples: a batch normalisation on the input gets each channel's mean and variance", async () => {
  const model = buildModel(parseDescription({ name: "sequential", input: [2, 2, 3], classes: 2, layers: [{ type: "batchnorm" }, "flatten", { type: "dense", units: 2 }] }, "spec"));
  const count = 64;
  const x = Float32Array.from({ length: count * 12 }, (_, i) => Math.fround(Math.sin(i * 0.7) * (1 + (i % 3)) + (i % 3)));
  const y = Uint8Array.from({ length: count }, (_, i) => i % 2);
  const split = { x, y, count };
  const data: Dataset = { name: "synthetic", imageShape: [2, 2, 3], numClasses: 2, train: split, test: split, normalisation: { mean: 0, std: 1 }, unit: "images" };
  const statistics = batchStatistics(model, model.specs, imageTask(data, model), 16, 0)!;
  const zeros = () => Object.fromEntries(model.specs.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]));
  // 64 samples at batch 16: four batches, one epoch's order, every sample once; the file's copy goes where the method keeps the leaf.
  const measured = await readAll(await statistics.measured(putAll(model.specs, zeros())));
  const [produced, stored] = [zeros(), { "keep/l0.mean": new Float32Array(3), "keep/l0.var": new Float32Array(3) }];
  await statistics.store(produced, undefined, stored, { name: "mcnc" });
  assert.deepEqual([produced["l0.mean"], produced["l0.var"]], [stored["keep/l0.mean"], stored["keep/l0.var"]]);
  assert.deepEqual([produced["l0.mean"], produced["l0.var"]], [measured["l0.mean"], measured["l0.var"]]);
  await assert.rejects(statistics.store(zeros(), undefined, {}, { name: "prune" }), /--method prune does not store l0.mean as it is/);
  const stats = measured;
  for (let c = 0; c < 3; c++) {
    const of = Array.from(x.filter((_, i) => i % 3 === c), Number);
    const mean = of.reduce((a, b) => a + b, 0) / of.length;
    assert.ok(Math.abs(stats["l0.mean"]![c]! - mean) < 1e-5, `mean of channel ${c}`);
    assert.ok(Math.abs(stats["l0.var"]![c]! - of.reduce((a, b) => a + (b - mean) ** 2, 0) / of.length) < 1e-4, `variance of channel ${c}`);
  }
});

test("train: a spec with batch normalisation and dropout stores its measured statistics, evaluates as it trained, repeats exactly for a seed; statistics are never compressed", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-train-mode-"));
  const spec = join(dir, "spec.json");
  writeFileSync(spec, JSON.stringify({ layers: [{ type: "conv", channels: 4, stride: 2 }, { type: "batchnorm" }, "relu", { type: "dropout", rate: 0.2 }, "flatten", { type: "dense", units: 10 }] }));
  const run = (out: string, ...extra: string[]) => mcnc("train", "--model", spec, "--dataset", "fashion-mnist-small", "--limit", "512", "--test-limit", "300", "--epochs", "1", "--out", join(dir, out), "--json", ...extra);
  const evaluate = (file: string) => lastJson(mcnc("eval", join(dir, file), "--dataset", "fashion-mnist-small", "--test-limit", "300", "--json").stdout).accuracy;
  const dense = run("a.mcnc", "--method", "dense");
  assert.equal(dense.code, 0, dense.stderr);
  const trained = lastJson(dense.stdout);
  assert.ok((trained.accuracy as number) > 0.5, `accuracy ${trained.accuracy}`);
  assert.equal(evaluate("a.mcnc"), trained.accuracy);
  assert.deepEqual(readFileSync(join(dir, "a.mcnc")), (run("b.mcnc", "--method", "dense"), readFileSync(join(dir, "b.mcnc"))));
  // Every leaf compressed but the statistics, which MCNC keeps as they are.
  const compressed = run("m.mcnc", "--method", "mcnc", "--compress", "all");
  assert.equal(compressed.code, 0, compressed.stderr);
  assert.match(mcnc("inspect", join(dir, "m.mcnc")).stdout, /keep\/l1\.mean\[4\]:f32 keep\/l1\.var\[4\]:f32/);
  assert.equal(evaluate("m.mcnc"), lastJson(compressed.stdout).accuracy);
  assertCleanError(run("c.mcnc", "--method", "mcnc", "--compress", "l1.var"), /batch-normalisation statistic/);
});
