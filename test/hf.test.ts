/**
 * Hugging Face GPT-2 folders, on tiny random checkpoints written here: read from one file or shards,
 * F32, F16 or BF16, with or without the `transformer.` prefix; refused in one line where config, weights
 * or tokenizer disagree; tokenized by GPT-2's real BPE (the vocabulary and merges gpt-3-encoder ships);
 * and computed as an independent PyTorch reading (bench/torch_hf.py) computes them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { bundledPath } from "../src/data/bundled.js";
import { folderTokenizer } from "../src/data/folder-tokenizer.js";
import { initEngine } from "../src/engine/engine.js";
import { readModelFile } from "../src/format/read-file.js";
import { memorySource, readSafetensors } from "../src/format/safetensors.js";
import { gptSpecs } from "../src/model/gpt.js";
import type { GptConfig } from "../src/model/model.js";
import { maxDifference, mcncReading, torchReading, writeGpt2Folder, type HfFolderOptions } from "../bench/hf-check.js";
import { hasTorch, NO_TORCH } from "../bench/train-vs-torch.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";

await initEngine();

const root = mkdtempSync(join(tmpdir(), "mcnc-hf-"));
test.after(() => rmSync(root, { recursive: true, force: true }));

const TINY: GptConfig = { layers: 2, width: 16, heads: 2, context: 32, vocab: 50257 };

/** A tiny random GPT-2 folder under the test's root; the weights as they read back after the dtype's rounding. */
function writeGpt2(name: string, v: HfFolderOptions = {}): { dir: string; weights: Record<string, Float32Array> } {
  const dir = join(root, name);
  return { dir, weights: writeGpt2Folder(dir, TINY, v) };
}

test("GPT-2's tokenizer from vocab.json and merges.txt: its known ids, and real text tokenized as gpt-3-encoder does and decoded back", async () => {
  const { dir } = writeGpt2("tokenizer");
  const tokenizer = folderTokenizer(dir, TINY.vocab);
  assert.deepEqual(tokenizer.encode("Hello world"), [15496, 995]);
  assert.equal(tokenizer.start, 50256);
  const chapter = gunzipSync(readFileSync(join(bundledPath("moby-dick"), "chapter_1.txt.gz"))).toString("utf8");
  const text = `${chapter}\nnaïve café, 😀 — “quoted” <|endoftext|>`;
  const ids = tokenizer.encode(text);
  // An independent implementation of the same BPE (gpt-3-encoder's own code) gives the same tokens.
  const reference = (await import("gpt-3-encoder")) as unknown as { encode(text: string): number[] };
  assert.deepEqual(ids.slice(0, 2000), reference.encode(chapter).slice(0, 2000));
  // Streamed a token at a time, characters split across tokens come out whole.
  const stream = tokenizer.streamDecoder();
  assert.equal(ids.map((t) => stream.next(t)).join("") + stream.end(), text);
});

test("a GPT-2 folder reads as mcnc's GPT: one file or shards, F32, F16 or BF16, with or without the transformer. prefix", () => {
  for (const [name, v] of [
    ["f32", {}],
    ["f16-prefixed", { dtype: "F16", lmHead: true }],
    ["bf16-sharded", { dtype: "BF16", shards: true }],
  ] as const) {
    const { dir, weights } = writeGpt2(name, v);
    const loaded = readModelFile(dir);
    assert.deepEqual(loaded.model.description, { name: "gpt", ...TINY });
    for (const s of loaded.model.specs) assert.deepEqual(loaded.file.trainable[s.name], weights[s.name], `${name}: ${s.name}`);
  }
});

test("a folder whose config, weights or tokenizer disagree is refused in one line", () => {
  const refuse = (name: string, v: HfFolderOptions, pattern: RegExp, command = ["inspect"]) => {
    const { dir } = writeGpt2(name, v);
    assertCleanError(mcnc(...command, ...(command[0] === "generate" ? ["--model", dir] : [dir])), pattern);
  };
  refuse("bert", { config: { model_type: "bert" } }, /model_type "bert" is not one mcnc reads \(gpt2, llama, mistral, qwen2\)/);
  refuse("relu", { config: { activation_function: "relu" } }, /activation_function relu is not gelu_new/);
  refuse("wide", { config: { n_embd: 32 } }, /wte.weight is \[50257, 16\], but config.json makes it \[50257, 32\]/);
  refuse("untied", { lmHead: true, tamper: (t) => (t[t.length - 1]!.data = t[t.length - 1]!.data.map((x) => x + 1)) }, /lm_head.weight differs from the token embedding/, ["generate", "--tokens", "1"]);
  const { dir: sharded } = writeGpt2("missing-shard", { shards: true });
  rmSync(join(sharded, "model-00002-of-00002.safetensors"));
  assertCleanError(mcnc("inspect", sharded), /lists the shard model-00002-of-00002.safetensors, which .* does not hold/);
  refuse("no-tokenizer", { tokenizer: false }, /has no tokenizer: it needs tokenizer.json, or GPT-2's vocab.json and merges.txt/, ["generate", "--tokens", "2"]);
  assertCleanError(mcnc("inspect", root), /is a folder without config.json/);
  const { dir } = writeGpt2("bytes-only");
  assertCleanError(mcnc("predict", "--in", dir, "--prompt", "Hi"), /ranks next bytes, for mcnc's byte-level GPT/);
});

test("generate and inspect run on a GPT-2 folder, streaming text through its tokenizer", () => {
  const { dir } = writeGpt2("cli");
  const r = mcnc("generate", "--model", dir, "--prompt", "Hello world", "--tokens", "6", "--temperature", "0", "--json");
  assert.equal(r.code, 0, r.stderr);
  const out = lastJson(r.stdout) as { prompt_tokens: number; tokens: number; text: string };
  assert.equal(out.prompt_tokens, 2);
  assert.equal(out.tokens, 6);
  assert.ok(out.text.length > 0);
  const inspected = mcnc("inspect", dir, "--json");
  assert.equal(inspected.code, 0, inspected.stderr);
  assert.equal((lastJson(inspected.stdout) as { params: number }).params, gptSpecs(TINY).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0));
});

test("eval on a GPT-2 folder: the text tokenized by its tokenizer, bits per byte at its bytes per token, and perplexity per token", () => {
  const { dir } = writeGpt2("eval");
  const text = join(root, "text.txt");
  const chapters = [1, 2, 3, 4, 5, 6].map((i) => gunzipSync(readFileSync(join(bundledPath("moby-dick"), `chapter_${i}.txt.gz`))).toString("utf8"));
  writeFileSync(text, chapters.join("\n"));
  const r = mcnc("eval", dir, "--data", text, "--eval-tokens", "0", "--json");
  assert.equal(r.code, 0, r.stderr);
  const out = lastJson(r.stdout) as { bits_per_byte: number; perplexity: number };
  // A random model: bits per token near log2(50,257) = 15.6; English is about 4.5 bytes a GPT-2 token,
  // so bits per byte are bits per token over that (bytes read as tokens would make them equal).
  const perToken = Math.log2(out.perplexity);
  assert.ok(perToken > 12 && perToken < 20, `${perToken} bits per token`);
  const bytesPerToken = perToken / out.bits_per_byte;
  assert.ok(bytesPerToken > 3.5 && bytesPerToken < 5.5, `${bytesPerToken} bytes per token`);
});

test("an adapter trained on a GPT-2 folder: a file of a few KB bound to the folder's weights, and generate applies it", () => {
  const { dir } = writeGpt2("adapt");
  const text = join(root, "adapt.txt");
  writeFileSync(text, gunzipSync(readFileSync(join(bundledPath("moby-dick"), "chapter_2.txt.gz"))).toString("utf8").repeat(3));
  const adapter = join(root, "adapter.mcnc");
  const r = mcnc("train", "--init", dir, "--method", "mcnc-lora", "--ratio", "1000", "--data", text, "--steps", "4", "--batch", "4", "--eval-tokens", "256", "--out", adapter, "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const trained = lastJson(r.stdout) as { file_bytes: number; bits_per_byte: number; adapter: { leaves: number } };
  assert.ok(trained.file_bytes < 8192 && trained.adapter.leaves === TINY.layers && Number.isFinite(trained.bits_per_byte), JSON.stringify(trained));
  const g = mcnc("generate", "--model", dir, "--adapter", adapter, "--prompt", "Hello", "--tokens", "3", "--json");
  assert.equal(g.code, 0, g.stderr);
  // Merged, it is a folder of the base's kind: its names, its dtype, its config and tokenizer; the same
  // weights as the merged safetensors.
  const merged = join(root, "merged");
  assert.equal(mcnc("merge", "--model", dir, "--adapter", adapter, "--out", merged).code, 0);
  assert.equal(mcnc("merge", "--model", dir, "--adapter", adapter, "--out", `${merged}.safetensors`).code, 0);
  assert.deepEqual(readdirSync(merged).sort(), ["config.json", "merges.txt", "model.safetensors", "vocab.json"]);
  const header = readSafetensors(memorySource(readFileSync(join(merged, "model.safetensors"))));
  assert.deepEqual(header.entries.map((e) => [e.name, e.dtype]), readSafetensors(memorySource(readFileSync(join(dir, "model.safetensors")))).entries.map((e) => [e.name, e.dtype]));
  const flat = readSafetensors(memorySource(readFileSync(`${merged}.safetensors`)));
  for (const s of gptSpecs(TINY)) assert.deepEqual(readModelFile(merged).file.trainable[s.name], flat.read(s.name), s.name);
  assertCleanError(mcnc("merge", "--model", dir, "--adapter", adapter, "--out", merged), /--out .*merged exists: give a new folder/);
  // On another base the adapter is refused by its base's hash.
  const { dir: other } = writeGpt2("other-base", { config: { layer_norm_epsilon: 1e-5 }, tamper: (t) => (t[0]!.data = t[0]!.data.map((x) => -x)) });
  assertCleanError(mcnc("generate", "--model", other, "--adapter", adapter, "--tokens", "2"), /base/);
});

test("compress writes a GPT-2 folder back as one, in its names and dtypes (or --store's)", () => {
  const { dir, weights } = writeGpt2("compress", { dtype: "F16", lmHead: true });
  const out = join(root, "compressed");
  const r = mcnc("compress", "--method", "rtn", "--bits", "8", "--in", dir, "--out", out, "--skip-eval", "--json");
  assert.equal(r.code, 0, r.stderr);
  const written = readSafetensors(memorySource(readFileSync(join(out, "model.safetensors"))));
  assert.ok(written.entries.some((e) => e.name === "transformer.h.0.attn.c_attn.weight") && written.entries.every((e) => e.dtype === "F16"));
  const back = readModelFile(out).file.trainable;
  const w = weights["h.0.attn.c_attn.weight"]!;
  const err = back["h.0.attn.c_attn.weight"]!.reduce((m, v, i) => Math.max(m, Math.abs(v - w[i]!)), 0);
  assert.ok(err > 0 && err < 0.01, `8-bit error ${err}`);
  const bf16 = join(root, "compressed-bf16");
  assert.equal(mcnc("compress", "--method", "rtn", "--bits", "8", "--in", dir, "--out", bf16, "--skip-eval", "--store", "bfloat16").code, 0);
  assert.ok(readSafetensors(memorySource(readFileSync(join(bf16, "model.safetensors")))).entries.every((e) => e.dtype === "BF16"));
});

test("a LoRA adapter written in PEFT's format, merged by the PyTorch reading as PEFT merges, gives mcnc's merged logits", async (t) => {
  if (!hasTorch()) {
    t.skip(NO_TORCH);
    return;
  }
  const { dir } = writeGpt2("peft-base");
  const text = join(root, "peft.txt");
  writeFileSync(text, gunzipSync(readFileSync(join(bundledPath("moby-dick"), "chapter_3.txt.gz"))).toString("utf8"));
  const adapter = join(root, "lora.mcnc");
  const trained = mcnc("train", "--init", dir, "--method", "lora", "--rank", "2", "--compress", "c_attn,c_fc", "--data", text, "--steps", "3", "--batch", "2", "--lr", "0.05", "--eval-tokens", "128", "--out", adapter, "--quiet");
  assert.equal(trained.code, 0, trained.stderr);
  const peft = join(root, "peft-adapter");
  assert.equal(mcnc("decompress", adapter, "--out", peft).code, 0);
  const config = JSON.parse(readFileSync(join(peft, "adapter_config.json"), "utf8")) as { r: number; target_modules: string[] };
  assert.deepEqual([config.r, config.target_modules], [2, ["c_attn", "c_fc"]]);
  const keys = readSafetensors(memorySource(readFileSync(join(peft, "adapter_model.safetensors")))).entries.map((e) => `${e.name} ${e.shape.join("x")}`);
  assert.ok(keys.includes("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight 2x16") && keys.includes("base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight 64x2"), keys.join("; "));

  const merged = join(root, "peft-merged");
  assert.equal(mcnc("merge", "--model", dir, "--adapter", adapter, "--out", merged).code, 0);
  const ids = folderTokenizer(dir, TINY.vocab).encode("It was a black night");
  const theirs = torchReading(dir, ids, { peft });
  const ours = await mcncReading(merged, ids);
  const worst = maxDifference(ours.logits, theirs.logits);
  assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
  // The adapter moved the model: the PEFT merge is not the base.
  const before = await mcncReading(dir, ids);
  assert.ok(maxDifference(before.logits, ours.logits) > 1e-3);
  // Read back as an adapter (Conv1D layers: fan_in_fan_out), the PEFT folder merges to the same weights.
  const again = join(root, "peft-merged-again");
  assert.equal(mcnc("merge", "--model", dir, "--adapter", peft, "--out", again).code, 0);
  assert.ok(maxDifference((await mcncReading(again, ids)).logits, ours.logits) < 1e-5);
});

test("logits and greedy tokens agree with an independent PyTorch reading of the folder", async (t) => {
  if (!hasTorch()) {
    t.skip(NO_TORCH);
    return;
  }
  const { dir } = writeGpt2("torch", { dtype: "BF16", lmHead: true, shards: true });
  const ids = folderTokenizer(dir, TINY.vocab).encode("Call me Ishmael. Some years ago");
  const theirs = torchReading(dir, ids, { greedy: 12 });
  const ours = await mcncReading(dir, ids, 12);
  assert.equal(theirs.logits.length, ids.length * TINY.vocab);
  const worst = maxDifference(ours.logits, theirs.logits);
  assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
  assert.deepEqual(ours.greedy, theirs.greedy);
});
