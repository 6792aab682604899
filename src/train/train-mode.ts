/**
 * What a network in training mode needs beyond its batch: dropout's noise, drawn per step from the
 * seed (so a run repeats, and a resumed run continues, exactly), and batch normalisation's statistics,
 * measured after training instead of tracked as moving averages ("precise BN", Wu and Johnson 2021):
 * the training step stays a pure function, and the statistics are those of the weights that are stored.
 */
import { tree, type numpy as np } from "@jax-js/jax";
import { compile, put, putAll, readAll, type EngineName, type Tensor } from "../engine/program.js";
import { UserError } from "../errors.js";
import { KEPT } from "../methods/leaves.js";
import type { Model } from "../model/model.js";
import { statisticNames } from "../model/training-layers.js";
import { sizeOf, type HostParams, type ParamSpec, type Params } from "../model/params.js";
import { seededUniform, STREAM } from "../rng/seeded.js";
import type { Task } from "./tasks.js";

/** Dropout's noise for step `t`: uniform [0, 1) per layer, [batch, ...its input], on the engine (`on`, default the current one). */
export async function stepNoise(model: Pick<Model, "noise">, seed: number, t: number, batch: number, on?: EngineName): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  for (const [i, n] of (model.noise ?? []).entries()) out[n.name] = put(await seededUniform(seed, [STREAM.dropout, t, i], batch * sizeOf(n.shape), 0, 1), [batch, ...n.shape], on);
  return out;
}

/** Training samples the statistics are measured over (fewer where the training set is smaller). */
export const STATISTICS_SAMPLES = 4096;

/** Batch normalisation's statistics in a training run: measured for a round's evaluation, and for the file. */
export interface Statistics {
  /** The tree (on the engine) with its statistics replaced by those measured for its weights. */
  measured(params: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  /**
   * Measures them for the file's weights (`produced`, over an adapter's `base`) and writes them where the
   * file keeps them: into `produced`, and into the method's stored tensors as the leaf or keep/leaf (a
   * method with a codec stores `produced` itself).
   */
  store(produced: HostParams, base: HostParams | undefined, stored: HostParams, method: { name: string; codec?: unknown }): Promise<void>;
}

/** The statistics of `specs`' statistic leaves in a run of `seed` (statisticsMeter); undefined where there are none. */
export function batchStatistics(model: Model, specs: readonly ParamSpec[], task: Task, batch: number, seed: number): Statistics | undefined {
  const leaves = specs.filter((s) => s.role === "statistic");
  const measure = statisticsMeter(model, leaves, task, batch);
  if (!measure) return undefined;
  return {
    async measured(params) {
      const stats = await measure(params, seed);
      for (const s of leaves) {
        params[s.name]!.dispose();
        params[s.name] = put(stats[s.name]!, s.shape);
      }
      return params;
    },
    async store(produced, base, stored, method) {
      const weights = putAll(model.specs, { ...base, ...produced });
      const stats = await measure(weights, seed);
      tree.dispose(weights);
      for (const s of leaves) {
        const at = [s.name, KEPT + s.name].find((n) => n in stored);
        if (!at && !method.codec) throw new UserError(`--method ${method.name} does not store ${s.name} as it is, which batch normalisation's statistics need`);
        produced[s.name] = stats[s.name]!;
        if (at) stored[at] = stats[s.name]!;
      }
    },
  };
}

/**
 * Measures the statistics of `leaves` (batch normalisations' means and variances) for given weights:
 * the network runs in training mode, without dropout, over the first training batches of the seed's
 * order, and each channel's mean and variance is taken over all of those samples. Undefined where the
 * model has no statistics. Does not consume the weights.
 */
function statisticsMeter(model: Model, leaves: readonly ParamSpec[], task: Task, batch: number): ((params: Record<string, Tensor>, seed: number) => Promise<HostParams>) | undefined {
  if (leaves.length === 0) return undefined;
  const moments = compile(
    (params: Params, x: np.Array) => {
      const out: Params = {};
      model.apply(params, x, undefined, { moments: out }).dispose();
      return out;
    },
    { name: `${model.name} statistics` },
  );
  const names = leaves.map((s) => s.name);
  return async (params, seed) => {
    const batches = Math.max(1, Math.min(task.stepsPerEpoch(batch), Math.ceil(STATISTICS_SAMPLES / batch)));
    const sums = Object.fromEntries(leaves.map((s) => [s.name, new Float64Array(sizeOf(s.shape))]));
    for (let i = 0; i < batches; i++) {
      const b = await task.batch(seed, i, batch);
      const got = await readAll(await moments(tree.ref(params), put(b.x, b.xShape)));
      for (const name of names) got[name]!.forEach((v, j) => (sums[name]![j]! += v));
    }
    // Each pair: the mean, and the mean square that becomes the variance about it.
    const out: HostParams = {};
    for (const prefix of names.filter((n) => n.endsWith(".mean")).map((n) => n.slice(0, -".mean".length))) {
      const { mean: name, variance } = statisticNames(prefix);
      const mean = sums[name]!.map((s) => s / batches);
      out[name] = Float32Array.from(mean);
      out[variance] = Float32Array.from(sums[variance]!, (s, j) => Math.max(s / batches - mean[j]! ** 2, 0));
    }
    return out;
  };
}
