/** The uncompressed reference: every parameter is trained and stored. */
import { initParams, type Params } from "../../model/params.js";
import { registerMethod, type Method } from "../method.js";

export const dense: Method<Record<string, never>> = {
  name: "dense",
  summary: "no compression: train and store every parameter (the reference)",
  options: [],
  defaultLearningRate: 1e-3,
  configure: () => ({}),
  trainableShapes: (_config, specs) => specs.map((s) => ({ name: s.name, shape: [...s.shape] })),
  startsFromWeights: true,
  init: async (_config, specs, seed, start) => start ?? initParams(specs, seed),
  frozen: async () => ({}),
  stages: () => [(_carry: Params, trainable: Params) => trainable],
  rebuildFlops: () => 0,
};

registerMethod(dense);
