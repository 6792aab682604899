/**
 * MCNC's ablations, in the shape of the paper's Tables 5-7: MCNC on the MLP at 100x, 3 epochs,
 * several seeds, one knob changed at a time from the defaults, same training loop.
 *   --study init:  starting points for (alpha, beta), and the residual form
 *   --study shape: k (and so d) at a fixed ratio, the input bound L, m, generator width and depth
 *   --study bound: alpha as trained (unbounded), through tanh (a smooth box), or clipped to [-1, 1]
 *   --study rates: separate learning rates for alpha and beta, as a reparameterisation (Adam's step on
 *                  x stored as x / c moves x by c times the rate), so the trainer itself is unchanged
 * JSON lines on stdout.   node dist/bench/ablate.js --study init|shape|bound|rates [--seeds 0,1] [--epochs 3] [--limit N]
 */
import { numpy as np } from "@jax-js/jax";
import { buildModel, defaultBatch, findMethod, imageTask, initEngine, loadDataset, train, type HostParams, type McncConfig, type Method } from "../src/index.js";
import { option } from "./bench-args.js";

const opt = option;
const seeds = opt("seeds", "0,1").split(",").map(Number);
const epochs = Number(opt("epochs", "3"));
const study = opt("study", "init");

await initEngine();
const data = loadDataset(undefined, { trainLimit: Number(opt("limit", "0")) });
const model = buildModel({ name: "mlp", input: data.imageShape, classes: data.numClasses });
const mcnc = findMethod("mcnc") as Method<McncConfig>;

type Variant = {
  name: string;
  values?: Record<string, unknown>;
  adjust?: (init: HostParams, config: McncConfig) => void;
  /** What the generator sees in place of alpha. */
  bound?: (alpha: np.Array) => np.Array;
  /** Learning-rate multipliers for alpha and beta. */
  rates?: { alpha: number; beta: number };
};
const uniformish = (i: number) => Math.sin(i * 12.9898 + 0.5) * 0.5 + Math.sin(i * 78.233) * 0.5;
const initVariants: Variant[] = [
  { name: "alpha U(-1,1), beta = chunk norm of the standard init (default)" },
  { name: "alpha U(-1,1), beta = 1", adjust: (p) => p.beta!.fill(1) },
  { name: "alpha U(-1,1), beta = 0.1 x chunk norm", adjust: (p) => p.beta!.forEach((v, i, a) => (a[i] = 0.1 * v)) },
  { name: "alpha U(-0.1,0.1) (near the origin), beta = chunk norm", adjust: (p) => p.alpha!.forEach((v, i, a) => (a[i] = 0.1 * v)) },
  { name: "alpha spread over [-3,3] (deterministic), beta = chunk norm", adjust: (p) => p.alpha!.forEach((_, i, a) => (a[i] = 3 * uniformish(i))) },
  { name: "residual: theta_0(seed) + beta phi(alpha), beta = 0", values: { residual: true } },
];
const shapeVariants: Variant[] = [
  { name: "defaults: k 16, L 10, m 1, hidden 64,64", values: {} },
  ...[4, 8, 32, 64].map((k) => ({ name: `k ${k}`, values: { k } })),
  ...[5, 20].map((L) => ({ name: `L ${L}`, values: { L } })),
  { name: "m 2", values: { m: 2 } },
  ...[[32, 32], [128, 128], [64], [64, 64, 64]].map((hidden) => ({ name: `hidden ${hidden.join(",")}`, values: { hidden } })),
];
const boundVariants: Variant[] = [
  { name: "alpha unbounded (default)" },
  { name: "tanh(alpha): a smooth box", bound: (a) => np.tanh(a) },
  { name: "clip(alpha, -1, 1)", bound: (a) => np.clip(a, -1, 1) },
];
const rateVariants: Variant[] = [
  [1, 1],
  [1, 0.1],
  [1, 10],
  [2, 1],
  [0.5, 1],
  [5, 1],
].map(([alpha, beta]) => ({ name: `alpha rate x${alpha}, beta rate x${beta}${alpha === 1 && beta === 1 ? " (default)" : ""}`, rates: { alpha: alpha!, beta: beta! } }));
const variants = { shape: shapeVariants, bound: boundVariants, rates: rateVariants }[study] ?? initVariants;

/** mcnc training alpha and beta at `rates` times the run's learning rate: stored divided by the rate, read multiplied. */
function rated({ alpha, beta }: { alpha: number; beta: number }): Method<McncConfig> {
  return {
    ...mcnc,
    async init(config, specs, seed) {
      const p = await mcnc.init(config, specs, seed);
      p.alpha!.forEach((v, i, a) => (a[i] = v / alpha));
      p.beta!.forEach((v, i, a) => (a[i] = v / beta));
      return p;
    },
    stages(config, specs) {
      const stages = mcnc.stages(config, specs);
      const [first, last] = [stages[0]!, stages.at(-1)!];
      return stages.map((stage) =>
        stage === first
          ? (carry, trainable, frozen) => first(carry, { ...trainable, alpha: trainable.alpha!.mul(alpha) }, frozen)
          : stage === last
            ? (carry, trainable, frozen) => last(carry, { ...trainable, beta: trainable.beta!.mul(beta) }, frozen)
            : stage,
      );
    },
  };
}

/** mcnc with its first stage reading bound(alpha). */
function bounded(bound: (alpha: np.Array) => np.Array): Method<McncConfig> {
  return {
    ...mcnc,
    stages(config, specs) {
      const [first, ...rest] = mcnc.stages(config, specs);
      return [(carry, trainable, frozen) => first!(carry, { ...trainable, alpha: bound(trainable.alpha!) }, frozen), ...rest];
    },
  };
}

/** Share of trained alpha entries outside [-1, 1], and the largest |alpha| (what the generator's first layer sees, times L). */
const outside = (alpha: Float32Array) => ({ share: +(alpha.filter((a) => Math.abs(a) > 1).length / alpha.length).toFixed(4), max: +Math.max(...alpha.map(Math.abs)).toFixed(3) });

for (const v of variants) {
  const config = mcnc.configure({ ratio: 100, ...v.values }, model.specs);
  const base = v.bound ? bounded(v.bound) : v.rates ? rated(v.rates) : mcnc;
  const method: Method<McncConfig> = v.adjust
    ? {
        ...mcnc,
        init: async (c, specs, seed) => {
          const p = await base.init(c, specs, seed);
          v.adjust!(p, c);
          return p;
        },
      }
    : base;
  for (const seed of seeds) {
    const r = await train(model, method, config, imageTask(data, model), { epochs, batch: defaultBatch(model, data.train.count), seed });
    process.stdout.write(
      `${JSON.stringify({ bench: study, variant: v.name, config, seed, epochs, accuracy: r.metrics.accuracy!, final_loss: +r.history.at(-1)!.loss.toFixed(5), first_epoch_accuracy: r.history[0]!.metrics.accuracy, train_seconds: +r.trainSeconds.toFixed(1), samples: data.train.count, alpha_outside_unit_box: outside(r.trainable.alpha!) })}\n`,
    );
  }
}
