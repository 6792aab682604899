/**
 * An image classifier described as data: input shape, classes, and a list of layers (dense, 3x3
 * convolution, 2x2 max pooling, flatten, activations). The description is stored in a file's header,
 * so any such model reloads without code; `mcnc train --model spec.json` trains one. Shapes are
 * followed through the list and checked before a parameter exists.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { conv3x3, dense, gelu, maxPool2, relu, reluMaxPool2, tapOf } from "./layers.js";
import type { ImageShape, Model, ModelDescription } from "./model.js";
import { sizeOf, type ParamSpec } from "./params.js";

/** A layer with parameters may name its two leaves (the built-in networks do); else they are `l{index}.weight` and `.bias`. */
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

export interface SequentialDescription {
  name: "sequential";
  input: ImageShape;
  classes: number;
  layers: SequentialLayer[];
}

export const SEQUENTIAL_LIMITS = { layers: 64, units: 1 << 16, channels: 4096 } as const;
const ACTIVATIONS = ["relu", "gelu", "tanh"] as const;

function positive(v: unknown, hi: number, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > hi) throw new UserError(`${what} must be an integer from 1 to ${hi}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v as number;
}

/** The names of layer i's weight and bias leaves. */
function leafNames(layer: SequentialLayer, i: number): [string, string] {
  const named = layer as Leaves;
  return [named.weight ?? `l${i}.weight`, named.bias ?? `l${i}.bias`];
}

/**
 * Each layer's parameters and output shape, following the shapes from the input: [h, w, c] until a
 * flatten, [features] after. Throws UserError on a layer that does not fit what comes in.
 */
function plan(d: Omit<SequentialDescription, "name">, what: string): { specs: ParamSpec[]; shapes: number[][] } {
  let shape: number[] = [...d.input];
  const specs: ParamSpec[] = [];
  const shapes: number[][] = [];
  d.layers.forEach((layer, i) => {
    const at = `${what}.layers[${i}] (${layer.type})`;
    const image = shape.length === 3;
    if (layer.type === "dense") {
      if (image) throw new UserError(`${at} needs features: put a flatten before it`);
      const fanIn = shape[0]!;
      const [weight, bias] = leafNames(layer, i);
      specs.push({ name: weight, shape: [fanIn, layer.units], role: "weight", fanIn }, { name: bias, shape: [layer.units], role: "bias", fanIn });
      shape = [layer.units];
    } else if (layer.type === "conv3x3") {
      if (!image) throw new UserError(`${at} needs an image, and comes after a flatten`);
      const fanIn = 9 * shape[2]!;
      const [weight, bias] = leafNames(layer, i);
      specs.push({ name: weight, shape: [3, 3, shape[2]!, layer.channels], role: "weight", fanIn }, { name: bias, shape: [layer.channels], role: "bias", fanIn });
      shape = [shape[0]!, shape[1]!, layer.channels];
    } else if (layer.type === "maxpool2") {
      if (!image || shape[0]! % 2 !== 0 || shape[1]! % 2 !== 0) throw new UserError(`${at} needs an image with even sides, got ${shape.join("x")}`);
      shape = [shape[0]! / 2, shape[1]! / 2, shape[2]!];
    } else if (layer.type === "flatten") {
      shape = [sizeOf(shape)];
    }
    shapes.push(shape);
  });
  if (shape.length !== 1 || shape[0] !== d.classes) throw new UserError(`${what}: the last layers give [${shape.join(", ")}], not the ${d.classes} class scores (end with a dense layer of ${d.classes} units)`);
  return { specs, shapes };
}

/** A description as a file header or a spec file gives it, checked field by field; `maxParams` bounds the total. */
export function parseSequential(raw: Record<string, unknown>, what: string, maxParams: number): SequentialDescription {
  const input = raw.input;
  if (!Array.isArray(input) || input.length !== 3) throw new UserError(`${what}.input must be [height, width, channels]`);
  const shape = input.map((v, i) => positive(v, 4096, `${what}.input[${i}]`)) as unknown as ImageShape;
  const classes = positive(raw.classes, 1 << 16, `${what}.classes`);
  if (!Array.isArray(raw.layers) || raw.layers.length === 0 || raw.layers.length > SEQUENTIAL_LIMITS.layers) throw new UserError(`${what}.layers must list 1 to ${SEQUENTIAL_LIMITS.layers} layers`);
  const layers = raw.layers.map((l: unknown, i): SequentialLayer => {
    const at = `${what}.layers[${i}]`;
    const entry = typeof l === "string" ? { type: l } : l;
    if (typeof entry !== "object" || entry === null) throw new UserError(`${at} must be a layer`);
    const { type, units, channels } = entry as Record<string, unknown>;
    if (type === "dense") return { type, units: positive(units, SEQUENTIAL_LIMITS.units, `${at}.units`) };
    if (type === "conv3x3") return { type, channels: positive(channels, SEQUENTIAL_LIMITS.channels, `${at}.channels`) };
    if (type === "maxpool2" || type === "flatten" || ACTIVATIONS.includes(type as never)) return { type } as SequentialLayer;
    throw new UserError(`${at}: unknown layer type ${JSON.stringify(type)?.slice(0, 40)} (dense, conv3x3, maxpool2, flatten, relu, gelu, tanh)`);
  });
  const d: SequentialDescription = { name: "sequential", input: shape, classes, layers };
  // Counted from the shapes alone, before any parameter exists.
  let count = 0;
  for (const s of plan(d, what).specs) {
    count += sizeOf(s.shape);
    if (count > maxParams) throw new UserError(`${what}: more than ${maxParams} parameters, above the limit`);
  }
  return d;
}

/**
 * The network a layer list describes. `named`: the built-in network this list is, whose file header
 * stores only its name, input and classes (model/named-specs.ts).
 */
export function sequential(d: SequentialDescription, named?: { name: string; description: ModelDescription }): Model {
  const { specs, shapes } = plan(d, "model");
  return {
    name: named?.name ?? "sequential",
    kind: "classifier",
    description: named?.description ?? d,
    specs,
    apply(p, x, tap) {
      let y = x;
      d.layers.forEach((layer, i) => {
        const [weight, bias] = leafNames(layer, i);
        const [w, b] = [p[weight], p[bias]];
        // A ReLU before a pooling is taken with it, as one operation.
        if (layer.type === "relu" && d.layers[i + 1]?.type === "maxpool2") return;
        if (layer.type === "maxpool2" && d.layers[i - 1]?.type === "relu") y = reluMaxPool2(y);
        else if (layer.type === "dense") y = dense(y, w!, b!, tapOf(tap, weight));
        else if (layer.type === "conv3x3") y = conv3x3(y, w!, b!, tapOf(tap, weight));
        else if (layer.type === "maxpool2") y = maxPool2(y);
        else if (layer.type === "flatten") y = y.reshape([y.shape[0]!, shapes[i]![0]!]);
        else if (layer.type === "relu") y = relu(y);
        else if (layer.type === "gelu") y = gelu(y);
        else y = np.tanh(y);
      });
      return y;
    },
  };
}
