/**
 * LoRA-style low rank: each compressed leaf, viewed as a matrix [rows, cols] (kernels [kh*kw*in, out]),
 * is down @ up with down [rows, r] and up [r, cols]. From scratch by default; `--residual` trains
 * theta_0(seed) + down @ up with `up` starting at zero, as LoRA does on a pretrained model.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { countParams, initParams, sizeOf, type HostParams, type ParamSpec, type Params } from "../../model/params.js";
import { seededUniform, STREAM } from "../../rng/seeded.js";
import { assembleLeaves, chooseCompressed, keptInit, keptShapes, theta0 } from "../leaves.js";
import { type Method, type OptionValues } from "../method.js";

export interface LoraConfig {
  rank: number;
  residual: boolean;
  compress: string[];
  /** A rank per compressed leaf, in model order, where they differ (post-training low rank); else `rank` for all. */
  ranks?: number[];
}

export function leafRank(config: LoraConfig, leaf: string): number {
  return config.ranks ? config.ranks[config.compress.indexOf(leaf)]! : config.rank;
}

export const LORA_DEFAULTS = { rank: 4, residual: false } as const;

/** A leaf as the matrix LoRA factors: all axes but the last are rows. */
export function matrixShape(shape: readonly number[]): [rows: number, cols: number] {
  const cols = shape[shape.length - 1]!;
  return [sizeOf(shape) / cols, cols];
}

export const DOWN = ".down";
export const UP = ".up";

const isRank = (r: unknown): r is number => typeof r === "number" && Number.isInteger(r) && r >= 1;

export function configureLora(values: OptionValues, specs: readonly ParamSpec[]): LoraConfig {
  const residual = values.residual ?? LORA_DEFAULTS.residual;
  if (typeof residual !== "boolean") throw new UserError("--residual is a switch (true or false)");
  const compress = chooseCompressed(values.compress, specs);
  const ranks = values.ranks;
  if (ranks !== undefined && (!Array.isArray(ranks) || ranks.length !== compress.length || !ranks.every(isRank))) {
    throw new UserError(`--ranks must list ${compress.length} positive integers, one per compressed leaf`);
  }
  const rank = ranks ? Math.max(...ranks) : (values.rank ?? LORA_DEFAULTS.rank);
  if (!isRank(rank)) throw new UserError(`--rank must be a positive integer, got ${String(rank)}`);
  const config: LoraConfig = { rank, residual, compress, ...(ranks ? { ranks: ranks as number[] } : {}) };
  for (const s of specs) {
    if (!compress.includes(s.name)) continue;
    if (s.shape.length < 2) throw new UserError(`--compress: ${s.name} has one axis; low rank needs a matrix or kernel`);
    const [rows, cols] = matrixShape(s.shape);
    const r = leafRank(config, s.name);
    if (r > Math.min(rows, cols)) {
      throw new UserError(`${config.ranks ? "rank" : "--rank"} ${r} is larger than layer ${s.name} (${rows}x${cols}) allows: 1..${Math.min(rows, cols)} (leave it out with --compress)`);
    }
  }
  return config;
}

/**
 * From scratch, down and up are uniform on (-b, b) with b = (3 / (fan_in r))^(1/4), so that each
 * weight of down @ up has the standard initialisation's variance 1/(3 fan_in). Residual: down has
 * the standard bound 1/sqrt(rows) and up is zero, so training starts at theta_0.
 */
export function factorBound(spec: ParamSpec, rank: number): number {
  return (3 / (spec.fanIn * rank)) ** 0.25;
}

export const lora: Method<LoraConfig> = {
  name: "lora",
  summary: "low-rank factors per weight matrix: W = down @ up (rank r)",
  options: [
    { name: "rank", type: "int", help: `factor rank (default ${LORA_DEFAULTS.rank})` },
    { name: "ranks", type: "int-list", help: "a rank per compressed leaf, in model order (instead of --rank)" },
    { name: "residual", type: "bool", help: "residual form theta_0(seed) + down @ up, up starting at zero" },
    { name: "compress", type: "string", help: "leaves to factor: 'weights' (default) or names a,b,c" },
  ],
  // Measured (MLP, rank 4, 10k samples, 1 epoch): 0.001 -> 0.594, 0.005 -> 0.718, 0.02 -> 0.734 test
  // accuracy; products of two factors learn slowly at the dense rate. docs/results.md.
  defaultLearningRate: 5e-3,
  // As an adapter on the shipped GPT (Moby-Dick, 50 steps, rank 1): 0.005 -> 2.504, 0.02 -> 2.479 bits per
  // byte (docs/results.md).
  adapterLearningRate: 0.02,
  adapterValues: { residual: true },
  configure: configureLora,

  trainableShapes(config, specs) {
    const factors = specs
      .filter((s) => config.compress.includes(s.name))
      .flatMap((s) => {
        const [rows, cols] = matrixShape(s.shape);
        const r = leafRank(config, s.name);
        return [
          { name: s.name + DOWN, shape: [rows, r] },
          { name: s.name + UP, shape: [r, cols] },
        ];
      });
    return [...factors, ...keptShapes(specs, config.compress)];
  },

  async init(config, specs, seed) {
    const out: HostParams = {};
    for (const [i, s] of specs.entries()) {
      if (!config.compress.includes(s.name)) continue;
      const [rows, cols] = matrixShape(s.shape);
      const r = leafRank(config, s.name);
      const b = config.residual ? 1 / Math.sqrt(rows) : factorBound(s, r);
      out[s.name + DOWN] = await seededUniform(seed, [STREAM.latent, 2 * i], rows * r, -b, b);
      out[s.name + UP] = config.residual ? new Float32Array(r * cols) : await seededUniform(seed, [STREAM.latent, 2 * i + 1], r * cols, -b, b);
    }
    keptInit(specs, config.compress, await initParams(specs, seed), out);
    return out;
  },

  async frozen(config, specs, seed, baseWeights) {
    if (!config.residual) return {};
    const base = await theta0(specs, seed, baseWeights);
    const out: Params = {};
    for (const s of specs) if (config.compress.includes(s.name)) out[s.name] = np.array(base[s.name]!).reshape(s.shape);
    return out;
  },

  async loraFactors(config, specs, trainable) {
    if (!config.residual) throw new UserError("this LoRA file holds weights trained from scratch (no --residual), not an adapter");
    return specs.filter((s) => config.compress.includes(s.name)).map((s) => ({ leaf: s.name, rank: leafRank(config, s.name), down: trainable[s.name + DOWN]!, up: trainable[s.name + UP]! }));
  },

  stages(config, specs) {
    return [
      (_carry, trainable, frozen) =>
        assembleLeaves(specs, config.compress, trainable, (s) => {
          const w = np.matmul(trainable[s.name + DOWN]!, trainable[s.name + UP]!).reshape(s.shape);
          return config.residual ? w.add(frozen[s.name]!) : w;
        }),
    ];
  },

  /** theta_0 of the residual form; the products are the weights. */
  workingSet: (config, specs) => (config.residual ? countParams(specs.filter((s) => config.compress.includes(s.name))) : 0),

  rebuildFlops(config, specs) {
    return specs.filter((s) => config.compress.includes(s.name)).reduce((n, s) => n + 2 * leafRank(config, s.name) * sizeOf(s.shape), 0);
  },
};
