/** The uncompressed reference: every parameter is trained and stored. */
import type { Params } from "../../model/params.js";
import { trainsTheWeights } from "../leaves.js";
import { type Method } from "../method.js";

export const dense: Method<Record<string, never>> = {
  name: "dense",
  summary: "no compression: train and store every parameter (the reference)",
  options: [],
  defaultLearningRate: 1e-3,
  configure: () => ({}),
  ...trainsTheWeights,
  frozen: async () => ({}),
  stages: () => [(_carry: Params, trainable: Params) => trainable],
  workingSet: () => 0,
  rebuildFlops: () => 0,
};
