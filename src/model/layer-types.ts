/**
 * The layer types a spec can list, one entry each: how a spec entry is read, what parameters and output
 * shape it has given its input shape, and what it computes. A new layer type is one more entry here; the
 * sequential model (sequential.ts) only walks the list.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { conv3x3, dense, gelu, maxPool2, relu, type RowsTap } from "./layers.js";
import { sizeOf, type ParamSpec } from "./params.js";

/** A layer with parameters may name its leaves (the built-in networks do); else they are `l{index}.{leaf}`. */
interface Leaves {
  weight?: string;
  bias?: string;
}

export type SequentialLayer =
  | ({ type: "dense"; units: number } & Leaves)
  | ({ type: "conv3x3"; channels: number } & Leaves)
  | { type: "maxpool2" }
  | { type: "flatten" }
  | { type: "relu" }
  | { type: "gelu" }
  | { type: "tanh" };

export const SEQUENTIAL_LIMITS = { layers: 64, units: 1 << 16, channels: 4096 } as const;

/** A leaf as a layer type declares it: its spec without the name, which the model gives. */
type LeafSpec = Omit<ParamSpec, "name">;

/** What a layer computes with, besides its input: its leaves (in the order `plan` gave them) and its shapes. */
interface ApplyContext {
  leaves: np.Array[];
  /** The observer of the rows its first leaf (a weight) multiplies, for calibration. */
  tap?: RowsTap;
  output: number[];
}

interface LayerType<L extends SequentialLayer> {
  /** The entry's fields, checked; `at` names the entry in errors. */
  parse(entry: Record<string, unknown>, at: string): L;
  /** The leaves it owns, by role, in the order `plan` declares them. */
  leafRoles: readonly string[];
  /** Its leaves and output shape, from the input shape: [h, w, c] until a flatten, [features] after. */
  plan(layer: L, input: number[], at: string): { leaves: LeafSpec[]; output: number[] };
  apply(layer: L, x: np.Array, context: ApplyContext): np.Array;
}

export function positive(v: unknown, hi: number, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > hi) throw new UserError(`${what} must be an integer from 1 to ${hi}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v as number;
}

/** A layer without parameters that keeps its input's shape. */
function elementwise<T extends "relu" | "gelu" | "tanh">(type: T, f: (x: np.Array) => np.Array): LayerType<Extract<SequentialLayer, { type: T }>> {
  return {
    parse: () => ({ type }) as Extract<SequentialLayer, { type: T }>,
    leafRoles: [],
    plan: (_, input) => ({ leaves: [], output: input }),
    apply: (_, x) => f(x),
  };
}

export const LAYER_TYPES: { [T in SequentialLayer["type"]]: LayerType<Extract<SequentialLayer, { type: T }>> } = {
  dense: {
    parse: (e, at) => ({ type: "dense", units: positive(e.units, SEQUENTIAL_LIMITS.units, `${at}.units`) }),
    leafRoles: ["weight", "bias"],
    plan(layer, input, at) {
      if (input.length !== 1) throw new UserError(`${at} needs features: put a flatten before it`);
      const fanIn = input[0]!;
      return { leaves: [{ shape: [fanIn, layer.units], role: "weight", fanIn }, { shape: [layer.units], role: "bias", fanIn }], output: [layer.units] };
    },
    apply: (_, x, { leaves: [w, b], tap }) => dense(x, w!, b!, tap),
  },
  conv3x3: {
    parse: (e, at) => ({ type: "conv3x3", channels: positive(e.channels, SEQUENTIAL_LIMITS.channels, `${at}.channels`) }),
    leafRoles: ["weight", "bias"],
    plan(layer, input, at) {
      if (input.length !== 3) throw new UserError(`${at} needs an image, and comes after a flatten`);
      const [h, w, c] = input as [number, number, number];
      const fanIn = 9 * c;
      return { leaves: [{ shape: [3, 3, c, layer.channels], role: "weight", fanIn }, { shape: [layer.channels], role: "bias", fanIn }], output: [h, w, layer.channels] };
    },
    apply: (_, x, { leaves: [w, b], tap }) => conv3x3(x, w!, b!, tap),
  },
  maxpool2: {
    parse: () => ({ type: "maxpool2" }),
    leafRoles: [],
    plan(_, input, at) {
      const [h, w, c] = input as [number, number, number];
      if (input.length !== 3 || h % 2 !== 0 || w % 2 !== 0) throw new UserError(`${at} needs an image with even sides, got ${input.join("x")}`);
      return { leaves: [], output: [h / 2, w / 2, c] };
    },
    apply: (_, x) => maxPool2(x),
  },
  flatten: {
    parse: () => ({ type: "flatten" }),
    leafRoles: [],
    plan: (_, input) => ({ leaves: [], output: [sizeOf(input)] }),
    apply: (_, x, { output }) => x.reshape([x.shape[0]!, output[0]!]),
  },
  relu: elementwise("relu", relu),
  gelu: elementwise("gelu", gelu),
  tanh: elementwise("tanh", np.tanh),
};

export const LAYER_TYPE_NAMES = Object.keys(LAYER_TYPES) as Array<SequentialLayer["type"]>;

/** The type's entry, typed for this layer (the table's keys are the union's tags). */
export function layerType<L extends SequentialLayer>(layer: L): LayerType<L> {
  return LAYER_TYPES[layer.type] as unknown as LayerType<L>;
}

/** The names of layer i's leaves, in its type's role order. */
export function leafNames(layer: SequentialLayer, i: number): string[] {
  return layerType(layer).leafRoles.map((role) => (layer as Record<string, unknown>)[role] as string | undefined ?? `l${i}.${role}`);
}
