/**
 * EoRA (Liu et al. 2024, arXiv 2410.21271): GPTQ, then a low-rank correction of its error E fitted in
 * the eigenspace of the layer's input activations: with H = X^T X, the correction is E projected on
 * the top eigenvectors of E^T H E, the rank-r term that best restores the layer's calibration outputs.
 * Written as a `quant-lora` file (codes and scales, then the factors).
 */
import { UserError } from "../../../errors.js";
import { matmul, transpose } from "../../../linalg.js";
import { correctionFactors, correctionTensors } from "../../../methods/quant-lora/index.js";
import { configureGrid } from "../../../methods/quant/index.js";
import { registerCompressor, type Compressor } from "../../compressor.js";
import { QUANTIZE_OPTIONS, type QuantizeConfig } from "../../quantize.js";
import { gptqLeaf } from "../gptq/index.js";

export type EoraConfig = QuantizeConfig & { rank: number };

export const eora: Compressor<EoraConfig> = {
  name: "eora",
  summary: "EoRA: GPTQ plus a low-rank correction of its error in the input activations' eigenspace (calibrated)",
  options: [...QUANTIZE_OPTIONS, { name: "rank", type: "int", help: "rank of the correction (default 8)" }],
  calibrated: "inputs",
  configure(values) {
    const rank = values.rank ?? 8;
    if (!(typeof rank === "number" && Number.isInteger(rank) && rank >= 1)) throw new UserError(`--rank must be a positive integer, got ${String(rank)}`);
    return { ...configureGrid(values), rank };
  },
  skips: (c, rows, cols) => (c.rank < Math.min(rows, cols) ? undefined : `rank ${c.rank} is not below a ${rows}x${cols} matrix's`),
  compressLeaf(config, leaf) {
    const { rows, cols, weight, spec } = leaf;
    const base = gptqLeaf(config, leaf);
    const error = weight.map((w, i) => w - base.weight[i]!);
    const he = matmul(leaf.moments!.hessian, error, rows, rows, cols);
    const { down, up } = correctionFactors(error, rows, cols, matmul(transpose(error, rows, cols), he, cols, rows, cols), config.rank);
    const fix = matmul(down, up, rows, config.rank, cols);
    return {
      stored: [...base.stored, ...correctionTensors(spec.name, [rows, cols], down, up)],
      weight: base.weight.map((w, i) => w + fix[i]!),
    };
  },
  storage: (c, compressed, compress) => ({ method: "quant-lora", config: { bits: c.bits, group: c.group, ranks: compressed.map(() => c.rank), compress } }),
};

registerCompressor(eora);
