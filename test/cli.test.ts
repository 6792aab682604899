import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseArgs } from "../src/cli/args.js";
import { COMMANDS, flagsOf } from "../src/cli/cli.js";
import { qualityPlot } from "../src/cli/commands/svg-plot.js";
import { Progress } from "../src/cli/progress.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-cli-"));

const model = join(dir, "m.mcnc");
let trained: Record<string, unknown>;

test("train --json writes the file and reports every count", () => {
  const r = mcnc("train", "--limit", "2000", "--test-limit", "500", "--epochs", "1", "--ratio", "100", "--out", model, "--json");
  assert.equal(r.code, 0, r.stderr);
  trained = lastJson(r.stdout);
  for (const key of ["accuracy", "params", "stored_params", "file_bytes", "bits_per_param", "param_ratio", "byte_ratio", "reconstruct_ms", "train_samples_per_s"]) {
    assert.equal(typeof trained[key], "number", key);
  }
  assert.equal(trained.params, 203530);
  assert.ok((trained.param_ratio as number) >= 100);
  assert.equal(trained.file_bytes, readFileSync(model).length);
  assert.ok((trained.accuracy as number) > 0.4);
  assert.match(r.stderr, /epoch 1\/1/, "progress goes to stderr");
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
});

test("inspect and eval agree with train", () => {
  const i = mcnc("inspect", model, "--json");
  assert.equal(i.code, 0, i.stderr);
  const info = lastJson(i.stdout);
  for (const key of ["params", "stored_params", "file_bytes", "param_ratio", "byte_ratio", "bits_per_param"]) assert.equal(info[key], trained[key], key);
  assert.equal(info.method, "mcnc");
  const e = mcnc("eval", model, "--test-limit", "500", "--json");
  assert.equal(e.code, 0, e.stderr);
  const ev = lastJson(e.stdout);
  assert.equal(ev.accuracy, trained.accuracy, "the rebuilt model scores exactly what training reported");
  const human = mcnc("inspect", model);
  assert.match(human.stdout, /stored numbers +\d+ +\(100\.\dx fewer\)/);
});

test("decompress writes safetensors with the model's tensors", () => {
  const out = join(dir, "w.safetensors");
  const r = mcnc("decompress", model, "--out", out);
  assert.equal(r.code, 0, r.stderr);
  const bytes = readFileSync(out);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  assert.deepEqual(header.w1.shape, [784, 256]);
  assert.equal(bytes.length, 8 + n + 203530 * 4);
});

test("--threads 2 runs the engine on worker threads with the same results", () => {
  const args = ["train", "--limit", "512", "--test-limit", "200", "--epochs", "1", "--k", "8", "--d", "800", "--json", "--quiet"];
  const one = mcnc(...args, "--out", join(dir, "t1.mcnc"));
  const two = mcnc(...args, "--out", join(dir, "t2.mcnc"), "--threads", "2");
  assert.equal(one.code, 0, one.stderr);
  assert.equal(two.code, 0, two.stderr);
  assert.equal(lastJson(two.stdout).accuracy, lastJson(one.stdout).accuracy);
  assert.deepEqual(readFileSync(join(dir, "t2.mcnc")), readFileSync(join(dir, "t1.mcnc")));
});

test("--store-bits 8 stores the method's numbers as 8-bit codes and measures the model again", () => {
  const r = mcnc("train", "--limit", "2000", "--test-limit", "500", "--epochs", "1", "--ratio", "100", "--store-bits", "8", "--out", join(dir, "q8.mcnc"), "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const q = lastJson(r.stdout);
  assert.equal(q.store_bits, 8);
  assert.ok((q.file_bytes as number) < (trained.file_bytes as number) / 2, `${q.file_bytes} bytes`);
  assert.ok(Math.abs((q.accuracy as number) - (q.accuracy_f32 as number)) < 0.05, `${q.accuracy} vs ${q.accuracy_f32}`);
  const e = lastJson(mcnc("eval", join(dir, "q8.mcnc"), "--test-limit", "500", "--json").stdout);
  assert.equal(e.accuracy, q.accuracy, "eval sees what train reported for the stored model");
  assertCleanError(mcnc("train", "--store-bits", "4"), /--store-bits must be 8 or 32/);
});

test("compare writes a table, a plot and the runs, and refuses methods without a budget", () => {
  const out = join(dir, "cmp");
  const r = mcnc("compare", "--limit", "512", "--test-limit", "200", "--epochs", "1", "--methods", "mcnc,nola,prune", "--ratios", "100", "--quant-bits", "4", "--seeds", "0", "--out-dir", out, "--quiet", "--json");
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const labels = ["dense", "mcnc", "mcnc (8-bit storage)", "nola", "nola (8-bit storage)", "prune", "quant (QAT)", "quant (post-training)"];
  assert.deepEqual(rows.map((x) => x.label), labels);
  const byLabel = Object.fromEntries(rows.map((x) => [x.label, x]));
  for (const m of ["mcnc", "nola"]) assert.ok((byLabel[m]!.stored_params as number) <= 203530 / 100, m);
  // Pruning is held to bytes: within a tenth of MCNC's file, header included.
  assert.ok(Math.abs((byLabel.prune!.file_bytes as number) / (byLabel.mcnc!.file_bytes as number) - 1) < 0.1);
  assert.ok((byLabel["mcnc (8-bit storage)"]!.file_bytes as number) < 0.5 * (byLabel.mcnc!.file_bytes as number));
  assert.ok(Math.abs((byLabel["quant (QAT)"]!.bits_per_param as number) - 4.16) < 0.05);
  const table = readFileSync(join(out, "compare-mlp.md"), "utf8");
  assert.match(table, /\| mcnc \| 100x \| \d+ \| \d+ \|/);
  assert.match(table, /\| quant \(post-training\) \| 4-bit \|/);
  const svg = readFileSync(join(out, "compare-mlp.svg"), "utf8");
  assert.equal((svg.match(/<polyline/g) ?? []).length, labels.length);
  assertCleanError(mcnc("compare", "--methods", "dense"), /dense has no --ratio or --rank/);
  assertCleanError(mcnc("compare", "--methods", "zip"), /unknown method 'zip'/);
  assertCleanError(mcnc("compare", "--ratios", "100,0.5"), /--ratios must all be above 1/);
  assertCleanError(mcnc("compare", "--quant-bits", "5"), /--quant-bits: --bits must be one of 8, 4, 3, 2, got 5/);
});

test("compare --limits: the same comparison at each training-set size, tabled by size; each size trains on its own subset", () => {
  const out = join(dir, "cmp-limits");
  const r = mcnc("compare", "--limits", "256,512", "--test-limit", "200", "--epochs", "1", "--methods", "mcnc", "--ratios", "100", "--quant-bits", "", "--seeds", "0", "--out-dir", out, "--quiet", "--json");
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    rows.map((x) => `${x.label}@${x.limit}`),
    ["dense@256", "mcnc@256", "mcnc (8-bit storage)@256", "dense@512", "mcnc@512", "mcnc (8-bit storage)@512"],
  );
  // Twice the samples, twice the steps of one epoch: the runs differ, and the dense ones do too.
  assert.notEqual(rows[0]!.accuracy, rows[3]!.accuracy);
  const table = readFileSync(join(out, "compare-mlp.md"), "utf8");
  assert.match(table, /256 training images; 512 training images\./);
  assert.match(table, /Command: `mcnc compare .*--limits 256,512/);
  assert.match(table, /\| mcnc \| 100x \| 512 \| \d+ \|/);
  assert.match(table, /accuracy at 100x, by training samples/);
  assert.match(table, /\| training samples \| dense \| mcnc \| mcnc \(8-bit storage\) \|\n\|---\|---\|---\|---\|\n\| 256 \| 0\.\d{3} \(0\.\d{3}-0\.\d{3}\) \|/);
  assertCleanError(mcnc("compare", "--limits", "256", "--limit", "512"), /give --limit or --limits, not both/);
  assertCleanError(mcnc("compare", "--limits", "256,-1"), /--limits must be sample counts \(or 'all'\)/);
});

test("post-training compression: a dense file quantised and pruned without training, measured from the file", () => {
  const dense = join(dir, "dense.mcnc");
  assert.equal(mcnc("train", "--method", "dense", "--limit", "2000", "--test-limit", "500", "--epochs", "1", "--out", dense, "--quiet").code, 0);
  const denseAcc = lastJson(mcnc("eval", dense, "--test-limit", "500", "--json").stdout).accuracy as number;
  for (const [flags, bits] of [
    [["--method", "quant", "--bits", "4"], 4.16],
    [["--method", "prune", "--sparsity", "0.9"], 3.7],
  ] as const) {
    const out = join(dir, `${flags[1]}.mcnc`);
    const r = mcnc("train", ...flags, "--init", dense, "--epochs", "0", "--limit", "2000", "--test-limit", "500", "--out", out, "--json");
    assert.equal(r.code, 0, r.stderr);
    const report = lastJson(r.stdout);
    assert.ok(Math.abs((report.bits_per_param as number) - bits) < 0.3, `${flags[1]}: ${report.bits_per_param} bits per parameter`);
    assert.ok((report.accuracy as number) > denseAcc - 0.05, `${flags[1]}: ${report.accuracy} vs dense ${denseAcc}`);
    assert.equal(lastJson(mcnc("eval", out, "--test-limit", "500", "--json").stdout).accuracy, report.accuracy);
  }
  const info = lastJson(mcnc("inspect", join(dir, "quant.mcnc"), "--json").stdout);
  assert.deepEqual(
    (info.tensors as Array<{ name: string; dtype: string }>).filter((t) => t.name === "w1.codes").map((t) => t.dtype),
    ["u4"],
  );
  // With --init, a reparameterisation trains an adapter on the file (test/gpt-cli.test.ts): its residual form only.
  assertCleanError(mcnc("train", "--method", "mcnc", "--init", dense, "--residual=false"), /--residual false does not apply to an adapter \(--init\): it is always true/);
  assertCleanError(mcnc("train", "--method", "quant", "--init", dense, "--model", "lenet"), /holds a mlp, not --model lenet/);
});

test("the compare plot: every series its own colour and dash past ten, every legend name whole", () => {
  const series = Array.from({ length: 14 }, (_, i) => ({ name: `mcnc-lora at ratio ${i} (8-bit storage)`, points: [{ x: 1000 * (i + 1), y: 0.5, lo: 0.4, hi: 0.6 }] }));
  const svg = qualityPlot(series, "t", "accuracy");
  const styles = [...svg.matchAll(/<polyline fill="none" stroke="([^"]+)" stroke-width="2"(?: stroke-dasharray="([^"]+)")?/g)].map((m) => `${m[1]} ${m[2] ?? ""}`);
  assert.equal(new Set(styles).size, 14);
  const [W, H] = [/width="(\d+)"/, /height="(\d+)"/].map((r) => Number(r.exec(svg)![1]));
  const legend = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)">(mcnc-lora[^<]*)<\/text>/g)];
  assert.equal(legend.length, 14);
  for (const m of legend) {
    assert.ok(Number(m[1]) + 7.5 * m[3]!.length <= W!, `${m[3]} fits across`);
    assert.ok(Number(m[2]) <= H!, `${m[3]} fits down`);
  }
});

test("progress of an evaluation: a live percentage on a terminal, cleared at the end; nothing in plain logs", () => {
  const sink = (tty: boolean) => {
    const stream = { isTTY: tty, text: "", write(s: string) { this.text += s; return true; } };
    const shown = new Progress(stream as unknown as NodeJS.WriteStream).fraction("evaluating");
    for (const done of [0.1, 0.104, 0.5, 1]) shown.update(done);
    shown.done();
    return stream.text;
  };
  assert.equal(sink(true), "\r\x1b[Kevaluating 10%\r\x1b[Kevaluating 50%\r\x1b[Kevaluating 100%\r\x1b[K");
  assert.equal(sink(false), "");
});

test("help and version", () => {
  const h = mcnc("--help");
  assert.equal(h.code, 0);
  assert.match(h.stdout, /train .*\n.*eval/s);
  const t = mcnc("train", "--help");
  assert.match(t.stdout, /--ratio <float>/);
  // `mcnc help CMD` is the same; flags come in groups, wrapped to 100 columns off a terminal, then examples.
  assert.equal(mcnc("help", "train").stdout, t.stdout);
  assert.match(t.stdout, /\nmethod options:\n[^]*\ndata:\n[^]*\nengine:\n[^]*\nexamples:\n  npx mcnc train /);
  for (const command of ["train", "compress", "compare", "predict"]) {
    const [flags] = mcnc(command, "--help").stdout.split("\nexamples:\n");
    for (const line of flags!.split("\n")) assert.ok(line.length <= 100, line);
  }
  assert.match(mcnc("--version").stdout, /^mcnc \d/);
});

test("flags: each declared once per command, with defaults of its type inside its bounds; parsed typed, bounded and defaulted", () => {
  const kinds = { int: "number", float: "number", bool: "boolean", string: "string", "int-list": "object" } as const;
  for (const c of COMMANDS) {
    const names = flagsOf(c).map((f) => f.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], c.name);
    for (const f of flagsOf(c)) {
      if (f.default === undefined) continue;
      assert.equal(typeof f.default, kinds[f.type], `${c.name} --${f.name}`);
      if (typeof f.default === "number") assert.ok(f.default >= (f.min ?? -Infinity) && f.default <= (f.max ?? Infinity), `${c.name} --${f.name}`);
      if (f.choices) assert.ok(f.choices.includes(String(f.default)), `${c.name} --${f.name}`);
      assert.equal(f.defaultText, undefined, `${c.name} --${f.name}: a default is a value or words, not both`);
    }
  }
  const train = COMMANDS.find((c) => c.name === "train")!;
  const parsed = parseArgs(["--epochs", "2", "--ratio", "50"], flagsOf(train), "train", 0).flags;
  assert.deepEqual([parsed.epochs, parsed.ratio, parsed.method, parsed.seed, parsed["store-bits"], parsed.steps], [2, 50, "mcnc", 0, 32, undefined]);
  assert.throws(() => parseArgs(["--epochs", "10001"], flagsOf(train), "train", 0), /--epochs must be from 0 to 10000, got 10001/);
  assert.throws(() => parseArgs(["--batch", "0"], flagsOf(train), "train", 0), /--batch must be from 1 to 65536, got 0/);
  const merge = COMMANDS.find((c) => c.name === "merge")!;
  assert.throws(() => parseArgs(["--model", "a.mcnc"], flagsOf(merge), "merge", 0), /mcnc merge needs --adapter: an adapter file/);
});

test("misspellings get a suggestion; --json reports errors as JSON; a long run says how long it will take", () => {
  assertCleanError(mcnc("trian"), /unknown command 'trian' \(did you mean train\?\)/);
  assertCleanError(mcnc("train", "--epoch", "3"), /unknown flag --epoch for 'mcnc train' \(did you mean --epochs\?\)/);
  assertCleanError(mcnc("train", "--method", "mcnx"), /one of .* \(did you mean mcnc\?\)/);
  assertCleanError(mcnc("train", "--zzzzzzzz"), /unknown flag --zzzzzzzz for 'mcnc train' \(see mcnc train --help\)/);
  const r = mcnc("eval", join(dir, "missing.mcnc"), "--json");
  assertCleanError(r, /cannot read/);
  assert.deepEqual(Object.keys(lastJson(r.stdout)), ["error", "exit_code"]);
  assert.equal(lastJson(r.stdout).exit_code, 2);
  const t = mcnc("train", "--method", "dense", "--epochs", "1", "--limit", "2560", "--test-limit", "100", "--out", join(dir, "estimate.mcnc"));
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /^estimate: about \d+s of training left \(\d+ ms a step over steps 4-13; evaluations come on top\)$/m);
});

test("a model of one's own: trained from a spec file of layers, and its file reloads with no code", () => {
  const spec = join(dir, "small-cnn.json");
  writeFileSync(spec, JSON.stringify({ layers: [{ type: "conv3x3", channels: 8 }, "relu", "maxpool2", "maxpool2", "flatten", { type: "dense", units: 32 }, "relu", { type: "dense", units: 10 }] }));
  const out = join(dir, "small-cnn.mcnc");
  const t = mcnc("train", "--model", spec, "--method", "mcnc", "--ratio", "10", "--epochs", "1", "--limit", "6000", "--test-limit", "500", "--out", out, "--json", "--quiet");
  assert.equal(t.code, 0, t.stderr);
  const trained = lastJson(t.stdout);
  // Chance is 0.1; 46 steps of a 10x-compressed CNN get well past it.
  assert.ok((trained.accuracy as number) > 0.4, JSON.stringify(trained));
  assert.equal(lastJson(mcnc("eval", out, "--test-limit", "500", "--json").stdout).accuracy, trained.accuracy);
  assert.match(mcnc("inspect", out).stdout, /sequential \(28x28x1 -> 10 classes\)/);
  writeFileSync(join(dir, "bad.json"), "{ layers: nope");
  assertCleanError(mcnc("train", "--model", join(dir, "bad.json")), /bad\.json: spec file \(an object with "layers"\) is not JSON/);
  writeFileSync(join(dir, "wide.json"), JSON.stringify({ layers: ["flatten", { type: "dense", units: 65536 }, { type: "dense", units: 65536 }, { type: "dense", units: 10 }] }));
  assertCleanError(mcnc("train", "--model", join(dir, "wide.json"), "--limit", "256"), /more than 268435456 parameters/);
  // A spec's activations are counted from its shapes: ResNet-20's at batch 128 (3,325 MiB measured at its peak) exceed the default limit.
  assertCleanError(mcnc("train", "--model", "examples/specs/resnet20.json", "--method", "dense", "--batch", "128", "--steps", "1", "--limit", "256"), /training sequential with dense at this configuration needs about [\d,]+ MiB, above the limit of 2,048 MiB/);
});

test("bad input: one line, exit 2, nothing half-written", () => {
  assertCleanError(mcnc("fly"), /unknown command 'fly'/);
  assertCleanError(mcnc("train", "--bogus"), /unknown flag --bogus/);
  assertCleanError(mcnc("train", "--epochs", "abc"), /--epochs expects an integer, got 'abc'/);
  assertCleanError(mcnc("train", "--model", "vgg"), /--model must be mlp, lenet, gpt or a spec file \(\.json\), got 'vgg'/);
  assertCleanError(mcnc("train", "--model", "lenett"), /\(did you mean lenet\?\)/);
  assertCleanError(mcnc("train", "--method", "dense", "--k", "4"), /--k does not apply to --method dense/);
  assertCleanError(mcnc("train", "--ratio", "1000000", "--limit", "256"), /out of reach/);
  assertCleanError(mcnc("train", "--k", "0", "--limit", "256"), /--k must be an integer from 1/);
  assertCleanError(mcnc("train", "--seed", "-1"), /--seed/);
  assertCleanError(mcnc("train", "--method", "prune", "--sparsity", "1"), /--sparsity must be in \[0, 1\), got 1/);
  assertCleanError(mcnc("train", "--method", "quant", "--bits", "5"), /--bits must be one of 8, 4, 3, 2, got 5/);
  assertCleanError(mcnc("train", "--method", "lora", "--rank", "300"), /--rank 300 is larger than layer w1 \(784x256\) allows: 1\.\.256/);
  assertCleanError(mcnc("train", "--method", "pranc", "--bases", "5000", "--d", "203264"), /GiB; give a smaller --d/);
  assertCleanError(mcnc("train", "--epochs", "0"), /--epochs 0 needs --init FILE/);
  assertCleanError(mcnc("train", "--method", "quant", "--store-bits", "8"), /--store-bits does not apply to --method quant: it stores its own encoding, chosen by its own flags/);
  // A folder not made yet is made on writing; one under a file cannot be.
  const plain = join(dir, "plain-file");
  writeFileSync(plain, "x");
  assertCleanError(mcnc("train", "--out", join(plain, "missing", "x.mcnc")), /cannot write to/);
  assertCleanError(mcnc("eval", join(dir, "nope.mcnc")), /cannot read .*ENOENT/);
  assertCleanError(mcnc("eval"), /needs a FILE/);
  assertCleanError(mcnc("inspect", dir), /is a folder without config.json: give a .mcnc file or a Hugging Face model folder/);

  const corrupt = join(dir, "corrupt.mcnc");
  const bytes = readFileSync(model);
  bytes[bytes.length >> 1]! ^= 0x10;
  writeFileSync(corrupt, bytes);
  assertCleanError(mcnc("eval", corrupt), /checksum mismatch/);
  writeFileSync(corrupt, readFileSync(model).subarray(0, 100));
  assertCleanError(mcnc("inspect", corrupt), /truncated/);
  writeFileSync(corrupt, "hello");
  assertCleanError(mcnc("inspect", corrupt), /too short|not an .mcnc file/);

  const notIdx = mkdtempSync(join(tmpdir(), "mcnc-notidx-"));
  writeFileSync(join(notIdx, "train-images-idx3-ubyte"), "not idx at all");
  assertCleanError(mcnc("eval", model, "--data", notIdx), /missing train-labels|not an IDX/);
  assertCleanError(mcnc("train", "--data", notIdx), /missing train-labels|not an IDX/);

  const out = join(dir, "never.safetensors");
  assertCleanError(mcnc("decompress", corrupt, "--out", out), /too short|not an .mcnc/);
  assert.equal(existsSync(out), false);
  assertCleanError(mcnc("decompress", model), /needs --out/);
  assertCleanError(mcnc("decompress", model, "--out", join(plain, "missing", "w.safetensors")), /cannot write/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
});
