/**
 * Layer types of sequences [positions, features], as a vision transformer's patches are: tokens from
 * an image, learned position embeddings, multi-head self-attention (causal or not). Dense layers,
 * normalisations, residual blocks and mean pooling (layer-types.ts) take sequences as they take
 * features or images.
 */
import type { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { givenNames, image, leafName, leavesOf, positive, sequence, type LayerType } from "./layer-kit.js";
import type { SequentialLayer } from "./layer-types.js";
import { selfAttention } from "./layers.js";
import type { ParamSpec } from "./params.js";

/** An attention projection's leaf prefix: the one the spec gives (GPT-2's `h.0.attn.c_attn`), or prefix.qkv / prefix.proj. */
const projectionName = (layer: Extract<SequentialLayer, { type: "attention" }>, leaf: "qkv" | "proj", prefix: string) => layer[leaf] ?? `${prefix}.${leaf}`;

type Of<T extends SequentialLayer["type"]> = LayerType<Extract<SequentialLayer, { type: T }>>;

export const SEQUENCE_TYPES: { tokens: Of<"tokens">; positions: Of<"positions">; attention: Of<"attention"> } = {
  tokens: {
    parse: () => ({ type: "tokens" }),
    plan: (_, input, at) => {
      const [h, w, c] = image(input, at);
      return { leaves: [], output: [h * w, c] };
    },
    apply: (_, x, { output }) => x.reshape([x.shape[0]!, ...output]),
  },
  positions: {
    parse: (e, at) => ({ type: "positions", ...givenNames(e, at) }),
    plan: (layer, input, at, prefix) => ({ leaves: [{ name: leafName(layer, "weight", prefix), shape: sequence(input, at), role: "weight", fanIn: input[1]! }], output: input }),
    apply(layer, x, c) {
      const { leaves: [table] } = leavesOf(layer, ["weight"], c);
      // A language model's window may be shorter than its table: the first rows, as the built-in GPT takes them.
      return x.add(table!.slice([0, x.shape[1]!]));
    },
  },
  attention: {
    parse(e, at) {
      if (e.causal !== undefined && typeof e.causal !== "boolean") throw new UserError(`${at}.causal must be true or false`);
      for (const key of ["qkv", "proj"] as const) if (e[key] !== undefined && (typeof e[key] !== "string" || e[key] === "" || (e[key] as string).length > 200)) throw new UserError(`${at}.${key} must be a leaf name prefix`);
      const names = { ...(typeof e.qkv === "string" ? { qkv: e.qkv } : {}), ...(typeof e.proj === "string" ? { proj: e.proj } : {}) };
      return { type: "attention", heads: positive(e.heads, 256, `${at}.heads`), causal: e.causal === true, ...names };
    },
    plan(layer, input, at, prefix) {
      const [, width] = sequence(input, at);
      if (width % layer.heads !== 0) throw new UserError(`${at}: ${width} features do not split into ${layer.heads} heads`);
      const [qkv, proj] = [projectionName(layer, "qkv", prefix), projectionName(layer, "proj", prefix)];
      const w = (name: string, shape: number[]): ParamSpec => ({ name: `${name}.weight`, shape, role: "weight", fanIn: width });
      const b = (name: string, size: number): ParamSpec => ({ name: `${name}.bias`, shape: [size], role: "bias", fanIn: width });
      return { leaves: [w(qkv, [width, 3 * width]), b(qkv, 3 * width), w(proj, [width, width]), b(proj, width)], output: input };
    },
    apply(layer, x, c) {
      const name = (leaf: "qkv" | "proj") => projectionName(layer, leaf, c.prefix);
      const p = (leaf: "qkv" | "proj", part: string) => c.params[`${name(leaf)}.${part}`]!;
      const tap = c.tap && ((leaf: "qkv" | "proj", rows: np.Array) => c.tap!(`${name(leaf)}.weight`, rows));
      return selfAttention(x, p("qkv", "weight"), p("qkv", "bias"), p("proj", "weight"), p("proj", "bias"), layer.heads, layer.causal, tap);
    },
    // q|k|v, and the scores and probabilities of every head.
    working: (layer, input) => 3 * input[0]! * input[1]! + 2 * layer.heads * input[0]! * input[0]!,
  },
};
