/**
 * A Hugging Face model folder: `config.json`, the weights in `model.safetensors` (or shards listed by
 * `model.safetensors.index.json`; F32, F16 or BF16) and a tokenizer. GPT-2 and LLaMA-family checkpoints
 * map onto mcnc's GPT and LLaMA, whose leaves carry transformers' names (hf-config.ts says how they lie).
 * What a config or its weights say is checked against the other before anything is rebuilt.
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { folderTokenizer } from "../data/folder-tokenizer.js";
import type { Tokenizer } from "../data/tokenizer.js";
import { UserError } from "../errors.js";
import { fileSource, insideFolder, readJsonObject } from "../files.js";
import { checkMemory } from "../limits.js";
import { transpose } from "../linalg.js";
import { findMethod } from "../methods/index.js";
import type { Model } from "../model/model.js";
import { buildModel } from "../model/models.js";
import { hfArchitecture, type HfArchitecture } from "./hf-config.js";
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

/** A saved tensor's leaf: its name without the prefix transformers saves the model's body under. */
export const leafName = (arch: HfArchitecture, name: string): string => (name.startsWith(arch.prefix) ? name.slice(arch.prefix.length) : name);

/** The folder's config as a model and how its leaves are saved. */
export const readHfArchitecture = (dir: string, window?: number): HfArchitecture => hfArchitecture(readJson(join(dir, "config.json"), "config.json"), dir, window);

/** Buffers some checkpoints carry (GPT-2's causal mask, older LLaMAs' rotary frequencies), which are not weights. */
const BUFFER = /(\.attn\.(masked_)?bias|\.rotary_emb\.inv_freq)$/;

/**
 * The folder as a loaded model: mcnc's GPT with the checkpoint's weights, stored dense. `bytes` counts
 * the weight files, so sizes are reported against what the user has on disk.
 */
export function readHfModel(dir: string, options: DecodeOptions = {}): LoadedModel {
  const arch = readHfArchitecture(dir, options.context);
  checkMemory(WEIGHT_COPIES * 4 * arch.params, `reading ${dir} (${arch.params} parameters)`, options.memoryLimit);
  let tokenizer: Tokenizer | undefined;
  // Read when first asked for: inspect needs none, and a folder without one still opens.
  const model: Model = { ...buildModel(arch.description), tokenizer: () => (tokenizer ??= folderTokenizer(dir, arch.description.vocab)) };
  const files = hfWeightFiles(dir);
  const sources = files.map((f) => fileSource(f));
  try {
    return loaded(dir, model, files, readWeights(dir, arch, model, files, sources, options.weights !== false));
  } finally {
    for (const source of sources) source.close?.();
  }
}

/** The model's leaves from the checkpoint's tensors, each checked against the config's shape (`read`: and read). */
function readWeights(dir: string, arch: HfArchitecture, model: Model, files: string[], sources: ByteSource[], read: boolean): HostParams {
  const where = new Map<string, { reader: SafetensorsReader; name: string; shape: number[] }>();
  sources.forEach((source, i) => {
    const reader = readSafetensors(source, files[i]);
    for (const e of reader.entries) if (!BUFFER.test(e.name)) where.set(leafName(arch, e.name), { reader, name: e.name, shape: e.shape });
  });
  const weights: HostParams = {};
  const saved = files.length === 1 ? "model.safetensors" : "its shards";
  for (const s of model.specs) {
    const found = where.get(s.name);
    if (!found) throw new UserError(`${dir}: no tensor ${s.name} (or ${arch.prefix}${s.name}) in ${saved}`);
    const flipped = arch.transposed(s.name, s.shape);
    const expected = flipped ? [...s.shape].reverse() : s.shape;
    if (found.shape.join("x") !== expected.join("x")) throw new UserError(`${dir}: ${found.name} is [${found.shape.join(", ")}], but config.json makes it [${expected.join(", ")}]`);
    if (read) {
      const data = found.reader.read(found.name);
      weights[s.name] = flipped ? transpose(data, expected[0]!, expected[1]!, new Float32Array(data.length)) : data;
    }
  }
  // A head saved beside a tied config must still be the embedding.
  const head = where.get("lm_head.weight");
  if (read && head && arch.tiedTo && !head.reader.read(head.name).every((v, i) => v === weights[arch.tiedTo!]![i])) {
    throw new UserError(`${dir}: lm_head.weight differs from the token embedding, which config.json ties it to`);
  }
  const extra = [...where.keys()].filter((n) => !(n === "lm_head.weight" && arch.tiedTo) && !model.specs.some((s) => s.name === n));
  if (extra.length > 0) throw new UserError(`${dir}: tensors a ${model.name} of this config does not have: ${extra.slice(0, 3).join(", ")}${extra.length > 3 ? ` and ${extra.length - 3} more` : ""}`);
  return weights;
}

function loaded(dir: string, model: Model, files: string[], weights: HostParams): LoadedModel {
  const dense = findMethod("dense")!;
  return {
    file: { model: model.description, method: { name: "dense", config: {} }, seed: 0, trainable: weights, meta: { huggingface: dir, tokenizer_folder: resolve(dir) } },
    model,
    method: dense,
    config: {},
    specs: model.specs,
    bytes: files.reduce((sum, f) => sum + statSync(f).size, 0),
    storage: Object.fromEntries(model.specs.map((s) => [s.name, "f32"])),
    stored: model.specs.map((s) => ({ name: s.name, shape: s.shape })),
  };
}
