/**
 * Block removal: whole transformer blocks of the GPT are dropped, chosen greedily by calibrated
 * importance (FoldGPT's and ShortGPT's observation that some blocks barely change the residual stream).
 * The importance measured is the direct one: the calibration loss with the block skipped; the block whose
 * absence costs least goes first, then the next among those left. An optional short fine-tune of what
 * remains (`--heal-steps`) heals the network, as those papers do. Layer sharing (FoldGPT's folding of
 * neighbouring blocks into one) is not done: a shared block would need a header that maps blocks to weights.
 */
import { numpy as np, tree } from "@jax-js/jax";
import { compile, putAll, read } from "../../../engine/program.js";
import { UserError } from "../../../errors.js";
import type { OptionValues } from "../../../methods/index.js";
import type { GptConfig, ModelDescription } from "../../../model/model.js";
import { buildModel } from "../../../model/models.js";
import type { HostParams, Params } from "../../../model/params.js";
import { crossEntropy } from "../../../train/tasks.js";
import type { CalibrationBatch } from "../../compress-model.js";
import { HEAL_OPTION, healSteps, type Compressor } from "../../compressor.js";

export interface DropBlocksConfig {
  /** Blocks removed. */
  drop: number;
  /** Fine-tuning steps of what remains (0: none). */
  healSteps: number;
}

/** The GPT with only blocks `kept` (in order), renumbered from 0, and its weights under the new names. */
export function keepBlocks(c: GptConfig, weights: HostParams, kept: readonly number[]): { description: GptConfig & { name: "gpt" }; weights: HostParams } {
  const out: HostParams = {};
  for (const [name, data] of Object.entries(weights)) {
    const block = /^h\.(\d+)\.(.*)$/.exec(name);
    if (!block) out[name] = data;
    else if (kept.includes(Number(block[1]))) out[`h.${kept.indexOf(Number(block[1]))}.${block[2]}`] = data;
  }
  const { blocks, ...rest } = c;
  return { description: { ...rest, name: "gpt", layers: kept.length, ...(blocks ? { blocks: kept.map((l) => blocks[l]!) } : {}) }, weights: out };
}

/** Mean calibration loss of the GPT with blocks `kept`. */
async function lossWith(c: GptConfig, weights: HostParams, kept: readonly number[], batches: readonly CalibrationBatch[]): Promise<number> {
  const { description, weights: w } = keepBlocks(c, weights, kept);
  const model = buildModel(description);
  const program = compile((p: Params, x: np.Array, y: np.Array) => crossEntropy(model.apply(p, x), y), { name: `gpt of ${kept.length} blocks, calibration loss` });
  const params = putAll(model.specs, w);
  let sum = 0;
  for (const [x, y] of batches) sum += (await read(await program(tree.ref(params), x.ref, y.ref)))[0]!;
  tree.dispose(params);
  return sum / batches.length;
}

export const dropBlocks: Compressor<DropBlocksConfig> = {
  name: "drop-blocks",
  summary: "block removal: whole transformer blocks dropped by calibrated importance (the loss without each), optionally healed by fine-tuning",
  options: [
    { name: "drop", type: "int", help: "blocks to remove (at least one stays)" },
    HEAL_OPTION,
  ],
  calibrated: "inputs",
  configure(values: OptionValues): DropBlocksConfig {
    const { drop } = values;
    if (!(typeof drop === "number" && Number.isInteger(drop) && drop >= 1)) throw new UserError(`--drop must be a positive integer (blocks to remove), got ${String(drop)}`);
    return { drop, healSteps: healSteps(values) };
  },
  compressLeaf() {
    throw new UserError("--method drop-blocks removes whole blocks of a network, not one matrix at a time");
  },
  storage: () => ({ method: "dense", config: {} }),
  async restructure(config, model, weights, batches) {
    const d: ModelDescription = model.description;
    if (d.name !== "gpt") throw new UserError(`--method drop-blocks removes transformer blocks of the GPT, not of ${model.name}`);
    if (config.drop >= d.layers) throw new UserError(`--drop ${config.drop} would leave none of the ${d.layers} blocks`);
    let kept = Array.from({ length: d.layers }, (_, l) => l);
    while (kept.length > d.layers - config.drop) {
      const costs: Array<{ l: number; loss: number }> = [];
      for (const l of kept) costs.push({ l, loss: await lossWith(d, weights, kept.filter((k) => k !== l), batches) });
      const cheapest = costs.reduce((a, b) => (b.loss < a.loss ? b : a));
      kept = kept.filter((k) => k !== cheapest.l);
    }
    return { ...keepBlocks(d, weights, kept), heal: config.healSteps };
  },
};
