/** Truncated SVD of each weight matrix (data-free): the best rank-r approximation in Frobenius norm. */
import { type Compressor } from "../../compressor.js";
import { configureLowRank, LOW_RANK_OPTIONS, lowRankSkips, lowRankStorage, projectOutputs, rankFor, type LowRankConfig } from "../../low-rank.js";

export const svd: Compressor<LowRankConfig> = {
  name: "svd",
  summary: "truncated SVD per matrix (data-free)",
  options: LOW_RANK_OPTIONS,
  calibrated: false,
  configure: configureLowRank,
  skips: lowRankSkips,
  // The top right singular vectors are the top eigenvectors of W^T W.
  compressLeaf: (config, leaf) => projectOutputs(leaf, { factor: leaf.weight, m: leaf.rows }, rankFor(config, leaf.rows, leaf.cols)),
  storage: (_config, compressed, compress) => lowRankStorage(compressed, compress),
};
