/**
 * A Hugging Face model folder: `config.json`, the weights in `model.safetensors` (or shards listed by
 * `model.safetensors.index.json`; F32, F16 or BF16) and a tokenizer. GPT-2 checkpoints map onto mcnc's
 * GPT as they are: its leaves carry GPT-2's names and Conv1D [in, out] layouts. What a config or its
 * weights say is checked against the other before anything is rebuilt.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { folderTokenizer } from "../data/folder-tokenizer.js";
import type { Tokenizer } from "../data/tokenizer.js";
import { UserError } from "../errors.js";
import { fileSource, insideFolder, readJsonObject } from "../files.js";
import { checkMemory } from "../limits.js";
import { findMethod } from "../methods/index.js";
import { GPT_LIMITS, gptParamCount } from "../model/gpt.js";
import type { GptConfig, Model } from "../model/model.js";
import { buildModel } from "../model/models.js";
import type { HostParams } from "../model/params.js";
import type { DecodeOptions, LoadedModel } from "./model-file.js";
import { readSafetensors, type ByteSource, type SafetensorsReader } from "./safetensors.js";

/**
 * Float32 copies the weights pass through on their way to the engine (read, widened, the file's, rebuilt,
 * on the engine), as the memory check counts them: measured, eval of GPT-2 small's shape peaks at 3,048 MiB.
 */
const WEIGHT_COPIES = 5;

/** Whether `path` is a folder a Hugging Face model is saved in. */
export function isHfFolder(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, "config.json"));
}

/** Largest config or index read: a few kilobytes each. */
const MAX_JSON_BYTES = 16 << 20;
const readJson = (path: string, what: string) => readJsonObject(path, what, MAX_JSON_BYTES);

/** GPT-2's config.json as mcnc's GPT description; anything mcnc's GPT computes differently is refused. */
export function gpt2Config(config: Record<string, unknown>, dir: string): GptConfig {
  const type = config.model_type;
  if (type !== "gpt2") throw new UserError(`${dir}/config.json: model_type ${JSON.stringify(type)?.slice(0, 40)} is not one mcnc reads (gpt2)`);
  const field = (name: string, [lo, hi]: readonly [number, number]): number => {
    const v = config[name];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new UserError(`${dir}/config.json: ${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)?.slice(0, 40)}`);
    return v as number;
  };
  const c: GptConfig = {
    layers: field("n_layer", GPT_LIMITS.layers),
    width: field("n_embd", GPT_LIMITS.width),
    heads: field("n_head", GPT_LIMITS.heads),
    context: field("n_positions", GPT_LIMITS.context),
    vocab: field("vocab_size", GPT_LIMITS.vocab),
  };
  if (c.width % c.heads !== 0) throw new UserError(`${dir}/config.json: n_embd ${c.width} is not a multiple of n_head ${c.heads}`);
  const differs = (name: string, expected: unknown) => config[name] !== undefined && config[name] !== null && config[name] !== expected;
  if (differs("n_inner", 4 * c.width)) throw new UserError(`${dir}/config.json: n_inner ${String(config.n_inner)} is not 4 x n_embd, the MLP mcnc's GPT has`);
  if (differs("activation_function", "gelu_new")) throw new UserError(`${dir}/config.json: activation_function ${String(config.activation_function)} is not gelu_new (GELU, tanh form), the one mcnc's GPT has`);
  if (differs("layer_norm_epsilon", 1e-5)) throw new UserError(`${dir}/config.json: layer_norm_epsilon ${String(config.layer_norm_epsilon)} is not 1e-5, the one mcnc's GPT has`);
  if (config.scale_attn_weights === false || config.scale_attn_by_inverse_layer_idx === true) throw new UserError(`${dir}/config.json: attention scaled otherwise than by 1/sqrt(head size), as mcnc's GPT does`);
  if (config.tie_word_embeddings === false) throw new UserError(`${dir}/config.json: an output head not tied to the token embedding; mcnc's GPT ties them`);
  return c;
}

/** The safetensors files the weights are in: one, or the shards an index lists (each checked present). */
export function hfWeightFiles(dir: string): string[] {
  if (existsSync(join(dir, "model.safetensors"))) return [join(dir, "model.safetensors")];
  const index = join(dir, "model.safetensors.index.json");
  if (!existsSync(index)) throw new UserError(`${dir} has no model.safetensors nor model.safetensors.index.json (PyTorch .bin weights: convert them to safetensors first)`);
  const map = readJson(index, "model.safetensors.index.json").weight_map;
  if (typeof map !== "object" || map === null || Object.values(map).some((f) => typeof f !== "string")) throw new UserError(`${index}: weight_map must map tensor names to file names`);
  const files = [...new Set(Object.values(map as Record<string, string>))];
  for (const f of files) if (!existsSync(join(dir, f))) throw new UserError(`${index} lists the shard ${f.slice(0, 100)}, which ${dir} does not hold`);
  return files.map((f) => insideFolder(dir, f, "a shard"));
}

/** Names as mcnc's GPT has them: without the `transformer.` prefix GPT2LMHeadModel saves them under. */
export const leafName = (name: string): string => name.replace(/^transformer\./, "");

/** Buffers some checkpoints carry (the causal mask), which are not weights. */
const BUFFER = /\.attn\.(masked_)?bias$/;

/**
 * The folder as a loaded model: mcnc's GPT with the checkpoint's weights, stored dense. `bytes` counts
 * the weight files, so sizes are reported against what the user has on disk.
 */
export function readHfModel(dir: string, options: DecodeOptions = {}): LoadedModel {
  const description = gpt2Config(readJson(join(dir, "config.json"), "config.json"), dir);
  checkMemory(WEIGHT_COPIES * 4 * gptParamCount(description), `the weights of ${dir}`, options.memoryLimit);
  let tokenizer: Tokenizer | undefined;
  // Read when first asked for: inspect needs none, and a folder without one still opens.
  const model: Model = { ...buildModel({ name: "gpt", ...description }), tokenizer: () => (tokenizer ??= folderTokenizer(dir, description.vocab)) };
  const files = hfWeightFiles(dir);
  const sources = files.map((f) => fileSource(f));
  try {
    return loaded(dir, model, files, readWeights(dir, model, files, sources, options.weights !== false));
  } finally {
    for (const source of sources) source.close?.();
  }
}

/** The model's leaves from the checkpoint's tensors, each checked against the config's shape (`read`: and read). */
function readWeights(dir: string, model: Model, files: string[], sources: ByteSource[], read: boolean): HostParams {
  const where = new Map<string, { reader: SafetensorsReader; name: string; shape: number[] }>();
  sources.forEach((source, i) => {
    const reader = readSafetensors(source, files[i]);
    for (const e of reader.entries) if (!BUFFER.test(e.name)) where.set(leafName(e.name), { reader, name: e.name, shape: e.shape });
  });
  const weights: HostParams = {};
  for (const s of model.specs) {
    const found = where.get(s.name);
    if (!found) throw new UserError(`${dir}: no tensor ${s.name} (or transformer.${s.name}) in ${files.length === 1 ? "model.safetensors" : "its shards"}`);
    if (found.shape.join("x") !== s.shape.join("x")) throw new UserError(`${dir}: ${found.name} is [${found.shape.join(", ")}], but config.json makes it [${s.shape.join(", ")}]`);
    if (read) weights[s.name] = found.reader.read(found.name);
  }
  // A head saved beside a tied config must still be the embedding.
  const head = where.get("lm_head.weight");
  if (read && head && !head.reader.read(head.name).every((v, i) => v === weights["wte.weight"]![i])) throw new UserError(`${dir}: lm_head.weight differs from the token embedding; mcnc's GPT ties them`);
  const extra = [...where.keys()].filter((n) => n !== "lm_head.weight" && !model.specs.some((s) => s.name === n));
  if (extra.length > 0) throw new UserError(`${dir}: tensors a GPT-2 does not have: ${extra.slice(0, 3).join(", ")}${extra.length > 3 ? ` and ${extra.length - 3} more` : ""}`);
  return weights;
}

function loaded(dir: string, model: Model, files: string[], weights: HostParams): LoadedModel {
  const dense = findMethod("dense")!;
  return {
    file: { model: model.description, method: { name: "dense", config: {} }, seed: 0, trainable: weights, meta: { huggingface: dir } },
    model,
    method: dense,
    config: {},
    specs: model.specs,
    bytes: files.reduce((sum, f) => sum + statSync(f).size, 0),
    storage: Object.fromEntries(model.specs.map((s) => [s.name, "f32"])),
    stored: model.specs.map((s) => ({ name: s.name, shape: s.shape })),
  };
}
