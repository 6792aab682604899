/**
 * MCNC's ablations, in the shape of the paper's Tables 5-7: MCNC on the MLP at 100x, 3 epochs,
 * several seeds, one knob changed at a time from the defaults, same training loop.
 *   --study init:  starting points for (alpha, beta), and the residual form
 *   --study shape: k (and so d) at a fixed ratio, the input bound L, m, generator width and depth
 *   --study bound: alpha as trained (unbounded), through tanh (a smooth box), or clipped to [-1, 1]
 * JSON lines on stdout.   node dist/bench/ablate.js --study init|shape [--seeds 0,1] [--epochs 3]
 */
import { numpy as np } from "@jax-js/jax";
import { buildModel, findMethod, imageTask, initEngine, loadDataset, train, type HostParams, type McncConfig, type Method } from "../src/index.js";

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : fallback);
const seeds = opt("seeds", "0,1").split(",").map(Number);
const epochs = Number(opt("epochs", "3"));
const study = opt("study", "init");

await initEngine();
const data = loadDataset();
const model = buildModel({ name: "mlp", input: data.imageShape, classes: data.numClasses });
const mcnc = findMethod("mcnc") as Method<McncConfig>;

type Variant = {
  name: string;
  values?: Record<string, unknown>;
  adjust?: (init: HostParams, config: McncConfig) => void;
  /** What the generator sees in place of alpha. */
  bound?: (alpha: np.Array) => np.Array;
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
const variants = study === "shape" ? shapeVariants : study === "bound" ? boundVariants : initVariants;

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
  const base = v.bound ? bounded(v.bound) : mcnc;
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
    const r = await train(model, method, config, imageTask(data, model), { epochs, batch: 128, seed });
    process.stdout.write(
      `${JSON.stringify({ bench: study, variant: v.name, config, seed, epochs, accuracy: r.metrics.accuracy!, final_loss: +r.history.at(-1)!.loss.toFixed(5), first_epoch_accuracy: r.history[0]!.metrics.accuracy, train_seconds: +r.trainSeconds.toFixed(1), alpha_outside_unit_box: outside(r.trainable.alpha!) })}\n`,
    );
  }
}
