/**
 * Layer types that behave differently in training: dropout (seeded noise that the training step draws
 * per step, model.ts's Training) and batch normalisation (the batch's moments in training, stored
 * statistics otherwise; the statistics are measured after training, train/train-mode.ts).
 */
import { numpy as np } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { givenNames, leafName, leavesOf, type LayerType } from "./layer-kit.js";
import type { SequentialLayer } from "./layer-types.js";
import { sizeOf, type ParamSpec } from "./params.js";

type Of<T extends SequentialLayer["type"]> = LayerType<Extract<SequentialLayer, { type: T }>>;

export const MAX_DROPOUT = 0.9;
const EPSILON = 1e-5;

/** The statistics' leaf names: a batch normalisation's mean and variance. */
export const statisticNames = (prefix: string) => ({ mean: `${prefix}.mean`, variance: `${prefix}.var` });

/** Per-channel leaves: gain and bias (not compressed by default, as in the paper), then the statistics. */
function batchNormLeaves(layer: SequentialLayer, input: number[], prefix: string): ParamSpec[] {
  const c = input.at(-1)!;
  const { mean, variance } = statisticNames(prefix);
  return [
    { name: leafName(layer, "gain", prefix), shape: [c], role: "gain", fanIn: c },
    { name: leafName(layer, "bias", prefix), shape: [c], role: "bias", fanIn: c },
    { name: mean, shape: [c], role: "statistic", fanIn: c },
    { name: variance, shape: [c], role: "statistic", fanIn: c },
  ];
}

export const TRAINING_TYPES: { dropout: Of<"dropout">; batchnorm: Of<"batchnorm"> } = {
  dropout: {
    parse(e, at) {
      const rate = e.rate;
      if (typeof rate !== "number" || !(rate > 0 && rate <= MAX_DROPOUT)) throw new UserError(`${at}.rate must be a number above 0 and at most ${MAX_DROPOUT}, got ${JSON.stringify(rate)?.slice(0, 40)}`);
      return { type: "dropout", rate };
    },
    plan: (_, input) => ({ leaves: [], output: input }),
    // Inverted dropout: kept values are scaled by 1 / (1 - rate) in training, so evaluation is the identity.
    apply(layer, x, c) {
      const u = c.training?.noise?.[c.prefix];
      if (!u) return x;
      return x.mul(np.greaterEqual(u, layer.rate).astype(x.dtype).mul(1 / (1 - layer.rate)));
    },
    working: (_, input) => sizeOf(input),
    noise: (_, input, prefix) => [{ name: prefix, shape: input }],
  },
  batchnorm: {
    parse: (e, at) => ({ type: "batchnorm", ...givenNames(e, at) }),
    plan: (layer, input, _at, prefix) => ({ leaves: batchNormLeaves(layer, input, prefix), output: input }),
    apply(layer, x, c) {
      const { leaves: [gain, bias] } = leavesOf(layer, ["gain", "bias"], c);
      const names = statisticNames(c.prefix);
      const shape = [...x.shape.slice(0, -1).map(() => 1), x.shape.at(-1)!];
      if (!c.training) {
        const [mean, variance] = [c.params[names.mean]!, c.params[names.variance]!];
        return x.sub(mean.reshape(shape)).div(np.sqrt(variance.reshape(shape).add(EPSILON))).mul(gain!).add(bias!);
      }
      // Training normalises by the batch: the stored statistics are not read (and are measured afterwards).
      c.params[names.mean]?.dispose();
      c.params[names.variance]?.dispose();
      // Every axis but the channels': the batch, and the positions of an image or a sequence.
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const mean = x.ref.mean(axes, { keepdims: true });
      const centred = x.sub(mean.ref);
      const variance = centred.ref.mul(centred.ref).mean(axes, { keepdims: true });
      const moments = c.training.moments;
      if (moments) {
        moments[names.mean] = mean.ref.reshape([shape.at(-1)!]);
        // The mean square, so that batches combine into the whole sample's variance.
        moments[names.variance] = variance.ref.add(mean.ref.mul(mean.ref)).reshape([shape.at(-1)!]);
      }
      mean.dispose();
      return centred.div(np.sqrt(variance.add(EPSILON))).mul(gain!).add(bias!);
    },
  },
};
