/** What a network is to the rest of mcnc: a parameter list and a pure function of the parameter tree. */
import type { Tokenizer } from "../data/tokenizer.js";
import type { numpy as np } from "@jax-js/jax";
import type { Attend } from "./attention.js";
import type { ParamSpec, Params } from "./params.js";
import type { SequentialDescription } from "./sequential.js";
import type { SequentialLmDescription } from "./sequential-lm.js";
import type { TensorsDescription } from "./tensors.js";

export type ImageShape = readonly [height: number, width: number, channels: number];

export interface GptConfig {
  /** Transformer blocks. */
  layers: number;
  /** Embedding width (GPT-2's n_embd). */
  width: number;
  heads: number;
  /** Longest sequence the position embedding covers (n_positions). */
  context: number;
  /** Token vocabulary: 256 for bytes. */
  vocab: number;
  /**
   * Each block's attention heads (of width / heads each) and MLP width, where structured pruning made them
   * differ from `heads` and 4 x width.
   */
  blocks?: Array<{ heads: number; hidden: number }>;
}

/**
 * A LLaMA-family decoder (LLaMA, Mistral, Qwen2 and their kin): RMSNorm, rotary positions, SwiGLU MLP,
 * grouped-query attention, a head tied to the embedding or not.
 */
export interface LlamaConfig {
  layers: number;
  /** hidden_size. */
  width: number;
  heads: number;
  /** Key/value heads (num_key_value_heads), dividing `heads`. */
  kvHeads: number;
  /** Width of each head (head_dim; hidden_size / heads unless the config says). */
  headDim: number;
  /** The SwiGLU MLP's width (intermediate_size). */
  hidden: number;
  /** The window mcnc trains, evaluates and decodes over: max_position_embeddings, capped (hf-config.ts). */
  context: number;
  vocab: number;
  ropeTheta: number;
  /** Llama 3's rescaled rotary frequencies (rope_scaling of rope_type "llama3"), where the config has them. */
  ropeScaling?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };
  normEps: number;
  /** Biases on the query, key and value projections (Qwen2's), or on those and the output (attention_bias). */
  attentionBias: "none" | "qkv" | "qkvo";
  /** The output head is the token embedding (tie_word_embeddings). */
  tied: boolean;
}

/** Enough to rebuild the network: what a file's header stores. */
export type ModelDescription =
  | { name: "mlp" | "lenet"; input: ImageShape; classes: number }
  | ({ name: "gpt" } & GptConfig)
  | ({ name: "llama" } & LlamaConfig)
  | SequentialDescription
  | SequentialLmDescription
  | TensorsDescription;

/**
 * Sees, for the weight leaf `leaf`, the rows [N, in] it multiplies: a dense layer's inputs, a
 * convolution's im2col patches (its kernel viewed as [kh*kw*in, out]). Consumes `rows`.
 */
export type LeafTap = (leaf: string, rows: np.Array) => void;

/**
 * One piece of a network cut into a chain: it reads `leaves` of the tree and maps the previous piece's
 * output (the input, for the first) to its own (the logits, for the last). Consumes x, not params.
 */
export interface Piece {
  leaves: string[];
  run(params: Params, x: np.Array, tap?: LeafTap): np.Array;
}

/**
 * A causal language model's forward pass with its positions and its attention given, so that training
 * (positions 0..T-1, causal attention) and the KV-cache decoder (one position, attending to a cache) run
 * the same function.
 */
export interface CausalLm {
  context: number;
  vocab: number;
  layers: number;
  /** Each head's width: what the decoder caches per head (the heads per block, it reads from the keys). */
  headDim: number;
  /**
   * Logits [B, T, vocab] of tokens [B, T] at positions given as one-hot rows `at` [T, context], or at
   * 0..T-1 where `at` is null. Consumes params, tokens and at.
   */
  forward(params: Params, tokens: np.Array, at: np.Array | null, attend: Attend, tap?: LeafTap): np.Array;
}

/**
 * What a forward pass in training has that evaluation has not: layers that behave differently in
 * training (dropout, batch normalisation) look for it, and evaluate as they are stored without it.
 */
export interface Training {
  /** Uniform [0, 1) noise of each dropout layer, [batch, ...its input], by the layer's prefix (Model.noise). */
  noise?: Record<string, np.Array>;
  /** Where batch normalisation puts each batch's mean and mean square, by its statistic leaves' names. */
  moments?: Record<string, np.Array>;
}

export interface Model {
  name: string;
  /**
   * classifier: images [B, H, W, C] -> logits [B, classes]; language: int32 tokens [B, T] -> logits
   * [B, T, vocab]; tensors: another tool's weights, stored and rebuilt but not run.
   */
  kind: "classifier" | "language" | "tensors";
  description: ModelDescription;
  specs: ParamSpec[];
  /**
   * Consumes params and x. `tap`, when given, sees the input rows of every weight matrix; `training`
   * turns on what only training does (the statistic leaves are then not read).
   */
  apply(params: Params, x: np.Array, tap?: LeafTap, training?: Training): np.Array;
  /** Each dropout layer's noise per sample, named by its prefix: what a training step draws for Training.noise. */
  noise?: Array<{ name: string; shape: number[] }>;
  /** What an adapter adapts when the user names nothing (PEFT's default for GPT-2: the attention's c_attn). */
  adapterTargets?: string;
  /** Bytes a training step holds beyond the weights' own size, where it can grow large (attention scores). */
  activationBytes?(batch: number): number;
  /**
   * The network as a chain of pieces (the GPT: the embedding, each block, the head), where it is one:
   * post-training calibration then runs one piece at a time over stored activations, instead of the
   * whole network once per matrix.
   */
  pieces?: Piece[];
  /** What a language model is beyond `apply`. */
  lm?: CausalLm;
  /** A language model's own tokenizer, where its tokens are not bytes (a Hugging Face folder's): read when first asked for. */
  tokenizer?: () => Tokenizer;
}
