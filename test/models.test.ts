import assert from "node:assert/strict";
import { test } from "node:test";
import { grad, nn, numpy as np } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import { LAYER_TYPE_NAMES } from "../src/model/layer-types.js";
import { conv, conv3x3, maxPool2, selfAttention } from "../src/model/layers.js";
import { buildModel, parseDescription } from "../src/model/models.js";
import { gpt } from "../src/model/gpt.js";
import { gptSpec } from "../src/model/named-specs.js";
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

// TF's and PyTorch's 'same': as many outputs as strides fit, the odd padding after; 'valid': none.
for (const [k, stride, same, H, W] of [[3, 2, true, 7, 6], [5, 1, false, 7, 6], [1, 2, true, 5, 5], [2, 3, false, 8, 7]] as const) {
  test(`conv ${k}x${k}, stride ${stride}, ${same ? "same" : "valid"}: a direct convolution, ${H}x${W}`, async () => {
    const [B, C, O] = [2, 3, 2];
    const x = pseudo(B * H * W * C, 1);
    const w = pseudo(k * k * C * O, 2);
    const b = pseudo(O, 3);
    const got = conv(np.array(x).reshape([B, H, W, C]), np.array(w).reshape([k, k, C, O]), np.array(b), stride, same);
    const out = (n: number) => (same ? Math.ceil(n / stride) : Math.floor((n - k) / stride) + 1);
    const [oh, ow] = [out(H), out(W)];
    assert.deepEqual(got.shape, [B, oh, ow, O]);
    const before = (n: number, o: number) => (same ? Math.floor(Math.max(0, (o - 1) * stride + k - n) / 2) : 0);
    const [ph, pw] = [before(H, oh), before(W, ow)];
    const want = new Float64Array(B * oh * ow * O);
    for (let n = 0; n < B; n++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++)
          for (let o = 0; o < O; o++) {
            let sum = b[o]!;
            for (let dy = 0; dy < k; dy++)
              for (let dx = 0; dx < k; dx++)
                for (let c = 0; c < C; c++) {
                  const [y, xx] = [i * stride + dy - ph, j * stride + dx - pw];
                  if (y >= 0 && y < H && xx >= 0 && xx < W) sum += x[((n * H + y) * W + xx) * C + c]! * w[((dy * k + dx) * C + c) * O + o]!;
                }
            want[((n * oh + i) * ow + j) * O + o] = sum;
          }
    assertClose((await got.data()) as Float64Array, want, 1e-12);
  });
}

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
// A small residual network: strided and valid convolutions, both normalisations, skips with and without projections.
const RESIDUAL = {
  ...SPEC,
  input: [8, 8, 2],
  layers: [
    { type: "conv", channels: 4, useBias: false },
    { type: "groupnorm", groups: 2 },
    "relu",
    { type: "residual", body: [{ type: "conv", channels: 4 }, "relu", { type: "conv", channels: 4 }] },
    "relu",
    { type: "residual", body: [{ type: "conv", channels: 6, stride: 2 }, "layernorm", "relu", { type: "conv", channels: 6, kernel: 1 }] },
    { type: "conv", channels: 3, kernel: 2, stride: 2, padding: "valid" },
    "globalavgpool",
    { type: "residual", body: [{ type: "dense", units: 5 }] },
    { type: "dense", units: 3 },
  ],
};
// A vision transformer in miniature: patches, tokens, positions, attention (and causal attention), an MLP, residual blocks over tokens.
const SEQUENCE = {
  ...SPEC,
  layers: [
    { type: "conv", channels: 6, kernel: 4, stride: 4, padding: "valid" },
    "tokens",
    "positions",
    { type: "residual", body: ["layernorm", { type: "attention", heads: 2 }] },
    { type: "residual", body: ["layernorm", { type: "dense", units: 8 }, "gelu", { type: "dense", units: 6 }] },
    { type: "residual", body: [{ type: "attention", heads: 3, causal: true }] },
    { type: "residual", body: [{ type: "dense", units: 4 }] },
    "layernorm",
    "globalavgpool",
    { type: "dense", units: 3 },
  ],
};

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
  type Entry = string | { type: string; body?: Entry[] };
  const types = (ls: readonly Entry[]): string[] => ls.flatMap((l) => (typeof l === "string" ? [l] : [l.type, ...types(l.body ?? [])]));
  // Dropout and batch normalisation, which train differently from how they evaluate: test/train-mode.test.ts.
  const checked = new Set([...types([...SPEC.layers, ...SMOOTH.layers, ...RESIDUAL.layers, ...SEQUENCE.layers] as Entry[]), "dropout", "batchnorm"]);
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

test("sequential: residual blocks, strided convolutions and normalisations, their leaves and gradients against finite differences", async () => {
  const model = buildModel(parseDescription(RESIDUAL, "spec"));
  assert.deepEqual(
    model.specs.map((s) => [s.name, s.shape, s.role]),
    [
      ["l0.weight", [3, 3, 2, 4], "weight"],
      ["l1.gain", [4], "gain"],
      ["l1.bias", [4], "bias"],
      ["l3.0.weight", [3, 3, 4, 4], "weight"],
      ["l3.0.bias", [4], "bias"],
      ["l3.2.weight", [3, 3, 4, 4], "weight"],
      ["l3.2.bias", [4], "bias"],
      ["l5.0.weight", [3, 3, 4, 6], "weight"],
      ["l5.0.bias", [6], "bias"],
      ["l5.1.gain", [6], "gain"],
      ["l5.1.bias", [6], "bias"],
      ["l5.3.weight", [1, 1, 6, 6], "weight"],
      ["l5.3.bias", [6], "bias"],
      ["l5.proj.weight", [1, 1, 4, 6], "weight"],
      ["l5.proj.bias", [6], "bias"],
      ["l6.weight", [2, 2, 6, 3], "weight"],
      ["l6.bias", [3], "bias"],
      ["l8.0.weight", [3, 5], "weight"],
      ["l8.0.bias", [5], "bias"],
      ["l8.proj.weight", [3, 5], "weight"],
      ["l8.proj.bias", [5], "bias"],
      ["l9.weight", [5, 3], "weight"],
      ["l9.bias", [3], "bias"],
    ],
  );
  const p64 = Object.fromEntries(model.specs.map((s, j) => [s.name, Float64Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => (s.role === "gain" ? 1 : 0) + 0.4 * Math.sin(i * 1.7 + j))]));
  await checkModelGradients(model, p64, np.array(pseudo(3 * 128, 11).map((v) => v * 3)).reshape([3, 8, 8, 2]), np.array(pseudo(3 * 3, 12)).reshape([3, 3]), 1e-6, 1e-5);
  // Calibration sees every weight's rows, the projections' included, as [rows, inputs].
  const seen = new Map<string, number[]>();
  model.apply(Object.fromEntries(model.specs.map((s) => [s.name, np.array(p64[s.name]!).reshape(s.shape)])), np.array(pseudo(3 * 128, 11)).reshape([3, 8, 8, 2]), (leaf, rows) => {
    seen.set(leaf, rows.shape);
    rows.dispose();
  }).dispose();
  assert.deepEqual(Object.fromEntries(seen), { "l0.weight": [192, 18], "l3.0.weight": [192, 36], "l3.2.weight": [192, 36], "l5.0.weight": [48, 36], "l5.3.weight": [48, 6], "l5.proj.weight": [48, 4], "l6.weight": [12, 24], "l8.0.weight": [3, 3], "l8.proj.weight": [3, 3], "l9.weight": [3, 5] });
});

test("sequential: tokens, positions and self-attention, their leaves and gradients against finite differences; causal attention sees no later token", async () => {
  const model = buildModel(parseDescription(SEQUENCE, "spec"));
  assert.deepEqual(
    model.specs.filter((s) => /^l[23]\./.test(s.name)).map((s) => [s.name, s.shape]),
    [["l2.weight", [4, 6]], ["l3.0.gain", [6]], ["l3.0.bias", [6]], ["l3.1.qkv.weight", [6, 18]], ["l3.1.qkv.bias", [18]], ["l3.1.proj.weight", [6, 6]], ["l3.1.proj.bias", [6]]],
  );
  const p64 = Object.fromEntries(model.specs.map((s, j) => [s.name, Float64Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => (s.role === "gain" ? 1 : 0) + 0.3 * Math.sin(i * 1.3 + j))]));
  // Softmax, GELU and the norms' square roots are computed to float32 accuracy: larger steps, as for SMOOTH.
  await checkModelGradients(model, p64, np.array(pseudo(3 * 64, 13)).reshape([3, 8, 8, 1]), np.array(pseudo(3 * 3, 14)).reshape([3, 3]), 1e-3, 2e-3);
  // Position 3 changed: a causal layer's outputs before it stay, a bidirectional layer's move.
  const x = pseudo(4 * 6, 15);
  const later = Float64Array.from(x, (v, i) => (i >= 18 ? v + 1 : v));
  const w = (n: number, s: number) => np.array(pseudo(n, s)).reshape(n === 108 ? [6, 18] : n === 36 ? [6, 6] : [n]);
  const run = async (input: Float64Array, causal: boolean) => (await selfAttention(np.array(input).reshape([1, 4, 6]), w(108, 16), w(18, 17), w(36, 18), w(6, 19), 2, causal).data()) as Float64Array;
  for (const causal of [true, false]) {
    const [a, b] = [await run(x, causal), await run(later, causal)];
    const moved = Math.max(...Array.from({ length: 18 }, (_, i) => Math.abs(a[i]! - b[i]!)));
    assert.ok(causal ? moved === 0 : moved > 1e-3, `causal ${causal}: positions 0-2 moved by ${moved}`);
  }
});

test("sequential: specs that do not fit, or are absurdly large, are refused before anything is allocated", () => {
  const refuse = (layers: unknown[], pattern: RegExp, extra: Record<string, unknown> = {}) => assert.throws(() => parseDescription({ ...SPEC, layers, ...extra }, "spec"), pattern);
  refuse(["flatten", { type: "conv3x3", channels: 2 }], /needs an image, and comes after a flatten/);
  refuse(["flatten", { type: "dense", units: 5 }], /give \[5\], not the 3 class scores/);
  refuse([{ type: "conv3x3", channels: 1 }, "maxpool2", "maxpool2", "maxpool2", "maxpool2"], /even sides, got 1x1x1/);
  refuse(["flatten", { type: "lstm" }], /unknown layer type "lstm"/);
  refuse(["flatten", { type: "dense", units: 0 }], /units must be an integer from 1/);
  refuse([{ type: "groupnorm", groups: 3 }, "flatten", { type: "dense", units: 3 }], /1 channels do not split into 3 groups/);
  refuse([{ type: "conv", channels: 2, kernel: 5, padding: "valid" }, { type: "conv", channels: 2, kernel: 5, padding: "valid" }, "flatten", { type: "dense", units: 3 }], /a 5x5 kernel without padding needs an image of at least 5x5, got 4x4/);
  refuse([{ type: "conv", channels: 2, padding: "full" }], /padding must be "same" or "valid"/);
  refuse([{ type: "residual", body: ["flatten", { type: "dense", units: 3 }] }], /a block keeps images as images/);
  refuse([{ type: "residual", body: [{ type: "conv", channels: 2, kernel: 3, padding: "valid" }] }], /turns 8x8 into 6x6, which no strided 1x1 projection matches/);
  refuse([{ type: "residual", body: [{ type: "residual", body: [{ type: "residual", body: [{ type: "residual", body: ["relu"] }] }] }] }], /nest at most 3 deep/);
  refuse([{ type: "residual", body: [] }], /body must list 1 to 256 layers/);
  refuse(["tokens", { type: "attention", heads: 5 }, "globalavgpool", { type: "dense", units: 3 }], /1 features do not split into 5 heads/);
  refuse(["flatten", { type: "attention", heads: 1 }], /needs tokens \[positions, features\]/);
  refuse([{ type: "dense", units: 3 }], /needs features or tokens: put a flatten \(or tokens\) before it/);
  refuse(Array.from({ length: 257 }, () => "relu"), /1 to 256 layers/);
  // 4096x4096 images into 65,536 units: 2^40 weights, counted from the shapes.
  refuse(["flatten", { type: "dense", units: 65536 }, { type: "dense", units: 3 }], /more than 268435456 parameters/, { input: [4096, 4096, 1] });
});

test("the built-in GPT written as a spec: the same leaves, and its logits bit for bit (after a round trip through JSON, as a file header stores it)", async () => {
  const c = { layers: 2, width: 16, heads: 4, context: 8, vocab: 32 };
  const builtIn = gpt(c);
  const spec = buildModel(parseDescription(JSON.parse(JSON.stringify(gptSpec(c))), "spec"));
  assert.equal(spec.kind, "language");
  assert.deepEqual(spec.specs.map((s) => [s.name, s.shape, s.role]), builtIn.specs.map((s) => [s.name, s.shape, s.role]));
  const host = await initParams(builtIn.specs, 3);
  // Away from the initial zeros and ones, so that every leaf matters.
  const tree = () => Object.fromEntries(builtIn.specs.map((s, j) => [s.name, np.array(Float32Array.from(host[s.name]!, (v, i) => v + 0.1 * Math.sin(i + j))).reshape(s.shape)]));
  for (const t of [8, 5]) {
    const tokens = () => np.array(Int32Array.from({ length: 2 * t }, (_, i) => (i * 7 + 3) % 32)).reshape([2, t]);
    const a = (await builtIn.apply(tree(), tokens()).data()) as Float32Array;
    const b = (await spec.apply(tree(), tokens()).data()) as Float32Array;
    assert.equal(a.length, 2 * t * 32);
    assert.deepEqual(b, a, `window ${t}`);
  }
  await assert.rejects(async () => spec.lm!.forward(tree(), np.zeros([1, 1], { dtype: np.int32 }), np.zeros([1, 8]), () => np.zeros([1])), /runs whole windows/);
});
