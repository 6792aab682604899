/**
 * Tensor-train decomposition of each weight matrix (data-free; CompactifAI's matrix product operators):
 * TT-SVD from the last site to the first, each cut truncated to the top singular directions at its bond
 * (the best such truncation cut by cut, Oseledets 2011). Written as a `tt` file (methods/tt/).
 */
import { UserError } from "../../../errors.js";
import type { OptionValues, StoredTensor } from "../../../methods/index.js";
import { coreName, TT_DEFAULTS, type TtConfig } from "../../../methods/tt/index.js";
import { contract, coreShape, siteOrder, trainOf, trainParams, type Train } from "../../../methods/tt/layout.js";
import { topOutputVectors } from "../../../output-moment.js";
import { type Compressor, type LeafToCompress } from "../../compressor.js";

export interface TtCompressConfig {
  sites: number;
  /** One largest bond for every matrix, or the fraction of each matrix's parameters removed. */
  bond?: number;
  reduction?: number;
}

function configure(values: OptionValues): TtCompressConfig {
  const { bond, reduction } = values;
  const sites = values.sites ?? TT_DEFAULTS.sites;
  if (!(typeof sites === "number" && Number.isInteger(sites) && sites >= 2 && sites <= 8)) throw new UserError(`--sites must be an integer from 2 to 8, got ${String(sites)}`);
  if ((bond === undefined) === (reduction === undefined)) throw new UserError("give --reduction (a fraction of parameters removed) or --bond, one of them");
  if (reduction !== undefined && !(typeof reduction === "number" && reduction > 0 && reduction < 1)) throw new UserError(`--reduction must be in (0, 1), got ${String(reduction)}`);
  if (bond !== undefined && !(typeof bond === "number" && Number.isInteger(bond) && bond >= 1 && bond <= 4096)) throw new UserError(`--bond must be an integer from 1 to 4096, got ${String(bond)}`);
  return { sites, ...(bond !== undefined ? { bond } : { reduction: reduction as number }) };
}

/** The train for a [rows, cols] matrix: at --bond, or at the largest uniform bond within the budget (undefined where none fits). */
function trainFor(config: TtCompressConfig, rows: number, cols: number): Train | undefined {
  const at = (d: number) => trainOf(rows, cols, config.sites, new Array<number>(config.sites - 1).fill(d));
  if (config.bond !== undefined) return at(config.bond);
  const budget = (1 - config.reduction!) * rows * cols;
  if (trainParams(at(1)) > budget) return undefined;
  // Parameters grow with the bond until every cut is at its largest: the largest bond within budget.
  let [lo, hi] = [1, Math.min(rows, cols)];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (trainParams(at(mid)) <= budget) lo = mid;
    else hi = mid - 1;
  }
  return at(lo);
}

/** TT-SVD: cores G_n ... G_2 as the top right singular vectors of what is left, G_1 the rest. */
function decompose(t: Train, leaf: LeafToCompress): Float32Array[] {
  const { rows, cols, weight } = leaf;
  const at = siteOrder(t);
  let carry = new Float64Array(rows * cols);
  for (let i = 0; i < at.length; i++) carry[at[i]!] = weight[i]!;
  const n = t.rows.length;
  const cores: Float32Array[] = new Array(n);
  let width = t.rows[n - 1]! * t.cols[n - 1]!;
  for (let k = n - 1; k >= 1; k--) {
    const m = carry.length / width;
    const D = t.bonds[k]!;
    const V = topOutputVectors({ factor: carry, m }, width, D);
    const core = new Float32Array(D * width);
    for (let j = 0; j < width; j++) for (let a = 0; a < D; a++) core[a * width + j] = V[j * D + a]!;
    cores[k] = core;
    const next = new Float64Array(m * D);
    for (let p = 0; p < m; p++)
      for (let j = 0; j < width; j++) {
        const v = carry[p * width + j]!;
        if (v !== 0) for (let a = 0; a < D; a++) next[p * D + a]! += v * V[j * D + a]!;
      }
    carry = next;
    width = t.rows[k - 1]! * t.cols[k - 1]! * D;
  }
  cores[0] = Float32Array.from(carry);
  return cores;
}

export const tt: Compressor<TtCompressConfig> = {
  name: "tt",
  summary: "tensor-train (matrix product operator) decomposition per matrix (data-free)",
  options: [
    { name: "reduction", type: "float", help: "fraction of each matrix's parameters removed, in (0, 1): the largest bond within it" },
    { name: "bond", type: "int", help: "one largest bond for every matrix (instead of --reduction)" },
    { name: "sites", type: "int", help: `sites each matrix's rows and columns are factored over, 2 to 8 (default ${TT_DEFAULTS.sites})` },
  ],
  calibrated: false,
  configure,
  skips(config, rows, cols) {
    const t = trainFor(config, rows, cols);
    if (!t) return `--reduction ${config.reduction} leaves a ${rows}x${cols} matrix no train at all`;
    if (trainParams(t) >= rows * cols) return `a train of bond ${Math.max(...t.bonds)} over ${config.sites} sites is no smaller than a ${rows}x${cols} matrix`;
    return undefined;
  },
  compressLeaf(config, leaf) {
    const t = trainFor(config, leaf.rows, leaf.cols)!;
    const cores = decompose(t, leaf);
    const stored: StoredTensor[] = cores.map((data, k) => ({ name: coreName(leaf.spec.name, k), shape: coreShape(t, k), data }));
    return { stored, weight: Float32Array.from(contract(t, cores)) };
  },
  storage(config, compressed, compress) {
    const bonds = compressed.map((c) => c.stored.slice(0, -1).map((s) => s.shape[3]!));
    const ttConfig: TtConfig = { sites: config.sites, bond: Math.max(1, ...bonds.flat()), compress, bonds };
    return { method: "tt", config: ttConfig };
  },
};
