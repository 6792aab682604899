/**
 * Hostile files where data, checkpoints and models are read: a FIFO would block forever, a link to
 * /dev/zero never ends, a model's shard linked from outside its folder is not the model's. Each is
 * refused in one line, quickly, before anything is allocated.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
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
