import assert from "node:assert/strict";
import { test } from "node:test";
import { grad, numpy as np, tree } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import { chunkSizeForRatio, configureMcnc, layoutOf } from "../src/methods/mcnc/config.js";
import { generate, generatorDims, generatorWeights } from "../src/methods/mcnc/generator.js";
import { findMethod, materializer } from "../src/methods/index.js";
import { buildModel } from "../src/model/models.js";
import { countParams, toDevice, toHost } from "../src/model/params.js";
import { centralDifference, assertClose } from "./numeric.js";

await initEngine();

// jax-js evaluates sin in float64 only to float32 accuracy (about 3e-8), which sets the floor for
// central differences: a step of 1e-3 keeps that noise near 1e-5 and the truncation error small. A
// wrong gradient is off by order one, far above this tolerance.
const FD_STEP = 1e-3;
const FD_TOL = 2e-3;

test("generator rows lie on the unit sphere", async () => {
  const dims = generatorDims(8, [32, 32], 300);
  const weights = (await generatorWeights(1, dims)).map((w, i) => np.array(w).reshape([dims[i]!, dims[i + 1]!]));
  const latents = np.array(new Float32Array(50 * 8).map((_, i) => Math.sin(i * 12.9898) * 1.3)).reshape([50, 8]);
  const out = (await generate(latents, weights, 20).data()) as Float32Array;
  for (let r = 0; r < 50; r++) {
    let sq = 0;
    for (let j = 0; j < 300; j++) sq += out[r * 300 + j]! ** 2;
    assert.ok(Math.abs(Math.sqrt(sq) - 1) < 1e-5, `row ${r} has norm ${Math.sqrt(sq)}`);
  }
});

test("gradient through the generator matches finite differences (float64)", async () => {
  const dims = generatorDims(4, [16], 40);
  const weights = (await generatorWeights(3, dims)).map((w, i) => np.array(w).reshape([dims[i]!, dims[i + 1]!]).astype(np.float64));
  const target = np.array(new Float64Array(6 * 40).map((_, i) => Math.cos(i))).reshape([6, 40]);
  const f = (a: np.Array) => generate(a, tree.ref(weights), 5).mul(target.ref).sum();
  const a0 = new Float64Array(6 * 4).map((_, i) => Math.sin(i * 1.7) * 0.8);
  const g = (await grad(f)(np.array(a0).reshape([6, 4])).data()) as Float64Array;
  const numeric = await centralDifference(async (x) => ((await f(np.array(x).reshape([6, 4])).data()) as Float64Array)[0]!, a0, FD_STEP);
  assertClose(g, numeric, FD_TOL);
});

test("plain MCNC starts at the standard initialisation's scale; residual MCNC starts at theta_0", async () => {
  const model = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const method = findMethod("mcnc")!;
  const base = await findMethod("dense")!.init({}, model.specs, 0);
  for (const residual of [false, true]) {
    const config = method.configure({ residual }, model.specs);
    const init = await method.init(config, model.specs, 0);
    const params = await toHost(
      model.specs.map((s) => s.name),
      materializer(method, config, model.specs)(toDevice(method.trainableShapes(config, model.specs), init), await method.frozen(config, model.specs, 0)),
    );
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const w1 = params.w1!;
    if (residual) assert.deepEqual(Array.from(w1.subarray(0, 100)), Array.from(base.w1!.subarray(0, 100)));
    else assert.ok(Math.abs(rms(w1) / rms(base.w1!) - 1) < 0.05, `rms ratio ${rms(w1) / rms(base.w1!)}`);
    assert.deepEqual(Array.from(params.b1!), Array.from(base.b1!));
  }
});

test("--ratio picks the smallest chunk size that reaches the ratio", () => {
  const model = buildModel({ name: "lenet", input: [28, 28, 1], classes: 10 });
  const total = countParams(model.specs);
  for (const ratio of [50, 90, 100, 300]) {
    const config = configureMcnc({ ratio }, model.specs);
    const stored = (d: number) => {
      const { chunks, kept } = layoutOf({ d, compress: config.compress }, model.specs);
      return chunks * (config.k + 1) + kept;
    };
    assert.ok(total / stored(config.d) >= ratio, `d=${config.d} misses ${ratio}x`);
    assert.equal(config.d % 8, 0, "aligned chunk size");
    const smaller = config.d - 8;
    assert.ok(total / stored(smaller) < ratio || stored(smaller) === stored(config.d), `d=${smaller} would also reach ${ratio}x`);
  }
  assert.throws(() => chunkSizeForRatio(1e6, 16, 1, config().compress, model.specs), /out of reach/);
  function config() {
    return configureMcnc({}, model.specs);
  }
});

test("configuration errors name the flag and the allowed range", () => {
  const specs = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 }).specs;
  assert.throws(() => configureMcnc({ k: 0 }, specs), /--k must be an integer from 1/);
  assert.throws(() => configureMcnc({ k: 32, d: 16 }, specs), /--k \(32\) must be smaller than the chunk size/);
  assert.throws(() => configureMcnc({ L: -1 }, specs), /--L must be a number/);
  assert.throws(() => configureMcnc({ ratio: 100, d: 1000 }, specs), /--d or --ratio/);
  assert.throws(() => configureMcnc({ compress: "w9" }, specs), /no parameter 'w9'/);
  assert.throws(() => configureMcnc({ hidden: [0] }, specs), /--hidden/);
});

