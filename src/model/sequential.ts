/**
 * An image classifier described as data: input shape, classes, and a list of layers whose types
 * layer-types.ts defines. The description is stored in a file's header, so any such model reloads
 * without code; `mcnc train --model spec.json` trains one. Shapes are followed through the list and
 * checked before a parameter exists.
 */
import { UserError } from "../errors.js";
import { positive, type SequentialLayer } from "./layer-types.js";
import { checkLeaves, LISTS } from "./layer-list.js";
import type { ImageShape, Model, ModelDescription } from "./model.js";
import type { ParamSpec } from "./params.js";

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
function plan(d: Omit<SequentialDescription, "name">, what: string, maxParams?: number): { specs: ParamSpec[]; shapes: number[][] } {
  const planned = LISTS.plan(d.layers, [...d.input], `${what}.layers`, "l");
  const shape = planned.shapes.at(-1)!;
  if (shape.length !== 1 || shape[0] !== d.classes) throw new UserError(`${what}: the last layers give [${shape.join(", ")}], not the ${d.classes} class scores (end with a dense layer of ${d.classes} units)`);
  checkLeaves(planned.specs, what, maxParams);
  return planned;
}

/** A description as a file header or a spec file gives it, checked field by field; `maxParams` bounds the total. */
export function parseSequential(raw: Record<string, unknown>, what: string, maxParams: number): SequentialDescription {
  const input = raw.input;
  if (!Array.isArray(input) || input.length !== 3) throw new UserError(`${what}.input must be [height, width, channels]`);
  const shape = input.map((v, i) => positive(v, 4096, `${what}.input[${i}]`)) as unknown as ImageShape;
  const classes = positive(raw.classes, 1 << 16, `${what}.classes`);
  const layers = LISTS.parse(raw.layers, `${what}.layers`, 0);
  const d: SequentialDescription = { name: "sequential", input: shape, classes, layers };
  // Counted from the shapes alone, before any parameter exists.
  plan(d, what, maxParams);
  return d;
}

/**
 * The network a layer list describes. `named`: the built-in network this list is, whose file header
 * stores only its name, input and classes (model/named-specs.ts).
 */
export function sequential(d: SequentialDescription, named?: { name: string; description: ModelDescription }): Model {
  const { specs } = plan(d, "model");
  return {
    name: named?.name ?? "sequential",
    kind: "classifier",
    description: named?.description ?? d,
    specs,
    activationBytes: (batch) => 4 * batch * LISTS.activations(d.layers, [...d.input]),
    noise: LISTS.noise(d.layers, [...d.input], "l"),
    apply: (params, x, tap, training) => LISTS.run(d.layers, x, { params, prefix: "l", input: [...d.input], ...(tap ? { tap } : {}), ...(training ? { training } : {}) }),
  };
}
