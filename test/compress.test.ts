import assert from "node:assert/strict";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CompressedLeaf, InputMoments } from "../src/compress/compressor.js";
import { compressorNames, findCompressor } from "../src/compress/index.js";
import { cholesky, gram, inverseFromCholesky, matmul, symmetricEigen } from "../src/linalg.js";
import { encodeSafetensors, floatToBf16, floatToHalf, memorySource, narrow, readSafetensors, safetensorsHeader, type SafetensorsDtype } from "../src/format/safetensors.js";
import type { ParamSpec } from "../src/model/params.js";
import { coreShape, siteFactors, siteOrder, trainOf } from "../src/methods/tt/layout.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";

/** A deterministic pseudo-random stream in [-0.5, 0.5). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
}

const spec = (rows: number, cols: number): ParamSpec => ({ name: "w", shape: [rows, cols], role: "weight", fanIn: rows });

function leaf(name: string, config: Record<string, unknown>, w: Float32Array, rows: number, cols: number, moments?: InputMoments): CompressedLeaf {
  const c = findCompressor(name)!;
  return c.compressLeaf(c.configure(config), { spec: spec(rows, cols), rows, cols, weight: w, seed: 0, index: 0, ...(moments ? { moments } : {}) }) as CompressedLeaf;
}

/** ||X (W - V)||^2, the error on the outputs. */
function outputError(x: Float64Array, n: number, rows: number, cols: number, w: Float32Array, v: Float32Array): number {
  const d = w.map((a, i) => a - v[i]!);
  return matmul(x, d, n, rows, cols).reduce((s, e) => s + e * e, 0);
}

test("safetensors: F32, F16 and BF16 round-trip; half and bfloat16 round to nearest even", () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2.5), 0xc100);
  assert.equal(floatToHalf(65504), 0x7bff);
  assert.equal(floatToHalf(65520), 0x7c00); // overflow to infinity
  assert.equal(floatToHalf(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(floatToHalf(2 ** -25), 0x0000); // a tie rounds to even (zero)
  assert.equal(floatToHalf(0.1), 0x2e66);
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie between 1 and 1 + 2^-10: even
  assert.equal(floatToBf16(1), 0x3f80);
  assert.equal(floatToBf16(0.1), 0x3dcd);
  const values = Float32Array.of(0, 1, -2.5, 0.1, 65504, 2 ** -24, -3e-5, 1e30);
  for (const dtype of ["F32", "F16", "BF16"] as SafetensorsDtype[]) {
    const file = encodeSafetensors([{ name: "a.weight", shape: [2, 4], dtype, data: values }, { name: "b", shape: [1], dtype, data: Float32Array.of(7) }], { note: "x" });
    const r = readSafetensors(memorySource(file));
    assert.deepEqual(r.metadata, { note: "x" });
    assert.deepEqual(r.entries.map((e) => [e.name, e.dtype, e.shape]), [["a.weight", dtype, [2, 4]], ["b", dtype, [1]]]);
    const back = r.read("a.weight");
    // Narrowing what was read gives the same bytes: every format's values survive a second trip exactly.
    assert.deepEqual(narrow(back, dtype), narrow(values, dtype));
    if (dtype === "F32") assert.deepEqual(back, values);
    assert.equal(back[2], -2.5);
  }
});

test("safetensors: lying or truncated headers are refused before anything is allocated", () => {
  const good = encodeSafetensors([{ name: "w", shape: [4, 4], data: new Float32Array(16) }]);
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const withHeader = (header: object, data = 64) => {
    const raw = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + raw.length + data);
    new DataView(out.buffer).setBigUint64(0, BigInt(raw.length), true);
    out.set(raw, 8);
    return out;
  };
  const cases: Array<[Uint8Array, RegExp]> = [
    [good.subarray(0, 5), /too short/],
    [good.subarray(0, 8 + n + 10), /data section holds 10 bytes|runs past the end/],
    [(() => { const b = good.slice(); new DataView(b.buffer).setBigUint64(0, 2n ** 60n, true); return b; })(), /exceeds the limit/],
    [withHeader({ w: { dtype: "F32", shape: [4, 4], data_offsets: [0, 60] } }), /needs 64 bytes/],
    [withHeader({ w: { dtype: "I64", shape: [8], data_offsets: [0, 64] } }), /not supported/],
    [withHeader({ w: { dtype: "F32", shape: [65536, 65536], data_offsets: [0, 64] } }), /exceeds the limit/],
    [withHeader({ a: { dtype: "F32", shape: [8], data_offsets: [0, 32] }, b: { dtype: "F32", shape: [8], data_offsets: [16, 48] } }), /gap or overlap/],
    [withHeader({ a: { dtype: "F32", shape: [8], data_offsets: [0, 32] } }), /holds 64 bytes, the tensors 32/],
    [withHeader({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 64] } }), /bad dimension/],
  ];
  for (const [bytes, pattern] of cases) assert.throws(() => readSafetensors(memorySource(bytes)), pattern);
});

test("symmetric eigendecomposition and Cholesky inverse are exact to rounding", () => {
  const next = lcg(3);
  const n = 24;
  const b = Float64Array.from({ length: n * n }, next);
  const a = gram(b, n, n);
  const { values, vectors } = symmetricEigen(a, n);
  for (let j = 0; j < n; j++) {
    if (j > 0) assert.ok(values[j - 1]! >= values[j]!, "descending");
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let k = 0; k < n; k++) av += a[i * n + k]! * vectors[k * n + j]!;
      assert.ok(Math.abs(av - values[j]! * vectors[i * n + j]!) < 1e-10);
    }
  }
  const inv = inverseFromCholesky(cholesky(a, n)!, n);
  const eye = matmul(a, inv, n, n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.ok(Math.abs(eye[i * n + j]! - (i === j ? 1 : 0)) < 1e-8);
  assert.equal(cholesky(Float64Array.of(1, 2, 2, 1), 2), null);
});

test("at a small rank of a large matrix, svd iterates on a subspace and still makes the best rank-r approximation", () => {
  const next = lcg(9);
  const [rows, cols, r] = [560, 520, 24];
  // Columns scaled down along the matrix, as trained weights' spectra fall.
  const w = Float32Array.from({ length: rows * cols }, (_, i) => next() / Math.sqrt(1 + (i % cols) / 8));
  const started = performance.now();
  const svd = leaf("svd", { rank: r }, w, rows, cols);
  const seconds = (performance.now() - started) / 1000;
  const tail = symmetricEigen(gram(w, rows, cols), cols).values.slice(r).reduce((s, v) => s + v, 0);
  const err = w.reduce((s, v, i) => s + (v - svd.weight[i]!) ** 2, 0);
  assert.ok(err >= tail * (1 - 1e-9) && err - tail < 1e-6 * tail, `error ${err} against the tail ${tail} (${seconds.toFixed(1)} s)`);
});

test("vq: the codes and codebooks decode to the weights reported; more codebooks, and the inputs' metric, each lower the error they aim at", () => {
  const next = lcg(7);
  const [rows, cols] = [32, 24];
  const w = Float32Array.from({ length: rows * cols }, () => next());
  // Inputs with very different scales: the calibrated metric should spend its codes on the loud ones.
  const x = Float64Array.from({ length: 256 * rows }, (_, i) => next() * (i % rows < 4 ? 10 : 0.1));
  const H = gram(x, 256, rows);
  const moments = { hessian: H };
  const frob = (v: Float32Array) => w.reduce((e, a, i) => e + (a - v[i]!) ** 2, 0);
  const one = leaf("vq", { codebooks: 1, "code-bits": 4, group: 4 }, w, rows, cols);
  const two = leaf("vq", { codebooks: 2, "code-bits": 4, group: 4 }, w, rows, cols);
  assert.ok(frob(two.weight) < 0.8 * frob(one.weight), `${frob(one.weight)} -> ${frob(two.weight)}`);
  const stored = Object.fromEntries(two.stored.map((t) => [t.name, t]));
  assert.deepEqual([stored["w.codebooks"]!.shape, stored["w.codes"]!.shape], [[2, 16, 4], [2, 8, 24]]);
  const calibrated = leaf("vq", { codebooks: 1, "code-bits": 4, group: 4 }, w, rows, cols, moments);
  assert.ok(outputError(x, 256, rows, cols, w, calibrated.weight) < 0.7 * outputError(x, 256, rows, cols, w, one.weight), "the inputs' metric lowers the output error");
  assert.throws(() => findCompressor("vq")!.configure({ bits: 3, "code-bits": 8, group: 5 }), /not a whole number/);
});

test("tt: sites factored as the format says; at the largest bonds TT-SVD gives the matrix back, and its error falls as the bond grows", () => {
  assert.deepEqual([siteFactors(784, 2), siteFactors(768, 2), siteFactors(3072, 3), siteFactors(7, 2), siteFactors(10, 3)], [[28, 28], [32, 24], [16, 16, 12], [7, 1], [5, 2, 1]]);
  const next = lcg(4);
  const [rows, cols] = [24, 30];
  const w = Float32Array.from({ length: rows * cols }, (_, i) => next() / Math.sqrt(1 + (i % cols) / 4));
  for (const sites of [2, 3]) {
    const exact = leaf("tt", { sites, bond: 4096 }, w, rows, cols);
    assert.ok(w.every((v, i) => Math.abs(v - exact.weight[i]!) < 1e-5), `${sites} sites at full bond`);
    // The stored cores contract to the weight reported, as a reader contracts them.
    const t = trainOf(rows, cols, sites, exact.stored.slice(0, -1).map((c) => c.shape[3]!));
    assert.deepEqual(exact.stored.map((c) => c.shape), t.rows.map((_, k) => coreShape(t, k)));
    const errors = [1, 2, 4, 8].map((bond) => leaf("tt", { sites, bond }, w, rows, cols).weight.reduce((e, v, i) => e + (v - w[i]!) ** 2, 0));
    assert.ok(errors.every((e, i) => i === 0 || e < errors[i - 1]!), `${sites} sites: ${errors}`);
  }
  // Two sites at bond D is the best sum of D Kronecker products: its error is the tail of the rearranged matrix's spectrum.
  const t = trainOf(rows, cols, 2, [3]);
  const at = siteOrder(t);
  const rearranged = new Float64Array(rows * cols);
  w.forEach((v, i) => (rearranged[at[i]!] = v));
  const [m, n] = [t.rows[0]! * t.cols[0]!, t.rows[1]! * t.cols[1]!];
  const tail = symmetricEigen(gram(rearranged, m, n), n).values.slice(3).reduce((a, b) => a + b, 0);
  const err = leaf("tt", { sites: 2, bond: 3 }, w, rows, cols).weight.reduce((e, v, i) => e + (v - w[i]!) ** 2, 0);
  assert.ok(Math.abs(err - tail) < 1e-4 * tail, `${err} against ${tail}`);
});

test("rom recovers a layer whose outputs are exactly low rank; svd at the same rank does not", () => {
  const next = lcg(4);
  const [n, rows, cols, r] = [200, 16, 12, 3];
  // Inputs confined to an r-dimensional subspace: the outputs X W have rank r whatever W is.
  const basis = Float64Array.from({ length: r * rows }, next);
  const x = matmul(Float64Array.from({ length: n * r }, next), basis, n, r, rows);
  const w = Float32Array.from({ length: rows * cols }, next);
  const moments = { hessian: gram(x, n, rows) };
  const rom = leaf("rom", { rank: r }, w, rows, cols, moments);
  const svd = leaf("svd", { rank: r }, w, rows, cols);
  const signal = outputError(x, n, rows, cols, w, new Float32Array(rows * cols));
  assert.ok(outputError(x, n, rows, cols, w, rom.weight) < 1e-9 * signal, "rom is exact on the outputs");
  assert.ok(outputError(x, n, rows, cols, w, svd.weight) > 0.05 * signal, "svd is not");
  assert.deepEqual(rom.stored.map((t) => [t.name, t.shape]), [["w.down", [rows, r]], ["w.up", [r, cols]]]);
  // svd is the best rank-r approximation: its Frobenius error is the tail of the singular values.
  const tail = symmetricEigen(gram(w, rows, cols), cols).values.slice(r).reduce((s, v) => s + v, 0);
  const err = w.reduce((s, v, i) => s + (v - svd.weight[i]!) ** 2, 0);
  assert.ok(Math.abs(err - tail) < 1e-4 * tail);
});

test("fwsvd keeps the outputs the loss is sensitive to: lower Fisher-weighted error than svd at the same rank", () => {
  const next = lcg(8);
  const [rows, cols, r] = [20, 10, 3];
  const w = Float32Array.from({ length: rows * cols }, next);
  // Outputs 0 and 1 matter a hundred times more than the rest.
  const fisher = Float32Array.from({ length: rows * cols }, (_, i) => (i % cols < 2 ? 100 : 1));
  const weighted = (v: Float32Array) => v.reduce((sum, x, i) => sum + fisher[i]! * (x - w[i]!) ** 2, 0);
  const fw = findCompressor("fwsvd")!;
  const out = fw.compressLeaf(fw.configure({ rank: r }), { spec: spec(rows, cols), rows, cols, weight: w, fisher, seed: 0, index: 0 }) as CompressedLeaf;
  const plain = leaf("svd", { rank: r }, w, rows, cols);
  assert.ok(weighted(out.weight) < 0.7 * weighted(plain.weight), `${weighted(out.weight)} against ${weighted(plain.weight)}`);
  assert.deepEqual(out.stored.map((t) => t.shape), [[rows, r], [r, cols]]);
});

test("a grouped Conv's columns are calibrated on their own group's moment: gptq and wanda as if each group were its own layer", () => {
  const next = lcg(6);
  const [n, rows, cols] = [256, 12, 8];
  // Two groups whose inputs differ: the second's correlated, the first's not, and their scales rising
  // along the inputs in one and falling in the other.
  const xs = [Float64Array.from({ length: n * rows }, (_, i) => next() * ((i % rows) + 1)), matmul(Float64Array.from({ length: n * rows }, (_, i) => next() * (rows - (i % rows))), Float64Array.from({ length: rows * rows }, next), n, rows, rows)];
  const hs = xs.map((x) => gram(x, n, rows));
  const w = Float32Array.from({ length: rows * cols }, next);
  const half = (m: Float32Array, g: number) => Float32Array.from({ length: rows * (cols / 2) }, (_, i) => m[Math.floor(i / (cols / 2)) * cols + g * (cols / 2) + (i % (cols / 2))]!);
  const moments = { hessian: hs[0]!.map((v, k) => v + hs[1]![k]!), columnGroups: hs };
  for (const [name, config] of [
    ["gptq", { bits: 3, group: 0 }],
    ["wanda", { sparsity: 0.5 }],
  ] as const) {
    const whole = leaf(name, config, w, rows, cols, moments);
    for (const g of [0, 1]) assert.deepEqual(half(whole.weight, g), leaf(name, config, half(w, g), rows, cols / 2, { hessian: hs[g]! }).weight, `${name} group ${g}`);
    // On the groups' sum instead, the outputs of at least one group come out otherwise.
    const shared = leaf(name, config, w, rows, cols, { hessian: moments.hessian });
    assert.ok([0, 1].some((g) => half(shared.weight, g).some((v, i) => v !== half(whole.weight, g)[i])), name);
  }
});

test("gptq's output error is below round-to-nearest's on correlated inputs, on the same grid", () => {
  const next = lcg(5);
  const [n, rows, cols] = [512, 32, 16];
  const mix = Float64Array.from({ length: rows * rows }, next);
  const x = matmul(Float64Array.from({ length: n * rows }, next), mix, n, rows, rows);
  const w = Float32Array.from({ length: rows * cols }, next);
  const moments = { hessian: gram(x, n, rows) };
  for (const bits of [4, 3, 2]) {
    for (const group of [0, 8]) {
      const rtn = leaf("rtn", { bits, group }, w, rows, cols);
      const gptq = leaf("gptq", { bits, group }, w, rows, cols, moments);
      const [e1, e2] = [outputError(x, n, rows, cols, w, rtn.weight), outputError(x, n, rows, cols, w, gptq.weight)];
      assert.ok(e2 < 0.9 * e1, `bits ${bits} group ${group}: gptq ${e2} against rtn ${e1}`);
      assert.deepEqual(gptq.stored.map((t) => t.name), ["w.codes", "w.min", "w.step"]);
      // EoRA's correction only lowers GPTQ's output error.
      const eora = leaf("eora", { bits, group, rank: 4 }, w, rows, cols, moments);
      assert.ok(outputError(x, n, rows, cols, w, eora.weight) < outputError(x, n, rows, cols, w, gptq.weight));
      // Every weight lies on its group's grid: what the file stores is what was measured.
      const min = (gptq.stored[1] as { data: Float32Array }).data;
      const step = (gptq.stored[2] as { data: Float32Array }).data;
      const codes = (gptq.stored[0] as { codes: Uint8Array }).codes;
      for (let i = 0; i < rows * cols; i++) {
        const g = group === 0 ? 0 : Math.floor(Math.floor(i / cols) / group);
        const c = i % cols;
        assert.equal(gptq.weight[i], Math.fround(Math.fround(codes[i]! * step[g * cols + c]!) + min[g * cols + c]!));
      }
    }
  }
});

test("magnitude and wanda: the asked sparsity, 2:4 in every block of four inputs, wanda weighing by input norm", () => {
  const next = lcg(6);
  const [rows, cols] = [16, 8];
  const w = Float32Array.from({ length: rows * cols }, next);
  const mag = leaf("magnitude", { sparsity: 0.5 }, w, rows, cols);
  assert.equal(mag.weight.filter((v) => v === 0).length, 64);
  const smallestKept = Math.min(...mag.weight.filter((v) => v !== 0).map(Math.abs));
  assert.ok(w.every((v, i) => mag.weight[i] !== 0 || Math.abs(v) <= smallestKept));
  // Input 0 is loud, the rest quiet: wanda keeps input 0's weights whatever their size.
  const hessian = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) hessian[i * rows + i] = i === 0 ? 1e10 : 1;
  const small = w.map((v, i) => (i < cols ? v * 1e-3 : v));
  const wanda = leaf("wanda", { sparsity: 0.5 }, small, rows, cols, { hessian });
  for (let c = 0; c < cols; c++) {
    assert.notEqual(wanda.weight[c], 0, "input 0 kept");
    let zeros = 0;
    for (let r = 0; r < rows; r++) zeros += wanda.weight[r * cols + c] === 0 ? 1 : 0;
    assert.equal(zeros, 8, "each output keeps half its inputs");
  }
  const nm = leaf("wanda", { pattern: "2:4" }, w, rows, cols, { hessian });
  for (let c = 0; c < cols; c++) for (let a = 0; a < rows; a += 4) assert.equal([0, 1, 2, 3].filter((k) => nm.weight[(a + k) * cols + c] !== 0).length, 2);
  // EoRA on Wanda: the survivors stay as Wanda chose them, and the correction lowers the output error.
  const n = 256;
  const x = matmul(Float64Array.from({ length: n * rows }, next), Float64Array.from({ length: rows * rows }, next), n, rows, rows);
  const moments = { hessian: gram(x, n, rows) };
  const pruned = leaf("wanda", { pattern: "2:4" }, w, rows, cols, moments);
  const fixed = leaf("eora", { on: "wanda", pattern: "2:4", rank: 2 }, w, rows, cols, moments);
  assert.deepEqual(fixed.stored.slice(0, 2), pruned.stored);
  assert.deepEqual(fixed.stored.slice(2).map((t) => t.shape), [[rows, 2], [2, cols]]);
  assert.ok(outputError(x, n, rows, cols, w, fixed.weight) < 0.9 * outputError(x, n, rows, cols, w, pruned.weight));
  assert.throws(() => findCompressor("eora")!.configure({ on: "wanda", bits: 4, sparsity: 0.5 }), /--bits does not apply to eora --on wanda/);
  assert.throws(() => findCompressor("eora")!.configure({ on: "sparsegpt" }), /--on must be gptq or wanda/);
  assert.throws(() => findCompressor("wanda")!.configure({ pattern: "4:2" }), /N:M/);
  assert.throws(() => findCompressor("svd")!.configure({}), /--reduction .* or --rank/);
});

const dir = mkdtempSync(join(tmpdir(), "mcnc-compress-"));
const model = join(dir, "mlp.mcnc");

test("mcnc compress: every method on a trained MLP, the .mcnc output evaluating as reported", () => {
  const trained = mcnc("train", "--model", "mlp", "--method", "dense", "--epochs", "1", "--limit", "2000", "--test-limit", "500", "--out", model, "--quiet");
  assert.equal(trained.code, 0, trained.stderr);
  const runs: Array<[string, string[]]> = [
    ["svd", ["--reduction", "0.5", "--compress", "w1"]],
    ["rom", ["--reduction", "0.5", "--compress", "w1", "--calib-samples", "128"]],
    ["rtn", ["--bits", "3", "--group", "64"]],
    ["gptq", ["--bits", "3", "--group", "64", "--calib-samples", "128"]],
    ["magnitude", ["--sparsity", "0.5"]],
    ["wanda", ["--pattern", "2:4", "--calib-samples", "128"]],
    ["fwsvd", ["--reduction", "0.5", "--compress", "w1", "--calib-samples", "128"]],
    ["tt", ["--reduction", "0.5", "--sites", "3", "--compress", "w1"]],
    ["structured", ["--reduction", "0.2", "--calib-samples", "128"]],
    ["vq", ["--bits", "2", "--code-bits", "4", "--iterations", "4", "--calib-samples", "128"]],
    ["eora", ["--bits", "2", "--rank", "4", "--calib-samples", "128"]],
    ["eora", ["--on", "wanda", "--sparsity", "0.9", "--rank", "4", "--calib-samples", "128"]],
    ["mcnc-fit", ["--d", "256", "--k", "16", "--steps", "100", "--compress", "w1", "--calib-samples", "128"]],
  ];
  // Every compressor is run here, as every method is in methods.test.ts: a new one must add its case.
  // drop-blocks removes transformer blocks, which the MLP has none of: test/structured.test.ts runs it on the GPT.
  assert.deepEqual([...new Set([...runs.map(([m]) => m), "drop-blocks"])].sort(), compressorNames().sort());
  const after: Record<string, number> = {};
  for (const [method, flags] of runs) {
    const out = join(dir, `${method}-${flags[1]}.mcnc`);
    const r = mcnc("compress", "--method", method, ...flags, "--in", model, "--out", out, "--test-limit", "500", "--json");
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout) as { after: { accuracy: number }; before: { accuracy: number }; file_bytes: number };
    after[method] = j.after.accuracy;
    assert.ok(j.after.accuracy > 0.5 && j.before.accuracy > 0.6, `${method}: ${JSON.stringify(j)}`);
    assert.equal(j.file_bytes, readFileSync(out).length);
    const e = lastJson(mcnc("eval", out, "--test-limit", "500", "--json").stdout);
    assert.equal(e.accuracy, j.after.accuracy, method);
  }
  assert.ok(after.gptq! >= after.rtn! - 0.01, JSON.stringify(after));
  // The same data-free encoding through training's writer: dense training, then quant-lora's codec.
  const ql = join(dir, "ql.mcnc");
  const t = mcnc("train", "--method", "quant-lora", "--bits", "2", "--rank", "4", "--init", model, "--epochs", "0", "--test-limit", "500", "--out", ql, "--json");
  assert.equal(t.code, 0, t.stderr);
  assert.equal(lastJson(mcnc("eval", ql, "--test-limit", "500", "--json").stdout).accuracy, lastJson(t.stdout).accuracy);
  const pl = join(dir, "pl.mcnc");
  const p = mcnc("train", "--method", "prune-lora", "--sparsity", "0.9", "--rank", "4", "--init", model, "--epochs", "0", "--test-limit", "500", "--out", pl, "--json");
  assert.equal(p.code, 0, p.stderr);
  assert.equal(lastJson(mcnc("eval", pl, "--test-limit", "500", "--json").stdout).accuracy, lastJson(p.stdout).accuracy);
});

test("mcnc compress: safetensors in and out, dtypes kept; a file without a network takes data-free methods only", () => {
  const st = join(dir, "mlp.safetensors");
  assert.equal(mcnc("decompress", model, "--out", st).code, 0);
  const out = join(dir, "mlp-rtn.safetensors");
  const r = mcnc("compress", "--method", "rtn", "--bits", "8", "--in", st, "--out", out, "--test-limit", "500", "--json");
  assert.equal(r.code, 0, r.stderr);
  const viaMcnc = join(dir, "mlp-rtn.mcnc");
  assert.equal(mcnc("compress", "--method", "rtn", "--bits", "8", "--in", model, "--out", viaMcnc, "--skip-eval").code, 0);
  const asSt = join(dir, "mlp-rtn-decoded.safetensors");
  assert.equal(mcnc("decompress", viaMcnc, "--out", asSt).code, 0);
  const [a, b] = [readSafetensors(memorySource(readFileSync(out))), readSafetensors(memorySource(readFileSync(asSt)))];
  for (const name of ["w1", "b1", "w2", "b2"]) assert.deepEqual(a.read(name), b.read(name), name);

  // Someone else's model: half-precision tensors under any names, no network described.
  const next = lcg(7);
  const foreign = join(dir, "foreign.safetensors");
  const data = Float32Array.from({ length: 64 * 32 }, next);
  writeFileSync(foreign, encodeSafetensors([{ name: "encoder.layer.0.dense.weight", shape: [64, 32], dtype: "F16", data }, { name: "encoder.norm", shape: [32], dtype: "BF16", data: data.subarray(0, 32) }], { framework: "other" }));
  const fout = join(dir, "foreign-svd.safetensors");
  const s = mcnc("compress", "--method", "svd", "--rank", "8", "--in", foreign, "--out", fout, "--json");
  assert.equal(s.code, 0, s.stderr);
  const back = readSafetensors(memorySource(readFileSync(fout)));
  assert.deepEqual(back.entries.map((e) => [e.name, e.dtype]), [["encoder.layer.0.dense.weight", "F16"], ["encoder.norm", "BF16"]]);
  assert.equal(back.metadata.framework, "other");
  assert.deepEqual(back.read("encoder.norm"), readSafetensors(memorySource(readFileSync(foreign))).read("encoder.norm"));
  // Stored in another float type on request: every tensor, the file half as large as float32 would be.
  const bf = join(dir, "foreign-bf16.safetensors");
  assert.equal(mcnc("compress", "--method", "svd", "--rank", "8", "--in", foreign, "--out", bf, "--store", "bfloat16").code, 0);
  assert.deepEqual(readSafetensors(memorySource(readFileSync(bf))).entries.map((e) => e.dtype), ["BF16", "BF16"]);
  const mlp16 = join(dir, "mlp-f16.safetensors");
  assert.equal(mcnc("compress", "--method", "rtn", "--bits", "8", "--in", model, "--out", mlp16, "--store", "float16", "--skip-eval").code, 0);
  assert.ok(readSafetensors(memorySource(readFileSync(mlp16))).entries.every((e) => e.dtype === "F16"));
  assertCleanError(mcnc("compress", "--method", "gptq", "--in", foreign, "--out", join(dir, "no.safetensors")), /runs for ONNX and TF.js graph models \(a safetensors file holds no graph\)/);
  // Or stored compressed (the factors, 8 x (64 + 32) numbers), then rebuilt into the model as it was.
  const small = join(dir, "foreign-svd.mcnc");
  const m = mcnc("compress", "--method", "svd", "--rank", "8", "--in", foreign, "--out", small, "--json");
  assert.equal(m.code, 0, m.stderr);
  assert.equal(lastJson(m.stdout).stored_params, 8 * (64 + 32) + 32);
  const rebuilt = join(dir, "foreign-rebuilt.safetensors");
  assert.equal(mcnc("decompress", small, "--template", foreign, "--out", rebuilt).code, 0);
  const again = readSafetensors(memorySource(readFileSync(rebuilt)));
  assert.deepEqual(again.entries.map((e) => [e.name, e.dtype, e.shape]), back.entries.map((e) => [e.name, e.dtype, e.shape]));
  // The factors multiply in the engine on rebuild, in another summation order than the compressor's: one half-precision step apart at most.
  for (const e of back.entries) {
    const [x, y] = [again.read(e.name), back.read(e.name)];
    assert.ok(x.every((v, i) => Math.abs(v - y[i]!) <= 1e-3 * Math.max(Math.abs(v), 1e-4)), e.name);
  }
  const plain = join(dir, "foreign-plain.safetensors");
  assert.equal(mcnc("decompress", small, "--out", plain).code, 0);
  assert.deepEqual(readSafetensors(memorySource(readFileSync(plain))).entries.map((e) => e.shape), [[64, 32], [32]]);
  assertCleanError(mcnc("decompress", small, "--template", fout.replace("svd", "nothing"), "--out", join(dir, "no.safetensors")), /no such file|cannot read|not found|ENOENT/i);
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", small, "--out", join(dir, "no.mcnc")), /compressed already/);
});

test("another tool's empty and scalar tensors survive .mcnc and decompress --template; an empty matrix is not compressed", () => {
  const path = join(dir, "empties.safetensors");
  const tensors = [
    { name: "w.weight", shape: [8, 8], data: new Float32Array(64).map((_, i) => Math.sin(i)) },
    { name: "nothing", shape: [0], data: new Float32Array(0) },
    { name: "no.weight", shape: [0, 4], data: new Float32Array(0) },
    { name: "scale", shape: [], data: Float32Array.of(3) },
  ];
  writeFileSync(path, encodeSafetensors(tensors));
  const small = join(dir, "empties.mcnc");
  const j = mcnc("compress", "--method", "rtn", "--bits", "8", "--in", path, "--out", small, "--json");
  assert.equal(j.code, 0, j.stderr);
  assert.equal(lastJson(j.stdout).compressed, 1);
  const rebuilt = join(dir, "empties-rebuilt.safetensors");
  const d = mcnc("decompress", small, "--template", path, "--out", rebuilt);
  assert.equal(d.code, 0, d.stderr);
  const back = readSafetensors(memorySource(readFileSync(rebuilt)));
  assert.deepEqual(back.entries.map((e) => [e.name, e.shape]), tensors.map((t) => [t.name, t.shape]));
  assert.deepEqual([...back.read("scale")], [3]);
  assert.ok(back.read("w.weight").every((v, i) => Math.abs(v - Math.sin(i)) < 0.01));
  assertCleanError(mcnc("compress", "--method", "rtn", "--compress", "no.weight", "--in", path, "--out", join(dir, "no.mcnc")), /no\.weight is empty \(\[0, 4\]\); there is nothing to compress/);
});

test("mcnc compress: bad input is one line and exit 2, and leaves no output behind", () => {
  const lying = join(dir, "lying.safetensors");
  const good = readFileSync(join(dir, "foreign.safetensors"));
  writeFileSync(lying, good.subarray(0, good.length - 100));
  const out = join(dir, "never.safetensors");
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", lying, "--out", out), /runs past the end|data section/);
  assertCleanError(mcnc("compress", "--method", "svd", "--in", model, "--out", out), /--reduction .* or --rank/);
  assertCleanError(mcnc("compress", "--method", "svd", "--rank", "999", "--in", model, "--out", out), /compresses none of the matrices \(w1: rank 999 is larger/);
  assertCleanError(mcnc("compress", "--method", "svd", "--rank", "999", "--compress", "w1", "--in", model, "--out", out), /--compress: w1: rank 999 is larger/);
  assertCleanError(mcnc("compress", "--method", "rtn", "--reduction", "0.5", "--in", model, "--out", out), /does not apply to --method rtn/);
  assertCleanError(mcnc("compress", "--method", "rtn", "--calib-samples", "10", "--in", model, "--out", out), /uses no calibration data/);
  assertCleanError(mcnc("compress", "--method", "nope", "--in", model, "--out", out), /nope|one of/);
  assertCleanError(mcnc("compress", "--method", "rtn", "--in", model, "--out", model), /overwrite/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
});

test("mcnc compress streams another model's safetensors: peak memory well below the file's size", () => {
  // 64 tensors of 1M float32 weights: a 256 MiB model, written and read back one tensor at a time.
  const big = join(dir, "big.safetensors");
  const n = 1 << 20;
  const tensors = Array.from({ length: 64 }, (_, i) => ({ name: `layer.${i}.weight`, shape: [1024, 1024], dtype: "F32" as const }));
  const { prefix } = safetensorsHeader(tensors);
  const next = lcg(9);
  const block = Float32Array.from({ length: n }, next);
  const fd = openSync(big, "w");
  writeSync(fd, prefix);
  for (let i = 0; i < tensors.length; i++) writeSync(fd, new Uint8Array(block.buffer));
  closeSync(fd);
  const out = join(dir, "big-rtn.safetensors");
  const r = mcnc("compress", "--method", "rtn", "--bits", "4", "--in", big, "--out", out, "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout) as { peak_rss_mib: number; compressed: number };
  assert.equal(j.compressed, 64);
  assert.ok(j.peak_rss_mib < 160, `peak ${j.peak_rss_mib} MiB for a 256 MiB model`);
  process.stdout.write(`# streamed 256 MiB with a peak of ${j.peak_rss_mib} MiB\n`);
  // The same tensors at the same dtype: the output differs from the input only in its header.
  assert.ok(Math.abs(statSync(out).size - statSync(big).size) < 64);
  const back = readSafetensors(memorySource(readFileSync(out)));
  const w = back.read("layer.63.weight");
  assert.ok(w.every((v, i) => Math.abs(v - block[i]!) < 1 / 15));
  rmSync(big);
  rmSync(out);
});
