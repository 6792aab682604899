/**
 * npm run demo: the main job on the bundled data, through the public API. Trains the MLP densely and
 * in MCNC form at 100x fewer stored numbers, saves the MCNC model, rebuilds it from the file, and
 * prints both side by side.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  buildModel,
  countParams,
  decodeModelFile,
  encodeModelFile,
  findMethod,
  imageTask,
  initEngine,
  loadDataset,
  timedRebuild,
  train,
  writeFileAtomic,
  type EpochStats,
  type McncConfig,
} from "../src/index.js";

const EPOCHS = Number(process.env.DEMO_EPOCHS ?? 3);
const outDir = join(process.cwd(), "out");
mkdirSync(outDir, { recursive: true });

await initEngine();
const data = loadDataset();
const model = buildModel({ name: "mlp", input: data.imageShape, classes: data.numClasses });
const params = countParams(model.specs);
console.log(`Fashion-MNIST: ${data.train.count} training and ${data.test.count} test images; MLP 784-256-10 with ${params} parameters\n`);

const log = (name: string) => (e: EpochStats) =>
  console.log(`  ${name} epoch ${e.epoch}/${EPOCHS}: loss ${e.loss.toFixed(4)}, test accuracy ${e.metrics.accuracy!.toFixed(4)}, ${e.rate.toFixed(0)} samples/s`);

const dense = findMethod("dense")!;
console.log("dense (the reference):");
const denseRun = await train(model, dense, {}, imageTask(data, model), { epochs: EPOCHS, batch: 128, seed: 0, onEpoch: log("dense") });

const mcnc = findMethod("mcnc")!;
const config = mcnc.configure({ ratio: 100 }, model.specs) as McncConfig;
console.log(`\nmcnc (k=${config.k}, d=${config.d}, generator ${[config.k, ...config.hidden, config.d].join("-")}, L=${config.L}):`);
const mcncRun = await train(model, mcnc, config, imageTask(data, model), { epochs: EPOCHS, batch: 128, seed: 0, onEpoch: log("mcnc") });

const file = join(outDir, "mlp-mcnc.mcnc");
const bytes = encodeModelFile(
  { model: model.description, method: { name: "mcnc", config }, seed: 0, trainable: mcncRun.trainable, meta: { accuracy: mcncRun.metrics.accuracy } },
  model,
  mcnc,
);
writeFileAtomic(file, bytes);
const rebuilt = await timedRebuild(decodeModelFile(bytes, file));
const exact = model.specs.every((s) => rebuilt.params[s.name]!.every((v, i) => Object.is(v, mcncRun.params[s.name]![i])));
const stored = countParams(mcnc.trainableShapes(config, model.specs));

const row = (cells: string[]) => console.log(cells.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(16))).join(""));
console.log("");
row(["", "accuracy", "stored numbers", "file bytes", "train samples/s"]);
row(["dense", denseRun.metrics.accuracy!.toFixed(4), String(params), String(params * 4), denseRun.rate.toFixed(0)]);
row(["mcnc", mcncRun.metrics.accuracy!.toFixed(4), `${stored} (${(params / stored).toFixed(1)}x)`, `${bytes.length} (${((4 * params) / bytes.length).toFixed(1)}x)`, mcncRun.rate.toFixed(0)]);
console.log(`\nwrote ${file}: rebuilding its ${params} weights takes ${rebuilt.warmMs.toFixed(1)} ms (first time ${rebuilt.coldMs.toFixed(0)} ms), ${exact ? "bit-identical to" : "DIFFERENT FROM"} the trained weights`);
console.log(`try: npx mcnc inspect ${file}   or   npx mcnc eval ${file}`);
if (!exact) process.exitCode = 1;
