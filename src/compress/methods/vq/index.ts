/**
 * Additive vector quantisation after training, calibrated as AQLM is: each matrix's codebooks and codes
 * fitted to keep its outputs on calibration data (its inputs' moment as the metric; methods/vq/codebooks.ts).
 * Written as a `vq` file. AQLM's fine-tune of the codebooks through the whole network is not done.
 */
import { UserError } from "../../../errors.js";
import type { OptionValues } from "../../../methods/index.js";
import { decodeVq, encodeVq } from "../../../methods/vq/codebooks.js";
import { VQ_DEFAULTS, VQ_OPTIONS, vqShape, vqSkips, vqTensors, type VqConfig } from "../../../methods/vq/index.js";
import type { VqShape } from "../../../methods/vq/codebooks.js";
import type { Compressor } from "../../compressor.js";

export interface VqCompressConfig extends VqShape {
  iterations: number;
}

export const vq: Compressor<VqCompressConfig> = {
  name: "vq",
  summary: "additive vector quantisation with learned codebooks, calibrated on the layer's inputs (AQLM's form)",
  options: [...VQ_OPTIONS, { name: "iterations", type: "int", help: `k-means steps per codebook fit (default ${VQ_DEFAULTS.iterations})` }],
  calibrated: "inputs",
  configure(values: OptionValues): VqCompressConfig {
    const iterations = values.iterations ?? VQ_DEFAULTS.iterations;
    if (!(typeof iterations === "number" && Number.isInteger(iterations) && iterations >= 1 && iterations <= 1000)) throw new UserError(`--iterations must be an integer from 1 to 1000, got ${String(iterations)}`);
    return { ...vqShape(values), iterations };
  },
  skips: (config, rows) => vqSkips(config, rows),
  compressLeaf(config, leaf) {
    const out = encodeVq(config, leaf.weight, leaf.rows, leaf.cols, config.iterations, leaf.moments?.hessian);
    const stored = vqTensors(leaf.spec.name, config, out, leaf.rows, leaf.cols);
    return { stored, weight: decodeVq(config, out, leaf.rows, leaf.cols) };
  },
  storage(config, _compressed, compress) {
    const file: VqConfig = { codebooks: config.codebooks, codeBits: config.codeBits, group: config.group, compress };
    return { method: "vq", config: file };
  },
};
