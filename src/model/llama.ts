/**
 * A LLaMA-family decoder as a plain function of its parameter tree: token embedding, pre-RMSNorm blocks
 * of grouped-query self-attention with rotary positions (transformers' rotate-half form) and a SwiGLU
 * MLP, a final RMSNorm, the head tied to the embedding or its own. Leaves carry transformers' names
 * without `model.` (`layers.0.self_attn.q_proj.weight`); matrices are [in, out], as every mcnc layer
 * multiplies them, so a checkpoint's Linear weights ([out, in]) are transposed on the way in and out.
 */
import { nn, numpy as np } from "@jax-js/jax";
import { causal, type Attend } from "./attention.js";
import { oneHot } from "./layers.js";
import type { CausalLm, LeafTap, LlamaConfig, Model, Piece } from "./model.js";
import type { ParamSpec, Params } from "./params.js";

/** Bounds on each integer field of a description (the parameter count is bounded separately). */
export const LLAMA_LIMITS = {
  layers: [1, 256],
  width: [1, 16384],
  heads: [1, 256],
  kvHeads: [1, 256],
  headDim: [2, 1024],
  hidden: [1, 65536],
  context: [2, 1 << 16],
  vocab: [2, 1 << 18],
} as const;

const qkvWidths = (c: LlamaConfig) => [c.heads * c.headDim, c.kvHeads * c.headDim, c.kvHeads * c.headDim] as const;

export function llamaParamCount(c: LlamaConfig): number {
  const C = c.width;
  const [q, k, v] = qkvWidths(c);
  const biases = c.attentionBias === "none" ? 0 : q + k + v + (c.attentionBias === "qkvo" ? C : 0);
  const block = C * (q + k + v) + q * C + 3 * C * c.hidden + 2 * C + biases;
  return c.vocab * C * (c.tied ? 1 : 2) + c.layers * block + C;
}

/** Bytes a training step holds beyond the weights where they grow: as the GPT's (gpt.ts attentionBytes). */
function llamaActivationBytes(c: LlamaConfig, batch: number): number {
  return c.layers * 2 * batch * c.heads * c.context * c.context * 4 + 3 * batch * c.context * c.vocab * 4;
}

/** transformers' initializer_range for LLaMA (drawn uniform with that std). */
const INIT_STD = 0.02;

export function llamaSpecs(c: LlamaConfig): ParamSpec[] {
  const C = c.width;
  const w = (name: string, shape: number[]): ParamSpec => ({ name, shape, role: "weight", fanIn: 1 / (3 * INIT_STD * INIT_STD) });
  const b = (name: string, size: number): ParamSpec => ({ name, shape: [size], role: "bias", fanIn: 1 });
  const g = (name: string, size: number): ParamSpec => ({ name, shape: [size], role: "gain", fanIn: 1 });
  const [q, k, v] = qkvWidths(c);
  const specs: ParamSpec[] = [w("embed_tokens.weight", [c.vocab, C])];
  for (let l = 0; l < c.layers; l++) {
    const h = `layers.${l}`;
    specs.push(g(`${h}.input_layernorm.weight`, C));
    for (const [name, out] of [["q_proj", q], ["k_proj", k], ["v_proj", v]] as const) {
      specs.push(w(`${h}.self_attn.${name}.weight`, [C, out]));
      if (c.attentionBias !== "none") specs.push(b(`${h}.self_attn.${name}.bias`, out));
    }
    specs.push(w(`${h}.self_attn.o_proj.weight`, [q, C]));
    if (c.attentionBias === "qkvo") specs.push(b(`${h}.self_attn.o_proj.bias`, C));
    specs.push(
      g(`${h}.post_attention_layernorm.weight`, C),
      w(`${h}.mlp.gate_proj.weight`, [C, c.hidden]),
      w(`${h}.mlp.up_proj.weight`, [C, c.hidden]),
      w(`${h}.mlp.down_proj.weight`, [c.hidden, C]),
    );
  }
  specs.push(g("norm.weight", C));
  if (!c.tied) specs.push(w("lm_head.weight", [C, c.vocab]));
  return specs;
}

/**
 * Rotary inverse frequencies as transformers computes them in float32 (Llama 3's rescaling where the
 * config asks for it), so positions turn by the same angles.
 */
function inverseFrequencies(c: LlamaConfig): Float64Array {
  const f = Math.fround;
  const D = c.headDim;
  const inv = Float64Array.from({ length: D / 2 }, (_, i) => f(1 / f(Math.pow(c.ropeTheta, f((2 * i) / D)))));
  const s = c.ropeScaling;
  if (!s) return inv;
  const lowWavelength = s.originalContext / s.lowFreqFactor;
  const highWavelength = s.originalContext / s.highFreqFactor;
  return inv.map((freq) => {
    const wavelength = (2 * Math.PI) / freq;
    if (wavelength < highWavelength) return freq;
    if (wavelength > lowWavelength) return f(freq / s.factor);
    const smooth = (s.originalContext / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return f((1 - smooth) * (freq / s.factor) + smooth * freq);
  });
}

const tables = new Map<string, { cos: Float32Array; sin: Float32Array }>();

/** cos and sin of every position's angles, [context, headDim] each (each frequency twice: rotate-half). */
function rotaryTables(c: LlamaConfig): { cos: Float32Array; sin: Float32Array } {
  const key = JSON.stringify([c.context, c.headDim, c.ropeTheta, c.ropeScaling]);
  let t = tables.get(key);
  if (!t) {
    const D = c.headDim;
    const inv = inverseFrequencies(c);
    const cos = new Float32Array(c.context * D);
    const sin = new Float32Array(c.context * D);
    for (let pos = 0; pos < c.context; pos++) {
      for (let i = 0; i < D / 2; i++) {
        const angle = Math.fround(pos * inv[i]!);
        cos[pos * D + i] = cos[pos * D + i + D / 2] = Math.cos(angle);
        sin[pos * D + i] = sin[pos * D + i + D / 2] = Math.sin(angle);
      }
    }
    t = { cos, sin };
    tables.set(key, t);
  }
  return t;
}

/** cos and sin [T, headDim] at positions given as one-hot rows [T, context], or at 0..T-1. Consumes at. */
function rotaryAt(c: LlamaConfig, at: np.Array | null, T: number): [np.Array, np.Array] {
  const { cos, sin } = rotaryTables(c);
  const D = c.headDim;
  if (!at) return [np.array(cos.subarray(0, T * D)).reshape([T, D]), np.array(sin.subarray(0, T * D)).reshape([T, D])];
  return [np.matmul(at.ref, np.array(cos).reshape([c.context, D])), np.matmul(at, np.array(sin).reshape([c.context, D]))];
}

/** x [B, T, heads, D] turned by its positions' angles (cos, sin: [T, D]). Consumes x, not cos or sin. */
function rotate(x: np.Array, cos: np.Array, sin: np.Array): np.Array {
  const [, T, , D] = x.shape as [number, number, number, number];
  const half = D / 2;
  const turned = np.concatenate([x.ref.slice([], [], [], [half, D]).mul(-1), x.ref.slice([], [], [], [0, half])], 3);
  return x.mul(cos.ref.reshape([1, T, 1, D])).add(turned.mul(sin.ref.reshape([1, T, 1, D])));
}

function rmsNorm(x: np.Array, gain: np.Array, eps: number): np.Array {
  const meanSquare = x.ref.mul(x.ref).mean(-1, { keepdims: true });
  return x.div(np.sqrt(meanSquare.add(eps))).mul(gain);
}

/** Rows [N, in] through the Linear layer `name` (weight [in, out], a bias where the tree has one). Consumes x. */
function linear(x: np.Array, p: Params, name: string, tap?: LeafTap): np.Array {
  tap?.(`${name}.weight`, x.ref);
  const y = np.matmul(x, p[`${name}.weight`]!);
  const bias = p[`${name}.bias`];
  return bias ? y.add(bias) : y;
}

function attention(c: LlamaConfig, x: np.Array, p: Params, l: number, rotary: [np.Array, np.Array], attend: Attend, tap?: LeafTap): np.Array {
  const [B, T, C] = x.shape as [number, number, number];
  const h = `layers.${l}.self_attn`;
  const rows = x.reshape([B * T, C]);
  const q = linear(rows.ref, p, `${h}.q_proj`, tap).reshape([B, T, c.heads, c.headDim]);
  const k = linear(rows.ref, p, `${h}.k_proj`, tap).reshape([B, T, c.kvHeads, c.headDim]);
  const v = linear(rows, p, `${h}.v_proj`, tap).reshape([B, T, c.kvHeads, c.headDim]);
  const y = attend(rotate(q, ...rotary), rotate(k, ...rotary), v, l);
  return linear(y.reshape([B * T, c.heads * c.headDim]), p, `${h}.o_proj`, tap).reshape([B, T, C]);
}

function mlp(x: np.Array, p: Params, l: number, tap?: LeafTap): np.Array {
  const [B, T, C] = x.shape as [number, number, number];
  const h = `layers.${l}.mlp`;
  const rows = x.reshape([B * T, C]);
  const gated = nn.silu(linear(rows.ref, p, `${h}.gate_proj`, tap)).mul(linear(rows, p, `${h}.up_proj`, tap));
  return linear(gated, p, `${h}.down_proj`, tap).reshape([B, T, C]);
}

/** Block `l` on x [B, T, C]: attention, then the MLP, each added to its input. Consumes x, not rotary. */
function block(c: LlamaConfig, x: np.Array, p: Params, l: number, rotary: [np.Array, np.Array], attend: Attend, tap?: LeafTap): np.Array {
  const h = `layers.${l}`;
  x = x.ref.add(attention(c, rmsNorm(x, p[`${h}.input_layernorm.weight`]!, c.normEps), p, l, rotary, attend, tap));
  return x.ref.add(mlp(rmsNorm(x, p[`${h}.post_attention_layernorm.weight`]!, c.normEps), p, l, tap));
}

function embed(tokens: np.Array, table: np.Array): np.Array {
  const [B, T] = tokens.shape as [number, number];
  const [vocab, C] = table.shape as [number, number];
  return np.matmul(oneHot(tokens, vocab).reshape([B * T, vocab]), table).reshape([B, T, C]);
}

function head(c: LlamaConfig, x: np.Array, p: Params, tap?: LeafTap): np.Array {
  const [B, T, C] = x.shape as [number, number, number];
  const rows = rmsNorm(x, p["norm.weight"]!, c.normEps).reshape([B * T, C]);
  const logits = c.tied ? np.matmul(rows, p["embed_tokens.weight"]!.transpose()) : linear(rows, p, "lm_head", tap);
  return logits.reshape([B, T, c.vocab]);
}

function forward(c: LlamaConfig, p: Params, tokens: np.Array, at: np.Array | null, attend: Attend, tap?: LeafTap): np.Array {
  const rotary = rotaryAt(c, at, tokens.shape[1]!);
  // A tied embedding is read twice: here and in the head.
  let x = embed(tokens, c.tied ? p["embed_tokens.weight"]!.ref : p["embed_tokens.weight"]!);
  for (let l = 0; l < c.layers; l++) x = block(c, x, p, l, rotary, attend, tap);
  for (const r of rotary) r.dispose();
  return head(c, x, p, tap);
}

function llamaPieces(c: LlamaConfig, specs: readonly ParamSpec[]): Piece[] {
  const named = (prefix: string) => specs.filter((s) => s.name.startsWith(prefix)).map((s) => s.name);
  const inBlock = (l: number): Piece["run"] =>
    (p, x, tap) => {
      const rotary = rotaryAt(c, null, x.shape[1]!);
      const y = block(c, x, p, l, rotary, causal, tap);
      for (const r of rotary) r.dispose();
      return y;
    };
  return [
    { leaves: ["embed_tokens.weight"], run: (p, tokens) => embed(tokens, p["embed_tokens.weight"]!) },
    ...Array.from({ length: c.layers }, (_, l): Piece => ({ leaves: named(`layers.${l}.`), run: inBlock(l) })),
    { leaves: ["norm.weight", c.tied ? "embed_tokens.weight" : "lm_head.weight"], run: (p, x, tap) => head(c, x, p, tap) },
  ];
}

export function llama(c: LlamaConfig): Model {
  const specs = llamaSpecs(c);
  const lm: CausalLm = { context: c.context, vocab: c.vocab, layers: c.layers, headDim: c.headDim, forward: (p, tokens, at, attend, tap) => forward(c, p, tokens, at, attend, tap) };
  return {
    name: "llama",
    kind: "language",
    description: { name: "llama", ...c },
    specs,
    pieces: llamaPieces(c, specs),
    // PEFT's default targets for LLaMA.
    adapterTargets: "q_proj,v_proj",
    activationBytes: (batch) => llamaActivationBytes(c, batch),
    lm,
    apply: (p, tokens, tap) => lm.forward(p, tokens, null, causal, tap),
  };
}
