/**
 * The built-in networks by name, and the checks a description from a file or the command line passes
 * before any network is built from it.
 */
import { UserError } from "../errors.js";
import { gpt, GPT_LIMITS, gptParamCount } from "./gpt.js";
import { parseLlama } from "./llama-description.js";
import { llama } from "./llama.js";
import { namedModel } from "./named-specs.js";
import { parseSequential, sequential } from "./sequential.js";
import { parseSequentialLm, sequentialLm } from "./sequential-lm.js";
import { parseTensorsDescription, tensorsModel } from "./tensors.js";
import type { GptConfig, ImageShape, Model, ModelDescription } from "./model.js";

export type { GptConfig, ImageShape, LlamaConfig, Model, ModelDescription } from "./model.js";

export const MODEL_NAMES = ["mlp", "lenet", "gpt"] as const;
/** Largest model a file or a flag may describe: 2^28 parameters (1 GiB of float32). */
export const MAX_MODEL_PARAMS = 2 ** 28;
export type ModelName = (typeof MODEL_NAMES)[number];

export function buildModel(d: ModelDescription): Model {
  switch (d.name) {
    case "mlp":
    case "lenet":
      return namedModel(d.name, d.input, d.classes);
    case "gpt":
      return gpt(d);
    case "llama":
      return llama(d);
    case "tensors":
      return tensorsModel(d);
    case "sequential":
      return sequential(d);
    case "sequential-lm":
      return sequentialLm(d);
    default:
      throw new UserError(`unknown model '${(d as { name: unknown }).name}' (choose from ${MODEL_NAMES.join(", ")})`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new UserError(`${what} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  return v as number;
}

/** A description as a file header (or a user) gives it, checked field by field against limits. */
export function parseDescription(raw: unknown, what = "model"): ModelDescription {
  if (!isRecord(raw) || typeof raw.name !== "string") throw new UserError(`${what} has no name`);
  switch (raw.name) {
    case "mlp":
    case "lenet": {
      const input = raw.input;
      if (!Array.isArray(input) || input.length !== 3) throw new UserError(`${what}.input must be [height, width, channels]`);
      const shape = input.map((v, i) => intIn(v, 1, 4096, `${what}.input[${i}]`)) as unknown as ImageShape;
      return { name: raw.name, input: shape, classes: intIn(raw.classes, 2, 1 << 16, `${what}.classes`) };
    }
    case "gpt": {
      const field = (name: keyof typeof GPT_LIMITS) => intIn(raw[name], GPT_LIMITS[name][0], GPT_LIMITS[name][1], `${what}.${name}`);
      const d = { name: "gpt" as const, layers: field("layers"), width: field("width"), heads: field("heads"), context: field("context"), vocab: field("vocab") };
      if (d.width % d.heads !== 0) throw new UserError(`${what}: width ${d.width} is not divisible by ${d.heads} heads`);
      const gpt: GptConfig & { name: "gpt" } = d;
      if (raw.blocks !== undefined) {
        if (!Array.isArray(raw.blocks) || raw.blocks.length !== d.layers) throw new UserError(`${what}.blocks must list one entry per block (${d.layers})`);
        gpt.blocks = raw.blocks.map((b: unknown, l) => {
          if (!isRecord(b)) throw new UserError(`${what}.blocks[${l}] must be {heads, hidden}`);
          return { heads: intIn(b.heads, 1, d.heads, `${what}.blocks[${l}].heads`), hidden: intIn(b.hidden, 1, 4 * d.width, `${what}.blocks[${l}].hidden`) };
        });
      }
      // Counted from the description, before any parameter exists.
      const count = gptParamCount(gpt);
      if (count > MAX_MODEL_PARAMS) throw new UserError(`${what}: ${count} parameters, above the limit of ${MAX_MODEL_PARAMS}`);
      return gpt;
    }
    case "llama":
      return parseLlama(raw, what, MAX_MODEL_PARAMS);
    case "tensors":
      return parseTensorsDescription(raw, what, MAX_MODEL_PARAMS);
    case "sequential":
      return parseSequential(raw, what, MAX_MODEL_PARAMS);
    case "sequential-lm":
      return parseSequentialLm(raw, what, MAX_MODEL_PARAMS);
    default:
      throw new UserError(`unknown model '${raw.name}' (choose from ${MODEL_NAMES.join(", ")})`);
  }
}
