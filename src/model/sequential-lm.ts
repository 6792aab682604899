/**
 * A causal language model described as data: tokens embedded (a one-hot matmul, as the built-in GPT
 * embeds them), a list of layers over [positions, width] (positions, normalisations, attention,
 * dense layers, residual blocks: layer-types.ts), and the output projection tied to the embedding.
 * The built-in GPT written this way (named-specs.ts, `gptSpec`) gives its logits bit for bit.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { causal } from "./attention.js";
import { positive, type SequentialLayer } from "./layer-types.js";
import { checkLeaves, LISTS } from "./layer-list.js";
import { oneHot } from "./layers.js";
import type { CausalLm, LeafTap, Model, Training } from "./model.js";
import type { ParamSpec, Params } from "./params.js";

export interface SequentialLmDescription {
  name: "sequential-lm";
  vocab: number;
  context: number;
  width: number;
  /** The embedding table's leaf name (GPT-2's `wte.weight` for the built-in GPT as a spec). */
  embedding: string;
  layers: SequentialLayer[];
}

const LIMITS = { vocab: 1 << 16, context: 1 << 16, width: 8192 } as const;

function plan(d: Omit<SequentialLmDescription, "name">, what: string, maxParams?: number): ParamSpec[] {
  const table: ParamSpec = { name: d.embedding, shape: [d.vocab, d.width], role: "weight", fanIn: d.width };
  const planned = LISTS.plan(d.layers, [d.context, d.width], `${what}.layers`, "l");
  const out = planned.shapes.at(-1)!;
  if (out.join() !== [d.context, d.width].join()) throw new UserError(`${what}: the layers give [${out.join(", ")}]; the tied output projection needs [${d.context}, ${d.width}] (positions, width)`);
  const specs = [table, ...planned.specs];
  checkLeaves(specs, what, maxParams);
  return specs;
}

export function parseSequentialLm(raw: Record<string, unknown>, what: string, maxParams: number): SequentialLmDescription {
  if (raw.embedding !== undefined && (typeof raw.embedding !== "string" || raw.embedding === "" || raw.embedding.length > 200)) throw new UserError(`${what}.embedding must be a leaf name`);
  const d: SequentialLmDescription = {
    name: "sequential-lm",
    vocab: positive(raw.vocab, LIMITS.vocab, `${what}.vocab`),
    context: positive(raw.context, LIMITS.context, `${what}.context`),
    width: positive(raw.width, LIMITS.width, `${what}.width`),
    embedding: (raw.embedding as string | undefined) ?? "embedding.weight",
    layers: LISTS.parse(raw.layers, `${what}.layers`, 0),
  };
  plan(d, what, maxParams);
  return d;
}

/** Logits [B, T, vocab] of tokens [B, T] at positions 0..T-1. Consumes params' arrays it reads and tokens. */
function forward(d: SequentialLmDescription, params: Params, tokens: np.Array, tap?: LeafTap, training?: Training): np.Array {
  const [batch, t] = tokens.shape as [number, number];
  const table = params[d.embedding]!;
  // The table is read twice: here and in the tied output projection.
  const x = np.matmul(oneHot(tokens, d.vocab).astype(table.dtype).reshape([batch * t, d.vocab]), table.ref).reshape([batch, t, d.width]);
  const h = LISTS.run(d.layers, x, { params, prefix: "l", input: [t, d.width], ...(tap ? { tap } : {}), ...(training ? { training } : {}) }).reshape([batch * t, d.width]);
  return np.matmul(h, table.transpose()).reshape([batch, t, d.vocab]);
}

export function sequentialLm(d: SequentialLmDescription): Model {
  const specs = plan(d, "model");
  const attention = (layers: readonly SequentialLayer[]): Array<Extract<SequentialLayer, { type: "attention" }>> =>
    layers.flatMap((l) => (l.type === "attention" ? [l] : l.type === "residual" ? attention(l.body) : []));
  const blocks = attention(d.layers);
  const heads = blocks[0]?.heads ?? 1;
  const lm: CausalLm = {
    context: d.context,
    vocab: d.vocab,
    layers: blocks.length,
    headDim: d.width / heads,
    forward(params, tokens, at, attend, tap) {
      // The layers attend causally over the window themselves: there is no cache to attend over.
      if (at !== null || attend !== causal) throw new UserError("a language model described as data runs whole windows; generating with a cache needs the built-in GPT");
      return forward(d, params, tokens, tap);
    },
  };
  // The layers' activations, and the tokens' one-hot rows, the logits and the one-hot targets ([T, vocab] each), as the GPT counts them.
  const activationBytes = (batch: number) => 4 * batch * (LISTS.activations(d.layers, [d.context, d.width]) + 3 * d.context * d.vocab);
  const noise = LISTS.noise(d.layers, [d.context, d.width], "l");
  return { name: "sequential-lm", kind: "language", description: d, specs, lm, activationBytes, noise, apply: (params, tokens, tap, training) => forward(d, params, tokens, tap, training) };
}
