/**
 * The built-in image classifiers as layer lists (the same networks as the PyTorch peer,
 * shared/peers/torch_mcnc.py, in NHWC/HWIO layout): a file stores only their name, input and classes,
 * and `sequential` builds them as it builds any spec. Their leaves keep the names files have always used.
 */
import { UserError } from "../errors.js";
import type { ImageShape, Model } from "./model.js";
import { sequential, type SequentialLayer } from "./sequential.js";

export const NAMED_SPECS = {
  mlp: (classes: number): SequentialLayer[] => [
    { type: "flatten" },
    { type: "dense", units: 256, weight: "w1", bias: "b1" },
    { type: "relu" },
    { type: "dense", units: classes, weight: "w2", bias: "b2" },
  ],
  lenet: (classes: number): SequentialLayer[] => [
    { type: "conv3x3", channels: 32, weight: "c1", bias: "cb1" },
    { type: "relu" },
    { type: "maxpool2" },
    { type: "conv3x3", channels: 64, weight: "c2", bias: "cb2" },
    { type: "relu" },
    { type: "maxpool2" },
    { type: "flatten" },
    { type: "dense", units: 128, weight: "w1", bias: "b1" },
    { type: "relu" },
    { type: "dense", units: classes, weight: "w2", bias: "b2" },
  ],
} as const;

export type NamedSpec = keyof typeof NAMED_SPECS;

export function namedModel(name: NamedSpec, input: ImageShape, classes: number): Model {
  if (name === "lenet" && (input[0] % 4 !== 0 || input[1] % 4 !== 0)) throw new UserError(`lenet needs image sides divisible by 4, got ${input[0]}x${input[1]}`);
  return sequential({ name: "sequential", input, classes, layers: NAMED_SPECS[name](classes) }, { name, description: { name, input, classes } });
}
