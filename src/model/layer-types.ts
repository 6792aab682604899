/**
 * The layer types a spec can list, one entry each: how a spec entry is read, what parameters and output
 * shape it has given its input shape, and what it computes. A new layer type is one more entry here
 * (those of sequences, sequence-layers.ts); lists of layers (a model's, a residual block's body) are
 * read, planned and run by layer-list.ts.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { givenNames, image, leafName, leavesOf, positive, SEQUENTIAL_LIMITS, type Leaves, type LayerType } from "./layer-kit.js";
import { conv, conv3x3, convOutput, denseLast, gelu, groupNorm, layerNorm, maxPool2, meanPool, relu, tapOf } from "./layers.js";
import { sizeOf, type ParamSpec } from "./params.js";
import { SEQUENCE_TYPES } from "./sequence-layers.js";
import { TRAINING_TYPES } from "./training-layers.js";

export { positive, SEQUENTIAL_LIMITS, type ApplyContext, type LayerLists } from "./layer-kit.js";

export type SequentialLayer =
  | ({ type: "dense"; units: number } & Leaves)
  | ({ type: "conv3x3"; channels: number } & Leaves)
  | ({ type: "conv"; channels: number; kernel: number; stride: number; padding: "same" | "valid"; useBias: boolean } & Leaves)
  | ({ type: "layernorm" } & Leaves)
  | ({ type: "groupnorm"; groups: number } & Leaves)
  | ({ type: "batchnorm" } & Leaves)
  | { type: "dropout"; rate: number }
  | { type: "residual"; body: SequentialLayer[] }
  | { type: "tokens" }
  | ({ type: "positions" } & Leaves)
  | { type: "attention"; heads: number; causal: boolean; qkv?: string; proj?: string }
  | { type: "maxpool2" }
  | { type: "globalavgpool" }
  | { type: "flatten" }
  | { type: "relu" }
  | { type: "gelu" }
  | { type: "tanh" };

/** A layer without parameters that keeps its input's shape. */
function elementwise<T extends "relu" | "gelu" | "tanh">(type: T, f: (x: np.Array) => np.Array): LayerType<Extract<SequentialLayer, { type: T }>> {
  return { parse: () => ({ type }) as Extract<SequentialLayer, { type: T }>, plan: (_, input) => ({ leaves: [], output: input }), apply: (_, x) => f(x) };
}

/** A per-channel normalisation's leaves (not weights: no method compresses them by default, as in the paper). */
const normLeaves = (layer: SequentialLayer, input: number[], prefix: string): ParamSpec[] => {
  const c = input.at(-1)!;
  return [{ name: leafName(layer, "gain", prefix), shape: [c], role: "gain", fanIn: c }, { name: leafName(layer, "bias", prefix), shape: [c], role: "bias", fanIn: c }];
};

export const LAYER_TYPES: { [T in SequentialLayer["type"]]: LayerType<Extract<SequentialLayer, { type: T }>> } = {
  dense: {
    parse: (e, at) => ({ type: "dense", units: positive(e.units, SEQUENTIAL_LIMITS.units, `${at}.units`), ...givenNames(e, at) }),
    plan(layer, input, at, prefix) {
      if (input.length === 3) throw new UserError(`${at} needs features or tokens: put a flatten (or tokens) before it`);
      const fanIn = input.at(-1)!;
      return { leaves: [{ name: leafName(layer, "weight", prefix), shape: [fanIn, layer.units], role: "weight", fanIn }, { name: leafName(layer, "bias", prefix), shape: [layer.units], role: "bias", fanIn }], output: [...input.slice(0, -1), layer.units] };
    },
    apply(layer, x, c) {
      const { leaves: [w, b], tap } = leavesOf(layer, ["weight", "bias"], c);
      return denseLast(x, w!, b!, tap);
    },
  },
  conv3x3: {
    parse: (e, at) => ({ type: "conv3x3", channels: positive(e.channels, SEQUENTIAL_LIMITS.channels, `${at}.channels`), ...givenNames(e, at) }),
    plan(layer, input, at, prefix) {
      const [h, w, c] = image(input, at);
      const fanIn = 9 * c;
      return { leaves: [{ name: leafName(layer, "weight", prefix), shape: [3, 3, c, layer.channels], role: "weight", fanIn }, { name: leafName(layer, "bias", prefix), shape: [layer.channels], role: "bias", fanIn }], output: [h, w, layer.channels] };
    },
    apply(layer, x, c) {
      const { leaves: [w, b], tap } = leavesOf(layer, ["weight", "bias"], c);
      return conv3x3(x, w!, b!, tap);
    },
    working: (_, input, output) => 9 * input[2]! * output[0]! * output[1]!,
  },
  conv: {
    parse(e, at) {
      if (e.padding !== undefined && e.padding !== "same" && e.padding !== "valid") throw new UserError(`${at}.padding must be "same" or "valid"`);
      if (e.useBias !== undefined && typeof e.useBias !== "boolean") throw new UserError(`${at}.useBias must be true or false`);
      const channels = positive(e.channels, SEQUENTIAL_LIMITS.channels, `${at}.channels`);
      return { type: "conv", channels, kernel: positive(e.kernel, SEQUENTIAL_LIMITS.kernel, `${at}.kernel`, 3), stride: positive(e.stride, SEQUENTIAL_LIMITS.stride, `${at}.stride`, 1), padding: (e.padding as "same" | "valid" | undefined) ?? "same", useBias: e.useBias !== false, ...givenNames(e, at) };
    },
    plan(layer, input, at, prefix) {
      const [h, w, c] = image(input, at);
      const { kernel: k, stride, padding } = layer;
      if (padding === "valid" && (h < k || w < k)) throw new UserError(`${at}: a ${k}x${k} kernel without padding needs an image of at least ${k}x${k}, got ${h}x${w}`);
      const fanIn = k * k * c;
      const leaves: ParamSpec[] = [{ name: leafName(layer, "weight", prefix), shape: [k, k, c, layer.channels], role: "weight", fanIn }];
      if (layer.useBias) leaves.push({ name: leafName(layer, "bias", prefix), shape: [layer.channels], role: "bias", fanIn });
      return { leaves, output: [convOutput(h, k, stride, padding === "same"), convOutput(w, k, stride, padding === "same"), layer.channels] };
    },
    apply(layer, x, c) {
      const { leaves: [w, b], tap } = leavesOf(layer, layer.useBias ? ["weight", "bias"] : ["weight"], c);
      return conv(x, w!, b, layer.stride, layer.padding === "same", tap);
    },
    working: (layer, input, output) => layer.kernel * layer.kernel * input[2]! * output[0]! * output[1]!,
  },
  layernorm: {
    parse: (e, at) => ({ type: "layernorm", ...givenNames(e, at) }),
    plan: (layer, input, _at, prefix) => ({ leaves: normLeaves(layer, input, prefix), output: input }),
    apply(layer, x, c) {
      const { leaves: [g, b] } = leavesOf(layer, ["gain", "bias"], c);
      return layerNorm(x, g!, b!);
    },
  },
  groupnorm: {
    parse: (e, at) => ({ type: "groupnorm", groups: positive(e.groups, SEQUENTIAL_LIMITS.channels, `${at}.groups`), ...givenNames(e, at) }),
    plan(layer, input, at, prefix) {
      if (input.at(-1)! % layer.groups !== 0) throw new UserError(`${at}: ${input.at(-1)} channels do not split into ${layer.groups} groups`);
      return { leaves: normLeaves(layer, input, prefix), output: input };
    },
    apply(layer, x, c) {
      const { leaves: [g, b] } = leavesOf(layer, ["gain", "bias"], c);
      return groupNorm(x, g!, b!, layer.groups);
    },
  },
  residual: {
    parse: (e, at, lists, depth) => {
      if (depth >= SEQUENTIAL_LIMITS.depth) throw new UserError(`${at}: residual blocks nest at most ${SEQUENTIAL_LIMITS.depth} deep`);
      return { type: "residual", body: lists.parse(e.body, `${at}.body`, depth + 1) };
    },
    plan(layer, input, at, prefix, lists) {
      const body = lists.plan(layer.body, input, `${at}.body`, `${prefix}.`);
      const output = body.shapes.at(-1)!;
      const projection = projectionOf(input, output, at);
      const leaves = [...body.specs];
      if (projection) {
        const fanIn = input.at(-1)!;
        const weight = projection.stride === undefined ? [fanIn, output.at(-1)!] : [1, 1, fanIn, output[2]!];
        leaves.push({ name: `${prefix}.proj.weight`, shape: weight, role: "weight", fanIn }, { name: `${prefix}.proj.bias`, shape: [output.at(-1)!], role: "bias", fanIn });
      }
      return { leaves, output };
    },
    apply(layer, x, c, lists) {
      const y = lists.run(layer.body, x.ref, { ...c, prefix: `${c.prefix}.` });
      const projection = projectionOf(c.input, c.output, "");
      if (!projection) return y.add(x);
      const [w, b] = [c.params[`${c.prefix}.proj.weight`]!, c.params[`${c.prefix}.proj.bias`]!];
      const tap = tapOf(c.tap, `${c.prefix}.proj.weight`);
      return y.add(projection.stride === undefined ? denseLast(x, w, b, tap) : conv(x, w, b, projection.stride, true, tap));
    },
    working: (layer, input, _output, lists) => lists.activations(layer.body, input),
    noise: (layer, input, prefix, lists) => lists.noise(layer.body, input, `${prefix}.`),
  },
  maxpool2: {
    parse: () => ({ type: "maxpool2" }),
    plan(_, input, at) {
      const [h, w, c] = input as [number, number, number];
      if (input.length !== 3 || h % 2 !== 0 || w % 2 !== 0) throw new UserError(`${at} needs an image with even sides, got ${input.join("x")}`);
      return { leaves: [], output: [h / 2, w / 2, c] };
    },
    apply: (_, x) => maxPool2(x),
  },
  globalavgpool: {
    parse: () => ({ type: "globalavgpool" }),
    plan(_, input, at) {
      if (input.length === 1) throw new UserError(`${at} needs an image or tokens`);
      return { leaves: [], output: [input.at(-1)!] };
    },
    apply: (_, x) => meanPool(x),
  },
  ...SEQUENCE_TYPES,
  ...TRAINING_TYPES,
  flatten: {
    parse: () => ({ type: "flatten" }),
    plan: (_, input) => ({ leaves: [], output: [sizeOf(input)] }),
    apply: (_, x, { output }) => x.reshape([x.shape[0]!, output[0]!]),
  },
  relu: elementwise("relu", relu),
  gelu: elementwise("gelu", gelu),
  tanh: elementwise("tanh", np.tanh),
};

/**
 * How a residual block's input reaches its output's shape: unchanged (undefined), by a dense layer
 * (features, or the tokens' features), or by a 1x1 convolution of the stride that halves (or
 * quarters...) its sides (images).
 */
function projectionOf(input: number[], output: number[], at: string): { stride?: number } | undefined {
  if (input.join() === output.join()) return undefined;
  const features = input.length === 1 && output.length === 1;
  const tokens = input.length === 2 && output.length === 2 && input[0] === output[0];
  if (features || tokens) return {};
  if (input.length !== 3 || output.length !== 3) throw new UserError(`${at}: the body turns [${input.join(", ")}] into [${output.join(", ")}]; a block keeps images as images, and as many tokens`);
  const stride = Math.round(input[0]! / output[0]!);
  if (stride < 1 || convOutput(input[0]!, 1, stride, true) !== output[0] || convOutput(input[1]!, 1, stride, true) !== output[1]) {
    throw new UserError(`${at}: the body turns ${input.slice(0, 2).join("x")} into ${output.slice(0, 2).join("x")}, which no strided 1x1 projection matches`);
  }
  return { stride };
}

export const LAYER_TYPE_NAMES = Object.keys(LAYER_TYPES) as Array<SequentialLayer["type"]>;

/** The type's entry, typed for this layer (the table's keys are the union's tags). */
export function layerType<L extends SequentialLayer>(layer: L): LayerType<L> {
  return LAYER_TYPES[layer.type] as unknown as LayerType<L>;
}
