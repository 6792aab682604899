/**
 * Structured pruning: whole attention heads and MLP channels of the GPT (hidden units of the MLP) are
 * removed, so the network itself gets smaller, with its new shape in the file's header, and runs faster
 * with no sparse kernels (LLM-Pruner's deal). The score is activation-based, not LLM-Pruner's first-order
 * Taylor one: a unit's importance is the squared output it sends into the residual stream (or the
 * logits) on calibration data, taken as if units were uncorrelated: the sum over its inputs j to the
 * projection W of E[x_j^2] ||W_j||^2 (Wanda's score, summed over a structure, as FLAP and Wanda-sp do).
 * In each block the units with the least importance per parameter go first, until `reduction` of the
 * block's matrix parameters are gone; at least one head and one channel stay.
 */
import { numpy as np, tree } from "@jax-js/jax";
import { compile, putAll, readAll, type Tensor } from "../../../engine/program.js";
import { UserError } from "../../../errors.js";
import type { OptionValues } from "../../../methods/index.js";
import { blockShape } from "../../../model/gpt.js";
import type { GptConfig, Model, ModelDescription } from "../../../model/model.js";
import { NAMED_SPECS } from "../../../model/named-specs.js";
import type { HostParams, Params } from "../../../model/params.js";
import { HEAL_OPTION, healSteps, type Compressor } from "../../compressor.js";

export interface StructuredConfig {
  /** Fraction of each block's matrix parameters removed. */
  reduction: number;
  /** Fine-tuning steps of what remains (0: none). */
  healSteps: number;
}

/** Each of `leaves`' input columns' summed squares over the calibration batches: E[x_j^2] up to the count. */
async function inputEnergy(model: Model, weights: HostParams, leaves: readonly string[], batches: readonly Tensor[]): Promise<Record<string, Float64Array>> {
  const program = compile(
    (p: Params, x: np.Array) => {
      const out: Params = {};
      model
        .apply(p, x, (leaf, rows) => {
          if (!leaves.includes(leaf)) return rows.dispose();
          const energy = rows.ref.mul(rows).sum(0);
          out[leaf] = out[leaf] ? out[leaf]!.add(energy) : energy;
        })
        .dispose();
      return out;
    },
    { name: `${model.name} structured scores` },
  );
  const params = putAll(model.specs, weights);
  const sums: Record<string, Float64Array> = {};
  for (const x of batches) {
    for (const [leaf, e] of Object.entries(await readAll(await program(tree.ref(params), x.ref)))) {
      const acc = (sums[leaf] ??= new Float64Array(e.length));
      e.forEach((v, j) => (acc[j]! += v));
    }
  }
  tree.dispose(params);
  return sums;
}

/** Importance of each input row of W [rows, cols]: energy_j ||W_j||^2. */
const rowImportance = (energy: Float64Array, w: Float32Array, cols: number) =>
  Float64Array.from(energy, (e, j) => {
    let norm = 0;
    for (let c = 0; c < cols; c++) norm += w[j * cols + c]! ** 2;
    return e * norm;
  });

interface Unit {
  kind: "head" | "channel";
  index: number;
  score: number;
  params: number;
}

/** Units removed, least important per parameter first, until `target` parameters are gone; one of each kind stays. */
function toRemove(units: Unit[], target: number): Set<Unit> {
  const removed = new Set<Unit>();
  const left = { head: units.filter((u) => u.kind === "head").length, channel: units.filter((u) => u.kind === "channel").length };
  let gone = 0;
  for (const u of [...units].sort((a, b) => a.score / a.params - b.score / b.params || a.index - b.index)) {
    if (gone >= target) break;
    if (left[u.kind] === 1) continue;
    removed.add(u);
    left[u.kind]--;
    gone += u.params;
  }
  return removed;
}

/** Columns (or rows) `keep` of a row-major [rows, cols] matrix. */
const columns = (w: Float32Array, rows: number, cols: number, keep: number[]) => Float32Array.from({ length: rows * keep.length }, (_, i) => w[Math.floor(i / keep.length) * cols + keep[i % keep.length]!]!);
const rowsOf = (w: Float32Array, cols: number, keep: number[]) => Float32Array.from({ length: keep.length * cols }, (_, i) => w[keep[Math.floor(i / cols)]! * cols + (i % cols)]!);
const kept = (n: number, removed: Set<number>) => Array.from({ length: n }, (_, i) => i).filter((i) => !removed.has(i));

function pruneGpt(c: GptConfig, weights: HostParams, energy: Record<string, Float64Array>, reduction: number): { description: ModelDescription; weights: HostParams } {
  const C = c.width;
  const D = C / c.heads;
  const out: HostParams = { ...weights };
  const blocks: Array<{ heads: number; hidden: number }> = [];
  for (let l = 0; l < c.layers; l++) {
    const h = `h.${l}`;
    const { heads, hidden } = blockShape(c, l);
    const attnRows = rowImportance(energy[`${h}.attn.c_proj.weight`]!, weights[`${h}.attn.c_proj.weight`]!, C);
    const mlpRows = rowImportance(energy[`${h}.mlp.c_proj.weight`]!, weights[`${h}.mlp.c_proj.weight`]!, C);
    const units: Unit[] = [
      ...Array.from({ length: heads }, (_, i): Unit => ({ kind: "head", index: i, score: attnRows.slice(i * D, (i + 1) * D).reduce((a, b) => a + b, 0), params: 4 * C * D })),
      ...Array.from({ length: hidden }, (_, i): Unit => ({ kind: "channel", index: i, score: mlpRows[i]!, params: 2 * C })),
    ];
    const removed = toRemove(units, reduction * (4 * C * heads * D + 2 * C * hidden));
    const keepHeads = kept(heads, new Set([...removed].filter((u) => u.kind === "head").map((u) => u.index)));
    const keepChannels = kept(hidden, new Set([...removed].filter((u) => u.kind === "channel").map((u) => u.index)));
    // q, k and v of each kept head, in c_attn's q|k|v column order; its rows of c_proj.
    const qkv = [0, 1, 2].flatMap((part) => keepHeads.flatMap((head) => Array.from({ length: D }, (_, d) => part * heads * D + head * D + d)));
    const headRows = keepHeads.flatMap((head) => Array.from({ length: D }, (_, d) => head * D + d));
    out[`${h}.attn.c_attn.weight`] = columns(weights[`${h}.attn.c_attn.weight`]!, C, 3 * heads * D, qkv);
    out[`${h}.attn.c_attn.bias`] = Float32Array.from(qkv, (j) => weights[`${h}.attn.c_attn.bias`]![j]!);
    out[`${h}.attn.c_proj.weight`] = rowsOf(weights[`${h}.attn.c_proj.weight`]!, C, headRows);
    out[`${h}.mlp.c_fc.weight`] = columns(weights[`${h}.mlp.c_fc.weight`]!, C, hidden, keepChannels);
    out[`${h}.mlp.c_fc.bias`] = Float32Array.from(keepChannels, (j) => weights[`${h}.mlp.c_fc.bias`]![j]!);
    out[`${h}.mlp.c_proj.weight`] = rowsOf(weights[`${h}.mlp.c_proj.weight`]!, C, keepChannels);
    blocks.push({ heads: keepHeads.length, hidden: keepChannels.length });
  }
  const { blocks: _, ...rest } = c;
  return { description: { ...rest, name: "gpt", blocks }, weights: out };
}

/** The MLP's hidden units; the pruned network is the MLP as a layer list with fewer of them. */
function pruneMlp(d: Extract<ModelDescription, { name: "mlp" | "lenet" }>, weights: HostParams, energy: Record<string, Float64Array>, reduction: number): { description: ModelDescription; weights: HostParams } {
  const [inputs, hidden, classes] = [weights.w1!.length / weights.b1!.length, weights.b1!.length, d.classes];
  const scores = rowImportance(energy.w2!, weights.w2!, classes);
  const units = Array.from({ length: hidden }, (_, i): Unit => ({ kind: "channel", index: i, score: scores[i]!, params: inputs + classes }));
  const keep = kept(hidden, new Set([...toRemove(units, reduction * hidden * (inputs + classes))].map((u) => u.index)));
  const layers = NAMED_SPECS.mlp(classes).map((l) => (l.type === "dense" && l.weight === "w1" ? { ...l, units: keep.length } : l));
  return {
    description: { name: "sequential", input: d.input, classes, layers },
    weights: { w1: columns(weights.w1!, inputs, hidden, keep), b1: Float32Array.from(keep, (j) => weights.b1![j]!), w2: rowsOf(weights.w2!, classes, keep), b2: weights.b2! },
  };
}

export const structured: Compressor<StructuredConfig> = {
  name: "structured",
  summary: "structured pruning: whole attention heads and MLP channels removed by calibrated importance; a smaller dense network",
  options: [{ name: "reduction", type: "float", help: "fraction of each block's matrix parameters removed, in (0, 1)" }, HEAL_OPTION],
  calibrated: "inputs",
  configure(values: OptionValues): StructuredConfig {
    const { reduction } = values;
    if (!(typeof reduction === "number" && reduction > 0 && reduction < 1)) throw new UserError(`--reduction must be in (0, 1), got ${String(reduction)}`);
    return { reduction, healSteps: healSteps(values) };
  },
  compressLeaf() {
    throw new UserError("--method structured removes whole heads and channels of a network, not one matrix at a time");
  },
  storage: () => ({ method: "dense", config: {} }),
  async restructure(config, model, weights, calibration) {
    const d = model.description;
    const batches = calibration.map(([x]) => x);
    if (d.name === "gpt") {
      const leaves = Array.from({ length: d.layers }, (_, l) => [`h.${l}.attn.c_proj.weight`, `h.${l}.mlp.c_proj.weight`]).flat();
      return { ...pruneGpt(d, weights, await inputEnergy(model, weights, leaves, batches), config.reduction), heal: config.healSteps };
    }
    if (d.name === "mlp") return { ...pruneMlp(d, weights, await inputEnergy(model, weights, ["w2"], batches), config.reduction), heal: config.healSteps };
    throw new UserError(`--method structured knows the GPT's heads and MLP channels and the MLP's hidden units, not ${model.name}'s structure`);
  },
};
