import assert from "node:assert/strict";
import { test } from "node:test";
import { grad, nn, numpy as np } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import { LAYER_TYPE_NAMES } from "../src/model/layer-types.js";
import { conv3x3, maxPool2 } from "../src/model/layers.js";
import { buildModel, parseDescription } from "../src/model/models.js";
import { countParams, initParams } from "../src/model/params.js";
import { assertClose, checkModelGradients } from "./numeric.js";

await initEngine();

const pseudo = (n: number, s: number) => new Float64Array(n).map((_, i) => Math.sin(i * 12.9898 + s) * 0.5);

// C below 4 takes the per-tap path, 4 and more im2col (model/layers.ts): both are checked.
for (const C of [1, 3, 5]) test(`conv3x3 equals a direct convolution with zero padding (NHWC, HWIO), ${C} input channels`, async () => {
  const [B, H, W, O] = [2, 5, 4, 2];
  const x = pseudo(B * H * W * C, 1);
  const w = pseudo(9 * C * O, 2);
  const b = pseudo(O, 3);
  const got = (await conv3x3(np.array(x).reshape([B, H, W, C]), np.array(w).reshape([3, 3, C, O]), np.array(b)).data()) as Float64Array;
  const want = new Float64Array(B * H * W * O);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let o = 0; o < O; o++) {
          let s = b[o]!;
          for (let dy = 0; dy < 3; dy++)
            for (let dx = 0; dx < 3; dx++)
              for (let c = 0; c < C; c++) {
                const y = i + dy - 1;
                const xx = j + dx - 1;
                if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                s += x[((n * H + y) * W + xx) * C + c]! * w[((dy * 3 + dx) * C + c) * O + o]!;
              }
          want[((n * H + i) * W + j) * O + o] = s;
        }
  assertClose(got, want, 1e-12);
});

test("maxPool2 takes the largest of each 2x2 block", async () => {
  const x = pseudo(1 * 4 * 4 * 2, 4);
  const got = (await maxPool2(np.array(x).reshape([1, 4, 4, 2])).data()) as Float64Array;
  const want: number[] = [];
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 2; j++)
      for (let c = 0; c < 2; c++) {
        let m = -Infinity;
        for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) m = Math.max(m, x[((2 * i + dy) * 4 + (2 * j + dx)) * 2 + c]!);
        want.push(m);
      }
  assertClose(got, want, 1e-15);
});

// jax-js computes exp/log/sin in float64 only to float32 accuracy, so finite differences of a
// cross-entropy loss drown in that noise, and large steps cross ReLU/max-pool kinks. The networks
// are therefore checked under a polynomial loss of their logits (exact in float64, tiny steps), and
// the cross-entropy gradient separately against its closed form.
for (const name of ["mlp", "lenet"] as const) {
  test(`${name}: gradients match finite differences on sampled coordinates (float64)`, async () => {
    const model = buildModel({ name, input: [8, 8, 1], classes: 3 });
    const host = await initParams(model.specs, 5);
    const params64 = Object.fromEntries(model.specs.map((s) => [s.name, Float64Array.from(host[s.name]!).map((v, i) => v + 0.05 * Math.sin(i))]));
    const x = np.array(pseudo(4 * 64, 6).map((v) => v * 4)).reshape([4, 8, 8, 1]);
    const probe = np.array(pseudo(4 * 3, 7)).reshape([4, 3]);
    await checkModelGradients(model, params64, x, probe, 1e-6, 1e-6);
  });
}

test("cross-entropy gradient is softmax minus the one-hot labels, over the batch", async () => {
  const logits = pseudo(4 * 3, 8).map((v) => v * 6);
  const labels = [0, 2, 1, 2];
  const y = nn.oneHot(np.array(new Int32Array(labels)), 3).astype(np.float64);
  const ce = (l: np.Array) => nn.logSoftmax(l, -1).mul(y.ref).sum().mul(-1 / 4);
  const g = (await grad(ce)(np.array(logits).reshape([4, 3])).data()) as Float64Array;
  const want: number[] = [];
  for (let r = 0; r < 4; r++) {
    const row = [0, 1, 2].map((c) => Math.exp(logits[r * 3 + c]!));
    const z = row.reduce((a, b) => a + b, 0);
    row.forEach((e, c) => want.push((e / z - (c === labels[r] ? 1 : 0)) / 4));
  }
  assertClose(g, want, 1e-6);
});

test("the networks have the reference peer's sizes", () => {
  assert.equal(countParams(buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 }).specs), 203530);
  assert.equal(countParams(buildModel({ name: "lenet", input: [28, 28, 1], classes: 10 }).specs), 421642);
  assert.throws(() => buildModel({ name: "lenet", input: [30, 30, 1], classes: 10 }), /divisible by 4/);
  assert.throws(() => parseDescription({ name: "resnet", input: [28, 28, 1], classes: 10 }), /unknown model 'resnet'/);
});

// A network described as data: shapes followed and checked before any parameter exists.
const SPEC = { name: "sequential", input: [8, 8, 1], classes: 3, layers: [{ type: "conv3x3", channels: 4 }, "relu", "maxpool2", "flatten", { type: "dense", units: 6 }, "relu", { type: "dense", units: 3 }] };
// tanh and gelu are smooth but computed to float32 accuracy: checked apart, with larger steps (no kinks to cross).
const SMOOTH = { ...SPEC, layers: ["flatten", { type: "dense", units: 5 }, "tanh", { type: "dense", units: 4 }, "gelu", { type: "dense", units: 3 }] };

test("sequential: a spec's layers, their gradients against finite differences, and the MLP as a spec", async () => {
  const model = buildModel(parseDescription(SPEC, "spec"));
  assert.deepEqual(model.specs.map((s) => [s.name, s.shape]), [["l0.weight", [3, 3, 1, 4]], ["l0.bias", [4]], ["l4.weight", [64, 6]], ["l4.bias", [6]], ["l6.weight", [6, 3]], ["l6.bias", [3]]]);
  const host = await initParams(model.specs, 5);
  const params64 = Object.fromEntries(model.specs.map((s) => [s.name, Float64Array.from(host[s.name]!).map((v, i) => v + 0.05 * Math.sin(i))]));
  const x = np.array(pseudo(4 * 64, 6).map((v) => v * 4)).reshape([4, 8, 8, 1]);
  await checkModelGradients(model, params64, x, np.array(pseudo(4 * 3, 7)).reshape([4, 3]), 1e-6, 1e-6);
  const smooth = buildModel(parseDescription(SMOOTH, "spec"));
  const s64 = Object.fromEntries(smooth.specs.map((s, j) => [s.name, Float64Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => 0.3 * Math.sin(i * 1.3 + j))]));
  await checkModelGradients(smooth, s64, np.array(pseudo(4 * 64, 8)).reshape([4, 8, 8, 1]), np.array(pseudo(4 * 3, 9)).reshape([4, 3]), 1e-3, 2e-3);
  // A layer type added to the table is added to these specs too.
  const checked = new Set([...SPEC.layers, ...SMOOTH.layers].map((l) => (typeof l === "string" ? l : l.type)));
  assert.deepEqual(LAYER_TYPE_NAMES.filter((t) => !checked.has(t)), []);
  // The MLP written as a spec computes the MLP's logits from the same weights.
  const mlp = buildModel({ name: "mlp", input: [8, 8, 1], classes: 3 });
  const asSpec = buildModel(parseDescription({ ...SPEC, layers: ["flatten", { type: "dense", units: 256 }, "relu", { type: "dense", units: 3 }] }, "spec"));
  const w = await initParams(mlp.specs, 9);
  const tree = (m: typeof mlp, names: string[]) => Object.fromEntries(m.specs.map((s, i) => [s.name, np.array(w[names[i]!]!).reshape(s.shape)]));
  const input = () => np.array(Float32Array.from(pseudo(2 * 64, 3))).reshape([2, 8, 8, 1]);
  const a = (await mlp.apply(tree(mlp, ["w1", "b1", "w2", "b2"]), input()).data()) as Float32Array;
  const b = (await asSpec.apply(tree(asSpec, ["w1", "b1", "w2", "b2"]), input()).data()) as Float32Array;
  assert.deepEqual(b, a);
});

test("sequential: specs that do not fit, or are absurdly large, are refused before anything is allocated", () => {
  const refuse = (layers: unknown[], pattern: RegExp, extra: Record<string, unknown> = {}) => assert.throws(() => parseDescription({ ...SPEC, layers, ...extra }, "spec"), pattern);
  refuse([{ type: "dense", units: 3 }], /needs features: put a flatten before it/);
  refuse(["flatten", { type: "conv3x3", channels: 2 }], /needs an image, and comes after a flatten/);
  refuse(["flatten", { type: "dense", units: 5 }], /give \[5\], not the 3 class scores/);
  refuse([{ type: "conv3x3", channels: 1 }, "maxpool2", "maxpool2", "maxpool2", "maxpool2"], /even sides, got 1x1x1/);
  refuse(["flatten", { type: "lstm" }], /unknown layer type "lstm"/);
  refuse(["flatten", { type: "dense", units: 0 }], /units must be an integer from 1/);
  refuse(Array.from({ length: 65 }, () => "relu"), /1 to 64 layers/);
  // 4096x4096 images into 65,536 units: 2^40 weights, counted from the shapes.
  refuse(["flatten", { type: "dense", units: 65536 }, { type: "dense", units: 3 }], /more than 268435456 parameters/, { input: [4096, 4096, 1] });
});
