import assert from "node:assert/strict";
import { test } from "node:test";
import { grad, nn, numpy as np } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
import { conv3x3, maxPool2 } from "../src/model/layers.js";
import { buildModel, parseDescription } from "../src/model/models.js";
import { countParams, initParams } from "../src/model/params.js";
import { assertClose, checkModelGradients } from "./numeric.js";

await initEngine();

const pseudo = (n: number, s: number) => new Float64Array(n).map((_, i) => Math.sin(i * 12.9898 + s) * 0.5);

test("conv3x3 equals a direct convolution with zero padding (NHWC, HWIO)", async () => {
  const [B, H, W, C, O] = [2, 5, 4, 3, 2];
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
