import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { assertCleanError, CLI, lastJson, mcnc } from "./cli-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mcnc-gpt-cli-"));

const SIZE = ["--model", "gpt", "--layers", "1", "--width", "16", "--heads", "2", "--context", "16", "--eval-tokens", "2048"];
const base = join(dir, "base.mcnc");
const adapter = join(dir, "adapter.mcnc");
let adapted: Record<string, unknown>;

test("gpt: pretrain a base on one corpus, train an adapter on another that stores only itself", () => {
  const b = mcnc("train", ...SIZE, "--method", "dense", "--dataset", "sotu", "--steps", "40", "--lr", "0.01", "--out", base, "--json", "--quiet");
  assert.equal(b.code, 0, b.stderr);
  const pre = lastJson(b.stdout);
  assert.ok((pre.bits_per_byte as number) < 6, `base ${pre.bits_per_byte} bits per byte after 40 steps (8 is chance)`);

  const onMoby = lastJson(mcnc("eval", base, "--dataset", "moby-dick", "--eval-tokens", "2048", "--json").stdout);
  const a = mcnc("train", "--method", "mcnc-lora", "--init", base, "--dataset", "moby-dick", "--eval-tokens", "2048", "--steps", "40", "--ratio", "20", "--compress", "weights", "--out", adapter, "--json", "--quiet");
  assert.equal(a.code, 0, a.stderr);
  adapted = lastJson(a.stdout);
  assert.deepEqual((adapted.adapter as Record<string, unknown>).leaves, 6, "every matrix and embedding");
  assert.ok((adapted.stored_params as number) <= (pre.params as number) / 20, `${adapted.stored_params} stored numbers`);
  assert.ok((adapted.file_bytes as number) < 2500, `${adapted.file_bytes} bytes`);
  assert.ok((adapted.bits_per_byte as number) < (onMoby.bits_per_byte as number), `adapted ${adapted.bits_per_byte} vs base ${onMoby.bits_per_byte} on moby-dick`);

  const info = lastJson(mcnc("inspect", adapter, "--json").stdout);
  assert.equal((info.adapter as { base_sha256: string }).base_sha256.length, 64);
  assert.equal(info.params, pre.params, "ratios count the base's parameters");
});

test("gpt: the adapter on its base evaluates as trained; merged weights score the same; another base is refused", () => {
  const e = lastJson(mcnc("eval", base, "--adapter", adapter, "--eval-tokens", "2048", "--json").stdout);
  assert.equal(e.bits_per_byte, adapted.bits_per_byte, "rebuilt from the file: exactly what training reported");
  assert.equal(e.data, "moby-dick", "the data the adapter was trained on");

  const merged = join(dir, "merged.mcnc");
  assert.equal(mcnc("merge", "--model", base, "--adapter", adapter, "--out", merged).code, 0);
  assert.equal(lastJson(mcnc("eval", merged, "--dataset", "moby-dick", "--eval-tokens", "2048", "--json").stdout).bits_per_byte, adapted.bits_per_byte);
  const st = join(dir, "merged.safetensors");
  assert.equal(mcnc("merge", "--model", base, "--adapter", adapter, "--out", st).code, 0);
  const bytes = readFileSync(st);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString("utf8"));
  assert.deepEqual(header["h.0.attn.c_attn.weight"].shape, [16, 48]);

  const other = join(dir, "other.mcnc");
  assert.equal(mcnc("train", ...SIZE, "--method", "dense", "--dataset", "sotu", "--steps", "2", "--seed", "1", "--out", other, "--quiet").code, 0);
  assertCleanError(mcnc("eval", other, "--adapter", adapter), /the adapter was trained on another base/);
  assertCleanError(mcnc("eval", adapter), /is an adapter: give its base model/);
  assertCleanError(mcnc("train", "--method", "lora", "--init", adapter, "--steps", "1"), /is an adapter: merge it into its base first/);
});

test("gpt: generate streams the same text for a seed; an adapter on its base generates what the merged model does", () => {
  const run = (...extra: string[]) => mcnc("generate", "--prompt", "The ", "--tokens", "40", "--seed", "3", "--json", ...extra);
  const [a, b, c, m] = [run("--model", base), run("--model", base), run("--model", base, "--adapter", adapter), run("--model", join(dir, "merged.mcnc"))];
  assert.equal(a.code, 0, a.stderr);
  const [ja, jb, jc, jm] = [a, b, c, m].map((r) => lastJson(r.stdout));
  assert.equal(ja!.text, jb!.text);
  assert.equal(ja!.tokens, 40);
  assert.equal(jc!.text, jm!.text);
  const plain = mcnc("generate", "--model", base, "--prompt-file", base, "--tokens", "5");
  assert.equal(plain.code, 0, "a prompt of any bytes (here a binary file) is a prompt");
  assertCleanError(mcnc("generate", "--model", base, "--tokens", "0"), /--tokens must be from 1/);
  assertCleanError(mcnc("generate", "--model", base, "--tokens", "5000000", "--json"), /at most 1048576 tokens/);
  assertCleanError(mcnc("generate", "--model", adapter), /is an adapter/);
});

test("gpt: a million tokens stream: text arrives long before the end, and a closed pipe ends the run cleanly", async () => {
  const child = spawn(process.execPath, [CLI, "generate", "--model", base, "--tokens", "1000000", "--seed", "1"], { env: { ...process.env, MCNC_THREADS: "" } });
  let got = 0;
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  await new Promise<void>((r) =>
    child.stdout.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= 500) {
        child.stdout.destroy();
        r();
      }
    }),
  );
  // A million tokens take many minutes here; these bytes came while it was still generating.
  assert.ok(got >= 500);
  assert.equal(await exited, 0, "a reader that stops reading is not an error");
});

test("gpt: compare puts adapters at equal budgets beside the base and full fine-tuning; a budget out of reach is a cell, not the end", () => {
  const out = join(dir, "cmp");
  const r = mcnc("compare", "--init", base, "--dataset", "moby-dick", "--methods", "lora,mcnc", "--ratios", "10,100000", "--compress", "weights", "--seeds", "0", "--steps", "5", "--eval-tokens", "1024", "--out-dir", out, "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    rows.map((x) => `${x.label}@${x.budget}`),
    ["base (no adapter)@-", "full fine-tuning@1x", "lora@10x", "lora@100000x", "mcnc@10x", "mcnc@100000x"],
  );
  const byKey = Object.fromEntries(rows.map((x) => [`${x.label}@${x.budget}`, x]));
  for (const k of ["lora@10x", "mcnc@10x"]) assert.ok((byKey[k]!.stored_params as number) <= 7664 / 10 && (byKey[k]!.stored_params as number) > 0, k);
  for (const k of ["lora@100000x", "mcnc@100000x"]) assert.equal(byKey[k]!.bits_per_byte, null, `${k} is out of reach`);
  assert.equal(typeof byKey["base (no adapter)@-"]!.bits_per_byte, "number");
  const table = readFileSync(join(out, "compare-base-adapters.md"), "utf8");
  assert.match(table, /\| lora \| 100000x \| - \| - \| - \| out of reach \|/);
  assert.match(table, /\| mcnc \| 100000x \| .*--ratio 100000 is out of reach for --method mcnc as an adapter on 6 leaves: it allows 0 stored numbers/);
  assert.match(table, /bits per byte \(mean\)/);
});

test("gpt: bad text input is one line and exit 2", () => {
  const binary = join(dir, "binary.txt");
  writeFileSync(binary, Uint8Array.of(1, 2, 0, 255));
  assertCleanError(mcnc("train", ...SIZE, "--data", binary, "--steps", "1"), /not text \(a NUL byte/);
  const tiny = join(dir, "tiny.txt");
  writeFileSync(tiny, "too short");
  assertCleanError(mcnc("train", ...SIZE, "--data", tiny, "--steps", "1"), /one context of 16 tokens needs at least 17/);
  assertCleanError(mcnc("train", "--model", "gpt", "--width", "16", "--heads", "3", "--steps", "1"), /width 16 is not divisible by 3 heads/);
  assertCleanError(mcnc("train", ...SIZE, "--dataset", "fashion-mnist", "--steps", "1"), /holds images; this model reads text/);
  // Sizes are checked from the flags, before anything is allocated.
  assertCleanError(mcnc("train", "--model", "gpt", "--layers", "64", "--width", "8192", "--steps", "1"), /51549585408 parameters, above the limit of 268435456/);
  assertCleanError(mcnc("train", "--model", "gpt", "--context", "4096", "--batch", "64", "--steps", "1"), /gpt's attention and logits at --batch 64 \(lower --batch or --context\) needs about [\d,]+ MiB, above the limit of 2,048 MiB/);
});

test("a killed run resumes from its checkpoint to the uninterrupted run's file, byte for byte", async () => {
  const run = [...SIZE, "--method", "mcnc", "--dataset", "moby-dick", "--eval-every", "100", "--quiet"];
  const args = [...run, "--steps", "300"];
  const whole = join(dir, "whole.mcnc");
  assert.equal(mcnc("train", ...args, "--out", whole).code, 0);
  const ckpt = join(dir, "run.ckpt");
  const cut = join(dir, "cut.mcnc");
  const child = spawn(process.execPath, [CLI, "train", ...args, "--out", cut, "--checkpoint-every", "20", "--checkpoint", ckpt], { env: { ...process.env, MCNC_THREADS: "" } });
  const exited = new Promise((r) => child.on("exit", r));
  // Kill it as soon as a checkpoint exists (if it finishes first, resuming still has to match).
  while (!existsSync(ckpt) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  child.kill("SIGKILL");
  await exited;
  const resumed = join(dir, "resumed.mcnc");
  const r = mcnc("train", ...args, "--out", resumed, "--resume", ckpt);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readFileSync(resumed), readFileSync(whole));
  assertCleanError(mcnc("train", ...run, "--steps", "301", "--out", resumed, "--resume", ckpt), /checkpoint of another run \(it differs in total\)/);
});
