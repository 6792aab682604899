/** Bounded work for hostile input: what a file, a flag or a data header implies is refused before it is allocated. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { writeFileAtomic } from "../src/format/atomic-write.js";
import { decodeCheckpoint, encodeCheckpoint } from "../src/format/checkpoint-file.js";
import { decodeContainer, encodeContainer } from "../src/format/container.js";
import { writeSafetensors } from "../src/format/write-safetensors.js";
import { encodeModelFile } from "../src/format/model-file.js";
import { checkMemory, DEFAULT_MEMORY_LIMIT } from "../src/limits.js";
import { findMethod, rebuildBytes } from "../src/methods/index.js";
import { buildModel } from "../src/model/models.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";
import { idx } from "./data-files.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-reliability-"));
const mlp = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });

/** A well-formed file of `method` with `values`, its stored tensors all zero: small whatever it implies. */
function fileOf(name: string, method: string, values: Record<string, unknown>): string {
  const m = findMethod(method)!;
  const config = m.configure(values, mlp.specs);
  const trainable = Object.fromEntries(m.trainableShapes(config, mlp.specs).map((t) => [t.name, new Float32Array(t.shape.reduce((a, b) => a * b, 1))]));
  const path = join(dir, name);
  writeFileSync(path, encodeModelFile({ model: mlp.description, method: { name: method, config }, seed: 1, trainable }, mlp, m));
  return path;
}

test("a 2 KB file implying gigabytes is refused by every command that rebuilds, before allocating; inspect says what it would cost", () => {
  const big = fileOf("big-d.mcnc", "mcnc", { d: 2 ** 24 });
  assert.ok(statSync(big).size < 4096);
  const out = join(dir, "never.safetensors");
  for (const args of [["decompress", big, "--out", out], ["eval", big], ["train", "--method", "mcnc", "--d", String(2 ** 24), "--out", join(dir, "never.mcnc")]]) {
    assertCleanError(mcnc(...args), /needs about \d\d,\d{3} MiB, above the limit of 2,048 MiB \(raise it with --max-memory/);
  }
  assert.equal(existsSync(out), false);
  const info = lastJson(mcnc("inspect", big, "--json").stdout);
  assert.ok((info.rebuild_bytes as number) > 8 * 2 ** 30, String(info.rebuild_bytes));
  assert.match(mcnc("inspect", big).stdout, /above the limit of 2048 MiB: other commands refuse it/);
  // PRANC with a basis of 2^27 numbers and NOLA with wide bases, the same.
  assertCleanError(mcnc("decompress", fileOf("pranc.mcnc", "pranc", { bases: 2 ** 12, d: 2 ** 15 }), "--out", out), /rebuilding its weights needs about/);
  // The limit is the user's: lowered, an ordinary file is refused; raised, a larger one passes the check.
  const small = fileOf("small.mcnc", "mcnc", { d: 1024 });
  assertCleanError(mcnc("eval", small, "--max-memory", "1"), /above the limit of 1\.0 MiB/);
  assert.equal(mcnc("decompress", small, "--out", join(dir, "small.safetensors")).code, 0);
  assertCleanError(mcnc("eval", small, "--max-memory", "0"), /--max-memory must be from 1/);
});

test("the estimate is not below what a rebuild measured: a 512 MiB generator took 1.6 GB", () => {
  const m = findMethod("mcnc")!;
  const config = m.configure({ d: 2 ** 21 }, mlp.specs);
  assert.ok(rebuildBytes(m, config, mlp.specs) > 1.6e9);
  assert.ok(rebuildBytes(m, m.configure({}, mlp.specs), mlp.specs) < 64 * 2 ** 20, "the defaults stay far below the limit");
  assert.throws(() => checkMemory(DEFAULT_MEMORY_LIMIT + 1, "this"), /this needs about 2,048 MiB/);
  // PRANC's default chunk keeps its basis within 64 MiB whether --bases or --ratio sets the coefficients.
  const pranc = findMethod("pranc")!;
  for (const values of [{}, { bases: 256 }, { bases: 1000 }, { ratio: 100 }, { ratio: 10 }]) {
    const c = pranc.configure(values, mlp.specs) as { bases: number; d: number };
    assert.ok(c.bases * c.d <= 2 ** 24, `${JSON.stringify(values)}: ${c.bases} x ${c.d}`);
  }
});

/** An IDX data directory whose headers say what `shapes` say, gzipped, with `data` bytes after each header. */
function idxDir(name: string, files: Record<string, { shape: number[]; data: Uint8Array }>): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const [file, { shape, data }] of Object.entries(files)) writeFileSync(join(d, `${file}.gz`), gzipSync(idx(shape, data), { level: 9 }));
  return d;
}

const images = (count: number, side: number, fill = (i: number) => i % 251) => ({ shape: [count, side, side], data: Uint8Array.from({ length: count * side * side }, (_, i) => fill(i)) });
const labels = (values: number[]) => ({ shape: [values.length], data: Uint8Array.from(values) });

test("IDX: sizes come from the header and are bounded before anything is inflated; labels must be 0..K-1", () => {
  const cycle = Array.from({ length: 20 }, (_, i) => i % 10);
  // Headers declaring 60,000 images of 1024x1024 in files of a few hundred bytes.
  const huge = idxDir("huge", {
    "train-images-idx3-ubyte": { shape: [60000, 1024, 1024], data: new Uint8Array(16) },
    "train-labels-idx1-ubyte": labels(Array.from({ length: 60000 }, (_, i) => i % 10)),
    "t10k-images-idx3-ubyte": { shape: [20, 1024, 1024], data: new Uint8Array(16) },
    "t10k-labels-idx1-ubyte": labels(cycle),
  });
  assertCleanError(mcnc("train", "--method", "dense", "--data", huge, "--out", join(dir, "x.mcnc")), /the data in .*huge needs about [\d,]+ MiB, above the limit/);
  const wide = idxDir("wide", {
    "train-images-idx3-ubyte": { shape: [1, 5000, 5000], data: new Uint8Array(4) },
    "train-labels-idx1-ubyte": labels([0]),
    "t10k-images-idx3-ubyte": images(20, 8),
    "t10k-labels-idx1-ubyte": labels(cycle),
  });
  assertCleanError(mcnc("train", "--data", wide, "--out", join(dir, "x.mcnc")), /images of 5000x5000 exceed 4096 pixels a side/);
  // A gzip bomb: the header declares 20 images of 8x8, the stream inflates to 64 MiB.
  const bomb = idxDir("bomb", {
    "train-images-idx3-ubyte": { shape: [20, 8, 8], data: new Uint8Array(64 * 2 ** 20) },
    "train-labels-idx1-ubyte": labels(cycle),
    "t10k-images-idx3-ubyte": images(20, 8),
    "t10k-labels-idx1-ubyte": labels(cycle),
  });
  assert.ok(statSync(join(bomb, "train-images-idx3-ubyte.gz")).size < 200_000);
  assertCleanError(mcnc("train", "--data", bomb, "--out", join(dir, "x.mcnc")), /inflates to more than the 1296 bytes its IDX header declares/);
  // One stray label of 255 among ten classes.
  const stray = idxDir("stray", {
    "train-images-idx3-ubyte": images(20, 8),
    "train-labels-idx1-ubyte": labels([...cycle.slice(0, 19), 255]),
    "t10k-images-idx3-ubyte": images(20, 8),
    "t10k-labels-idx1-ubyte": labels(cycle),
  });
  assertCleanError(mcnc("train", "--data", stray, "--out", join(dir, "x.mcnc")), /labels run from 0 to 255, but 245 of those classes never occur \(the first: 10\)/);
  // The same directory with honest labels trains.
  const fine = idxDir("fine", { "train-images-idx3-ubyte": images(20, 8), "train-labels-idx1-ubyte": labels(cycle), "t10k-images-idx3-ubyte": images(20, 8), "t10k-labels-idx1-ubyte": labels(cycle) });
  const r = mcnc("train", "--method", "dense", "--data", fine, "--batch", "10", "--epochs", "1", "--out", join(dir, "fine.mcnc"), "--quiet");
  assert.equal(r.code, 0, r.stderr);
});

test("atomic writes: exclusive unpredictable temporary names, nothing left on failure, a planted symlink never followed", () => {
  const out = join(dir, "atomic.bin");
  const victim = join(dir, "victim.txt");
  writeFileSync(victim, "keep me");
  // The old predictable temp name, planted as a symlink to another file: now nothing opens it.
  symlinkSync(victim, `${out}.${process.pid}.tmp`);
  writeFileAtomic(out, Uint8Array.of(1, 2, 3));
  assert.deepEqual([...readFileSync(out)], [1, 2, 3]);
  assert.equal(readFileSync(victim, "utf8"), "keep me");
  // A folder not made yet is made; one under a plain file cannot be.
  writeFileAtomic(join(dir, "new-dir", "x.bin"), Uint8Array.of(1));
  assert.deepEqual([...readFileSync(join(dir, "new-dir", "x.bin"))], [1]);
  assert.throws(() => writeFileAtomic(join(victim, "x.bin"), Uint8Array.of(1)), /cannot write .*(ENOTDIR|EEXIST)/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp") && !f.includes(String(process.pid))), []);
  // What a SIGKILLed writer left is removed by the next write to the same name; a live writer's is not.
  const dead = spawnSync("true").pid!;
  const stale = join(dir, `.atomic.bin.${dead}.0123456789abcdef.tmp`);
  const busy = join(dir, `.atomic.bin.${process.ppid}.0123456789abcdef.tmp`);
  const other = join(dir, `.other.bin.${dead}.0123456789abcdef.tmp`);
  for (const f of [stale, busy, other]) writeFileSync(f, "partial");
  writeFileAtomic(out, Uint8Array.of(4));
  assert.ok(!existsSync(stale), "stale temp removed");
  assert.ok(existsSync(busy) && existsSync(other), "another writer's temp kept");
});

test("atomic writes: SIGTERM during a large write leaves the whole output or none, and no temporary file", async () => {
  const sub = mkdtempSync(join(dir, "kill-"));
  const out = join(sub, "large.bin");
  const mod = new URL("../src/format/atomic-write.js", import.meta.url).href;
  // 256 MiB in 1 MiB pieces: long enough that the signal lands mid-write.
  const script = `import { writeFileAtomicBy } from ${JSON.stringify(mod)};
    process.stdout.write("start\\n");
    writeFileAtomicBy(${JSON.stringify(out)}, (write) => { const b = new Uint8Array(1 << 20).fill(7); for (let i = 0; i < 256; i++) write(b); });`;
  for (let run = 0; run < 3; run++) {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    await new Promise((r) => setTimeout(r, 30 + 40 * run));
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    assert.ok(code === 143 || code === 0, `exit ${code}`);
    assert.deepEqual(readdirSync(sub).filter((f) => f.endsWith(".tmp")), [], `run ${run}`);
    if (existsSync(out)) assert.equal(statSync(out).size, 256 * 2 ** 20);
  }
});

test("flags: numbers in decimal notation only; an output directory refused before training; long errors cut to one short line", () => {
  for (const bad of ["0x10", " 5", "1e", ""]) assertCleanError(mcnc("train", "--ratio", bad, "--out", join(dir, "x.mcnc")), /--ratio expects a number/);
  assertCleanError(mcnc("train", "--method", "dense", "--out", dir), /is a directory/);
  const r = mcnc("train", "--data", join(dir, "x".repeat(3000)), "--out", join(dir, "x.mcnc"));
  assertCleanError(r, /\.\.\. \(\d+ characters in all\)$/);
  assert.ok(r.stderr.length < 600, String(r.stderr.length));
});

test("a quant file whose codes are narrower than its header says is refused", () => {
  const m = findMethod("quant")!;
  const config = m.configure({ bits: 2 }, mlp.specs);
  const weights = Object.fromEntries(mlp.specs.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i))]));
  const path = join(dir, "lying-bits.mcnc");
  writeFileSync(path, encodeModelFile({ model: mlp.description, method: { name: "quant", config: { ...config, bits: 4 } }, seed: 1, trainable: {} }, mlp, m, { encoded: m.codec!.encode(config, mlp.specs, weights) }));
  assertCleanError(mcnc("eval", path), /w1\.codes is stored as u2 codes where 4-bit codes belong/);
});

test("compressing another tool's model is bounded by --max-memory before any work: the largest matrix's cost is counted", () => {
  const path = join(dir, "wide.safetensors");
  writeSafetensors(path, [
    { name: "wide.weight", shape: [2048, 2048], data: new Float32Array(2048 * 2048).map((_, i) => Math.sin(i)) },
    { name: "bias", shape: [2048], data: new Float32Array(2048) },
  ]);
  const compress = (limit: string, out: string) => mcnc("compress", "--method", "rtn", "--bits", "4", "--in", path, "--out", join(dir, out), "--max-memory", limit, "--quiet");
  assertCleanError(compress("64", "wide-64.safetensors"), /compressing .*wide\.safetensors \(its largest matrix to compress, wide\.weight, is 2048x2048\) needs about \d+ MiB, above the limit of 64 MiB/);
  assert.ok(!existsSync(join(dir, "wide-64.safetensors")));
  assert.equal(compress("256", "wide-256.safetensors").code, 0);
  assert.equal(compress("256", "wide-256.mcnc").code, 0);
});

test("more tensors than an .mcnc file holds are refused before any work, in one line; written back in their own format they pass", () => {
  const many = join(dir, "many.safetensors");
  writeSafetensors(many, Array.from({ length: 5000 }, (_, i) => ({ name: `t${i}.weight`, shape: [2, 2], data: new Float32Array([1, 2, 3, i]) })));
  const started = performance.now();
  assertCleanError(mcnc("compress", "--method", "rtn", "--bits", "4", "--in", many, "--out", join(dir, "many.mcnc"), "--quiet"), /an \.mcnc file of this model needs 5000 stored tensors .* write it back as safetensors instead/);
  assert.ok(performance.now() - started < 20000);
  assert.ok(!existsSync(join(dir, "many.mcnc")));
  assert.equal(mcnc("compress", "--method", "rtn", "--bits", "4", "--in", many, "--out", join(dir, "many-rtn.safetensors"), "--quiet").code, 0);
  // 3000 leaves fit at one stored tensor each, not at the several svd stores: refused after the first.
  const some = join(dir, "some.safetensors");
  writeSafetensors(some, Array.from({ length: 3000 }, (_, i) => ({ name: `t${i}.weight`, shape: [4, 4], data: new Float32Array(16).map((_, j) => Math.sin(i + j)) })));
  assertCleanError(mcnc("compress", "--method", "svd", "--rank", "1", "--in", some, "--out", join(dir, "some.mcnc"), "--quiet"), /needs \d+ stored tensors \(3000 tensors, 3000 compressed into [2-9] each\)/);
  assert.ok(!existsSync(join(dir, "some.mcnc")));
});

test("a compressor whose output overflows is refused before writing: finite weights near 3e38 through svd and rtn", () => {
  const path = join(dir, "huge-values.safetensors");
  writeSafetensors(path, [{ name: "w.weight", shape: [64, 32], data: new Float32Array(2048).map((_, i) => 3e38 * Math.sin(i * 1.7)) }]);
  for (const method of [["svd", "--rank", "4"], ["rtn", "--bits", "4"]]) {
    for (const out of ["huge.safetensors", "huge.mcnc"]) {
      assertCleanError(mcnc("compress", "--method", ...method, "--in", path, "--out", join(dir, out), "--quiet"), new RegExp(`w\\.weight: ${method[0]} gives \\d+ numbers that are not finite \\(its largest weight is 3\\.00e\\+38\\); nothing is written`));
      assert.ok(!existsSync(join(dir, out)));
    }
  }
  // Weights well inside float32's range compress as before.
  writeSafetensors(path, [{ name: "w.weight", shape: [64, 32], data: new Float32Array(2048).map((_, i) => 1e30 * Math.sin(i * 1.7)) }]);
  assert.equal(mcnc("compress", "--method", "svd", "--rank", "4", "--in", path, "--out", join(dir, "fits.safetensors"), "--quiet").code, 0);
});

test("checkpoints: a history of any length is written; every field is checked against the run before resuming", () => {
  // An evaluation every step for 20,000 steps: far more history than a header holds.
  const history = Array.from({ length: 20000 }, (_, i) => ({ step: i + 1, loss: 1 / (i + 1), metrics: { accuracy: 0.5 }, trainSeconds: i, rate: 1000 }));
  const state = { step: 7, trainable: { w: new Float32Array(4) }, adam: { m: { w: new Float32Array(4) }, v: { w: new Float32Array(4) } }, schedule: { lr: 0.01, best: Infinity, bad: 0 }, history, trainSeconds: 3, round: { lossSum: 0, steps: 0, seconds: 0 } } as never;
  const bytes = encodeCheckpoint({ total: 20000 }, state);
  assert.ok(bytes.length > 2 ** 20, "the history is stored");
  const back = decodeCheckpoint(bytes, "big.ckpt", { total: 20000 }, [{ name: "w", shape: [4] }]);
  assert.deepEqual(back.history, history);
  assert.equal(back.schedule.best, Infinity);

  const base = ["train", "--method", "prune", "--steps", "6", "--eval-every", "2", "--test-limit", "50", "--batch", "16", "--quiet"];
  const run = [...base, "--limit", "200"];
  const ckpt = join(dir, "prune.ckpt");
  const r = mcnc(...run, "--out", join(dir, "prune.mcnc"), "--checkpoint-every", "3", "--checkpoint", ckpt);
  assert.equal(r.code, 0, r.stderr);
  const resume = (file: string, flags = run) => mcnc(...flags, "--out", join(dir, "resumed.mcnc"), "--resume", file);
  assert.equal(resume(ckpt).code, 0);
  assertCleanError(resume(ckpt, [...base, "--limit", "150"]), /checkpoint of another run \(it differs in data_size, limit\)/);
  const edited = (name: string, edit: (fields: Record<string, unknown>) => void) => {
    const c = decodeContainer(readFileSync(ckpt));
    const { tensors: entries, ...fields } = c.header;
    edit(fields);
    const tensors = entries.map((e) => (e.dtype === "f32" ? { name: e.name, shape: e.shape, data: c.tensor(e.name) } : { name: e.name, shape: e.shape, codes: c.codes(e.name), bits: 8 as const }));
    const path = join(dir, name);
    writeFileSync(path, encodeContainer(fields, tensors));
    return path;
  };
  const transposed = edited("transposed.ckpt", (f) => {
    const shapes = f.frozen_shapes as Array<{ name: string; shape: number[] }>;
    const matrix = shapes.find((s) => s.shape.length === 2 && s.shape[0] !== s.shape[1])!;
    matrix.shape.reverse();
  });
  assertCleanError(resume(transposed), /the checkpoint's frozen tensors \(.*\) are not the ones --method prune makes/);
  assertCleanError(resume(edited("unlisted.ckpt", (f) => (f.frozen_shapes = [{ name: "nothing" }]))), /frozen tensor nothing: shape must be a list/);
  assertCleanError(resume(edited("step.ckpt", (f) => (f.step = 99))), /step 99 is not within this run of 6 steps/);
  assertCleanError(resume(edited("lr.ckpt", (f) => (f.schedule = { lr: -1, best: 1, bad: 0 }))), /learning rate -1 is not a positive number/);
});
