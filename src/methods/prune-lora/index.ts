/**
 * Pruned weights plus a low-rank correction: each compressed leaf is its `prune` survivors, plus
 * down @ up. Written by `mcnc compress --method eora --on wanda` (the correction fitted to the pruning
 * error in the input activations' eigenspace); encoding trained weights here, without calibration
 * data, prunes each leaf by magnitude and fits the correction to the error by truncated SVD.
 */
import { UserError } from "../../errors.js";
import { sizeOf } from "../../model/params.js";
import { chooseCompressed, decodeLeafwise, encodeLeafwise, trainsTheWeights } from "../leaves.js";
import { matrixShape } from "../lora/index.js";
import { addCorrection, configureRanks, CORRECTION_OPTIONS, correctionFlops, errorCorrection } from "../low-rank-correction.js";
import { memoryReader, type Method } from "../method.js";
import { decodeSurvivors, survivorsOf, survivorTensors } from "../prune/index.js";

export interface PruneLoraConfig {
  /** Fraction of each compressed leaf's weights removed (what the file reached, for a file written by eora). */
  sparsity: number;
  /** Correction rank per compressed leaf, in model order. */
  ranks: number[];
  compress: string[];
}

export const pruneLora: Method<PruneLoraConfig> = {
  name: "prune-lora",
  summary: "pruned weights plus a low-rank correction (what mcnc compress --method eora --on wanda writes)",
  options: [
    { name: "sparsity", type: "float", help: "fraction of each leaf's weights removed, in [0, 1) (default 0.5)" },
    ...CORRECTION_OPTIONS,
    { name: "compress", type: "string", help: "leaves to compress: 'weights' (default) or names a,b,c" },
  ],
  defaultLearningRate: 1e-3,
  ...trainsTheWeights,
  configure(values, specs) {
    const sparsity = values.sparsity ?? 0.5;
    if (!(typeof sparsity === "number" && sparsity >= 0 && sparsity < 1)) throw new UserError(`--sparsity must be in [0, 1), got ${String(sparsity)}`);
    const compress = chooseCompressed(values.compress, specs);
    return { sparsity, ranks: configureRanks(values, compress, specs), compress };
  },
  frozen: async () => ({}),
  // Trained as dense weights; the encoding happens when the file is written.
  stages: () => [(_carry, trainable) => trainable],

  codec: {
    encode(config, specs, weights) {
      const keep = survivorsOf({ ...config, start: 0, end: 0, every: 1, scope: "layer" }, specs, config.sparsity, weights);
      return encodeLeafwise(specs, config.compress, weights, (s, w) => {
        const survivors = survivorTensors(s.name, w, keep.get(s.name)!);
        const base = decodeSurvivors(s.name, w.length, memoryReader(survivors));
        return [...survivors, ...errorCorrection(s.name, matrixShape(s.shape), w, base, config.ranks[config.compress.indexOf(s.name)]!)];
      });
    },
    decode(config, specs, stored) {
      return decodeLeafwise(specs, config.compress, stored, (s, read) =>
        addCorrection(s.name, matrixShape(s.shape), config.ranks[config.compress.indexOf(s.name)]!, decodeSurvivors(s.name, sizeOf(s.shape), read), read),
      );
    },
  },

  // Decoded on the host straight into the weights.
  workingSet: () => 0,
  rebuildFlops: (config, specs) => correctionFlops(config.ranks, config.compress, specs),
};
