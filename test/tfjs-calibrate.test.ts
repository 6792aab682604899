/** TF.js graph models calibrated and measured where they run, in TF.js: moments, waves, the CLI. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { calibrateTfjs } from "../src/compress/calibrate-tfjs.js";
import { openModelInputs } from "../src/data/model-inputs.js";
import { openTfjsSession } from "../src/engine/tfjs-session.js";
import { openTfjs } from "../src/format/foreign-model.js";
import { tfjsInputs, tfjsWaves } from "../src/format/tfjs-graph.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";
import { npy } from "./data-files.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-tfjs-calib-"));
const b64 = (s: string) => Buffer.from(s).toString("base64");
const ints = (...i: number[]) => ({ list: { i: i.map(String) } });
const conv = (name: string, input: string, strides: number[], padding: string, dilations: number[]) => ({
  name,
  op: "Conv2D",
  input: [input, `${name}/kernel`],
  attr: { strides: ints(...strides), padding: { s: b64(padding) }, data_format: { s: b64("NHWC") }, dilations: ints(...dilations), T: { type: "DT_FLOAT" } },
});
const constant = (name: string, type = "DT_FLOAT") => ({ name, op: "Const", attr: { dtype: { type } } });

/** Kernel shapes, and the weights (sines) in manifest order. */
const SHAPES: Array<[string, number[]]> = [
  ["a/kernel", [3, 3, 2, 8]],
  ["b/kernel", [2, 2, 8, 8]],
  ["c/kernel", [8, 4]],
  ["dw/kernel", [1, 1, 2, 1]],
];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * x [N, 5, 5, 2] -> Conv2D 3x3 stride 2 SAME (5 is odd: TF pads one each side) -> Relu -> Conv2D 2x2
 * dilated 2, VALID -> Relu -> [N, 8] -> MatMul -> y [N, 4]; beside it a depthwise Conv of x, which
 * calibration does not capture, into a second output.
 */
function writeModel(folder: string): string {
  mkdirSync(folder, { recursive: true });
  const nodes = [
    { name: "x", op: "Placeholder", attr: { dtype: { type: "DT_FLOAT" }, shape: { shape: { dim: [{ size: "-1" }, { size: "5" }, { size: "5" }, { size: "2" }] } } } },
    ...SHAPES.map(([n]) => constant(n)),
    constant("flat/shape", "DT_INT32"),
    conv("a", "x", [1, 2, 2, 1], "SAME", [1, 1, 1, 1]),
    { name: "ra", op: "Relu", input: ["a"], attr: { T: { type: "DT_FLOAT" } } },
    conv("b", "ra", [1, 1, 1, 1], "VALID", [1, 2, 2, 1]),
    { name: "rb", op: "Relu", input: ["b"], attr: { T: { type: "DT_FLOAT" } } },
    { name: "flat", op: "Reshape", input: ["rb", "flat/shape"], attr: { T: { type: "DT_FLOAT" } } },
    { name: "y", op: "MatMul", input: ["flat", "c/kernel"], attr: { transpose_a: { b: false }, transpose_b: { b: false }, T: { type: "DT_FLOAT" } } },
    { name: "dw", op: "DepthwiseConv2dNative", input: ["x", "dw/kernel"], attr: { strides: ints(1, 1, 1, 1), padding: { s: b64("VALID") }, data_format: { s: b64("NHWC") }, dilations: ints(1, 1, 1, 1), T: { type: "DT_FLOAT" } } },
  ];
  const floats = SHAPES.flatMap(([, s], k) => Array.from({ length: size(s) }, (_, i) => 0.6 * Math.sin(1.3 * i + 0.7 * k + 0.2)));
  const bytes = Buffer.concat([Buffer.from(Float32Array.from(floats).buffer), Buffer.from(Int32Array.of(-1, 8).buffer)]);
  writeFileSync(join(folder, "group1-shard1of1.bin"), bytes);
  const weights = [...SHAPES.map(([name, shape]) => ({ name, shape, dtype: "float32" })), { name: "flat/shape", shape: [2], dtype: "int32" }];
  const json = { format: "graph-model", modelTopology: { node: nodes }, weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights }] };
  writeFileSync(join(folder, "model.json"), JSON.stringify(json));
  return join(folder, "model.json");
}

/** x for `n` samples: correlated channels, so calibration has something to find. */
function writeInputs(folder: string, n: number, seed: number): string {
  mkdirSync(folder, { recursive: true });
  const values = Array.from({ length: n * 50 }, (_, i) => {
    const [s, c] = [Math.floor(i / 50), i % 2];
    return Math.sin(0.37 * i + seed) + (c === 1 ? 0.8 * Math.sin(0.37 * (i - 1) + seed) : 0) + 0.3 * Math.cos(s * 1.7 + seed);
  });
  writeFileSync(join(folder, "x.npy"), npy("<f4", [n, 5, 5, 2], values));
  return folder;
}

/** im2col of NHWC `x` [n, h, w, c] for a kh x kw kernel: rows of (i, j, channel), as TF pads SAME or VALID. */
function patches(x: Float32Array, [n, h, w, c]: number[], [kh, kw]: number[], s: number, d: number, same: boolean): Float64Array[] {
  const out = (len: number, k: number) => (same ? Math.ceil(len / s) : Math.floor((len - (k - 1) * d - 1) / s) + 1);
  const [oh, ow] = [out(h!, kh!), out(w!, kw!)];
  const before = (len: number, o: number, k: number) => (same ? Math.floor(Math.max(0, (o - 1) * s + (k - 1) * d + 1 - len) / 2) : 0);
  const [ph, pw] = [before(h!, oh, kh!), before(w!, ow, kw!)];
  const rows: Float64Array[] = [];
  for (let b = 0; b < n!; b++)
    for (let y = 0; y < oh; y++)
      for (let z = 0; z < ow; z++) {
        const row = new Float64Array(kh! * kw! * c!);
        for (let i = 0; i < kh!; i++)
          for (let j = 0; j < kw!; j++)
            for (let ch = 0; ch < c!; ch++) {
              const [yy, zz] = [y * s + i * d - ph, z * s + j * d - pw];
              if (yy >= 0 && yy < h! && zz >= 0 && zz < w!) row[(i * kw! + j) * c! + ch] = x[((b * h! + yy) * w! + zz) * c! + ch]!;
            }
        rows.push(row);
      }
  return rows;
}

const gram = (rows: Float64Array[]) => {
  const m = rows[0]!.length;
  const g = new Float64Array(m * m);
  for (const r of rows) for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) g[i * m + j]! += r[i]! * r[j]!;
  return g;
};

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, what);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4 * scale, `${what} [${i}]: ${a[i]} against ${b[i]}`);
}

test("TF.js calibration: each Conv2D's patches (SAME with odd padding, stride, dilation) and each MatMul's rows give the moments computed here, wave by wave", async () => {
  const model = openTfjs(writeModel(join(dir, "m1")));
  const graph = model.tfjs!;
  const leaves = ["a/kernel", "b/kernel", "c/kernel"].map((n) => model.tensors.find((t) => t.name === n)!);
  assert.deepEqual(Object.fromEntries(tfjsWaves(graph.topology, leaves.map((l) => l.name))), { "a/kernel": 0, "b/kernel": 1, "c/kernel": 2 });
  assert.deepEqual(tfjsInputs(graph.topology), [{ name: "x", elemType: 1, dims: [undefined, 5, 5, 2] }]);
  const inputs = openModelInputs(writeInputs(join(dir, "calib1"), 20, 0), tfjsInputs(graph.topology), {}, "--calib");
  const seen = new Map<string, Float64Array>();
  // The weights as they are: each moment can be checked against the uncompressed model's activations.
  await calibrateTfjs(graph, leaves, inputs, async (leaf, _i, moments) => (seen.set(leaf.name, moments.hessian), { weight: model.read(leaf.name), stored: [] }));
  const x = inputs.batch(0, 20).x!.data as Float32Array;
  const session = await openTfjsSession(graph.artifacts(), "the test model");
  const acts = await session.run(inputs.batch(0, 20), ["ra", "flat"]);
  await session.close();
  assertClose(seen.get("a/kernel")!, gram(patches(x, [20, 5, 5, 2], [3, 3], 2, 1, true)), "a (SAME, stride 2)");
  assertClose(seen.get("b/kernel")!, gram(patches(acts.ra!.data as Float32Array, [20, 3, 3, 8], [2, 2], 1, 2, false)), "b (VALID, dilation 2)");
  const flat = acts.flat!.data as Float32Array;
  assertClose(seen.get("c/kernel")!, gram(Array.from({ length: 20 }, (_, r) => Float64Array.from(flat.subarray(r * 8, r * 8 + 8)))), "c (MatMul)");
  model.close();
});

test("compress a TF.js model with gptq on its inputs: the output moves less than rtn's, measured in TF.js; quantised manifests load there too", async () => {
  const input = writeModel(join(dir, "m2"));
  const [calib, evalDir] = [writeInputs(join(dir, "calib2"), 64, 1), writeInputs(join(dir, "eval2"), 32, 2)];
  const run = (name: string, ...flags: string[]) => {
    const r = mcnc("compress", "--in", input, "--out", join(dir, "out2", name, "model.json"), "--eval", evalDir, "--json", ...flags);
    assert.equal(r.code, 0, r.stderr);
    return lastJson(r.stdout) as { compressed: number; quality: { samples: number; outputs: Array<{ name: string; mean_abs_diff: number; max_abs_diff: number; mean_cosine?: number }> }; file_bytes: { files: number } };
  };
  const rtn = run("rtn", "--method", "rtn", "--bits", "3");
  const gptq = run("gptq", "--method", "gptq", "--bits", "3", "--calib", calib);
  // The depthwise kernel stays as it is under gptq: calibration does not capture it (a log line says so).
  assert.equal(rtn.compressed, 4);
  assert.equal(gptq.compressed, 3);
  const y = (r: typeof rtn) => r.quality.outputs.find((o) => o.name === "y")!;
  assert.equal(y(gptq).mean_cosine !== undefined, true);
  assert.ok(y(gptq).mean_abs_diff < y(rtn).mean_abs_diff, `gptq ${y(gptq).mean_abs_diff} against rtn ${y(rtn).mean_abs_diff}`);
  assert.equal(gptq.quality.samples, 32);
  // The converter's uint8 storage, loaded by TF.js, which dequantises it: 8-bit codes stored in 8 bits move y a little.
  const stored = run("uint8", "--method", "rtn", "--bits", "8", "--store", "uint8");
  assert.ok(y(stored).max_abs_diff > 0 && y(stored).max_abs_diff < 0.05 * y(rtn).max_abs_diff + 0.05, JSON.stringify(y(stored)));
});

test("mcnc predict runs a TF.js graph model on one .npy per input, as TF.js computes it", async () => {
  const input = writeModel(join(dir, "m4"));
  const inputs = writeInputs(join(dir, "pred4"), 3, 4);
  const r = mcnc("predict", "--in", input, "--inputs", inputs, "--raw", "--json");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { sample: string; outputs: Array<{ name: string; dims: number[]; data: number[] }> });
  assert.equal(lines.length, 3);
  const model = openTfjs(input);
  const session = await openTfjsSession(model.tfjs!.artifacts(), "the test model");
  const feeds = openModelInputs(inputs, tfjsInputs(model.tfjs!.topology), {}, "--inputs").batch(2, 3);
  const y = (await session.run(feeds, ["y"])).y!;
  await session.close();
  const printed = lines[2]!.outputs.find((o) => o.name === "y")!;
  assert.deepEqual(printed.dims, [1, 4]);
  assertClose(printed.data, y.data as Float32Array, "y of sample 2");
});

test("TF.js calibration refuses what it cannot reach, in one line each", () => {
  const input = writeModel(join(dir, "m3"));
  const calib = writeInputs(join(dir, "calib3"), 8, 3);
  const out = join(dir, "out3.json");
  assertCleanError(mcnc("compress", "--method", "gptq", "--in", input, "--out", out, "--calib", calib, "--compress", "dw/kernel"), /dw\/kernel: DepthwiseConv2dNative node dw uses it as input 1, where calibration cannot capture/);
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", input, "--out", out, "--qdq"), /--qdq applies to ONNX output \(this is tfjs\)/);
  assertCleanError(mcnc("compress", "--method", "gptq", "--in", input, "--out", out), /give --calib DIR/);
  const wrong = join(dir, "wrong");
  mkdirSync(wrong);
  writeFileSync(join(wrong, "x.npy"), npy("<f4", [2, 5, 4, 2], new Float32Array(80)));
  assertCleanError(mcnc("compress", "--method", "gptq", "--in", input, "--out", out, "--calib", wrong), /axis 2 of the input is fixed at 5/);
});
