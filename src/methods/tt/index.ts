/**
 * Tensor trains (matrix product operators): each compressed leaf, viewed as a matrix [rows, cols]
 * (kernels [kh*kw*in, out]), is a chain of small cores contracted over bonds (layout.ts). Trains from
 * scratch, or holds what `mcnc compress --method tt` (TT-SVD of a trained model) writes.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { initParams, sizeOf, type HostParams, type ParamSpec } from "../../model/params.js";
import { seededUniform, STREAM } from "../../rng/seeded.js";
import { assembleLeaves, chooseCompressed, keptInit, keptShapes } from "../leaves.js";
import { matrixShape } from "../lora/index.js";
import { type Method, type OptionValues } from "../method.js";
import { contractionCost, coreShape, trainOf, type Train } from "./layout.js";

export interface TtConfig {
  /** Sites each matrix's rows and columns are factored over. */
  sites: number;
  /** The largest bond; each cut's is at most what its two sides allow. */
  bond: number;
  compress: string[];
  /** Per compressed leaf (model order), its sites - 1 inner bonds, where they differ (post-training). */
  bonds?: number[][];
}

export const TT_DEFAULTS = { sites: 2, bond: 8 } as const;
const LIMITS = { sites: 8, bond: 4096 };

export const coreName = (leaf: string, k: number) => `${leaf}.core${k}`;

export function leafTrain(config: TtConfig, spec: ParamSpec): Train {
  const [rows, cols] = matrixShape(spec.shape);
  const inner = config.bonds?.[config.compress.indexOf(spec.name)] ?? new Array<number>(config.sites - 1).fill(config.bond);
  return trainOf(rows, cols, config.sites, inner);
}

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;

export function configureTt(values: OptionValues, specs: readonly ParamSpec[]): TtConfig {
  const sites = values.sites ?? TT_DEFAULTS.sites;
  const bond = values.bond ?? TT_DEFAULTS.bond;
  if (!isInt(sites, 2, LIMITS.sites)) throw new UserError(`--sites must be an integer from 2 to ${LIMITS.sites}, got ${String(sites)}`);
  if (!isInt(bond, 1, LIMITS.bond)) throw new UserError(`--bond must be an integer from 1 to ${LIMITS.bond}, got ${String(bond)}`);
  const compress = chooseCompressed(values.compress, specs);
  const bonds = values.bonds;
  if (bonds !== undefined && !(Array.isArray(bonds) && bonds.length === compress.length && bonds.every((b) => Array.isArray(b) && b.length === sites - 1 && b.every((d) => isInt(d, 1, LIMITS.bond))))) {
    throw new UserError(`the bonds must list ${sites - 1} integers from 1 to ${LIMITS.bond} for each of the ${compress.length} compressed leaves`);
  }
  for (const s of specs) if (compress.includes(s.name) && s.shape.length < 2) throw new UserError(`--compress: ${s.name} has one axis; a tensor train needs a matrix or kernel`);
  return { sites, bond, compress, ...(bonds ? { bonds: bonds as number[][] } : {}) };
}

/** The leaf's matrix from its cores: contracted over the bonds, then from the sites' order to the matrix's. */
function rebuildLeaf(t: Train, cores: np.Array[], shape: number[]): np.Array {
  let x = cores[0]!.reshape([t.rows[0]! * t.cols[0]!, t.bonds[1]!]);
  for (let k = 1; k < cores.length; k++) {
    const next = np.matmul(x, cores[k]!.reshape([t.bonds[k]!, t.rows[k]! * t.cols[k]! * t.bonds[k + 1]!]));
    x = next.reshape([-1, t.bonds[k + 1]!]);
  }
  const n = t.rows.length;
  const sites = x.reshape(t.rows.flatMap((r, k) => [r, t.cols[k]!]));
  const axes = [...Array.from({ length: n }, (_, k) => 2 * k), ...Array.from({ length: n }, (_, k) => 2 * k + 1)];
  return sites.transpose(axes).reshape(shape);
}

export const tt: Method<TtConfig> = {
  name: "tt",
  summary: "tensor trains per weight matrix (matrix product operators): W = contracted chain of cores",
  options: [
    { name: "sites", type: "int", help: `sites each matrix's rows and columns are factored over (default ${TT_DEFAULTS.sites})` },
    { name: "bond", type: "int", help: `largest bond dimension (default ${TT_DEFAULTS.bond})` },
    { name: "compress", type: "string", help: "leaves to decompose: 'weights' (default) or names a,b,c" },
  ],
  // As LoRA's: a product of factors learns slowly at the dense rate.
  defaultLearningRate: 5e-3,
  configure: configureTt,

  trainableShapes(config, specs) {
    const cores = specs
      .filter((s) => config.compress.includes(s.name))
      .flatMap((s) => {
        const t = leafTrain(config, s);
        return t.rows.map((_, k) => ({ name: coreName(s.name, k), shape: coreShape(t, k) }));
      });
    return [...cores, ...keptShapes(specs, config.compress)];
  },

  /**
   * Each core uniform on (-b, b) with the same b, chosen so that each weight of the contraction has the
   * standard initialisation's variance 1 / (3 fan_in): (b^2 / 3)^sites times the product of the inner bonds.
   */
  async init(config, specs, seed) {
    const out: HostParams = {};
    for (const [i, s] of specs.entries()) {
      if (!config.compress.includes(s.name)) continue;
      const t = leafTrain(config, s);
      const paths = t.bonds.slice(1, -1).reduce((a, b) => a * b, 1);
      const b = Math.sqrt(3) * (1 / (3 * s.fanIn * paths)) ** (1 / (2 * t.rows.length));
      for (let k = 0; k < t.rows.length; k++) out[coreName(s.name, k)] = await seededUniform(seed, [STREAM.latent, i, k], sizeOf(coreShape(t, k)), -b, b);
    }
    keptInit(specs, config.compress, await initParams(specs, seed), out);
    return out;
  },

  frozen: async () => ({}),

  stages(config, specs) {
    return [
      (_carry, trainable) =>
        assembleLeaves(specs, config.compress, trainable, (s) => {
          const t = leafTrain(config, s);
          return rebuildLeaf(t, t.rows.map((_, k) => trainable[coreName(s.name, k)]!), s.shape);
        }),
    ];
  },

  workingSet: (config, specs) => Math.max(0, ...specs.filter((s) => config.compress.includes(s.name)).map((s) => contractionCost(leafTrain(config, s)).largest)),
  rebuildFlops: (config, specs) => specs.filter((s) => config.compress.includes(s.name)).reduce((n, s) => n + contractionCost(leafTrain(config, s)).flops, 0),
};
