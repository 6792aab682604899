/**
 * Adapters: a method fine-tuning a frozen pretrained model (its base). The method produces only the
 * adapted leaves, in its residual form (base + a delta that starts at zero); every other leaf is the
 * base's as it is. A file then stores the method's numbers and the base's content hash, nothing of
 * the base itself.
 */
import { UserError } from "../errors.js";
import type { Model } from "../model/model.js";
import { countParams, type ParamSpec } from "../model/params.js";
import { chooseCompressed } from "./leaves.js";
import { ratioValue, type Method, type OptionValues } from "./method.js";

/** Which leaves an adapter produces, and the base it was trained on. */
export interface AdapterInfo {
  /** SHA-256 of the base's weights (format/weights-hash.ts). */
  base_sha256: string;
  leaves: string[];
}

/** The leaves a method produces: all of the model's, or an adapter's. */
export function producedSpecs(model: Pick<Model, "specs">, adapter?: { leaves: readonly string[] }): ParamSpec[] {
  return adapter ? model.specs.filter((s) => adapter.leaves.includes(s.name)) : model.specs;
}

/**
 * Configure `method` as an adapter on `model` from flag values: `compress` picks the adapted leaves
 * (default: the model's adapter targets), and `ratio` counts the base's parameters against the
 * adapter's stored numbers (0.1% of the base is `--ratio 1000`).
 */
export function configureAdapter(method: Method, values: OptionValues, model: Model): { config: object; leaves: string[] } {
  if (!method.adapterValues) {
    throw new UserError(`--method ${method.name} has no adapter form (it trains the weights themselves; with --init it fine-tunes all of them)`);
  }
  for (const [name, value] of Object.entries(method.adapterValues)) {
    if (values[name] !== undefined && values[name] !== value) throw new UserError(`--${name} ${String(values[name])} does not apply to an adapter (--init): it is always ${String(value)}`);
  }
  const leaves = chooseCompressed(values.compress ?? model.adapterTargets ?? "weights", model.specs);
  const specs = producedSpecs(model, { leaves });
  const inner: OptionValues = { ...values, ...method.adapterValues, compress: leaves };
  const ratio = ratioValue(values);
  if (ratio !== undefined) {
    const adapted = (ratio * countParams(specs)) / countParams(model.specs);
    if (!(adapted > 1)) {
      throw new UserError(`--ratio ${ratio} of the base's ${countParams(model.specs)} parameters allows more numbers than the adapted leaves hold (${countParams(specs)}): adapt more leaves with --compress, or raise --ratio`);
    }
    inner.ratio = adapted;
  }
  try {
    return { config: method.configure(inner, specs), leaves };
  } catch (e) {
    // The method saw the ratio over the adapted leaves; the user gave it over the whole base.
    if (values.ratio !== undefined && e instanceof UserError && /out of reach/.test(e.message)) {
      throw new UserError(`--ratio ${String(values.ratio)} is out of reach for --method ${method.name} as an adapter on ${leaves.length} leaves: it allows ${Math.floor(countParams(model.specs) / Number(values.ratio))} stored numbers`);
    }
    throw e;
  }
}
