/** mcnc predict: a model run on one's own inputs, prepared as its file records; ONNX through onnxruntime. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { initEngine } from "../src/engine/engine.js";
import { openModelSession } from "../src/engine/model-session.js";
import { f32, Graph } from "../src/engine/onnx/graph.js";
import { parseIdx } from "../src/data/idx.js";
import { assertCleanError, mcnc } from "./cli-helpers.js";
import { npy, png } from "./data-files.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-predict-"));
const lines = (stdout: string) => stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

test("predict with a shipped .mcnc classifier: Fashion-MNIST test images as PNG files, read as its file records", async () => {
  const images = parseIdx(gunzipSync(readFileSync("data/fashion-mnist/t10k-images-idx3-ubyte.gz")), "images");
  const labels = parseIdx(gunzipSync(readFileSync("data/fashion-mnist/t10k-labels-idx1-ubyte.gz")), "labels");
  const folder = join(dir, "fashion");
  mkdirSync(folder);
  const n = 40;
  for (let i = 0; i < n; i++) {
    const at = i * 784;
    writeFileSync(join(folder, `${String(i).padStart(2, "0")}.png`), await png(28, 28, (x, y) => {
      const v = images.data[at + y * 28 + x]!;
      return [v, v, v];
    }));
  }
  const r = mcnc("predict", "--in", "data/models/mlp-fashion-mcnc-100x.mcnc", "--image", folder, "--top", "3", "--json");
  assert.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout) as Array<{ sample: string; top: Array<{ class: number; p: number }> }>;
  assert.equal(out.length, n);
  const right = out.filter((o, i) => o.top[0]!.class === labels.data[i]).length;
  // The file's test accuracy is 0.83: prepared the same way, its own test images come out near it.
  assert.ok(right >= 0.7 * n, `${right} of ${n} right`);
  for (const o of out) {
    assert.equal(o.top.length, 3);
    assert.ok(o.top[0]!.p >= o.top[1]!.p && Math.abs(o.top.reduce((s, t) => s + t.p, 0) - 1) < 1 + 1e-9);
  }
  // One image alone, as text.
  const one = mcnc("predict", "--in", "data/models/mlp-fashion-mcnc-100x.mcnc", "--image", join(folder, "00.png"));
  assert.match(one.stdout, new RegExp(`00\\.png: ${out[0]!.top[0]!.class} \\d+\\.\\d%`));
});

test("predict with the shipped GPT: the next byte after a prompt", () => {
  const r = mcnc("predict", "--in", "data/models/gpt-sotu.mcnc", "--prompt", "the United State", "--top", "3", "--json");
  assert.equal(r.code, 0, r.stderr);
  const j = lines(r.stdout)[0] as { next: Array<{ name: string; p: number }> };
  assert.equal(j.next[0]!.name, "s");
  assert.ok(j.next[0]!.p > 0.5, JSON.stringify(j));
});

test("predict with any ONNX model: arrays or images in, the model's own top classes out, named from a file", async () => {
  await initEngine({ engine: "native" });
  const g = new Graph();
  const x = g.input("x", f32([1, 3, 4, 4]));
  const flat = g.op("Reshape", [x, g.ints([1, 48])], f32([1, 48]));
  const w = g.constant("float32", [48, 5], Float32Array.from({ length: 240 }, (_, i) => Math.sin(i * 1.7)));
  g.output("scores", g.op("MatMul", [flat, w], f32([1, 5])));
  const model = g.encode();
  const path = join(dir, "tiny.onnx");
  writeFileSync(path, model);
  const inputs = join(dir, "arrays");
  mkdirSync(inputs);
  const xs = Float32Array.from({ length: 6 * 48 }, (_, i) => Math.cos(i * 0.31));
  writeFileSync(join(inputs, "x.npy"), npy("<f4", [6, 3, 4, 4], xs));
  writeFileSync(join(dir, "classes.txt"), "cat\ndog\nbird\nfish\nfrog\n");
  const r = mcnc("predict", "--in", path, "--inputs", inputs, "--classes", join(dir, "classes.txt"), "--top", "2", "--json");
  assert.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout) as Array<{ outputs: Array<{ name: string; top: Array<{ class: number; name: string }> }> }>;
  const session = await openModelSession(model, "tiny");
  for (let i = 0; i < 6; i++) {
    const y = (await session.run({ x: { type: "float32", data: xs.slice(i * 48, (i + 1) * 48), dims: [1, 3, 4, 4] } })).scores!.data as Float32Array;
    const best = y.indexOf(Math.max(...y));
    assert.equal(out[i]!.outputs[0]!.top[0]!.class, best);
    assert.equal(out[i]!.outputs[0]!.top[0]!.name, ["cat", "dog", "bird", "fish", "frog"][best]);
  }
  await session.close();
  // Images: resized to the model's fixed 4x4.
  const images = join(dir, "pictures");
  mkdirSync(images);
  writeFileSync(join(images, "a.png"), await png(9, 7, (px, py) => [px * 20, py * 30, 100]));
  const p = mcnc("predict", "--in", path, "--image", images, "--mean", "0.5", "--std", "0.25");
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /a\.png: scores: \d \d+\.\d%, \d \d+\.\d%/);
  assertCleanError(mcnc("predict", "--in", path), /give one of --image/);
  assertCleanError(mcnc("predict", "--in", path, "--prompt", "hi"), /an ONNX or TF.js model takes --image or --inputs/);
  assertCleanError(mcnc("predict", "--in", "data/models/gpt-sotu.mcnc", "--image", images), /does not classify images/);
  assertCleanError(mcnc("predict", "--in", "data/models/mlp-fashion-mcnc-100x.mcnc", "--image", images, "--bgr"), /--bgr applies to ONNX and TF.js models/);
});
