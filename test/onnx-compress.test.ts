/**
 * Models users bring as ONNX: calibration through onnxruntime (the moments each layer sees, against
 * a reference computed here), calibrated methods against round-to-nearest on the user's inputs, and
 * the compact forms written back (smaller files that onnxruntime runs to the same outputs as the
 * dense weights they encode).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { calibrateOnnx } from "../src/compress/calibrate-onnx.js";
import type { InputMoments } from "../src/compress/compressor.js";
import { openModelInputs } from "../src/data/model-inputs.js";
import { initEngine } from "../src/engine/engine.js";
import { openModelSession } from "../src/engine/model-session.js";
import { f32, Graph } from "../src/engine/onnx/graph.js";
import { encodeWith, graphInputs, makeNode, makeTensor } from "../src/format/onnx-graph.js";
import { readOnnx } from "../src/format/onnx.js";
import { asMatrix } from "../src/model/tensors.js";
import { saveWithExternalData } from "../bench/large-onnx.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";
import { npy } from "./data-files.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-onnx-"));

/** Deterministic normal-ish numbers (sum of uniforms). */
function noise(n: number, seed: number, scale: number): Float32Array {
  let s = seed;
  const u = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Float32Array.from({ length: n }, () => scale * (u() + u() + u() - 1.5) * 2);
}

/**
 * A small classifier as another tool would export it: Conv, a grouped strided Conv, MatMul and Gemm
 * (transB), its batch axis free.
 */
function classifier(): Uint8Array {
  const g = new Graph();
  const x = g.input("x", f32([1, 3, 8, 8]));
  const w0 = g.constant("float32", [8, 3, 3, 3], noise(8 * 27, 1, 0.4));
  const a = g.op("Relu", [g.op("Conv", [x, w0], f32([1, 8, 8, 8]), { pads: [1, 1, 1, 1] })], f32([1, 8, 8, 8]));
  const w1 = g.constant("float32", [8, 4, 3, 3], noise(8 * 36, 2, 0.3));
  const b = g.op("Relu", [g.op("Conv", [a, w1], f32([1, 8, 4, 4]), { pads: [1, 1, 1, 1], strides: [2, 2], group: 2 })], f32([1, 8, 4, 4]));
  const flat = g.op("Reshape", [b, g.ints([-1, 128])], f32([1, 128]));
  const w2 = g.constant("float32", [128, 32], noise(128 * 32, 3, 0.15));
  const h = g.op("Relu", [g.op("MatMul", [flat, w2], f32([1, 32]))], f32([1, 32]));
  const w3 = g.constant("float32", [10, 32], noise(320, 4, 0.3));
  g.output("y", g.op("Gemm", [h, w3, g.constant("float32", [10], noise(10, 5, 0.1))], f32([1, 10]), { transB: 1 }));
  const model = readOnnx(g.encode());
  // Free the batch axis, as exporters do.
  model.message.graph.input[0]!.type!.tensorType!.shape!.dim[0] = { dimParam: "batch" };
  model.message.graph.output[0]!.type!.tensorType!.shape!.dim[0] = { dimParam: "batch" };
  return model.encode();
}

const MODEL = join(dir, "classifier.onnx");
writeFileSync(MODEL, classifier());
/** Inputs with structure (a few smooth patterns plus noise), as real images have. */
function inputs(folder: string, n: number, seed: number): string {
  const path = join(dir, folder);
  mkdirSync(path, { recursive: true });
  const base = noise(4 * 192, 7, 1);
  const mix = noise(n * 4, seed, 1);
  const extra = noise(n * 192, seed + 1, 0.2);
  const x = Float32Array.from({ length: n * 192 }, (_, i) => {
    const [s, j] = [Math.floor(i / 192), i % 192];
    let v = extra[i]!;
    for (let k = 0; k < 4; k++) v += mix[s * 4 + k]! * base[k * 192 + j]!;
    return v;
  });
  writeFileSync(join(path, "x.npy"), npy("<f4", [n, 3, 8, 8], x));
  return path;
}
const CALIB = inputs("calib", 64, 11);
const EVAL = inputs("eval", 48, 21);

test("calibration captures what each MatMul, Gemm and Conv multiplies: X^T X against im2col here, a grouped Conv's group by group", async () => {
  await initEngine({ engine: "native" });
  const model = readOnnx(readFileSync(MODEL));
  const leaves = model.weights.filter((w) => w.multiplied).map((w) => ({ name: w.name, shape: w.shape, layout: w.layout, value: w.value }));
  assert.equal(leaves.length, 4);
  const data = openModelInputs(CALIB, graphInputs(model.message), {}, "--calib");
  const seen = new Map<string, InputMoments>();
  const waves: number[] = [];
  // Weights left as they are: every wave sees the original model.
  await calibrateOnnx(model, model.message, leaves, data, async (leaf, _i, moments) => {
    seen.set(leaf.name, moments);
    return { stored: [], weight: asMatrix(leaf.shape, leaf.layout).toMatrix(model.read(leaf.name)) };
  }, (p) => waves.push(p.leaves));
  assert.deepEqual(waves, [1, 1, 1, 1], "four layers feeding one another: four waves");

  // The activations each layer multiplies, from onnxruntime, then X^T X by im2col here in float64.
  const nodes = model.message.graph.node;
  const acts = nodes.filter((n) => ["Conv", "MatMul", "Gemm"].includes(n.opType ?? "")).map((n) => n.input[0]!);
  const withActs = encodeWith(model.message, { nodes: [], initializers: [], outputs: acts.filter((a) => a !== "x") }, () => model.encode());
  const session = await openModelSession(withActs, "the test model");
  const feeds = data.batch(0, data.samples);
  const out: Record<string, { data: ArrayLike<number>; dims: readonly number[] }> = { ...(await session.run(feeds)), x: feeds.x! } as never;
  await session.close();
  /** The moment of each group's patches. */
  const convMoments = (act: { data: ArrayLike<number>; dims: readonly number[] }, perGroup: number, groups: number, stride: number) => {
    const [n, , h, w] = act.dims as number[];
    const rows = perGroup * 9;
    const Hs = Array.from({ length: groups }, () => new Float64Array(rows * rows));
    const oh = Math.floor((h! + 2 - 3) / stride) + 1;
    for (let s = 0; s < n!; s++)
      for (let g = 0; g < groups; g++)
        for (let y = 0; y < oh; y++)
          for (let x = 0; x < oh; x++) {
            const patch = new Float64Array(rows);
            for (let c = 0; c < perGroup; c++)
              for (let ky = 0; ky < 3; ky++)
                for (let kx = 0; kx < 3; kx++) {
                  const [iy, ix] = [y * stride + ky - 1, x * stride + kx - 1];
                  if (iy >= 0 && ix >= 0 && iy < h! && ix < w!) patch[c * 9 + ky * 3 + kx] = Number(act.data[((s * perGroup * groups + g * perGroup + c) * h! + iy) * w! + ix]);
                }
            for (let i = 0; i < rows; i++) for (let j = 0; j < rows; j++) Hs[g]![i * rows + j]! += patch[i]! * patch[j]!;
          }
    return Hs;
  };
  const summed = (Hs: Float64Array[]) => Hs.reduce((sum, H) => sum.map((v, k) => v + H[k]!));
  const matMoment = (act: { data: ArrayLike<number>; dims: readonly number[] }) => {
    const k = act.dims.at(-1)!;
    const H = new Float64Array(k * k);
    for (let r = 0; r < act.data.length / k; r++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) H[i * k + j]! += Number(act.data[r * k + i]) * Number(act.data[r * k + j]);
    return H;
  };
  const grouped = convMoments(out[acts[1]!]!, 4, 2, 2);
  const expected = [summed(convMoments(out[acts[0]!]!, 3, 1, 1)), summed(grouped), matMoment(out[acts[2]!]!), matMoment(out[acts[3]!]!)];
  const close = (got: Float64Array, want: Float64Array, what: string) => {
    assert.equal(got.length, want.length, what);
    const scale = Math.max(...want.map(Math.abs));
    for (let k = 0; k < want.length; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-5 * scale, `${what}[${k}]: ${got[k]} against ${want[k]}`);
  };
  leaves.forEach((leaf, i) => close(seen.get(leaf.name)!.hessian, expected[i]!, leaf.name));
  // The grouped Conv's two groups see different input channels: each its own moment, for its half of the outputs.
  const groups = seen.get(leaves[1]!.name)!.columnGroups!;
  assert.equal(groups.length, 2);
  groups.forEach((H, g) => close(H, grouped[g]!, `${leaves[1]!.name} group ${g}`));
  assert.ok([0, 2, 3].every((i) => seen.get(leaves[i]!.name)!.columnGroups === undefined));
});

const run = (...args: string[]) => {
  const r = mcnc("compress", "--in", MODEL, ...args, "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  return lastJson(r.stdout) as { quality: { outputs: Array<{ mean_abs_diff: number; top1_agreement: number }> }; file_bytes: { in: number; out: number }; forms: Record<string, number> };
};

test("gptq and wanda calibrated on the user's inputs beat their data-free peers on the user's held-out inputs", () => {
  const at = (m: string[]) => run(...m, "--out", join(dir, `${m.slice(0, 3).join("-")}.onnx`), "--eval", EVAL).quality.outputs[0]!;
  const rtn3 = at(["--method", "rtn", "--bits", "3"]);
  const gptq3 = at(["--method", "gptq", "--bits", "3", "--calib", CALIB]);
  assert.ok(gptq3.mean_abs_diff < 0.8 * rtn3.mean_abs_diff, `gptq ${JSON.stringify(gptq3)} against rtn ${JSON.stringify(rtn3)}`);
  const magnitude = at(["--method", "magnitude", "--sparsity", "0.5"]);
  const wanda = at(["--method", "wanda", "--sparsity", "0.5", "--calib", CALIB]);
  assert.ok(wanda.mean_abs_diff < magnitude.mean_abs_diff, `wanda ${JSON.stringify(wanda)} against magnitude ${JSON.stringify(magnitude)}`);
  const rom = at(["--method", "rom", "--reduction", "0.5", "--calib", CALIB]);
  const svd = at(["--method", "svd", "--reduction", "0.5"]);
  assert.ok(rom.mean_abs_diff < svd.mean_abs_diff, `rom ${JSON.stringify(rom)} against svd ${JSON.stringify(svd)}`);
});

test("compact ONNX: codes and factors in forms onnxruntime runs, the same outputs as the dense weights they encode, in fewer bytes", async () => {
  await initEngine({ engine: "native" });
  const x = openModelInputs(EVAL, graphInputs(readOnnx(readFileSync(MODEL)).message), {}, "--eval").batch(0, 16);
  const outputs = async (path: string) => {
    const s = await openModelSession(readFileSync(path), path);
    const y = (await s.run(x)).y!.data as Float32Array;
    await s.close();
    return y;
  };
  for (const [method, form] of [
    [["--method", "rtn", "--bits", "8"], /8-bit codes, one a byte, scaled per channel/],
    [["--method", "rtn", "--bits", "8", "--qdq"], /8-bit codes, per-channel DequantizeLinear/],
    [["--method", "rtn", "--bits", "4"], /4-bit codes, two a byte, scaled per channel/],
    [["--method", "gptq", "--bits", "4", "--group", "32", "--calib", CALIB], /4-bit MatMulNBits, blocks of 32/],
    [["--method", "rtn", "--bits", "4", "--group", "16"], /4-bit codes, two a byte, scaled in groups of 16/],
    [["--method", "svd", "--rank", "8"], /rank 8 as two MatMuls/],
    [["--method", "svd", "--rank", "4"], /rank 4 as a Conv and a 1x1 Conv/],
  ] as const) {
    const name = method.slice(0, 5).join("-");
    const compact = join(dir, `${name}.onnx`);
    const dense = join(dir, `${name}-float.onnx`);
    const j = run(...method, "--out", compact);
    run(...method, "--out", dense, "--float");
    assert.ok(Object.keys(j.forms).some((f) => form.test(f)), `${name}: ${JSON.stringify(j.forms)}`);
    assert.equal(j.file_bytes.out, statSync(compact).size);
    assert.ok(j.file_bytes.out < statSync(dense).size, `${name}: ${j.file_bytes.out} bytes against ${statSync(dense).size} dense`);
    const [a, b] = [await outputs(compact), await outputs(dense)];
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4 * (1 + Math.abs(b[i]!)), `${name}: output ${i}: ${a[i]} against ${b[i]}`);
  }
});

test("compress on a model users bring: bad calibration data, methods and patterns get one line each", () => {
  const out = join(dir, "bad.onnx");
  const folder = (name: string, files: Record<string, Uint8Array>) => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true });
    for (const [f, bytes] of Object.entries(files)) writeFileSync(join(path, f), bytes);
    return path;
  };
  const gptq = (...more: string[]) => mcnc("compress", "--method", "gptq", "--in", MODEL, "--out", out, ...more);
  assertCleanError(gptq(), /give --calib DIR/);
  assertCleanError(gptq("--calib", folder("empty", {})), /holds no \.npy arrays .* x\.npy/);
  assertCleanError(gptq("--calib", folder("other", { "y.npy": npy("<f4", [2, 3, 8, 8], new Float32Array(384)) })), /y\.npy names no input of the model/);
  assertCleanError(gptq("--calib", folder("shape", { "x.npy": npy("<f4", [2, 3, 9, 8], new Float32Array(432)) })), /axis 2 of the input is fixed at 8/);
  assertCleanError(gptq("--calib", folder("dtype", { "x.npy": npy("<i8", [2, 3, 8, 8], new Array(384).fill(1)) })), /x\.npy holds <i8, which cannot feed the input's float32/);
  const nan = new Float32Array(384);
  nan[300] = Number.NaN;
  assertCleanError(gptq("--calib", folder("nan", { "x.npy": npy("<f4", [2, 3, 8, 8], nan) })), /x\.npy holds a value that is not a finite float32 \(sample 1\)/);
  assertCleanError(mcnc("compress", "--method", "fwsvd", "--reduction", "0.2", "--in", MODEL, "--out", out), /no loss to differentiate/);
  assertCleanError(mcnc("compress", "--method", "rtn", "--keep", "nothing-like-this", "--in", MODEL, "--out", out), /--keep nothing-like-this matches none/);
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", MODEL, "--out", out, "--eval", folder("images", {})), /holds no \.npy arrays/);
  assert.throws(() => statSync(out), "no output file after an error");
});

test("calibration measures what onnxruntime holds for one sample, and refuses, in one line, activations the memory limit has no room for", () => {
  // A 3x3 Conv over 4 x 384 x 384: tiny weights, but each sample's patches fill tens of MiB inside onnxruntime.
  const g = new Graph();
  const x = g.input("x", f32([1, 4, 384, 384]));
  g.output("y", g.op("Conv", [x, g.constant("float32", [8, 4, 3, 3], noise(288, 9, 0.3))], f32([1, 8, 384, 384]), { pads: [1, 1, 1, 1] }));
  const model = readOnnx(g.encode());
  model.message.graph.input[0]!.type!.tensorType!.shape!.dim[0] = { dimParam: "batch" };
  model.message.graph.output[0]!.type!.tensorType!.shape!.dim[0] = { dimParam: "batch" };
  const path = join(dir, "wide.onnx");
  writeFileSync(path, model.encode());
  const calib = join(dir, "wide-calib");
  mkdirSync(calib);
  writeFileSync(join(calib, "x.npy"), npy("<f4", [3, 4, 384, 384], noise(3 * 4 * 384 * 384, 10, 1)));
  const gptq = (...more: string[]) => mcnc("compress", "--method", "gptq", "--bits", "4", "--in", path, "--out", join(dir, "wide-4bit.onnx"), "--calib", calib, ...more);
  // A batch of 8 such inputs, as read, fits in 48 MiB (37.7); what onnxruntime makes of one sample does not.
  assertCleanError(gptq("--max-memory", "48", "--quiet"), /calibrating in onnxruntime \(one sample's activations measured at \d+ MiB, beside the model's copies\) needs about .* above the limit of 48 MiB/);
  const r = gptq("--json");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastJson(r.stdout).compressed, 1);
});

test("an If that the calibration data always decides the same way is calibrated through the branch it takes", async () => {
  await initEngine({ engine: "native" });
  // y = flag ? relu(x W1) W2 : x W3, the weights outside the If, as exporters write them.
  const g = new Graph();
  const x = g.input("x", f32([1, 16]));
  g.input("flag", { shape: [], dtype: "bool" });
  const w1 = g.constant("float32", [16, 16], noise(256, 31, 0.3));
  const w2 = g.constant("float32", [16, 4], noise(64, 32, 0.3));
  const w3 = g.constant("float32", [16, 4], noise(64, 33, 0.3));
  g.output("kept", g.op("Identity", [x], f32([1, 16])));
  const model = readOnnx(g.encode());
  const m = model.message;
  const out = (name: string) => ({ name, type: { tensorType: { elemType: 1 } } });
  const then = { name: "then", node: [makeNode("MatMul", [x, w1], ["h"]), makeNode("Relu", ["h"], ["r"]), makeNode("MatMul", ["r", w2], ["t_y"])], initializer: [], input: [], output: [out("t_y")] };
  const otherwise = { name: "else", node: [makeNode("MatMul", [x, w3], ["e_y"])], initializer: [], input: [], output: [out("e_y")] };
  m.graph.node.push(makeNode("If", ["flag"], ["y"], [{ name: "then_branch", g: then, type: 5 }, { name: "else_branch", g: otherwise, type: 5 }]));
  m.graph.output.push(out("y"));
  const path = join(dir, "branches.onnx");
  writeFileSync(path, model.encode());
  const data = join(dir, "branch-calib");
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, "x.npy"), npy("<f4", [32, 16], noise(512, 34, 1)));
  writeFileSync(join(data, "flag.npy"), npy("|b1", [32], new Array(32).fill(1)));
  const r = mcnc("compress", "--method", "gptq", "--bits", "4", "--in", path, "--out", join(dir, "branches-gptq.onnx"), "--calib", data, "--json");
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout) as { leaves: string[] };
  // The then branch's two weights, one after the other; the else branch's stays as it is.
  assert.deepEqual(j.leaves.sort(), [w1, w2].sort());
  assert.match(r.stderr, new RegExp(`stays as it is: ${w3}: it lies in an If branch that no calibration sample takes`));
  assert.match(r.stderr, /\[wave 2\/2\]/);
});

test("ONNX with external data: read beside the model, compressed, written back self-contained; data outside the folder refused", async () => {
  await initEngine({ engine: "native" });
  const withExternalData = (folder: string, location: (name: string) => string) => saveWithExternalData(readFileSync(MODEL), join(dir, folder), location);
  const external = withExternalData("external", (name) => (name.length % 2 ? "weights.bin" : "more/weights.bin"));
  assert.ok(statSync(external).size < 1000, "the model file holds no weights itself");
  const x = openModelInputs(EVAL, graphInputs(readOnnx(readFileSync(MODEL)).message), {}, "--eval").batch(0, 16);
  const outputs = async (model: string | Uint8Array) => {
    const s = await openModelSession(model, "a test model");
    const y = (await s.run(x)).y!.data as Float32Array;
    await s.close();
    return y;
  };
  // Read through the model's path, the same model as the inline one.
  assert.deepEqual(await outputs(external), await outputs(MODEL));
  const compress = (input: string, out: string, ...more: string[]) => {
    const r = mcnc("compress", "--method", "gptq", "--bits", "4", "--calib", CALIB, "--in", input, "--out", out, "--eval", EVAL, "--json", "--quiet", ...more);
    assert.equal(r.code, 0, r.stderr);
    return lastJson(r.stdout) as { file_bytes: { in: number; out: number }; quality: { outputs: Array<{ max_abs_diff: number }> } };
  };
  const [fromExternal, fromInline] = [join(dir, "ext-gptq.onnx"), join(dir, "inline-gptq.onnx")];
  const a = compress(external, fromExternal);
  const b = compress(MODEL, fromInline);
  // The input counted with its data files; the output self-contained (loaded from its bytes alone), the same model.
  assert.equal(a.file_bytes.in, statSync(external).size + statSync(join(dir, "external", "weights.bin")).size + statSync(join(dir, "external", "more", "weights.bin")).size);
  assert.deepEqual(a.quality.outputs, b.quality.outputs);
  assert.deepEqual(await outputs(readFileSync(fromExternal)), await outputs(readFileSync(fromInline)));
  // Data-free, and as .mcnc, from the external model too.
  assert.equal(mcnc("compress", "--method", "rtn", "--bits", "8", "--in", external, "--out", join(dir, "ext-rtn.onnx"), "--float", "--quiet").code, 0);
  assert.equal(mcnc("compress", "--method", "rtn", "--bits", "8", "--in", external, "--out", join(dir, "ext-rtn.mcnc"), "--quiet").code, 0);
  const predicted = mcnc("predict", "--in", external, "--inputs", EVAL, "--json");
  assert.equal(predicted.code, 0, predicted.stderr);

  const escaping = withExternalData("escaping", () => "../outside.bin");
  assertCleanError(mcnc("inspect", escaping), /keeps its data in an external file, \.\.\/outside\.bin, which lies outside the model's folder/);
  const linked = withExternalData("linked", () => "weights.bin");
  rmSync(join(dir, "linked", "weights.bin"));
  symlinkSync(join(dir, "outside.bin"), join(dir, "linked", "weights.bin"));
  assertCleanError(mcnc("inspect", linked), /weights\.bin, which lies outside the model's folder/);
  const missing = withExternalData("missing", () => "weights.bin");
  writeFileSync(join(dir, "missing", "weights.bin"), new Uint8Array(100));
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", missing, "--out", join(dir, "never.onnx")), /bytes \d+ to \d+ of weights\.bin, which holds 100/);
  assert.throws(() => statSync(join(dir, "never.onnx")));
});

test("empty and scalar float tensors (an empty Constant, as detectors carry) survive .mcnc and decompress --template for every data-free method", () => {
  const g = new Graph();
  const x = g.input("x", f32([1, 16]));
  const w = g.constant("float32", [16, 8], noise(128, 41, 0.3));
  const h = g.op("Mul", [g.op("MatMul", [x, w], f32([1, 8])), g.constant("float32", [], [0.5])], f32([1, 8]));
  g.output("y", g.op("Concat", [h, "nothing"], f32([1, 8]), { axis: 0 }));
  const model = readOnnx(g.encode());
  model.message.graph.node.unshift(makeNode("Constant", [], ["nothing"], [{ name: "value", t: makeTensor("nothing", [0, 8], 1, new Uint8Array(0)), type: 4 }]));
  const path = join(dir, "empties.onnx");
  writeFileSync(path, model.encode());
  const data = join(dir, "empties-in");
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, "x.npy"), npy("<f4", [3, 16], noise(48, 42, 1)));
  const outputs = (file: string): number[] => {
    const r = mcnc("predict", "--in", file, "--inputs", data, "--raw", "--json");
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").flatMap((line) => (JSON.parse(line) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data);
  };
  const original = outputs(path);
  assert.equal(original.length, 24);
  // Each method's own error on a random 16x8 matrix bounds how far the outputs move.
  const bound: Record<string, number> = { rtn: 0.05, svd: 1, magnitude: 0.3 };
  for (const method of [["rtn", "--bits", "8"], ["svd", "--rank", "4"], ["magnitude", "--sparsity", "0.1"]]) {
    const small = join(dir, `empties-${method[0]}.mcnc`);
    const rebuilt = join(dir, `empties-${method[0]}.onnx`);
    assert.equal(mcnc("compress", "--method", ...method, "--in", path, "--out", small, "--quiet").code, 0);
    const d = mcnc("decompress", small, "--template", path, "--out", rebuilt);
    assert.equal(d.code, 0, d.stderr);
    const got = outputs(rebuilt);
    const worst = Math.max(...got.map((v, i) => Math.abs(v - original[i]!)));
    assert.ok(worst > 0 && worst < bound[method[0]!]!, `${method[0]}: outputs moved by ${worst}`);
  }
});
