/**
 * Fisher-weighted SVD (Hsu et al. 2022, arXiv 2207.00112): the truncated SVD of W diag(s), undone by
 * diag(s)^-1, where s_j = sqrt of output j's summed Fisher information (squared loss gradients on
 * calibration data): outputs the loss is sensitive to are kept more exactly.
 */
import { type Compressor } from "../../compressor.js";
import { configureLowRank, LOW_RANK_OPTIONS, lowRankSkips, lowRankStorage, projectOutputs, rankFor, type LowRankConfig } from "../../low-rank.js";

export const fwsvd: Compressor<LowRankConfig> = {
  name: "fwsvd",
  summary: "Fisher-weighted SVD: truncated SVD with outputs weighed by their loss sensitivity (calibrated, gradients)",
  options: LOW_RANK_OPTIONS,
  calibrated: "gradients",
  configure: configureLowRank,
  skips: lowRankSkips,
  compressLeaf(config, leaf) {
    const { rows, cols, weight, fisher } = leaf;
    const s = new Float64Array(cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) s[j]! += fisher![i * cols + j]!;
    let top = 0;
    for (let j = 0; j < cols; j++) top = Math.max(top, (s[j] = Math.sqrt(s[j]!)));
    // An output the calibration never moved keeps a small weight rather than none (and stays invertible).
    for (let j = 0; j < cols; j++) s[j] = Math.max(s[j]!, 1e-6 * top || 1);
    const scaled = weight.map((w, i) => w * s[i % cols]!);
    return projectOutputs(leaf, { factor: scaled, m: rows }, rankFor(config, rows, cols), s);
  },
  storage: (_config, compressed, compress) => lowRankStorage(compressed, compress),
};
