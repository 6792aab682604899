/**
 * Reduced-order modelling of layer outputs (Chavan et al. 2023, arXiv 2312.07046): each layer's
 * weights projected onto the principal components of its outputs on calibration data, Y ~ Y V V^T
 * with V the top eigenvectors of Y^T Y = W^T (X^T X) W. The driver calibrates layer by layer, each
 * fed by the already-compressed layers below it, as the paper does.
 */
import { weightedOutputMoment } from "../../../output-moment.js";
import { type Compressor } from "../../compressor.js";
import { configureLowRank, LOW_RANK_OPTIONS, lowRankSkips, lowRankStorage, projectOutputs, rankFor, type LowRankConfig } from "../../low-rank.js";

export const rom: Compressor<LowRankConfig> = {
  name: "rom",
  summary: "reduced-order modelling: project each layer onto the principal components of its outputs",
  options: LOW_RANK_OPTIONS,
  calibrated: "inputs",
  configure: configureLowRank,
  skips: lowRankSkips,
  compressLeaf: (config, leaf) => projectOutputs(leaf, weightedOutputMoment(leaf.weight, leaf.moments!.hessian, leaf.rows, leaf.cols), rankFor(config, leaf.rows, leaf.cols)),
  storage: (_config, compressed, compress) => lowRankStorage(compressed, compress),
};
