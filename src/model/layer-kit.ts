/**
 * What every layer type is made of (layer-types.ts and sequence-layers.ts hold the types): the shape
 * of an entry of the table, the context a layer runs in, and the helpers that name and fetch a
 * layer's leaves and read its input's shape.
 */
import type { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import type { SequentialLayer } from "./layer-types.js";
import { tapOf } from "./layers.js";
import type { LeafTap, Training } from "./model.js";
import type { NamedShape, ParamSpec, Params } from "./params.js";

/** A layer with parameters may name its leaves (the built-in networks do); else they are `l{index}.{role}`. */
export interface Leaves {
  weight?: string;
  bias?: string;
  gain?: string;
}

export const SEQUENTIAL_LIMITS = { layers: 256, units: 1 << 16, channels: 4096, kernel: 16, stride: 16, depth: 3 } as const;

/** What a layer computes with, besides its input: the parameter tree, its own leaves' prefix, its shapes. */
export interface ApplyContext {
  params: Params;
  /** `l3` for the top list's fourth layer, `l3.0` for the first of its body. */
  prefix: string;
  /** The observer of the rows each weight multiplies, for calibration. */
  tap?: LeafTap;
  /** Present in a training step (and the statistics pass): dropout draws, batch normalisation uses the batch's moments. */
  training?: Training;
  input: number[];
  output: number[];
}

/** Planning and running a list of layers (layer-list.ts), for the types that hold one. */
export interface LayerLists {
  parse(raw: unknown, at: string, depth: number): SequentialLayer[];
  plan(layers: readonly SequentialLayer[], input: number[], at: string, prefix: string): { specs: ParamSpec[]; shapes: number[][] };
  run(layers: readonly SequentialLayer[], x: np.Array, c: Omit<ApplyContext, "output">): np.Array;
  /** Floats a sample's forward pass holds: every layer's output, and what layers make on the way (patches, attention scores). */
  activations(layers: readonly SequentialLayer[], input: number[]): number;
  /** The dropout layers' noise per sample, by prefix, in the order they run. */
  noise(layers: readonly SequentialLayer[], input: number[], prefix: string): NamedShape[];
}

export interface LayerType<L extends SequentialLayer> {
  /** The entry's fields, checked; `at` names the entry in errors. */
  parse(entry: Record<string, unknown>, at: string, lists: LayerLists, depth: number): L;
  /** Its leaves (named) and output shape, from the input shape: [h, w, c] until a flatten, [features] after. */
  plan(layer: L, input: number[], at: string, prefix: string, lists: LayerLists): { leaves: ParamSpec[]; output: number[] };
  apply(layer: L, x: np.Array, c: ApplyContext, lists: LayerLists): np.Array;
  /** Floats per sample it makes beyond its output (a convolution's patches, attention's scores, a block's body). */
  working?(layer: L, input: number[], output: number[], lists: LayerLists): number;
  /** The noise it draws in training, per sample (dropout; a block, its body's). */
  noise?(layer: L, input: number[], prefix: string, lists: LayerLists): NamedShape[];
}

export function positive(v: unknown, hi: number, what: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > hi) throw new UserError(`${what} must be an integer from 1 to ${hi}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v as number;
}

/** The leaf names an entry gives (weight, bias, gain), checked. */
export function givenNames(e: Record<string, unknown>, at: string): Leaves {
  const out: Leaves = {};
  for (const role of ["weight", "bias", "gain"] as const) {
    const v = e[role];
    if (v === undefined) continue;
    if (typeof v !== "string" || v === "" || v.length > 200) throw new UserError(`${at}.${role} must be a leaf name`);
    out[role] = v;
  }
  return out;
}

/** The name of a layer's leaf: the one the spec gives, or prefix.role. */
export const leafName = (layer: SequentialLayer, role: keyof Leaves, prefix: string) => (layer as Leaves)[role] ?? `${prefix}.${role}`;
/** The arrays of a layer's leaves, and the tap of its first (its weight). */
export function leavesOf(layer: SequentialLayer, roles: Array<keyof Leaves>, c: ApplyContext): { leaves: np.Array[]; tap: ((rows: np.Array) => void) | undefined } {
  const names = roles.map((r) => leafName(layer, r, c.prefix));
  return { leaves: names.map((n) => c.params[n]!), tap: tapOf(c.tap, names[0]!) };
}

export const sequence = (input: number[], at: string) => {
  if (input.length !== 2) throw new UserError(`${at} needs tokens [positions, features]: put a tokens layer after the patches`);
  return input as [number, number];
};

export const image = (input: number[], at: string) => {
  if (input.length !== 3) throw new UserError(`${at} needs an image, and comes after a flatten`);
  return input as [number, number, number];
};
