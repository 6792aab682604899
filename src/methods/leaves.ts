/**
 * Which model leaves a method compresses and which it keeps as they are: the same choice and the same
 * naming for every method, so files and flags read alike.
 */
import { UserError } from "../errors.js";
import type { numpy as np } from "@jax-js/jax";
import type { HostParams, NamedShape, ParamSpec, Params } from "../model/params.js";

/** Stored name of a leaf kept dense. */
export const KEPT = "keep/";

/** Resolve --compress: 'weights' (default: matrices and kernels), 'all', or a list of leaf names. */
export function chooseCompressed(spec: unknown, specs: readonly ParamSpec[]): string[] {
  if (spec === undefined || spec === "weights") return specs.filter((s) => s.role === "weight").map((s) => s.name);
  if (spec === "all") return specs.map((s) => s.name);
  const names = Array.isArray(spec) ? spec : typeof spec === "string" ? spec.split(",") : null;
  if (!names || names.length === 0) throw new UserError("--compress must be 'weights', 'all' or a list of parameter names");
  const known = new Set(specs.map((s) => s.name));
  for (const n of names) {
    if (typeof n !== "string" || !known.has(n)) {
      throw new UserError(`--compress: no parameter '${String(n)}' (the model has ${[...known].join(", ")})`);
    }
  }
  if (names.length === 0) throw new UserError("--compress selects no parameter");
  // Storage order follows the model, whatever order the user listed.
  return specs.filter((s) => names.includes(s.name)).map((s) => s.name);
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
