/**
 * Lists of layers, a model's or a residual block's body: read from a spec, planned (each layer's
 * named leaves and output shape, following the shapes from the input, checked before a parameter
 * exists) and run. The layer types themselves are layer-types.ts's table.
 */
import type { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { LAYER_TYPE_NAMES, LAYER_TYPES, layerType, SEQUENTIAL_LIMITS, type ApplyContext, type LayerLists, type SequentialLayer } from "./layer-types.js";
import { reluMaxPool2 } from "./layers.js";
import { sizeOf, type NamedShape, type ParamSpec } from "./params.js";

function parse(raw: unknown, at: string, depth: number): SequentialLayer[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > SEQUENTIAL_LIMITS.layers) throw new UserError(`${at} must list 1 to ${SEQUENTIAL_LIMITS.layers} layers`);
  return raw.map((l: unknown, i): SequentialLayer => {
    const here = `${at}[${i}]`;
    const entry = typeof l === "string" ? { type: l } : l;
    if (typeof entry !== "object" || entry === null) throw new UserError(`${here} must be a layer`);
    const { type } = entry as Record<string, unknown>;
    if (!LAYER_TYPE_NAMES.includes(type as never)) throw new UserError(`${here}: unknown layer type ${JSON.stringify(type)?.slice(0, 40)} (${LAYER_TYPE_NAMES.join(", ")})`);
    return LAYER_TYPES[type as SequentialLayer["type"]].parse(entry as Record<string, unknown>, here, LISTS, depth);
  });
}

function plan(layers: readonly SequentialLayer[], input: number[], at: string, prefix: string): { specs: ParamSpec[]; shapes: number[][] } {
  let shape = input;
  const specs: ParamSpec[] = [];
  const shapes: number[][] = [];
  layers.forEach((layer, i) => {
    const { leaves, output } = layerType(layer).plan(layer, shape, `${at}[${i}] (${layer.type})`, `${prefix}${i}`, LISTS);
    specs.push(...leaves);
    shapes.push((shape = output));
  });
  return { specs, shapes };
}

function run(layers: readonly SequentialLayer[], x: np.Array, c: Omit<ApplyContext, "output">): np.Array {
  let [y, shape] = [x, c.input];
  layers.forEach((layer, i) => {
    const output = layerType(layer).plan(layer, shape, "", `${c.prefix}${i}`, LISTS).output;
    // A ReLU before a pooling is taken with it, as one operation.
    if (layer.type === "relu" && layers[i + 1]?.type === "maxpool2") return;
    if (layer.type === "maxpool2" && layers[i - 1]?.type === "relu") y = reluMaxPool2(y);
    else y = layerType(layer).apply(layer, y, { ...c, prefix: `${c.prefix}${i}`, input: shape, output }, LISTS);
    shape = output;
  });
  return y;
}

function activations(layers: readonly SequentialLayer[], input: number[]): number {
  let [shape, floats] = [input, 0];
  for (const layer of layers) {
    const type = layerType(layer);
    const output = type.plan(layer, shape, "", "", LISTS).output;
    floats += sizeOf(output) + (type.working?.(layer, shape, output, LISTS) ?? 0);
    shape = output;
  }
  return floats;
}

function noise(layers: readonly SequentialLayer[], input: number[], prefix: string): NamedShape[] {
  let shape = input;
  const out: NamedShape[] = [];
  layers.forEach((layer, i) => {
    const type = layerType(layer);
    out.push(...(type.noise?.(layer, shape, `${prefix}${i}`, LISTS) ?? []));
    shape = type.plan(layer, shape, "", "", LISTS).output;
  });
  return out;
}

/** A model's leaves, checked before any exists: names used once, at most `maxParams` numbers in all. */
export function checkLeaves(specs: readonly ParamSpec[], what: string, maxParams = Infinity): void {
  const names = new Set<string>();
  let count = 0;
  for (const s of specs) {
    if (names.has(s.name)) throw new UserError(`${what}: two leaves are named ${s.name}`);
    names.add(s.name);
    count += sizeOf(s.shape);
    if (count > maxParams) throw new UserError(`${what}: more than ${maxParams} parameters, above the limit`);
  }
}

export const LISTS: LayerLists = { parse, plan, run, activations, noise };
