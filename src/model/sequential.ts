/**
 * An image classifier described as data: input shape, classes, and a list of layers whose types
 * layer-types.ts defines. The description is stored in a file's header, so any such model reloads
 * without code; `mcnc train --model spec.json` trains one. Shapes are followed through the list and
 * checked before a parameter exists.
 */
import { UserError } from "../errors.js";
import { LAYER_TYPE_NAMES, LAYER_TYPES, layerType, leafNames, positive, SEQUENTIAL_LIMITS, type SequentialLayer } from "./layer-types.js";
import { reluMaxPool2, tapOf } from "./layers.js";
import type { ImageShape, Model, ModelDescription } from "./model.js";
import { sizeOf, type ParamSpec } from "./params.js";

export type { SequentialLayer };

export interface SequentialDescription {
  name: "sequential";
  input: ImageShape;
  classes: number;
  layers: SequentialLayer[];
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
    const { leaves, output } = layerType(layer).plan(layer, shape, `${what}.layers[${i}] (${layer.type})`);
    const names = leafNames(layer, i);
    specs.push(...leaves.map((leaf, j) => ({ name: names[j]!, ...leaf })));
    shapes.push((shape = output));
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
    const { type } = entry as Record<string, unknown>;
    if (!LAYER_TYPE_NAMES.includes(type as never)) throw new UserError(`${at}: unknown layer type ${JSON.stringify(type)?.slice(0, 40)} (${LAYER_TYPE_NAMES.join(", ")})`);
    return LAYER_TYPES[type as SequentialLayer["type"]].parse(entry as Record<string, unknown>, at);
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
        // A ReLU before a pooling is taken with it, as one operation.
        if (layer.type === "relu" && d.layers[i + 1]?.type === "maxpool2") return;
        if (layer.type === "maxpool2" && d.layers[i - 1]?.type === "relu") {
          y = reluMaxPool2(y);
          return;
        }
        const names = leafNames(layer, i);
        y = layerType(layer).apply(layer, y, { leaves: names.map((n) => p[n]!), tap: names[0] === undefined ? undefined : tapOf(tap, names[0]), output: shapes[i]! });
      });
      return y;
    },
  };
}
