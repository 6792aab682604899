import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { loadDataset } from "../src/data/dataset.js";
import { parseIdx, readIdxFile } from "../src/data/idx.js";
import { bundledPath } from "../src/data/bundled.js";
import { UserError } from "../src/errors.js";
import { idx, npy } from "./data-files.js";


test("the bundled Fashion-MNIST loads, normalised by its training statistics", () => {
  const d = loadDataset(undefined, { trainLimit: 1000, testLimit: 500 });
  assert.equal(d.name, "fashion-mnist");
  assert.deepEqual(d.imageShape, [28, 28, 1]);
  assert.equal(d.numClasses, 10);
  assert.equal(d.train.count, 1000);
  assert.equal(d.test.count, 500);
  assert.equal(d.train.x.length, 1000 * 784);
  // The published statistics of the full training set.
  const { mean, std } = d.normalisation as { mean: number; std: number };
  assert.ok(Math.abs(mean - 0.286) < 1e-3 && Math.abs(std - 0.353) < 1e-3, `${mean} ${std}`);
  assert.ok(d.train.y.every((l) => l < 10));
});

test("the sets made for measuring load as their COPYRIGHT says, every class in their first 2,000 training samples", () => {
  for (const [name, shape, classes, train, test] of [
    ["mnist-10k", [28, 28, 1], 10, 8000, 2000],
    ["cmudict-syllables", [16, 27, 1], 6, 60000, 10000],
    ["letter-recognition", [1, 1, 16], 26, 16000, 4000],
  ] as const) {
    const d = loadDataset(bundledPath(name));
    assert.deepEqual([d.imageShape, d.numClasses, d.train.count, d.test.count], [shape, classes, train, test], name);
    assert.equal(new Set(d.train.y.subarray(0, 2000)).size, classes, `${name}: a shuffled order, so --limit samples every class`);
  }
  // A spelling is one letter a row: 2 to 16 set cells of 255 in each 16 x 27 picture.
  const words = readIdxFile(join(bundledPath("cmudict-syllables"), "t10k-images-idx3-ubyte.gz"));
  for (let n = 0; n < 100; n++) {
    const cells = words.data.subarray(n * 432, (n + 1) * 432);
    const set = cells.filter((v) => v === 255).length;
    assert.ok(set >= 2 && set <= 16 && set === cells.filter((v) => v !== 0).length, `word ${n}: ${set} letters`);
  }
});

test("IDX parsing rejects what is not IDX, with the reason", () => {
  assert.deepEqual(parseIdx(idx([2, 3], new Uint8Array(6)), "ok").shape, [2, 3]);
  assert.throws(() => parseIdx(new Uint8Array([1, 2, 3, 4, 5]), "f"), (e: Error) => e instanceof UserError && /bad magic/.test(e.message));
  assert.throws(() => parseIdx(idx([2, 3], new Uint8Array(5)), "f"), /says 6 values but the file holds 5/);
  const floats = idx([2], new Uint8Array(2));
  floats[2] = 0x0d;
  assert.throws(() => parseIdx(floats, "f"), /not supported/);
});

test("a data directory is checked file by file", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-idx-"));
  assert.throws(() => loadDataset(join(dir, "nope")), /does not exist/);
  assert.throws(() => loadDataset(dir), /not a data directory: it needs four IDX files .* or four \.npy files .*, a table .*, or folders of PNG or JPEG images/);
  const images = (n: number) => idx([n, 4, 4], new Uint8Array(n * 16).map((_, i) => i % 256));
  writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), gzipSync(images(6)));
  writeFileSync(join(dir, "train-labels-idx1-ubyte"), idx([6], new Uint8Array([0, 1, 2, 0, 1, 2])));
  writeFileSync(join(dir, "t10k-images-idx3-ubyte"), images(3));
  writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), idx([2], new Uint8Array([0, 1])));
  assert.throws(() => loadDataset(dir), /test: 3 images but 2 labels/);
  writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), idx([3], new Uint8Array([0, 1, 2])));
  const d = loadDataset(dir);
  assert.deepEqual(d.imageShape, [4, 4, 1]);
  assert.equal(d.numClasses, 3);
  writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), "this is not gzip or idx");
  assert.throws(() => loadDataset(dir), /not an IDX file/);
});

test("a file is measured on other data scaled as its own training data was (its recorded normalisation)", async () => {
  const { copyFileSync, mkdirSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  const { lastJson, mcnc } = await import("./cli-helpers.js");
  const bundled = fileURLToPath(new URL("../../data/fashion-mnist/", import.meta.url));
  const model = fileURLToPath(new URL("../../data/models/mlp-fashion-mcnc-100x.mcnc", import.meta.url));
  // The same test images beside a training split of 20 black images: its own statistics would be mean 0, std ~0.
  const other = mkdtempSync(join(tmpdir(), "mcnc-norm-"));
  mkdirSync(other, { recursive: true });
  for (const f of ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]) copyFileSync(join(bundled, f), join(other, f));
  writeFileSync(join(other, "train-images-idx3-ubyte.gz"), gzipSync(idx([20, 28, 28], new Uint8Array(20 * 784))));
  writeFileSync(join(other, "train-labels-idx1-ubyte.gz"), gzipSync(idx([20], Uint8Array.from({ length: 20 }, (_, i) => i % 10))));
  const here = lastJson(mcnc("eval", model, "--test-limit", "500", "--json").stdout);
  const there = lastJson(mcnc("eval", model, "--data", other, "--test-limit", "500", "--json").stdout);
  assert.ok((here.accuracy as number) > 0.75, JSON.stringify(here));
  assert.equal(there.accuracy, here.accuracy);
  // And the rule itself: given statistics replace the split's.
  const raw = loadDataset(other, { normalisation: { mean: 0, std: 1 }, testLimit: 1 });
  assert.deepEqual(raw.normalisation, { mean: 0, std: 1 });
  assert.ok(raw.test.x.every((v) => v >= 0 && v <= 1));
  assert.throws(() => loadDataset(other, { normalisation: { mean: 0, std: 0 } }), /positive std/);
});


test("a directory of .npy arrays: colour images as uint8 or float, int64 labels; lies and wrong layouts refused", async () => {
  const { parseNpy } = await import("../src/data/npy.js");
  const dir = mkdtempSync(join(tmpdir(), "mcnc-npy-"));
  const pixels = (n: number) => Array.from({ length: n * 4 * 4 * 3 }, (_, i) => (i * 7) % 256);
  const labels = (n: number) => Array.from({ length: n }, (_, i) => i % 3);
  writeFileSync(join(dir, "train-images.npy"), npy("|u1", [12, 4, 4, 3], pixels(12)));
  writeFileSync(join(dir, "train-labels.npy"), npy("<i8", [12], labels(12)));
  writeFileSync(join(dir, "test-images.npy"), npy("<f4", [6, 4, 4, 3], pixels(6)));
  assert.throws(() => loadDataset(dir), /not a complete \.npy data directory: missing test-labels\.npy/);
  writeFileSync(join(dir, "test-labels.npy"), npy("<i8", [6], labels(6)));
  const d = loadDataset(dir);
  assert.deepEqual(d.imageShape, [4, 4, 3]);
  assert.equal(d.numClasses, 3);
  assert.equal(d.train.x.length, 12 * 48);
  // The float test images hold the same pixels as uint8 ones would: the same normalised values.
  assert.deepEqual(d.test.x, d.train.x.subarray(0, 6 * 48));
  assert.throws(() => parseNpy(npy("<f4", [2], [1, 300]), "f"), /value 300 at index 1 is outside 0\.\.255/);
  assert.throws(() => parseNpy(npy("|u1", [2, 2], [1, 2, 3, 4], true), "f"), /Fortran-ordered/);
  assert.throws(() => parseNpy(npy("|u1", [3], [1, 2]), "f"), /header says 3 values of 1 bytes but the file holds 2/);
  assert.throws(() => parseNpy(npy("|u1", [2], [1, 2]).subarray(0, 20), "f"), /truncated/);
  assert.throws(() => parseNpy(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), "f"), /not an \.npy file/);
  // Trained on through the CLI: a colour network of one's own.
  const { mcnc, lastJson } = await import("./cli-helpers.js");
  const spec = join(dir, "colour.json");
  writeFileSync(spec, JSON.stringify({ layers: [{ type: "conv3x3", channels: 4 }, "relu", "flatten", { type: "dense", units: 3 }] }));
  const r = mcnc("train", "--model", spec, "--method", "dense", "--data", dir, "--batch", "4", "--epochs", "1", "--out", join(dir, "colour.mcnc"), "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastJson(r.stdout).params, 3 * 3 * 3 * 4 + 4 + 4 * 4 * 4 * 3 + 3);
});
