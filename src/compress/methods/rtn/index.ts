/** Round-to-nearest: each weight to the nearest of 2^bits levels spanning its group's range (data-free). */
import { memoryReader } from "../../../methods/index.js";
import { configureGrid, decodeQuantLeaf, quantizeMatrix, quantTensors } from "../../../methods/quant/index.js";
import { type Compressor } from "../../compressor.js";
import { QUANTIZE_OPTIONS, quantizeStorage, type QuantizeConfig } from "../../quantize.js";

export const rtn: Compressor<QuantizeConfig> = {
  name: "rtn",
  summary: "round-to-nearest quantisation at 8/4/3/2 bits with per-channel or group scales (data-free)",
  options: QUANTIZE_OPTIONS,
  calibrated: false,
  configure: configureGrid,
  compressLeaf(config, { spec, rows, cols, weight }) {
    const stored = quantTensors(spec.name, [rows, cols], quantizeMatrix(weight, rows, cols, config.bits, config.group), config.bits);
    return { stored, weight: decodeQuantLeaf(spec.name, [rows, cols], config, memoryReader(stored)) };
  },
  storage: (config, _compressed, compress) => quantizeStorage(config, compress),
};
