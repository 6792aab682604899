/**
 * Gradual magnitude pruning (Zhu & Gupta 2017): during training the smallest weights are masked out,
 * the sparsity rising on the cubic schedule s_t = s_f (1 - (1 - (t - t0) / (t1 - t0))^3) from step t0
 * to t1, the masks recomputed every few steps. The file stores the surviving values and their
 * positions (Rice-coded gaps or a bitmask, whichever is smaller), so what it costs is counted in bytes.
 * Encoding also prunes: given unpruned weights it cuts them to the target sparsity in one shot.
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { countParams, sizeOf, type HostParams, type ParamSpec, type Params } from "../../model/params.js";
import { chooseCompressed, decodeLeafwise, encodeLeafwise, trainsTheWeights } from "../leaves.js";
import { ratioValue, type Method, type OptionValues, type StoredReader, type StoredTensor } from "../method.js";
import { riceDecode, riceEncode } from "./rice.js";

export interface PruneConfig {
  /** Final fraction of the compressed weights set to zero. */
  sparsity: number;
  /** Fractions of training where the schedule starts and reaches `sparsity`. */
  start: number;
  end: number;
  /** Steps between mask updates. */
  every: number;
  /** 'global': one magnitude threshold over all compressed leaves; 'layer': the same sparsity in each. */
  scope: "global" | "layer";
  compress: string[];
}

export const PRUNE_DEFAULTS = { sparsity: 0.9, start: 0.1, end: 0.7, every: 20, scope: "global" } as const;
const MASK = ".mask";
/** Estimated bytes per surviving weight for --ratio: a float32 value and about 10 bits of position. */
const BYTES_PER_SURVIVOR = 5.25;

function fraction(values: OptionValues, name: string, fallback: number, top: "open" | "closed"): number {
  const v = values[name] ?? fallback;
  const ok = typeof v === "number" && v >= 0 && (top === "open" ? v < 1 : v <= 1);
  if (!ok) throw new UserError(`--${name} must be in [0, 1${top === "open" ? ")" : "]"}, got ${String(v)}`);
  return v;
}

function configurePrune(given: OptionValues, specs: readonly ParamSpec[]): PruneConfig {
  // Flags say --prune-start; a file's header stores the configuration's own field names.
  const values: OptionValues = { ...given };
  for (const field of ["start", "end", "every", "scope"]) if (values[field] !== undefined) values[`prune-${field}`] ??= values[field];
  const compress = chooseCompressed(values.compress, specs);
  let sparsity: number;
  const ratio = ratioValue(values, "sparsity");
  if (ratio !== undefined) {
    const compressed = countParams(specs.filter((s) => compress.includes(s.name)));
    const kept = countParams(specs) - compressed;
    const survivors = Math.floor((4 * (countParams(specs) / ratio) - 4 * kept) / BYTES_PER_SURVIVOR);
    if (survivors < 1) throw new UserError(`--ratio ${ratio} is out of reach: the ${kept} dense parameters alone exceed the budget`);
    sparsity = 1 - Math.min(survivors, compressed) / compressed;
  } else {
    sparsity = fraction(values, "sparsity", PRUNE_DEFAULTS.sparsity, "open");
  }
  const start = fraction(values, "prune-start", PRUNE_DEFAULTS.start, "closed");
  const end = fraction(values, "prune-end", PRUNE_DEFAULTS.end, "closed");
  if (end < start) throw new UserError(`--prune-end (${end}) must not come before --prune-start (${start})`);
  const every = values["prune-every"] ?? PRUNE_DEFAULTS.every;
  if (typeof every !== "number" || !Number.isInteger(every) || every < 1) throw new UserError(`--prune-every must be a positive integer, got ${String(every)}`);
  const scope = values["prune-scope"] ?? PRUNE_DEFAULTS.scope;
  if (scope !== "global" && scope !== "layer") throw new UserError(`--prune-scope must be 'global' or 'layer', got ${String(scope)}`);
  return { sparsity, start, end, every, scope, compress };
}

/** Survivors per leaf: the given sparsity, kept per leaf or over all of them. */
export function survivorsOf(config: PruneConfig, specs: readonly ParamSpec[], sparsity: number, weights: HostParams): Map<string, Uint8Array> {
  const leaves = specs.filter((s) => config.compress.includes(s.name));
  const keepCount = (n: number) => Math.round(n * (1 - sparsity));
  const out = new Map<string, Uint8Array>();
  const select = (groups: Array<{ name: string; w: Float32Array }>) => {
    const total = groups.reduce((n, g) => n + g.w.length, 0);
    const order = new Uint32Array(total);
    const magnitude = new Float32Array(total);
    let at = 0;
    for (const g of groups) for (let i = 0; i < g.w.length; i++, at++) magnitude[at] = Math.abs(g.w[i]!);
    for (let i = 0; i < total; i++) order[i] = i;
    // Largest first; ties by position, so the choice is deterministic.
    order.sort((a, b) => magnitude[b]! - magnitude[a]! || a - b);
    const keep = new Uint8Array(total);
    for (let i = 0; i < keepCount(total); i++) keep[order[i]!] = 1;
    at = 0;
    for (const g of groups) {
      out.set(g.name, keep.subarray(at, at + g.w.length));
      at += g.w.length;
    }
  };
  const groups = leaves.map((s) => ({ name: s.name, w: weights[s.name]! }));
  if (config.scope === "global") select(groups);
  else for (const g of groups) select([g]);
  return out;
}

/** Sparsity at step t of T on the cubic schedule. */
export function sparsityAt(config: PruneConfig, t: number, T: number): number {
  const t0 = Math.round(config.start * T);
  const t1 = Math.round(config.end * T);
  if (t < t0) return 0;
  if (t >= t1) return config.sparsity;
  return config.sparsity * (1 - (1 - (t - t0) / (t1 - t0)) ** 3);
}

/** The tensors a prune file stores for one leaf: the values `keep` marks, and their positions. */
export function survivorTensors(leaf: string, w: Float32Array, keep: Uint8Array): StoredTensor[] {
  // A survivor that is exactly zero is stored as pruned: it rebuilds the same.
  const mask = keep.map((k, i) => (k && w[i] !== 0 ? 1 : 0));
  const values = w.filter((_, i) => mask[i] === 1);
  const rice = riceEncode(mask);
  const positions: StoredTensor =
    rice.length < mask.length ? { name: leaf + ".positions", shape: [rice.length], codes: rice, bits: 1 } : { name: leaf + ".bitmask", shape: [mask.length], codes: mask, bits: 1 };
  return [{ name: leaf + ".values", shape: [values.length], data: values }, positions];
}

/** A leaf of `size` weights rebuilt from its stored survivors: values at their positions, zero elsewhere. */
export function decodeSurvivors(leaf: string, size: number, read: StoredReader): Float32Array {
  const values = read.floats(leaf + ".values");
  let positions: Uint32Array;
  if (read.shapes.some((t) => t.name === leaf + ".positions")) {
    positions = riceDecode(read.codes(leaf + ".positions"), values.length, size);
  } else {
    const mask = read.codes(leaf + ".bitmask");
    if (mask.length !== size) throw new UserError(`${leaf}.bitmask has ${mask.length} bits, ${leaf} has ${size} weights`);
    const at: number[] = [];
    mask.forEach((m, i) => m && at.push(i));
    positions = Uint32Array.from(at);
  }
  if (positions.length !== values.length) throw new UserError(`${leaf}: ${values.length} values but ${positions.length} positions`);
  const w = new Float32Array(size);
  positions.forEach((p, i) => (w[p] = values[i]!));
  return w;
}

export const prune: Method<PruneConfig> = {
  name: "prune",
  summary: "gradual magnitude pruning (cubic schedule); stores surviving values and their positions",
  options: [
    { name: "sparsity", type: "float", help: `final fraction of weights pruned, in [0, 1) (default ${PRUNE_DEFAULTS.sparsity})` },
    { name: "ratio", type: "float", help: "pick the sparsity for a file this many times smaller than float32 (about 5.25 bytes a survivor)" },
    { name: "prune-start", type: "float", help: `fraction of training where pruning starts (default ${PRUNE_DEFAULTS.start})` },
    { name: "prune-end", type: "float", help: `fraction of training where the final sparsity is reached (default ${PRUNE_DEFAULTS.end})` },
    { name: "prune-every", type: "int", help: `steps between mask updates (default ${PRUNE_DEFAULTS.every})` },
    { name: "prune-scope", type: "string", help: "'global' (default): one threshold over all leaves; 'layer': equal sparsity per leaf" },
    { name: "compress", type: "string", help: "leaves to prune: 'weights' (default), 'all', or names a,b,c" },
  ],
  defaultLearningRate: 1e-3,
  ...trainsTheWeights,
  configure: configurePrune,

  async frozen(config, specs) {
    const out: Params = {};
    for (const s of specs) if (config.compress.includes(s.name)) out[s.name + MASK] = np.ones(s.shape);
    return out;
  },

  stages(config, specs) {
    return [
      (_carry, trainable, frozen) => {
        const out: Params = {};
        for (const s of specs) out[s.name] = config.compress.includes(s.name) ? trainable[s.name]!.mul(frozen[s.name + MASK]!) : trainable[s.name]!;
        return out;
      },
    ];
  },

  refresh: {
    due(config, t, T) {
      const t0 = Math.round(config.start * T);
      const t1 = Math.round(config.end * T);
      return t >= t0 && t <= t1 && ((t - t0) % config.every === 0 || t === t1);
    },
    frozenAt(config, specs, t, T, trainable) {
      const keep = survivorsOf(config, specs, sparsityAt(config, t, T), trainable);
      const out: Params = {};
      for (const s of specs) if (config.compress.includes(s.name)) out[s.name + MASK] = np.array(Float32Array.from(keep.get(s.name)!)).reshape(s.shape);
      return out;
    },
  },

  codec: {
    encode(config, specs, weights) {
      const keep = survivorsOf(config, specs, config.sparsity, weights);
      return encodeLeafwise(specs, config.compress, weights, (s, w) => survivorTensors(s.name, w, keep.get(s.name)!));
    },

    decode(config, specs, stored) {
      return decodeLeafwise(specs, config.compress, stored, (s, read) => decodeSurvivors(s.name, sizeOf(s.shape), read));
    },
  },

  // Decoded on the host straight into the weights.
  workingSet: () => 0,
  rebuildFlops: () => 0,
};
