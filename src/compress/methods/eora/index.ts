/**
 * EoRA (Liu et al. 2024, arXiv 2410.21271): GPTQ or Wanda, then a low-rank correction of its error E
 * fitted in the eigenspace of the layer's input activations: with H = X^T X, the correction is E
 * projected on the top eigenvectors of E^T H E, the rank-r term that best restores the layer's
 * calibration outputs. Written as a `quant-lora` file (codes and scales, then the factors) or, on
 * Wanda, a `prune-lora` file (survivors, then the factors).
 */
import { UserError } from "../../../errors.js";
import { matmul } from "../../../linalg.js";
import { weightedOutputMoment } from "../../../output-moment.js";
import { correctionFactors, correctionTensors } from "../../../methods/low-rank-correction.js";
import { configureGrid } from "../../../methods/quant/index.js";
import { type CompressedLeaf, type Compressor } from "../../compressor.js";
import { QUANTIZE_OPTIONS, type QuantizeConfig } from "../../quantize.js";
import { configureSparsify, SPARSIFY_OPTIONS, sparsifyStorage, type SparsifyConfig } from "../../sparsify.js";
import { gptqLeaf } from "../gptq/index.js";
import { wandaLeaf } from "../wanda/index.js";

export type EoraConfig = { rank: number } & ({ on: "gptq"; base: QuantizeConfig } | { on: "wanda"; base: SparsifyConfig });

const BASES = ["gptq", "wanda"] as const;

export const eora: Compressor<EoraConfig> = {
  name: "eora",
  summary: "EoRA: GPTQ (or Wanda) plus a low-rank correction of its error in the input activations' eigenspace (calibrated)",
  options: [
    { name: "on", type: "string", help: "the compression it corrects: gptq (default; --bits, --group) or wanda (--sparsity or --pattern)" },
    ...QUANTIZE_OPTIONS,
    ...SPARSIFY_OPTIONS,
    { name: "rank", type: "int", help: "rank of the correction (default 8)" },
  ],
  calibrated: "inputs",
  configure(values) {
    const rank = values.rank ?? 8;
    if (!(typeof rank === "number" && Number.isInteger(rank) && rank >= 1)) throw new UserError(`--rank must be a positive integer, got ${String(rank)}`);
    const on = values.on ?? "gptq";
    if (!BASES.includes(on as never)) throw new UserError(`--on must be ${BASES.join(" or ")}, got ${String(on).slice(0, 40)}`);
    const refuse = (names: string[]) => {
      for (const n of names) if (values[n] !== undefined) throw new UserError(`--${n} does not apply to eora --on ${String(on)}`);
    };
    if (on === "wanda") {
      refuse(["bits", "group"]);
      return { rank, on, base: configureSparsify(values) };
    }
    refuse(["sparsity", "pattern"]);
    return { rank, on: "gptq", base: configureGrid(values) };
  },
  skips: (c, rows, cols) => (c.rank < Math.min(rows, cols) ? undefined : `rank ${c.rank} is not below a ${rows}x${cols} matrix's`),
  compressLeaf(config, leaf) {
    const { rows, cols, weight, spec } = leaf;
    const base: CompressedLeaf = config.on === "gptq" ? gptqLeaf(config.base, leaf) : wandaLeaf(config.base, leaf);
    const error = weight.map((w, i) => w - base.weight[i]!);
    const { down, up } = correctionFactors(error, rows, cols, weightedOutputMoment(error, leaf.moments!.hessian, rows, cols), config.rank);
    const fix = matmul(down, up, rows, config.rank, cols);
    return {
      stored: [...base.stored, ...correctionTensors(spec.name, [rows, cols], down, up)],
      weight: base.weight.map((w, i) => w + fix[i]!),
    };
  },
  storage(c, compressed, compress) {
    const ranks = compressed.map(() => c.rank);
    if (c.on === "gptq") return { method: "quant-lora", config: { ...c.base, ranks, compress } };
    const { sparsity } = sparsifyStorage(compressed, compress).config as { sparsity: number };
    return { method: "prune-lora", config: { sparsity, ranks, compress } };
  },
};
