/**
 * Wanda (Sun et al. 2023, arXiv 2306.11695): prune by |W_ij| * ||X_i||, the weight's magnitude times
 * the norm of the input it multiplies on calibration data, comparing weights within each output.
 */
import { momentOfColumn, type CompressedLeaf, type Compressor, type LeafToCompress } from "../../compressor.js";
import { configureSparsify, SPARSIFY_OPTIONS, sparsifyLeaf, sparsifyStorage, survivors, type SparsifyConfig } from "../../sparsify.js";

/** Wanda on one leaf (its input moments given; each column on its group's, for a grouped Conv). */
export function wandaLeaf(config: SparsifyConfig, leaf: LeafToCompress): CompressedLeaf {
  const { rows, cols, weight } = leaf;
  const score = new Float64Array(rows * cols);
  for (let c = 0; c < cols; c++) {
    const h = momentOfColumn(leaf.moments!, c, cols);
    for (let r = 0; r < rows; r++) score[r * cols + c] = Math.abs(weight[r * cols + c]!) * Math.sqrt(h[r * rows + r]!);
  }
  return sparsifyLeaf(leaf, survivors(score, rows, cols, config, true));
}

export const wanda: Compressor<SparsifyConfig> = {
  name: "wanda",
  summary: "Wanda: prune by weight magnitude times input norm, per output, unstructured or N:M (calibrated)",
  options: SPARSIFY_OPTIONS,
  calibrated: "inputs",
  columnwise: true,
  configure: configureSparsify,
  compressLeaf: wandaLeaf,
  storage: (_config, compressed, compress) => sparsifyStorage(compressed, compress),
};
