/**
 * The initialisation decision, measured: MCNC on the MLP at 100x, 3 epochs, several seeds, each
 * variant a different starting point for (alpha, beta) with the same generator and training loop.
 * JSON lines on stdout.   node dist/bench/ablate-init.js [--seeds 0,1] [--epochs 3]
 */
import { buildModel, findMethod, initEngine, loadDataset, train, type HostParams, type McncConfig, type Method } from "../src/index.js";

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : fallback);
const seeds = opt("seeds", "0,1").split(",").map(Number);
const epochs = Number(opt("epochs", "3"));

await initEngine();
const data = loadDataset();
const model = buildModel("mlp", data.imageShape, data.numClasses);
const mcnc = findMethod("mcnc") as Method<McncConfig>;

type Variant = { name: string; values?: Record<string, unknown>; adjust?: (init: HostParams, config: McncConfig) => void };
const uniformish = (i: number) => Math.sin(i * 12.9898 + 0.5) * 0.5 + Math.sin(i * 78.233) * 0.5;
const variants: Variant[] = [
  { name: "alpha U(-1,1), beta = chunk norm of the standard init (default)" },
  { name: "alpha U(-1,1), beta = 1", adjust: (p) => p.beta!.fill(1) },
  { name: "alpha U(-1,1), beta = 0.1 x chunk norm", adjust: (p) => p.beta!.forEach((v, i, a) => (a[i] = 0.1 * v)) },
  { name: "alpha U(-0.1,0.1) (near the origin), beta = chunk norm", adjust: (p) => p.alpha!.forEach((v, i, a) => (a[i] = 0.1 * v)) },
  { name: "alpha spread over [-3,3] (deterministic), beta = chunk norm", adjust: (p) => p.alpha!.forEach((_, i, a) => (a[i] = 3 * uniformish(i))) },
  { name: "residual: theta_0(seed) + beta phi(alpha), beta = 0", values: { residual: true } },
];

for (const v of variants) {
  const config = mcnc.configure({ ratio: 100, ...v.values }, model.specs);
  const method: Method<McncConfig> = v.adjust
    ? {
        ...mcnc,
        init: async (c, specs, seed) => {
          const p = await mcnc.init(c, specs, seed);
          v.adjust!(p, c);
          return p;
        },
      }
    : mcnc;
  for (const seed of seeds) {
    const r = await train(model, method, config, data, { epochs, batch: 128, seed });
    process.stdout.write(
      `${JSON.stringify({ bench: "init", variant: v.name, seed, epochs, accuracy: r.accuracy, final_loss: +r.history.at(-1)!.loss.toFixed(5), first_epoch_accuracy: r.history[0]!.accuracy })}\n`,
    );
  }
}
