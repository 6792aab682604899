import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { numpy as np, tree } from "@jax-js/jax";
import { bundledPath } from "../src/data/bundled.js";
import { loadText } from "../src/data/text.js";
import { initEngine } from "../src/engine/engine.js";
import { gptDecoder } from "../src/generate/decoder.js";
import { generate, pick } from "../src/generate/sample.js";
import { configureAdapter, producedSpecs } from "../src/methods/adapter.js";
import { findMethod, materializer } from "../src/methods/index.js";
import { buildModel } from "../src/model/models.js";
import { countParams, initParams, toDevice, toHost } from "../src/model/params.js";
import { textTask } from "../src/train/tasks.js";
import { train } from "../src/train/trainer.js";
import { decodeModelFile, encodeModelFile, timedRebuild } from "../src/format/model-file.js";
import { checkModelGradients } from "./numeric.js";

await initEngine();

const tiny = { name: "gpt" as const, layers: 2, width: 8, heads: 2, context: 6, vocab: 256 };
const dir = mkdtempSync(join(tmpdir(), "mcnc-gpt-"));

test("gpt: Hugging Face GPT-2's tensor names and Conv1D layouts", () => {
  const m = buildModel({ ...tiny, layers: 1 });
  const shapes = Object.fromEntries(m.specs.map((s) => [s.name, s.shape]));
  assert.deepEqual(shapes, {
    "wte.weight": [256, 8],
    "wpe.weight": [6, 8],
    "h.0.ln_1.weight": [8],
    "h.0.ln_1.bias": [8],
    "h.0.attn.c_attn.weight": [8, 24],
    "h.0.attn.c_attn.bias": [24],
    "h.0.attn.c_proj.weight": [8, 8],
    "h.0.attn.c_proj.bias": [8],
    "h.0.ln_2.weight": [8],
    "h.0.ln_2.bias": [8],
    "h.0.mlp.c_fc.weight": [8, 32],
    "h.0.mlp.c_fc.bias": [32],
    "h.0.mlp.c_proj.weight": [32, 8],
    "h.0.mlp.c_proj.bias": [8],
    "ln_f.weight": [8],
    "ln_f.bias": [8],
  });
});

const tokens = (values: number[], T = tiny.context) => np.array(new Int32Array(values), { dtype: np.int32 }).reshape([values.length / T, T]);

/** Standard initialisation, nudged so no leaf is exactly zero or one (every path carries gradient). */
async function nudged(seed: number): Promise<Record<string, Float64Array>> {
  const model = buildModel(tiny);
  const host = await initParams(model.specs, seed);
  return Object.fromEntries(model.specs.map((s) => [s.name, Float64Array.from(host[s.name]!).map((v, i) => v + 0.05 * Math.sin(i + s.name.length))]));
}

test("gpt: gradients through attention, LayerNorm and GELU match finite differences (float64)", async () => {
  const model = buildModel(tiny);
  const params64 = await nudged(3);
  const x = tokens([5, 17, 200, 3, 99, 42, 7, 7, 250, 1, 0, 128]);
  const probe = np.array(new Float64Array(2 * 6 * 256).map((_, i) => Math.sin(i * 0.37))).reshape([2, 6, 256]);
  // exp (softmax) and tanh (GELU) are computed only to float32 accuracy, so the step is large (noise /
  // step stays small) and the tolerance allows its O(step^2) error.
  await checkModelGradients(model, params64, x, probe, 2e-3, 1e-3);
});

test("gpt: causal (a later token never changes earlier logits)", async () => {
  const model = buildModel(tiny);
  const host = await initParams(model.specs, 4);
  const logits = async (seq: number[]) => {
    const p = toDevice(model.specs, host);
    return (await model.apply(p, tokens(seq)).data()) as Float32Array;
  };
  const a = await logits([10, 20, 30, 40, 50, 60]);
  const b = await logits([10, 20, 30, 41, 255, 0]);
  const V = 256;
  for (let t = 0; t < 6; t++) {
    const same = a.subarray(t * V, (t + 1) * V).every((v, i) => v === b[t * V + i]);
    assert.equal(same, t < 3, `position ${t}`);
  }
});

test("text: whole documents held out, the same split for every run, bytes as they are", async () => {
  const corpus = join(dir, "docs");
  mkdirSync(corpus);
  for (let i = 0; i < 20; i++) writeFileSync(join(corpus, `doc${String(i).padStart(2, "0")}.txt`), `document ${i}: ${"é".repeat(i + 1)}\n`);
  writeFileSync(join(corpus, "README"), "not a document");
  const a = await loadText(corpus);
  const b = await loadText(corpus);
  assert.deepEqual(a.valid, b.valid);
  assert.equal(a.documents.train + a.documents.valid, 20);
  assert.ok(a.documents.valid >= 2 && a.documents.valid <= 4, `${a.documents.valid} held out`);
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const held = text(a.valid).split("\n\n").map((d) => d.split(":")[0]);
  for (const h of held) assert.ok(!text(a.train).includes(`${h}:`), `${h} is in both splits`);

  const single = join(dir, "one.txt");
  const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
  writeFileSync(single, lines);
  const s = await loadText(single);
  assert.match(text(s.valid), /^line 9\d\n/, "the tail, cut at a line");
  assert.equal(text(s.train) + text(s.valid), lines);
});

test("text: binary data, invalid UTF-8 and a corpus smaller than a context are refused in one line", async () => {
  const bin = join(dir, "bin.txt");
  writeFileSync(bin, Uint8Array.of(104, 105, 0, 1, 2));
  await assert.rejects(loadText(bin), /not text \(a NUL byte at offset 2/);
  const latin1 = join(dir, "latin1.txt");
  writeFileSync(latin1, Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x0a));
  await assert.rejects(loadText(latin1), /not valid UTF-8/);
  const empty = join(dir, "empty");
  mkdirSync(empty);
  await assert.rejects(loadText(empty), /holds no text documents/);
  const small = join(dir, "small.txt");
  writeFileSync(small, "hello world, hello");
  const corpus = await loadText(small);
  assert.throws(() => textTask(corpus, buildModel(tiny)), /bytes of (training|validation) text; one context of 6 tokens needs at least 7/);
});

test("text task: a model with no information scores exactly 8 bits per byte; batches repeat for a seed", async () => {
  const model = buildModel(tiny);
  const task = textTask(await loadText(bundledPath("moby-dick"), { name: "moby-dick" }), model, { evalTokens: 600 });
  // Zero weights: uniform logits over 256 bytes.
  const zeros = toDevice(model.specs, Object.fromEntries(model.specs.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))])));
  const m = await task.evaluate(zeros);
  tree.dispose(zeros);
  assert.ok(Math.abs(m.bits_per_byte! - 8) < 1e-5, `${m.bits_per_byte}`);
  assert.ok(Math.abs(m.perplexity! - 256) < 1e-2);
  const [a, b, c] = [await task.batch(1, 70, 4), await task.batch(1, 70, 4), await task.batch(2, 70, 4)];
  assert.deepEqual(a.x, b.x);
  assert.notDeepEqual(a.x, c.x);
  // Targets are the inputs shifted by one byte.
  for (let r = 0; r < 4; r++) for (let t = 0; t + 1 < 6; t++) assert.equal(a.y[r * 6 + t], a.x[r * 6 + t + 1]);
});

test("generation: the KV cache gives the logits of a full recomputation, through a slide of the window", async () => {
  const model = buildModel(tiny);
  const host = await initParams(model.specs, 9);
  const T = tiny.context;
  const full = async (seq: number[]) => {
    const logits = (await model.apply(toDevice(model.specs, host), tokens(seq, seq.length)).data()) as Float32Array;
    return logits.slice((seq.length - 1) * 256, seq.length * 256);
  };
  const close = (a: Float32Array, b: Float32Array, what: string) => {
    const scale = Math.max(...b.map(Math.abs));
    for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * scale, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  };
  const decoder = gptDecoder(tiny, toDevice(model.specs, host));
  const seq = [72, 101, 108, 108, 111, 33];
  close(await decoder.prefill(seq.slice(0, 2)), await full(seq.slice(0, 2)), "prefill");
  for (let t = 2; t < T; t++) close(await decoder.step(seq[t]!), await full(seq.slice(0, t + 1)), `step ${t}`);
  await assert.rejects(decoder.step(1), /the cache holds 6 positions/);

  // Greedy generation past the context equals recomputing every window the generator keeps.
  const produced: number[] = [];
  for await (const b of generate(decoder, Uint8Array.from(seq.slice(0, 4)), { tokens: 12, temperature: 0, topK: 0, seed: 0 })) produced.push(b);
  let window = seq.slice(0, 4);
  for (let i = 0; i < 12; i++) {
    const logits = await full(window);
    assert.equal(produced[i], pick(logits, 0, 0, 0), `token ${i}`);
    window.push(produced[i]!);
    if (window.length > T) window = window.slice(window.length - T / 2);
  }
  decoder.dispose();
});

test("sampling: temperature 0 is argmax, top-k keeps the k likeliest, the same uniform the same byte", () => {
  const logits = Float32Array.from({ length: 256 }, (_, i) => (i === 7 ? 5 : i === 9 ? 4.5 : i === 200 ? 4 : -10));
  assert.equal(pick(logits, 0, 0, 0.99), 7);
  const seen = new Set<number>();
  for (let u = 0; u < 1; u += 0.001) seen.add(pick(logits, 1, 2, u));
  assert.deepEqual([...seen].sort((a, b) => a - b), [7, 9]);
  // Uniforms spread evenly land on each byte as often as softmax says (temperature 1, no top-k).
  const counts = new Map<number, number>();
  const n = 100_000;
  for (let k = 0; k < n; k++) {
    const byte = pick(logits, 1, 0, (k + 0.5) / n);
    counts.set(byte, (counts.get(byte) ?? 0) + 1);
  }
  const z = logits.reduce((a, l) => a + Math.exp(l), 0);
  for (const byte of [7, 9, 200]) assert.ok(Math.abs((counts.get(byte) ?? 0) / n - Math.exp(logits[byte]!) / z) < 2e-4, `byte ${byte}`);
});

test("adapters: every method's residual form starts exactly at the base and trains only its own numbers", async () => {
  const model = buildModel(tiny);
  const base = await initParams(model.specs, 11);
  for (const [name, values] of [
    ["mcnc", { k: 3, d: 40 }],
    ["lora", { rank: 2 }],
    ["nola", { rank: 2, bases: 4 }],
    ["pranc", { bases: 5 }],
    ["mcnc-lora", { rank: 2, k: 3, d: 24 }],
  ] as const) {
    const method = findMethod(name)!;
    const { config, leaves } = configureAdapter(method, values, model);
    assert.deepEqual(leaves, ["h.0.attn.c_attn.weight", "h.1.attn.c_attn.weight"], "PEFT's default for GPT-2: c_attn");
    const specs = producedSpecs(model, { leaves });
    const trainable = await method.init(config, specs, 5);
    const produced = await toHost(
      leaves,
      materializer(method, config, specs)(toDevice(method.trainableShapes(config, specs), trainable), await method.frozen(config, specs, 5, base)),
    );
    for (const l of leaves) assert.ok(produced[l]!.every((v, i) => Object.is(v, base[l]![i])), `${name}: ${l} starts at the base`);
    assert.ok(countParams(method.trainableShapes(config, specs)) < countParams(specs), `${name} stores fewer numbers than it adapts`);
  }
  assert.throws(() => configureAdapter(findMethod("mcnc")!, { residual: false }, model), /--residual false does not apply to an adapter/);
  assert.throws(() => configureAdapter(findMethod("dense")!, {}, model), /has no adapter form/);
  // --ratio counts the whole base: 0.1% of it is --ratio 1000.
  const { config } = configureAdapter(findMethod("mcnc")!, { ratio: 100, k: 3 }, model);
  const stored = countParams(findMethod("mcnc")!.trainableShapes(config, producedSpecs(model, { leaves: ["h.0.attn.c_attn.weight", "h.1.attn.c_attn.weight"] })));
  assert.ok(stored <= countParams(model.specs) / 100 && stored > countParams(model.specs) / 200, `${stored} stored`);
});

test("every method trains the GPT from scratch through the one loop, and its file rebuilds the trained weights", async () => {
  const model = buildModel({ ...tiny, context: 16, width: 16 });
  const task = textTask(await loadText(bundledPath("moby-dick"), { name: "moby-dick" }), model, { evalTokens: 512 });
  // A budget out of reach names the ratio the user gave, not the one MCNC sees in factor space.
  assert.throws(() => findMethod("mcnc-lora")!.configure({ rank: 2, ratio: 40 }, model.specs), /^UserError: --ratio 40 is out of reach/);
  for (const [name, values] of [
    ["dense", {}],
    ["mcnc", { ratio: 10 }],
    ["lora", { rank: 2 }],
    ["mcnc-lora", { rank: 2, ratio: 20 }],
    ["nola", { ratio: 10 }],
    ["pranc", { ratio: 10 }],
    ["prune", { sparsity: 0.5 }],
    ["quant", { bits: 4 }],
  ] as const) {
    const method = findMethod(name)!;
    const config = method.configure(values, model.specs);
    const r = await train(model, method, config, task, { steps: 12, batch: 8, seed: 0, lr: 0.01, schedule: { kind: "cosine", warmup: 2 } });
    assert.ok(r.metrics.bits_per_byte! < 8, `${name}: ${r.metrics.bits_per_byte} bits per byte (8 is chance)`);
    const loaded = decodeModelFile(encodeModelFile({ model: model.description, method: { name, config }, seed: 0, trainable: r.trainable }, model, method));
    const rebuilt = (await timedRebuild(loaded, 0)).params;
    for (const s of model.specs) assert.ok(rebuilt[s.name]!.every((v, i) => Object.is(v, r.params[s.name]![i])), `${name}: ${s.name}`);
  }
});

test("post-training calibration piece by piece (embedding, blocks, head) gives the weights of whole-network calibration", async (t) => {
  // Bit for bit on Wasm; the native engine sums each graph in its own order, so there the two only agree closely.
  await initEngine({ engine: "wasm" });
  t.after(() => initEngine());
  const { compressModel } = await import("../src/compress/compress-model.js");
  const { findCompressor } = await import("../src/compress/index.js");
  const model = buildModel({ name: "gpt", layers: 2, width: 16, heads: 2, context: 8, vocab: 256 });
  assert.deepEqual(model.pieces!.map((p) => p.leaves.length), [2, 12, 12, 3]);
  const weights = await initParams(model.specs, 3);
  const batches = Array.from({ length: 3 }, (_, b): [np.Array, np.Array] => [np.array(Int32Array.from({ length: 32 }, (_, i) => (i * 37 + b * 101) % 256)).reshape([4, 8]), np.zeros([4, 8], { dtype: np.int32 })]);
  const compress = model.specs.filter((s) => s.role === "weight" && s.name.startsWith("h.")).map((s) => s.name);
  for (const [name, values] of [["rom", { reduction: 0.5 }], ["gptq", { bits: 3 }]] as const) {
    const c = findCompressor(name)!;
    const config = c.configure(values);
    const pieces = await compressModel(model, weights, c, config, compress, batches, 0);
    const whole = await compressModel({ ...model, pieces: undefined }, weights, c, config, compress, batches, 0);
    for (const leaf of compress) assert.deepEqual(pieces.weights[leaf], whole.weights[leaf], `${name} ${leaf}`);
    // The calibration changed something: these are not the original weights.
    assert.notDeepEqual(pieces.weights[compress.at(-1)!], weights[compress.at(-1)!]);
  }
  for (const [x, y] of batches) tree.dispose([x, y]);
});
