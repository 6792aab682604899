/**
 * Which model leaves a method compresses and which it keeps as they are: the same choice and the same
 * naming for every method, so files and flags read alike.
 */
import { UserError } from "../errors.js";
import type { numpy as np } from "@jax-js/jax";
import { initParams, sizeOf, type HostParams, type NamedShape, type ParamSpec, type Params } from "../model/params.js";
import type { StoredReader, StoredTensor } from "./method.js";

/** Stored name of a leaf kept dense. */
export const KEPT = "keep/";

/**
 * Whether `entry` names leaf `name`: the leaf itself, or a module whose weight it is, matched on a
 * dotted suffix as PEFT's target_modules are (`c_attn` names every `h.N.attn.c_attn.weight`).
 */
function names(entry: string, name: string): boolean {
  return name === entry || name === `${entry}.weight` || name.endsWith(`.${entry}`) || name.endsWith(`.${entry}.weight`);
}

/**
 * Resolve --compress: 'weights' (default: matrices, kernels and embeddings), 'all' (but statistics), or a
 * list of leaf or module names.
 */
export function chooseCompressed(spec: unknown, specs: readonly ParamSpec[]): string[] {
  if (spec === undefined || spec === "weights") return specs.filter((s) => s.role === "weight").map((s) => s.name);
  // Batch normalisation's statistics are measured after training, not trained: no method produces them.
  if (spec === "all") return specs.filter((s) => s.role !== "statistic").map((s) => s.name);
  const entries = Array.isArray(spec) ? spec : typeof spec === "string" ? spec.split(",") : null;
  if (!entries || entries.length === 0) throw new UserError("--compress must be 'weights', 'all' or a list of parameter names");
  const chosen = new Set<string>();
  for (const e of entries) {
    const hits = typeof e === "string" && e !== "" ? specs.filter((s) => names(e, s.name)) : [];
    if (hits.length === 0) {
      const known = specs.map((s) => s.name);
      const shown = known.length > 12 ? `${known.slice(0, 12).join(", ")}, ... (${known.length} in all)` : known.join(", ");
      throw new UserError(`--compress: no parameter '${String(e).slice(0, 100)}' (the model has ${shown})`);
    }
    const statistic = hits.find((h) => h.role === "statistic");
    if (statistic) throw new UserError(`--compress: ${statistic.name} is a batch-normalisation statistic, measured after training and stored as it is`);
    for (const h of hits) chosen.add(h.name);
  }
  // Storage order follows the model, whatever order the user listed.
  return specs.filter((s) => chosen.has(s.name)).map((s) => s.name);
}

export function keptShapes(specs: readonly ParamSpec[], compress: readonly string[]): NamedShape[] {
  return specs.filter((s) => !compress.includes(s.name)).map((s) => ({ name: KEPT + s.name, shape: [...s.shape] }));
}

/** Initial values of the kept leaves, from the standard initialisation. */
export function keptInit(specs: readonly ParamSpec[], compress: readonly string[], base: HostParams, into: HostParams): void {
  for (const s of specs) if (!compress.includes(s.name)) into[KEPT + s.name] = base[s.name]!;
}

/**
 * The model's tree, in model order: each compressed leaf from `generate` (called in that order, so a
 * method may cut its leaves from one vector), each kept leaf passed through from `trainable`.
 */
export function assembleLeaves(specs: readonly ParamSpec[], compress: readonly string[], trainable: Params, generate: (spec: ParamSpec) => np.Array): Params {
  const out: Params = {};
  for (const s of specs) out[s.name] = compress.includes(s.name) ? generate(s) : trainable[KEPT + s.name]!;
  return out;
}

/**
 * The compressed leaves cut, in model order, from one flat vector (MCNC's chunks, PRANC's bases);
 * the rest passed through. Consumes `flat`.
 */
export function cutLeaves(specs: readonly ParamSpec[], compress: readonly string[], trainable: Params, flat: np.Array): Params {
  let at = 0;
  const out = assembleLeaves(specs, compress, trainable, (s) => {
    const size = sizeOf(s.shape);
    at += size;
    return flat.ref.slice([at - size, at]).reshape(s.shape);
  });
  flat.dispose();
  return out;
}

/** The compressed leaves of `host`, concatenated in model order, zero-padded to `length`. */
export function flattenCompressed(specs: readonly ParamSpec[], compress: readonly string[], host: HostParams, length: number): Float32Array {
  const flat = new Float32Array(length);
  let at = 0;
  for (const s of specs) {
    if (!compress.includes(s.name)) continue;
    flat.set(host[s.name]!, at);
    at += sizeOf(s.shape);
  }
  return flat;
}

/**
 * theta_0 of a residual form: an adapter's base weights, or else the standard initialisation drawn
 * from the seed (regenerated, never stored).
 */
export async function theta0(specs: readonly ParamSpec[], seed: number, base?: HostParams): Promise<HostParams> {
  return base ?? initParams(specs, seed);
}

/**
 * For methods that train the network's own leaves (dense, prune, quant): those tensors, starting at
 * the standard initialisation or at given trained weights.
 */
export const trainsTheWeights = {
  startsFromWeights: true,
  trainableShapes: (_config: object, specs: readonly ParamSpec[]): NamedShape[] => specs.map((s) => ({ name: s.name, shape: [...s.shape] })),
  init: async (_config: object, specs: readonly ParamSpec[], seed: number, start?: HostParams): Promise<HostParams> => start ?? initParams(specs, seed),
};

/** A post-training encoding, leaf by leaf: each compressed leaf through `encodeLeaf`, kept leaves as float32. */
export function encodeLeafwise(specs: readonly ParamSpec[], compress: readonly string[], weights: HostParams, encodeLeaf: (spec: ParamSpec, w: Float32Array) => StoredTensor[]): StoredTensor[] {
  return specs.flatMap((s) => (compress.includes(s.name) ? encodeLeaf(s, weights[s.name]!) : [{ name: KEPT + s.name, shape: [...s.shape], data: weights[s.name]! }]));
}

/**
 * The weights back from `encodeLeafwise`'s tensors. Every stored tensor must be read by some leaf
 * and every leaf must come out at its size: a file with more, fewer or misshapen tensors is refused.
 */
export function decodeLeafwise(specs: readonly ParamSpec[], compress: readonly string[], stored: StoredReader, decodeLeaf: (spec: ParamSpec, stored: StoredReader) => Float32Array): HostParams {
  const read = new Set<string>();
  const tracked: StoredReader = {
    shapes: stored.shapes,
    floats: (name) => (read.add(name), stored.floats(name)),
    codes: (name, bits) => (read.add(name), stored.codes(name, bits)),
  };
  const out: HostParams = {};
  for (const s of specs) {
    const w = compress.includes(s.name) ? decodeLeaf(s, tracked) : tracked.floats(KEPT + s.name);
    if (w.length !== sizeOf(s.shape)) throw new UserError(`${s.name}: the file gives ${w.length} weights, the leaf has ${sizeOf(s.shape)}`);
    out[s.name] = w;
  }
  const extra = stored.shapes.filter((t) => !read.has(t.name)).map((t) => t.name);
  if (extra.length > 0) throw new UserError(`unexpected tensors ${extra.join(", ")}`);
  return out;
}
