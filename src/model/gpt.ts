/**
 * A GPT in GPT-2's shape, as a plain function of its parameter tree: token and learned position
 * embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU MLP, a final
 * LayerNorm, and the output projection tied to the token embedding. Tensor names and layouts are
 * Hugging Face's GPT-2 (`h.0.attn.c_attn.weight` is Conv1D, [in, out], q|k|v fused), so weights move
 * between the two with no renaming.
 */
import { numpy as np } from "@jax-js/jax";
import { causal, type Attend } from "./attention.js";
import { dense, gelu, layerNorm, oneHot, tapOf } from "./layers.js";
import type { CausalLm, GptConfig, LeafTap, Model, Piece } from "./model.js";
import type { ParamSpec, Params } from "./params.js";

/** The GPT `--model gpt` builds when no size is given (a file's header fixes it for --init, eval and generate). */
export const GPT_DEFAULTS = { layers: 4, width: 128, heads: 4, context: 128, vocab: 256 } as const;

/** Bounds on each field of a GPT description (the parameter count is bounded separately). */
export const GPT_LIMITS = { layers: [1, 64], width: [1, 8192], heads: [1, 256], context: [2, 1 << 16], vocab: [2, 1 << 16] } as const;

/** Block `l`'s attention heads and MLP width: the description's, or every head and 4 x width. */
export function blockShape(c: GptConfig, l: number): { heads: number; hidden: number } {
  return c.blocks?.[l] ?? { heads: c.heads, hidden: 4 * c.width };
}

/** Parameters of a GPT, from its description alone. */
export function gptParamCount(c: GptConfig): number {
  const C = c.width;
  let count = (c.vocab + c.context) * C + 2 * C;
  for (let l = 0; l < c.layers; l++) {
    const { heads, hidden } = blockShape(c, l);
    const inner = heads * (C / c.heads);
    count += 4 * C + 4 * inner * (C + 1) - inner + 2 * hidden * C + hidden + C + C;
  }
  return count;
}

/**
 * Bytes a training step holds beyond the weights where they grow with batch, context and vocabulary:
 * per block, attention scores and probabilities [batch, heads, T, T] kept for the backward pass; and the
 * tokens' one-hot rows, the logits and the one-hot targets, [batch, T, vocab] each. In float32. What
 * bounds --batch and --context (and, at GPT-2's 50,257 tokens, mostly the vocabulary's share).
 */
export function attentionBytes(c: GptConfig, batch: number): number {
  const heads = Array.from({ length: c.layers }, (_, l) => blockShape(c, l).heads).reduce((a, b) => a + b, 0);
  return 2 * batch * heads * c.context * c.context * 4 + 3 * batch * c.context * c.vocab * 4;
}

/** GPT-2's initial spread: std 0.02, residual projections 0.02 / sqrt(2 layers) (drawn uniform with that std). */
const INIT_STD = 0.02;
const fanInForStd = (std: number) => 1 / (3 * std * std);

export function gptSpecs(c: GptConfig): ParamSpec[] {
  const C = c.width;
  const w = (name: string, shape: number[], std = INIT_STD): ParamSpec => ({ name, shape, role: "weight", fanIn: fanInForStd(std) });
  const b = (name: string, size: number): ParamSpec => ({ name, shape: [size], role: "bias", fanIn: 1 });
  const g = (name: string, size: number): ParamSpec => ({ name, shape: [size], role: "gain", fanIn: 1 });
  const residualStd = INIT_STD / Math.sqrt(2 * c.layers);
  const specs: ParamSpec[] = [w("wte.weight", [c.vocab, C]), w("wpe.weight", [c.context, C])];
  for (let l = 0; l < c.layers; l++) {
    const h = `h.${l}`;
    const { heads, hidden } = blockShape(c, l);
    const inner = heads * (C / c.heads);
    specs.push(
      g(`${h}.ln_1.weight`, C),
      b(`${h}.ln_1.bias`, C),
      w(`${h}.attn.c_attn.weight`, [C, 3 * inner]),
      b(`${h}.attn.c_attn.bias`, 3 * inner),
      w(`${h}.attn.c_proj.weight`, [inner, C], residualStd),
      b(`${h}.attn.c_proj.bias`, C),
      g(`${h}.ln_2.weight`, C),
      b(`${h}.ln_2.bias`, C),
      w(`${h}.mlp.c_fc.weight`, [C, hidden]),
      b(`${h}.mlp.c_fc.bias`, hidden),
      w(`${h}.mlp.c_proj.weight`, [hidden, C], residualStd),
      b(`${h}.mlp.c_proj.bias`, C),
    );
  }
  specs.push(g("ln_f.weight", C), b("ln_f.bias", C));
  return specs;
}

/** Rows [N, C] through a Conv1D-style layer named `name` of the tree. Consumes x. */
function linear(x: np.Array, p: Params, name: string, tap?: LeafTap): np.Array {
  return dense(x, p[`${name}.weight`]!, p[`${name}.bias`]!, tapOf(tap, `${name}.weight`));
}

/** Self-attention over x [B, T, C] with `heads` heads of width D. Consumes x. */
function attention(x: np.Array, p: Params, l: number, heads: number, D: number, attend: Attend, tap?: LeafTap): np.Array {
  const [B, T, C] = x.shape as [number, number, number];
  const h = `h.${l}`;
  const qkv = linear(x.reshape([B * T, C]), p, `${h}.attn.c_attn`, tap).reshape([B, T, 3, heads, D]);
  const part = (i: number) => qkv.ref.slice([], [], i).reshape([B, T, heads, D]);
  const [q, k, v] = [part(0), part(1), part(2)];
  qkv.dispose();
  const y = attend(q, k, v, l);
  return linear(y.reshape([B * T, heads * D]), p, `${h}.attn.c_proj`, tap).reshape([B, T, C]);
}

function mlpBlock(x: np.Array, p: Params, h: string, tap?: LeafTap): np.Array {
  const [B, T, C] = x.shape as [number, number, number];
  const hidden = gelu(linear(x.reshape([B * T, C]), p, `${h}.mlp.c_fc`, tap));
  return linear(hidden, p, `${h}.mlp.c_proj`, tap).reshape([B, T, C]);
}

/** Token embedding as a one-hot matmul: its gradient is a matmul too (jax-js cannot scatter under jit). */
export function embed(tokens: np.Array, wte: np.Array, positions: np.Array): np.Array {
  const [B, T] = tokens.shape as [number, number];
  const [vocab, C] = wte.shape as [number, number];
  return np.matmul(oneHot(tokens, vocab).astype(wte.dtype).reshape([B * T, vocab]), wte).reshape([B, T, C]).add(positions);
}

/** The final LayerNorm and the tied output projection: x [B, T, C] -> logits [B, T, vocab]. Consumes x. */
export function head(x: np.Array, p: Params): np.Array {
  const [B, T, C] = x.shape as [number, number, number];
  const wte = p["wte.weight"]!;
  const h = layerNorm(x, p["ln_f.weight"]!, p["ln_f.bias"]!).reshape([B * T, C]);
  return np.matmul(h, wte.transpose()).reshape([B, T, wte.shape[0]!]);
}

/** Position embeddings of positions given as one-hot rows [T, context], or of 0..T-1 where null. Consumes at and wpe. */
function positionsOf(p: Params, at: np.Array | null, T: number): np.Array {
  return at ? np.matmul(at, p["wpe.weight"]!) : p["wpe.weight"]!.slice([0, T]);
}

/** The network on tokens [B, T] at positions `at` (CausalLm's), attending with `attend`: training and generation run it. */
function forward(c: GptConfig, p: Params, tokens: np.Array, at: np.Array | null, attend: Attend, tap?: LeafTap): np.Array {
  // wte is read twice: here and in the tied output projection.
  let x = embed(tokens, p["wte.weight"]!.ref, positionsOf(p, at, tokens.shape[1]!));
  for (let l = 0; l < c.layers; l++) x = block(x, p, c, l, attend, tap);
  return head(x, p);
}

/** Transformer block `l` on x [B, T, C]: attention, then the MLP, each added to its input. Consumes x. */
function block(x: np.Array, p: Params, c: GptConfig, l: number, attend: Attend, tap?: LeafTap): np.Array {
  const h = `h.${l}`;
  x = x.ref.add(attention(layerNorm(x, p[`${h}.ln_1.weight`]!, p[`${h}.ln_1.bias`]!), p, l, blockShape(c, l).heads, c.width / c.heads, attend, tap));
  return x.ref.add(mlpBlock(layerNorm(x, p[`${h}.ln_2.weight`]!, p[`${h}.ln_2.bias`]!), p, h, tap));
}

/** The GPT as a chain: embedding, each block, head; each piece reads only its own leaves. */
function gptPieces(c: GptConfig, specs: readonly ParamSpec[]): Piece[] {
  const named = (prefix: string) => specs.filter((s) => s.name.startsWith(prefix)).map((s) => s.name);
  return [
    { leaves: ["wte.weight", "wpe.weight"], run: (p, tokens) => embed(tokens, p["wte.weight"]!, positionsOf(p, null, tokens.shape[1]!)) },
    ...Array.from({ length: c.layers }, (_, l): Piece => ({ leaves: named(`h.${l}.`), run: (p, x, tap) => block(x, p, c, l, causal, tap) })),
    { leaves: ["ln_f.weight", "ln_f.bias", "wte.weight"], run: (p, x) => head(x, p) },
  ];
}

export function gpt(c: GptConfig): Model {
  const lm: CausalLm = { context: c.context, vocab: c.vocab, layers: c.layers, headDim: c.width / c.heads, forward: (p, tokens, at, attend, tap) => forward(c, p, tokens, at, attend, tap) };
  return {
    name: "gpt",
    kind: "language",
    description: { name: "gpt", layers: c.layers, width: c.width, heads: c.heads, context: c.context, vocab: c.vocab, ...(c.blocks ? { blocks: c.blocks.map((b) => ({ ...b })) } : {}) },
    specs: gptSpecs(c),
    pieces: gptPieces(c, gptSpecs(c)),
    adapterTargets: "c_attn",
    activationBytes: (batch) => attentionBytes(c, batch),
    lm,
    apply: (p, tokens, tap) => lm.forward(p, tokens, null, causal, tap),
  };
}
