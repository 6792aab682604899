/**
 * LLaMA-family Hugging Face folders (llama, mistral, qwen2), on tiny random checkpoints written here:
 * grouped-query attention, tied and untied heads, attention biases, Llama 3's rotary rescaling, BF16
 * shards, a tokenizer.json; computed as the independent PyTorch reading (bench/torch_hf.py) computes
 * them; every LM command on them; adapters of every LoRA kind written in PEFT's format.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { bundledPath } from "../src/data/bundled.js";
import { folderTokenizer } from "../src/data/folder-tokenizer.js";
import { initEngine } from "../src/engine/engine.js";
import { readModelFile } from "../src/format/read-file.js";
import { memorySource, readSafetensors } from "../src/format/safetensors.js";
import { languageDecoder } from "../src/generate/decoder.js";
import type { LlamaConfig } from "../src/model/model.js";
import { toDevice } from "../src/model/params.js";
import { maxDifference, mcncReading, torchReading, writeLlamaFolder, type HfFolderOptions } from "../bench/hf-check.js";
import { hasTorch, NO_TORCH } from "../bench/train-vs-torch.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";

await initEngine();

const root = mkdtempSync(join(tmpdir(), "mcnc-llama-"));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** Four query heads sharing two key/value heads, an untied head: GPT-2's tokenizer stands in for a LLaMA one. */
const TINY: LlamaConfig = { layers: 2, width: 16, heads: 4, kvHeads: 2, headDim: 4, hidden: 24, context: 32, vocab: 50257, ropeTheta: 10000, normEps: 1e-5, attentionBias: "none", tied: false };

/** What else the family's members change: a tied head with biases and Llama 3's rescaled rotary; Qwen2's q, k, v biases with one key/value head. */
const VARIANTS: Array<[string, LlamaConfig, HfFolderOptions & { type?: string }]> = [
  ["llama", TINY, {}],
  ["llama3", { ...TINY, tied: true, attentionBias: "qkvo", headDim: 8, ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } }, { dtype: "BF16", shards: true, tokenizer: "json" }],
  ["qwen2", { ...TINY, attentionBias: "qkv", kvHeads: 1, ropeTheta: 1e6 }, { type: "qwen2" }],
];

function writeLlama(name: string, c: LlamaConfig = TINY, v: HfFolderOptions & { type?: string } = {}): { dir: string; weights: Record<string, Float32Array> } {
  const dir = join(root, name);
  return { dir, weights: writeLlamaFolder(dir, c, v) };
}

const text = join(root, "text.txt");
writeFileSync(text, [2, 3, 4].map((i) => gunzipSync(readFileSync(join(bundledPath("moby-dick"), `chapter_${i}.txt.gz`))).toString("utf8")).join("\n"));

test("logits and greedy tokens agree with an independent PyTorch reading, for each family member", async (t) => {
  if (!hasTorch()) {
    t.skip(NO_TORCH);
    return;
  }
  for (const [name, c, v] of VARIANTS) {
    const { dir } = writeLlama(`torch-${name}`, c, v);
    const ids = folderTokenizer(dir, c.vocab).encode("Call me Ishmael. Some years ago");
    const theirs = torchReading(dir, ids, { greedy: 10 });
    const ours = await mcncReading(dir, ids, 10);
    const worst = maxDifference(ours.logits, theirs.logits);
    assert.ok(worst < 1e-4, `${name}: largest logit difference ${worst}`);
    assert.deepEqual(ours.greedy, theirs.greedy, name);
  }
});

test("the KV cache with grouped key/value heads gives the logits of a full recomputation", async () => {
  const { dir } = writeLlama("cache", VARIANTS[1]![1], VARIANTS[1]![2]);
  const loaded = readModelFile(dir);
  const weights = loaded.file.trainable;
  const seq = folderTokenizer(dir, TINY.vocab).encode("It was a black night, and the wind blew");
  const full = (await mcncReading(dir, seq)).logits;
  const decoder = languageDecoder(loaded.model.lm!, toDevice(loaded.model.specs, weights));
  const at = (t: number) => full.slice(t * TINY.vocab, (t + 1) * TINY.vocab);
  assert.ok(maxDifference(await decoder.prefill(seq.slice(0, 3)), at(2)) < 1e-4);
  for (let t = 3; t < seq.length; t++) assert.ok(maxDifference(await decoder.step(seq[t]!), at(t)) < 1e-4, `step ${t}`);
  decoder.dispose();
});

test("a folder whose config or weights disagree with what mcnc computes is refused in one line", () => {
  const refuse = (name: string, v: HfFolderOptions, pattern: RegExp) => assertCleanError(mcnc("inspect", writeLlama(name, TINY, v).dir), pattern);
  refuse("gelu", { config: { hidden_act: "gelu" } }, /hidden_act gelu is not silu/);
  refuse("yarn", { config: { rope_scaling: { rope_type: "yarn", factor: 4 } } }, /rope_scaling of type "yarn"/);
  refuse("sliding", { config: { sliding_window: 8 } }, /attention slides over 8 positions, fewer than the 32/);
  refuse("mlp-bias", { config: { mlp_bias: true } }, /mlp_bias/);
  refuse("groups", { config: { num_key_value_heads: 3 } }, /4 heads are not a multiple of 3 key\/value heads/);
  refuse("kv-shape", { config: { num_key_value_heads: 4 } }, /model.layers.0.self_attn.k_proj.weight is \[8, 16\], but config.json makes it \[16, 16\]/);
  // A head saved beside a tied config (inspect reads headers only; generate reads the weights).
  const { dir } = writeLlama("tied-but-not", TINY, { config: { tie_word_embeddings: true } });
  assertCleanError(mcnc("generate", "--model", dir, "--tokens", "1"), /lm_head.weight differs from the token embedding, which config.json ties it to/);
  // A checkpoint larger than the memory limit allows is refused with its size, before its weights are read.
  assertCleanError(mcnc("eval", writeLlama("big").dir, "--data", text, "--max-memory", "16"), /reading .*big \(1612144 parameters\) needs about 31 MiB, above the limit of 16 MiB/);
  // Older checkpoints' rotary buffers are not weights: read past, not refused.
  const { dir: buffered } = writeLlama("inv-freq", TINY, { tamper: (t) => t.push({ ...t[1]!, name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [2], data: Float32Array.of(1, 0.01) }) });
  assert.equal(mcnc("inspect", buffered).code, 0);
  refuse("extra", { tamper: (t) => t.push({ ...t[0]!, name: "model.rotary_emb.extra" }) }, /tensors a llama of this config does not have: rotary_emb.extra/);
});

test("every LM command runs on a LLaMA folder; adapters go on q_proj and v_proj, as PEFT's default", () => {
  const { dir } = writeLlama("cli");
  const inspected = mcnc("inspect", dir);
  assert.match(inspected.stdout, /llama \(2 layers, width 16, 4 heads \(2 key\/value\), context 32\)/);
  const g = mcnc("generate", "--model", dir, "--prompt", "Hello world", "--tokens", "4", "--top-k", "1", "--json");
  assert.equal(g.code, 0, g.stderr);
  assert.equal((lastJson(g.stdout) as { prompt_tokens: number }).prompt_tokens, 2);
  const e = mcnc("eval", dir, "--data", text, "--eval-tokens", "512", "--json");
  assert.equal(e.code, 0, e.stderr);
  assert.ok(Math.log2((lastJson(e.stdout) as { perplexity: number }).perplexity) > 12);

  const adapter = join(root, "cli-adapter.mcnc");
  const r = mcnc("train", "--init", dir, "--method", "mcnc-lora", "--ratio", "5000", "--data", text, "--steps", "3", "--batch", "2", "--eval-tokens", "128", "--out", adapter, "--json", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const trained = lastJson(r.stdout) as { config: { compress: string[] }; file_bytes: number };
  assert.deepEqual(trained.config.compress, ["layers.0.self_attn.q_proj.weight", "layers.0.self_attn.v_proj.weight", "layers.1.self_attn.q_proj.weight", "layers.1.self_attn.v_proj.weight"]);
  assert.ok(trained.file_bytes < 4096);
  // Under the adapter, the text is still read by the base folder's tokenizer.
  const adapted = mcnc("generate", "--model", dir, "--adapter", adapter, "--prompt", "Hello world", "--tokens", "4", "--top-k", "1", "--json");
  assert.equal(adapted.code, 0, adapted.stderr);
  assert.equal((lastJson(adapted.stdout) as { prompt_tokens: number }).prompt_tokens, 2);

  // Written back, a folder of the source's own layout: names under model., Linear weights [out, in].
  for (const [out, args] of [
    ["cli-merged", ["merge", "--model", dir, "--adapter", adapter]],
    ["cli-gptq", ["compress", "--method", "gptq", "--bits", "4", "--in", dir, "--data", text, "--skip-eval"]],
  ] as const) {
    const w = mcnc(...args, "--out", join(root, out));
    assert.equal(w.code, 0, w.stderr);
    const layout = (folder: string) => readSafetensors(memorySource(readFileSync(join(folder, "model.safetensors")))).entries.map((x) => `${x.name} ${x.shape.join("x")} ${x.dtype}`);
    assert.deepEqual(layout(join(root, out)), layout(dir), out);
    assert.deepEqual(readdirSync(join(root, out)).sort(), ["config.json", "merges.txt", "model.safetensors", "vocab.json"]);
  }
  // The folder reads back to what mcnc computed: the untouched leaves exactly, the adapted ones moved.
  const base = readModelFile(dir).file.trainable;
  const merged = readModelFile(join(root, "cli-merged")).file.trainable;
  assert.deepEqual(merged["layers.0.mlp.down_proj.weight"], base["layers.0.mlp.down_proj.weight"]);
  assert.ok(maxDifference(merged["layers.0.self_attn.q_proj.weight"]!, base["layers.0.self_attn.q_proj.weight"]!) > 0);
});

test("lora, mcnc-lora and nola adapters on a LLaMA expand to PEFT LoRA: B @ A is what mcnc's merge adds", async (t) => {
  const { dir, weights } = writeLlama("peft");
  const ids = folderTokenizer(dir, TINY.vocab).encode("It was a black night");
  for (const [method, extra] of [
    ["lora", ["--rank", "2"]],
    ["mcnc-lora", ["--ratio", "5000"]],
    ["nola", ["--ratio", "5000"]],
  ] as const) {
    const adapter = join(root, `peft-${method}.mcnc`);
    const trained = mcnc("train", "--init", dir, "--method", method, ...extra, "--data", text, "--steps", "3", "--batch", "2", "--lr", "0.05", "--eval-tokens", "128", "--out", adapter, "--quiet");
    assert.equal(trained.code, 0, trained.stderr);
    const peft = join(root, `peft-${method}`);
    const merged = join(root, `peft-${method}-merged`);
    assert.equal(mcnc("decompress", adapter, "--out", peft).code, 0);
    assert.equal(mcnc("merge", "--model", dir, "--adapter", adapter, "--out", merged).code, 0);
    const config = JSON.parse(readFileSync(join(peft, "adapter_config.json"), "utf8")) as { r: number; lora_alpha: number; target_modules: string[]; fan_in_fan_out: boolean };
    assert.deepEqual([config.target_modules, config.fan_in_fan_out, config.lora_alpha], [["q_proj", "v_proj"], false, config.r], method);
    const factors = readSafetensors(memorySource(readFileSync(join(peft, "adapter_model.safetensors"))));
    const after = readModelFile(merged).file.trainable;
    for (const module of ["layers.0.self_attn.q_proj", "layers.1.self_attn.v_proj"]) {
      const a = factors.read(`base_model.model.model.${module}.lora_A.weight`);
      const b = factors.read(`base_model.model.model.${module}.lora_B.weight`);
      const leaf = `${module}.weight`;
      const [inputs, outputs] = [TINY.width, b.length / config.r];
      // mcnc's leaf is [in, out]: its change at (i, o) is (B @ A)[o, i].
      let worst = 0;
      let moved = 0;
      for (let i = 0; i < inputs; i++) {
        for (let o = 0; o < outputs; o++) {
          let delta = 0;
          for (let k = 0; k < config.r; k++) delta += b[o * config.r + k]! * a[k * inputs + i]!;
          const change = after[leaf]![i * outputs + o]! - weights[leaf]![i * outputs + o]!;
          worst = Math.max(worst, Math.abs(change - delta));
          moved = Math.max(moved, Math.abs(change));
        }
      }
      assert.ok(worst < 1e-5 && moved > 1e-4, `${method} ${module}: B @ A off by ${worst}, moved ${moved}`);
    }
    if (hasTorch()) {
      const worst = maxDifference((await mcncReading(merged, ids)).logits, torchReading(dir, ids, { peft }).logits);
      assert.ok(worst < 1e-4, `${method}: PEFT's merge in PyTorch against mcnc's: ${worst}`);
    } else t.diagnostic(NO_TORCH);
  }
});

test("a PEFT adapter is read back as an adapter on the base it is given, at PEFT's scale (rsLoRA too)", async (t) => {
  const { dir } = writeLlama("peft-read");
  const adapter = join(root, "peft-read.mcnc");
  assert.equal(mcnc("train", "--init", dir, "--method", "nola", "--ratio", "5000", "--data", text, "--steps", "3", "--batch", "2", "--lr", "0.05", "--eval-tokens", "128", "--out", adapter, "--quiet").code, 0);
  const peft = join(root, "peft-read-adapter");
  assert.equal(mcnc("decompress", adapter, "--out", peft).code, 0);
  // Read back, the PEFT folder is the adapter it was written from.
  const fromMcnc = join(root, "peft-read-merged-mcnc");
  const fromPeft = join(root, "peft-read-merged-peft");
  assert.equal(mcnc("merge", "--model", dir, "--adapter", adapter, "--out", fromMcnc).code, 0);
  const merged = mcnc("merge", "--model", dir, "--adapter", peft, "--out", fromPeft);
  assert.equal(merged.code, 0, merged.stderr);
  const [a, b] = [readModelFile(fromMcnc).file.trainable, readModelFile(fromPeft).file.trainable];
  for (const leaf of Object.keys(a)) assert.ok(maxDifference(a[leaf]!, b[leaf]!) < 1e-6, leaf);
  const g = mcnc("generate", "--model", dir, "--adapter", peft, "--prompt", "Call me", "--tokens", "3", "--top-k", "1", "--json");
  assert.equal(g.code, 0, g.stderr);

  // rsLoRA at alpha 4r scales B A by 4 sqrt(r): as PyTorch merges it.
  const config = JSON.parse(readFileSync(join(peft, "adapter_config.json"), "utf8")) as Record<string, unknown> & { r: number };
  writeFileSync(join(peft, "adapter_config.json"), JSON.stringify({ ...config, lora_alpha: 4 * config.r, use_rslora: true }));
  const scaled = join(root, "peft-read-rslora");
  assert.equal(mcnc("merge", "--model", dir, "--adapter", peft, "--out", scaled).code, 0);
  const base = readModelFile(dir).file.trainable;
  const leaf = "layers.0.self_attn.q_proj.weight";
  const moved = (w: Float32Array) => w.map((v, i) => v - base[leaf]![i]!);
  const ratio = maxDifference(moved(readModelFile(scaled).file.trainable[leaf]!), new Float32Array(base[leaf]!.length)) / maxDifference(moved(b[leaf]!), new Float32Array(base[leaf]!.length));
  assert.ok(Math.abs(ratio - 4 * Math.sqrt(config.r)) < 1e-3, `scale ${ratio}`);
  if (hasTorch()) {
    const ids = folderTokenizer(dir, TINY.vocab).encode("It was a black night");
    const worst = maxDifference((await mcncReading(scaled, ids)).logits, torchReading(dir, ids, { peft }).logits);
    assert.ok(worst < 1e-4, `rsLoRA: PEFT's merge in PyTorch against mcnc's: ${worst}`);
  } else t.diagnostic(NO_TORCH);

  writeFileSync(join(peft, "adapter_config.json"), JSON.stringify({ ...config, use_dora: true }));
  assertCleanError(mcnc("generate", "--model", dir, "--adapter", peft, "--tokens", "1"), /use_dora: DoRA rescales each column/);
  writeFileSync(join(peft, "adapter_config.json"), JSON.stringify({ ...config, fan_in_fan_out: true }));
  assertCleanError(mcnc("generate", "--model", dir, "--adapter", peft, "--tokens", "1"), /fan_in_fan_out true, but a llama's layers are Linear/);
});

test("an .mcnc file compressed from a folder reads text with the folder's tokenizer, or --tokenizer's", () => {
  const { dir } = writeLlama("moving");
  const packed = join(root, "moving-4bit.mcnc");
  const c = mcnc("compress", "--method", "rtn", "--bits", "4", "--in", dir, "--out", packed, "--skip-eval");
  assert.equal(c.code, 0, c.stderr);
  const prompt = ["--prompt", "Hello world", "--tokens", "2", "--top-k", "1", "--json"];
  const g = mcnc("generate", "--model", packed, ...prompt);
  assert.equal(g.code, 0, g.stderr);
  assert.equal((lastJson(g.stdout) as { prompt_tokens: number }).prompt_tokens, 2);
  // The folder moved: said in one line, and --tokenizer names where it is now.
  const moved = join(root, "moved");
  renameSync(dir, moved);
  assertCleanError(mcnc("generate", "--model", packed, ...prompt), /reads text with the tokenizer of .*moving, which is not there: give the folder with --tokenizer DIR/);
  const again = mcnc("generate", "--model", packed, "--tokenizer", moved, ...prompt);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(lastJson(again.stdout).text, lastJson(g.stdout).text);
});

test("a SentencePiece tokenizer.json (byte fallback, a prepended ▁): real text round-trips through streamed decoding, prompts start with <s>", () => {
  const { dir } = writeLlama("sentencepiece", { ...TINY, vocab: 32000 }, { tokenizer: "sentencepiece" });
  const tokenizer = folderTokenizer(dir, 32000);
  const vocab = (JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> } }).model.vocab;
  assert.deepEqual(tokenizer.encode("Hello world"), [vocab["▁Hello"], vocab["▁world"]]);
  assert.deepEqual(tokenizer.encode("Hello world", true), [vocab["<s>"], vocab["▁Hello"], vocab["▁world"]]);
  // Moby-Dick with characters beyond its vocabulary (byte fallback), decoded a token at a time.
  const words = `${readFileSync(text, "utf8").slice(0, 4000)} naïve café — 日本語 🐋`;
  const ids = tokenizer.encode(words);
  const stream = tokenizer.streamDecoder();
  assert.equal(ids.map((t) => stream.next(t)).join("") + stream.end(), words);
  // After a prompt shown elsewhere, the continuation keeps its leading space.
  const [prompt, whole] = [tokenizer.encode("Call me", true), tokenizer.encode("Call me Ishmael", true)];
  assert.deepEqual(whole.slice(0, prompt.length), prompt);
  const after = tokenizer.streamDecoder(prompt);
  assert.equal(whole.slice(prompt.length).map((t) => after.next(t)).join("") + after.end(), " Ishmael");
  const g = mcnc("generate", "--model", dir, "--prompt", "Call me", "--tokens", "3", "--top-k", "1", "--json");
  assert.equal(g.code, 0, g.stderr);
  assert.equal((lastJson(g.stdout) as { prompt_tokens: number }).prompt_tokens, 3);
});
