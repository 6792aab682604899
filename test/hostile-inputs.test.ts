/**
 * Hostile files where data, checkpoints and models are read (issue 21): a FIFO would block forever, a
 * link to /dev/zero never ends, a model's shard linked from outside its folder is not the model's, a
 * PNG's second header, a table's millions of tiny rows or out-of-range numbers, IDX headers that
 * disagree. Each is refused in one line, quickly, before anything is allocated.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { test } from "node:test";
import { crc32 } from "../src/format/crc32.js";
import { writeSafetensors } from "../src/format/write-safetensors.js";
import { assertCleanError, mcnc } from "./cli-helpers.js";
import { idx, png } from "./data-files.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-special-"));
const fifo = (path: string) => execFileSync("mkfifo", [path]);
const zero = (path: string) => symlinkSync("/dev/zero", path);
const quick = (args: string[], pattern: RegExp) => {
  const started = performance.now();
  assertCleanError(mcnc(...args), pattern);
  assert.ok(performance.now() - started < 60_000, "refused at once");
};
const NOT_REGULAR = /is not a regular file/;

test("data readers refuse FIFOs and links to /dev/zero in image folders, table folders, text folders and IDX folders", async () => {
  const image = await png(8, 8, (x, y) => [x * 30, y * 30, 0]);
  for (const bad of [fifo, zero]) {
    const images = join(dir, `images-${bad.name}`);
    for (const c of ["a", "b"]) {
      mkdirSync(join(images, c), { recursive: true });
      for (let i = 0; i < 3; i++) writeFileSync(join(images, c, `${i}.png`), image);
    }
    bad(join(images, "b", "3.png"));
    quick(["train", "--data", images, "--steps", "1", "--out", join(dir, "x.mcnc")], NOT_REGULAR);

    const table = join(dir, `table-${bad.name}`);
    mkdirSync(table);
    writeFileSync(join(table, "test.csv"), "x,y,label\n1,2,a\n3,4,b\n");
    bad(join(table, "train.csv"));
    quick(["train", "--data", table, "--steps", "1", "--out", join(dir, "x.mcnc")], NOT_REGULAR);

    const text = join(dir, `text-${bad.name}`);
    mkdirSync(text);
    writeFileSync(join(text, "a.txt"), "some text to learn from. ".repeat(200));
    bad(join(text, "b.txt"));
    quick(["train", "--model", "gpt", "--layers", "1", "--width", "16", "--heads", "2", "--context", "16", "--data", text, "--steps", "1", "--out", join(dir, "x.mcnc")], NOT_REGULAR);

    const digits = join(dir, `idx-${bad.name}`);
    mkdirSync(digits);
    const cycle = Uint8Array.from({ length: 20 }, (_, i) => i % 10);
    writeFileSync(join(digits, "train-labels-idx1-ubyte"), idx([20], cycle));
    writeFileSync(join(digits, "t10k-images-idx3-ubyte"), idx([20, 8, 8], new Uint8Array(20 * 64)));
    writeFileSync(join(digits, "t10k-labels-idx1-ubyte"), idx([20], cycle));
    bad(join(digits, "train-images-idx3-ubyte"));
    quick(["train", "--data", digits, "--steps", "1", "--out", join(dir, "x.mcnc")], NOT_REGULAR);

    const resume = join(dir, `resume-${bad.name}.ckpt`);
    bad(resume);
    quick(["train", "--method", "dense", "--steps", "2", "--limit", "100", "--resume", resume, "--out", join(dir, "x.mcnc")], NOT_REGULAR);
  }
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith(".mcnc")), [], "nothing written");
});

test("a TF.js shard or ONNX data file linked from outside the model's folder is refused; one inside it is read", () => {
  const model = join(dir, "tfjs");
  mkdirSync(model);
  const manifest = { format: "graph-model", modelTopology: { node: [] }, weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: [{ name: "w", shape: [4, 4], dtype: "float32" }] }] };
  writeFileSync(join(model, "model.json"), JSON.stringify(manifest));
  const outside = join(dir, "secret.bin");
  writeFileSync(outside, new Uint8Array(64).fill(7));
  symlinkSync(outside, join(model, "group1-shard1of1.bin"));
  assertCleanError(mcnc("inspect", join(model, "model.json")), /group 0 keeps its weights in a shard, group1-shard1of1\.bin, which lies outside the model's folder/);
  rmSync(join(model, "group1-shard1of1.bin"));
  copyFileSync(outside, join(model, "real.bin"));
  symlinkSync("real.bin", join(model, "group1-shard1of1.bin"));
  const r = mcnc("inspect", join(model, "model.json"));
  assert.equal(r.code, 0, r.stderr);
  rmSync(join(model, "group1-shard1of1.bin"));
  zero(join(model, "group1-shard1of1.bin"));
  assertCleanError(mcnc("inspect", join(model, "model.json")), /outside the model's folder|not a regular file/);
  // A safetensors file that is a FIFO is refused before it is opened.
  const st = join(dir, "pipe.safetensors");
  fifo(st);
  quick(["compress", "--method", "rtn", "--in", st, "--out", join(dir, "y.safetensors")], NOT_REGULAR);
  writeSafetensors(join(dir, "fine.safetensors"), [{ name: "w.weight", shape: [4, 4], data: new Float32Array(16).fill(1) }]);
});

/** A PNG with a second IHDR after the first, declaring `width`x`height` (its CRC valid). */
function secondHeader(image: Uint8Array, width: number, height: number): Uint8Array {
  const chunk = new Uint8Array(25);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, 13);
  chunk.set(image.subarray(12, 33), 4); // type and fields of the first IHDR
  view.setUint32(8, width);
  view.setUint32(12, height);
  view.setUint32(21, crc32(chunk.subarray(4, 21)));
  return Uint8Array.from([...image.subarray(0, 33), ...chunk, ...image.subarray(33)]);
}

test("an image whose decoded size is not its declared size is refused: a second IHDR, as a folder's image and as predict's", async () => {
  const image = await png(28, 28, (x, y) => [x * 9, y * 9, 0]);
  const folder = join(dir, "two-headers");
  for (const c of ["a", "b"]) {
    mkdirSync(join(folder, c), { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(folder, c, `${i}.png`), image);
  }
  writeFileSync(join(folder, "a", "3.png"), secondHeader(image, 4000, 4000));
  quick(["train", "--data", folder, "--steps", "1", "--out", join(dir, "x.mcnc")], /3\.png: a PNG with a second IHDR chunk/);
  quick(["predict", "--in", "data/models/mlp-fashion-mcnc-100x.mcnc", "--image", join(folder, "a", "3.png")], /a PNG with a second IHDR chunk/);
  const r = mcnc("predict", "--in", "data/models/mlp-fashion-mcnc-100x.mcnc", "--image", join(folder, "a", "0.png"));
  assert.equal(r.code, 0, r.stderr);
  // A flat folder of images: the remedy comes first in the line.
  const flat = join(dir, "flat");
  mkdirSync(flat);
  for (let i = 0; i < 4; i++) writeFileSync(join(flat, `${i}.png`), image);
  quick(["train", "--data", flat, "--steps", "1", "--out", join(dir, "x.mcnc")], /^mcnc: error: put each class's images in a folder named after the class/);
});

test("tables: the estimate counts rows, not only text; a number beyond float32 is refused naming its line and column", () => {
  const short = join(dir, "short.csv.gz");
  writeFileSync(short, gzipSync(Array.from({ length: 2_000_000 }, (_, i) => `${i % 7},${"ab"[i % 2]}\n`).join("")));
  quick(["train", "--data", short, "--steps", "1", "--max-memory", "200", "--out", join(dir, "x.mcnc")], /the table .*short\.csv\.gz \(2000001 lines\) needs about \d+ MiB, above the limit of 200 MiB/);
  const wide = join(dir, "wide.csv");
  writeFileSync(wide, "a,b,label\n1,2,x\n3,1e39,y\n5,6,x\n");
  quick(["train", "--data", wide, "--steps", "1", "--out", join(dir, "x.mcnc")], /wide\.csv: line 3, column b: 1e39 does not fit in float32/);
});

test("IDX headers are checked against each other before any data is inflated; an empty set is refused without NaN", () => {
  const folder = (name: string, counts: [number, number, number, number]) => {
    const d = join(dir, name);
    mkdirSync(d);
    const [a, b, c, e] = counts;
    // The training images inflate far beyond their header: refused for the headers, not read.
    writeFileSync(join(d, "train-images-idx3-ubyte.gz"), gzipSync(Uint8Array.from([...idx([a, 8, 8], new Uint8Array(0)), ...new Uint8Array(32 << 20)])));
    writeFileSync(join(d, "train-labels-idx1-ubyte.gz"), gzipSync(idx([b], new Uint8Array(b))));
    writeFileSync(join(d, "t10k-images-idx3-ubyte.gz"), gzipSync(idx([c, 8, 8], new Uint8Array(c * 64))));
    writeFileSync(join(d, "t10k-labels-idx1-ubyte.gz"), gzipSync(idx([e], new Uint8Array(e))));
    return d;
  };
  quick(["train", "--data", folder("counts", [20, 19, 10, 10]), "--steps", "1", "--out", join(dir, "x.mcnc")], /training: 20 images but 19 labels/);
  quick(["train", "--data", folder("empty", [0, 0, 10, 10]), "--steps", "1", "--out", join(dir, "x.mcnc")], /training: the data holds no images/);
  // The same directory costs train what it prepares, and eval less: eval prepares only the test images.
  const big = join(dir, "big-idx");
  mkdirSync(big);
  const files = { "train-images-idx3-ubyte": [30000, 28, 28], "train-labels-idx1-ubyte": [30000], "t10k-images-idx3-ubyte": [5000, 28, 28], "t10k-labels-idx1-ubyte": [5000] };
  for (const [name, shape] of Object.entries(files)) writeFileSync(join(big, `${name}.gz`), gzipSync(idx(shape, new Uint8Array(shape.reduce((a, b) => a * b, 1)))));
  const needs = (...command: string[]) => Number(/needs about ([\d,]+) MiB/.exec(mcnc(...command, "--data", big, "--max-memory", "20").stderr)![1]!.replace(/,/g, ""));
  const [trainNeeds, evalNeeds] = [needs("train", "--steps", "1", "--out", join(dir, "x.mcnc")), needs("eval", "data/models/mlp-fashion-mcnc-100x.mcnc")];
  // Each image once as a byte per file read and inflated (twice, gzipped), once as float32 where it is prepared.
  assert.ok(trainNeeds >= Math.floor((35000 * 784 * 6) / 2 ** 20), `train: ${trainNeeds} MiB`);
  assert.ok(evalNeeds < trainNeeds && evalNeeds >= Math.floor((35000 * 784 * 2 + 5000 * 784 * 4) / 2 ** 20), `eval: ${evalNeeds} MiB against train's ${trainNeeds}`);
  for (const command of [["train", "--steps", "1", "--out", join(dir, "x.mcnc")], ["eval", "data/models/mlp-fashion-mcnc-100x.mcnc"]]) {
    const r = mcnc(...command, "--data", folder(`test-${command[0]}`, [20, 20, 10, 9]));
    assertCleanError(r, /test: 10 images but 9 labels/);
    assert.doesNotMatch(r.stderr, /NaN/);
  }
});
