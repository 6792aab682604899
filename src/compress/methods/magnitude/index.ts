/** Magnitude pruning, one shot: the smallest weights of each matrix removed (data-free). */
import { type Compressor } from "../../compressor.js";
import { configureSparsify, SPARSIFY_OPTIONS, sparsifyLeaf, sparsifyStorage, survivors, type SparsifyConfig } from "../../sparsify.js";

export const magnitude: Compressor<SparsifyConfig> = {
  name: "magnitude",
  summary: "magnitude pruning per matrix, unstructured or N:M (data-free)",
  options: SPARSIFY_OPTIONS,
  calibrated: false,
  configure: configureSparsify,
  compressLeaf(config, leaf) {
    const score = Float64Array.from(leaf.weight, Math.abs);
    return sparsifyLeaf(leaf, survivors(score, leaf.rows, leaf.cols, config, false));
  },
  storage: (_config, compressed, compress) => sparsifyStorage(compressed, compress),
};
