/**
 * A Hugging Face config.json as one of mcnc's language models, and how that model's leaves lie in the
 * checkpoint: GPT-2 (`transformer.` names, Conv1D [in, out] matrices as mcnc's) or the LLaMA family
 * (`model.` names, Linear [out, in] matrices, transposed on the way in and out). Whatever the config
 * asks for that mcnc would compute otherwise is refused in one line.
 */
import { UserError } from "../errors.js";
import { GPT_LIMITS, gptParamCount } from "../model/gpt.js";
import { parseLlama } from "../model/llama-description.js";
import { LLAMA_LIMITS, llamaParamCount } from "../model/llama.js";
import type { GptConfig, LlamaConfig } from "../model/model.js";
import { MAX_MODEL_PARAMS } from "../model/models.js";

/**
 * How transformers lays out each of mcnc's language models: the module its body is saved under, and
 * whether its layers are Conv1D ([in, out], as mcnc's matrices; PEFT's `fan_in_fan_out`) or Linear.
 */
export const TRANSFORMERS_LAYOUTS: Record<string, { body: string; conv1d: boolean }> = {
  gpt: { body: "transformer.", conv1d: true },
  llama: { body: "model.", conv1d: false },
};

export interface HfArchitecture {
  description: ({ name: "gpt" } & GptConfig) | ({ name: "llama" } & LlamaConfig);
  params: number;
  /** What the model's leaves are saved under (a head of its own is saved at the top). */
  prefix: string;
  /** Whether a leaf of this shape is saved transposed. */
  transposed(leaf: string, shape: readonly number[]): boolean;
  /** The leaf a saved `lm_head.weight` duplicates, where the config ties them. */
  tiedTo?: string;
}

/**
 * Longest window mcnc trains, evaluates and decodes a LLaMA-family model over (positions beyond it are
 * never computed): the decoder's cache and a training window are this long, whatever the model allows.
 */
const LLAMA_WINDOW = 2048;

const LLAMA_TYPES = ["llama", "mistral", "qwen2"] as const;

/** `window`: the context a LLaMA-family model is run over (default: its positions, at most LLAMA_WINDOW). */
export function hfArchitecture(config: Record<string, unknown>, dir: string, window?: number): HfArchitecture {
  const type = config.model_type;
  if (type === "gpt2") {
    if (window !== undefined && window !== config.n_positions) throw new UserError(`--context: a GPT-2's window is its n_positions (${String(config.n_positions)}), which its position embedding fixes`);
    const description = { name: "gpt" as const, ...gpt2Config(config, dir) };
    return { description, params: gptParamCount(description), prefix: TRANSFORMERS_LAYOUTS.gpt!.body, transposed: () => false, tiedTo: "wte.weight" };
  }
  if (LLAMA_TYPES.includes(type as (typeof LLAMA_TYPES)[number])) {
    const description = llamaConfig(config, type as string, dir, window);
    return {
      description,
      params: llamaParamCount(description),
      prefix: TRANSFORMERS_LAYOUTS.llama!.body,
      transposed: (leaf, shape) => shape.length === 2 && leaf !== "embed_tokens.weight",
      ...(description.tied ? { tiedTo: "embed_tokens.weight" } : {}),
    };
  }
  throw new UserError(`${dir}/config.json: model_type ${JSON.stringify(type)?.slice(0, 40)} is not one mcnc reads (gpt2, ${LLAMA_TYPES.join(", ")})`);
}

const given = (config: Record<string, unknown>, name: string) => config[name] !== undefined && config[name] !== null;

/** An integer field within bounds (the description's own checks say the rest). */
function integer(config: Record<string, unknown>, name: string, dir: string, [lo, hi]: readonly [number, number]): number {
  const v = config[name];
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new UserError(`${dir}/config.json: ${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v as number;
}

/** GPT-2's config.json as mcnc's GPT description. */
function gpt2Config(config: Record<string, unknown>, dir: string): GptConfig {
  const field = (name: string, bounds: readonly [number, number]) => integer(config, name, dir, bounds);
  const c: GptConfig = {
    layers: field("n_layer", GPT_LIMITS.layers),
    width: field("n_embd", GPT_LIMITS.width),
    heads: field("n_head", GPT_LIMITS.heads),
    context: field("n_positions", GPT_LIMITS.context),
    vocab: field("vocab_size", GPT_LIMITS.vocab),
  };
  if (c.width % c.heads !== 0) throw new UserError(`${dir}/config.json: n_embd ${c.width} is not a multiple of n_head ${c.heads}`);
  const differs = (name: string, expected: unknown) => given(config, name) && config[name] !== expected;
  if (differs("n_inner", 4 * c.width)) throw new UserError(`${dir}/config.json: n_inner ${String(config.n_inner)} is not 4 x n_embd, the MLP mcnc's GPT has`);
  if (differs("activation_function", "gelu_new")) throw new UserError(`${dir}/config.json: activation_function ${String(config.activation_function)} is not gelu_new (GELU, tanh form), the one mcnc's GPT has`);
  if (differs("layer_norm_epsilon", 1e-5)) throw new UserError(`${dir}/config.json: layer_norm_epsilon ${String(config.layer_norm_epsilon)} is not 1e-5, the one mcnc's GPT has`);
  if (config.scale_attn_weights === false || config.scale_attn_by_inverse_layer_idx === true) throw new UserError(`${dir}/config.json: attention scaled otherwise than by 1/sqrt(head size), as mcnc's GPT does`);
  if (config.tie_word_embeddings === false) throw new UserError(`${dir}/config.json: an output head not tied to the token embedding; mcnc's GPT ties them`);
  return c;
}

/** Rotary frequencies as the config's rope_scaling sets them: none, or Llama 3's. */
function ropeScaling(config: Record<string, unknown>, dir: string): LlamaConfig["ropeScaling"] {
  if (!given(config, "rope_scaling")) return undefined;
  const s = config.rope_scaling as Record<string, unknown>;
  const kind = s.rope_type ?? s.type;
  if (kind === "default") return undefined;
  if (kind !== "llama3") throw new UserError(`${dir}/config.json: rope_scaling of type ${JSON.stringify(kind)?.slice(0, 40)}; mcnc computes rotary positions plain or as Llama 3 rescales them`);
  return { factor: s.factor as number, lowFreqFactor: s.low_freq_factor as number, highFreqFactor: s.high_freq_factor as number, originalContext: s.original_max_position_embeddings as number };
}

/** A LLaMA-family config.json (transformers' LlamaConfig, MistralConfig, Qwen2Config and their defaults) as mcnc's description. */
function llamaConfig(config: Record<string, unknown>, type: string, dir: string, asked?: number): { name: "llama" } & LlamaConfig {
  if (given(config, "hidden_act") && config.hidden_act !== "silu") throw new UserError(`${dir}/config.json: hidden_act ${String(config.hidden_act)} is not silu, the SwiGLU mcnc's LLaMA has`);
  if (config.mlp_bias === true) throw new UserError(`${dir}/config.json: mlp_bias; mcnc's LLaMA has no MLP biases`);
  const positions = integer(config, "max_position_embeddings", dir, [2, 1 << 24]);
  if (asked !== undefined && !(Number.isInteger(asked) && asked >= 2 && asked <= positions)) throw new UserError(`--context must be an integer from 2 to max_position_embeddings (${positions}), got ${asked}`);
  const window = asked ?? Math.min(positions, LLAMA_WINDOW);
  const sliding = type === "qwen2" ? (config.use_sliding_window === true ? config.sliding_window : null) : config.sliding_window;
  if (typeof sliding === "number" && sliding < window) throw new UserError(`${dir}/config.json: attention slides over ${sliding} positions, fewer than the ${window} mcnc attends over`);
  const field = (name: string, bounds: readonly [number, number]) => integer(config, name, dir, bounds);
  const heads = field("num_attention_heads", LLAMA_LIMITS.heads);
  const width = field("hidden_size", LLAMA_LIMITS.width);
  const raw = {
    layers: field("num_hidden_layers", LLAMA_LIMITS.layers),
    width,
    heads,
    kvHeads: given(config, "num_key_value_heads") ? field("num_key_value_heads", LLAMA_LIMITS.kvHeads) : heads,
    headDim: given(config, "head_dim") ? field("head_dim", LLAMA_LIMITS.headDim) : width / heads,
    hidden: field("intermediate_size", LLAMA_LIMITS.hidden),
    context: window,
    vocab: field("vocab_size", LLAMA_LIMITS.vocab),
    ropeTheta: config.rope_theta ?? 10000,
    ropeScaling: ropeScaling(config, dir),
    normEps: config.rms_norm_eps ?? 1e-6,
    attentionBias: type === "qwen2" ? "qkv" : config.attention_bias === true ? "qkvo" : "none",
    tied: config.tie_word_embeddings === true,
  };
  return parseLlama(raw, `${dir}/config.json`, MAX_MODEL_PARAMS);
}
