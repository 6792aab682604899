/**
 * Quantised weights plus a low-rank correction: each compressed leaf is its `quant` codes decoded,
 * plus down @ up. Written by `mcnc compress --method eora` (the correction fitted to the quantisation
 * error in the input activations' eigenspace); encoding trained weights here, without calibration
 * data, quantises to nearest and fits the correction to the error by truncated SVD.
 */
import { chooseCompressed, decodeLeafwise, encodeLeafwise, trainsTheWeights } from "../leaves.js";
import { matrixShape } from "../lora/index.js";
import { addCorrection, configureRanks, CORRECTION_OPTIONS, correctionFlops, errorCorrection } from "../low-rank-correction.js";
import { memoryReader, type Method } from "../method.js";
import { configureGrid, decodeQuantLeaf, QUANT_DEFAULTS, quantizeMatrix, quantTensors, type QuantConfig } from "../quant/index.js";

export interface QuantLoraConfig {
  bits: QuantConfig["bits"];
  group: number;
  /** Correction rank per compressed leaf, in model order. */
  ranks: number[];
  compress: string[];
}

export const quantLora: Method<QuantLoraConfig> = {
  name: "quant-lora",
  summary: "quantised weights plus a low-rank correction (what mcnc compress --method eora writes)",
  options: [
    { name: "bits", type: "int", help: `bits per weight: 8, 4, 3 or 2 (default ${QUANT_DEFAULTS.bits})` },
    { name: "group", type: "int", help: "rows sharing one (min, step) pair within a column; 0 (default): per channel" },
    ...CORRECTION_OPTIONS,
    { name: "compress", type: "string", help: "leaves to compress: 'weights' (default) or names a,b,c" },
  ],
  defaultLearningRate: 1e-3,
  ...trainsTheWeights,
  configure(values, specs) {
    const compress = chooseCompressed(values.compress, specs);
    return { ...configureGrid(values), ranks: configureRanks(values, compress, specs), compress };
  },
  frozen: async () => ({}),
  // Trained as dense weights; the encoding happens when the file is written.
  stages: () => [(_carry, trainable) => trainable],

  codec: {
    encode(config, specs, weights) {
      return encodeLeafwise(specs, config.compress, weights, (s, w) => {
        const shape = matrixShape(s.shape);
        const codes = quantTensors(s.name, shape, quantizeMatrix(w, ...shape, config.bits, config.group), config.bits);
        const base = decodeQuantLeaf(s.name, shape, config, memoryReader(codes));
        return [...codes, ...errorCorrection(s.name, shape, w, base, config.ranks[config.compress.indexOf(s.name)]!)];
      });
    },
    decode(config, specs, stored) {
      return decodeLeafwise(specs, config.compress, stored, (s, read) => {
        const shape = matrixShape(s.shape);
        return addCorrection(s.name, shape, config.ranks[config.compress.indexOf(s.name)]!, decodeQuantLeaf(s.name, shape, config, read), read);
      });
    },
  },

  // Decoded on the host straight into the weights.
  workingSet: () => 0,
  rebuildFlops: (config, specs) => correctionFlops(config.ranks, config.compress, specs),
};
