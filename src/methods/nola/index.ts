/**
 * NOLA (Koohpayegani et al., ICLR 2024): LoRA whose factors are linear combinations of seeded random
 * matrices, W = theta_0 + down @ up with down = sum_i c_i D_i and up = sum_j e_j U_j; only the
 * coefficients are stored. theta_0 is the seeded standard initialisation (a pretrained model, when
 * fine-tuning lands). The bases are uniform(-1, 1) / sqrt(K), as in the paper.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { countParams, initParams, sizeOf, toDevice, type HostParams, type ParamSpec, type Params } from "../../model/params.js";
import { seededUniform, STREAM } from "../../rng/seeded.js";
import { assembleLeaves, keptInit, keptShapes, theta0 } from "../leaves.js";
import { configureLora, DOWN, matrixShape, UP } from "../lora/index.js";
import { ratioValue, type LoraFactors, type Method, type OptionValues } from "../method.js";

export interface NolaConfig {
  rank: number;
  /** Basis matrices per factor. */
  bases: number;
  compress: string[];
}

export const NOLA_DEFAULTS = { rank: 4, bases: 256 } as const;
const LIMIT_BASES = 1 << 16;

function configureNola(values: OptionValues, specs: readonly ParamSpec[]): NolaConfig {
  if (values.residual !== undefined) throw new UserError("--residual does not apply to --method nola (it is always theta_0 + down @ up)");
  const { rank, compress } = configureLora({ rank: values.rank ?? NOLA_DEFAULTS.rank, compress: values.compress }, specs);
  let bases: number;
  const ratio = ratioValue(values, "bases");
  if (ratio !== undefined) {
    const kept = countParams(specs.filter((s) => !compress.includes(s.name)));
    bases = Math.floor((countParams(specs) / ratio - kept) / (2 * compress.length));
    if (bases < 1) throw new UserError(`--ratio ${ratio} is out of reach: the ${kept} dense parameters leave no room for coefficients`);
  } else {
    bases = (values.bases as number | undefined) ?? NOLA_DEFAULTS.bases;
  }
  if (!Number.isInteger(bases) || bases < 1 || bases > LIMIT_BASES) throw new UserError(`--bases must be an integer from 1 to ${LIMIT_BASES}, got ${bases}`);
  return { rank, bases, compress };
}

/** The seeded random matrices each factor combines: [bases, rows * r] for downs, [bases, r * cols] for ups. */
async function bases(config: NolaConfig, specs: readonly ParamSpec[], seed: number): Promise<Params> {
  const out: Params = {};
  const b = 1 / Math.sqrt(config.bases);
  for (const [i, s] of specs.entries()) {
    if (!config.compress.includes(s.name)) continue;
    const [rows, cols] = matrixShape(s.shape);
    const r = config.rank;
    out[s.name + DOWN] = np.array(await seededUniform(seed, [STREAM.generator, i, 0], config.bases * rows * r, -b, b)).reshape([config.bases, rows * r]);
    out[s.name + UP] = np.array(await seededUniform(seed, [STREAM.generator, i, 1], config.bases * r * cols, -b, b)).reshape([config.bases, r * cols]);
  }
  return out;
}

/** Leaf `s`'s factors down [rows, r] and up [r, cols] from its coefficients. Consumes the two coefficient and basis arrays. */
function factors(config: NolaConfig, s: ParamSpec, trainable: Params, frozen: Params): [np.Array, np.Array] {
  const [rows, cols] = matrixShape(s.shape);
  const combine = (part: string, shape: number[]) => np.matmul(trainable[s.name + part]!.reshape([1, config.bases]), frozen[s.name + part]!).reshape(shape);
  return [combine(DOWN, [rows, config.rank]), combine(UP, [config.rank, cols])];
}

export const nola: Method<NolaConfig> = {
  name: "nola",
  summary: "LoRA factors as combinations of seeded random matrices: only the coefficients are stored",
  options: [
    { name: "rank", type: "int", help: `factor rank (default ${NOLA_DEFAULTS.rank})` },
    { name: "bases", type: "int", help: `random basis matrices per factor (default ${NOLA_DEFAULTS.bases}, or chosen by --ratio)` },
    { name: "ratio", type: "float", help: "pick the number of bases for this stored-parameter ratio" },
    { name: "compress", type: "string", help: "leaves to adapt: 'weights' (default) or names a,b,c" },
  ],
  // The paper's 1e-3 was set for fine-tuning large models; from the seeded start, on the MLP at 100x
  // (10k samples, 1 epoch), 0.001 -> 0.467, 0.01 -> 0.722, 0.05 -> 0.715 test accuracy. docs/results.md.
  defaultLearningRate: 1e-2,
  // As an adapter on the shipped GPT (Moby-Dick, 50 steps, ratio 1000): 0.01 -> 2.512, 0.03 -> 2.496,
  // 0.1 -> 2.493 bits per byte (docs/results.md).
  adapterLearningRate: 0.1,
  // Always theta_0 + down @ up with up's coefficients starting at zero.
  adapterValues: {},
  configure: configureNola,

  trainableShapes(config, specs) {
    const coefficients = specs
      .filter((s) => config.compress.includes(s.name))
      .flatMap((s) => [
        { name: s.name + DOWN, shape: [config.bases] },
        { name: s.name + UP, shape: [config.bases] },
      ]);
    return [...coefficients, ...keptShapes(specs, config.compress)];
  },

  /**
   * up's coefficients start at zero, so training starts exactly at theta_0 (the paper's rule); down's
   * are uniform with the spread that gives `down` LoRA's initial scale, 1/sqrt(rows).
   */
  async init(config, specs, seed) {
    const out: HostParams = {};
    for (const [i, s] of specs.entries()) {
      if (!config.compress.includes(s.name)) continue;
      const [rows] = matrixShape(s.shape);
      const b = Math.sqrt(3 / rows);
      out[s.name + DOWN] = await seededUniform(seed, [STREAM.latent, 2 * i], config.bases, -b, b);
      out[s.name + UP] = new Float32Array(config.bases);
    }
    keptInit(specs, config.compress, await initParams(specs, seed), out);
    return out;
  },

  async frozen(config, specs, seed, baseWeights) {
    const base = await theta0(specs, seed, baseWeights);
    const out = await bases(config, specs, seed);
    for (const s of specs) if (config.compress.includes(s.name)) out[s.name] = np.array(base[s.name]!).reshape(s.shape);
    return out;
  },

  async loraFactors(config, specs, trainable, seed) {
    const frozen = await bases(config, specs, seed);
    const out: LoraFactors[] = [];
    for (const s of specs.filter((s) => config.compress.includes(s.name))) {
      const [down, up] = factors(config, s, toDevice([{ name: s.name + DOWN, shape: [config.bases] }, { name: s.name + UP, shape: [config.bases] }], trainable), frozen);
      out.push({ leaf: s.name, rank: config.rank, down: (await down.data()) as Float32Array, up: (await up.data()) as Float32Array });
    }
    return out;
  },

  stages(config, specs) {
    return [
      (_carry, trainable, frozen) =>
        assembleLeaves(specs, config.compress, trainable, (s) => {
          const [down, up] = factors(config, s, trainable, frozen);
          return np.matmul(down, up).reshape(s.shape).add(frozen[s.name]!);
        }),
    ];
  },

  workingSet(config, specs) {
    // Each leaf's two bases and theta_0, all frozen at once.
    return specs
      .filter((s) => config.compress.includes(s.name))
      .reduce((n, s) => {
        const [rows, cols] = matrixShape(s.shape);
        return n + config.bases * config.rank * (rows + cols) + sizeOf(s.shape);
      }, 0);
  },

  rebuildFlops(config, specs) {
    return specs
      .filter((s) => config.compress.includes(s.name))
      .reduce((n, s) => {
        const [rows, cols] = matrixShape(s.shape);
        return n + 2 * config.bases * config.rank * (rows + cols) + 2 * config.rank * sizeOf(s.shape);
      }, 0);
  },
};
