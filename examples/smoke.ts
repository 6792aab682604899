import { initEngine } from "../src/index.js";
import { loadDataset } from "../src/data/dataset.js";
import { buildModel } from "../src/model/models.js";
import { findMethod } from "../src/methods/index.js";
import { train } from "../src/train/trainer.js";
await initEngine();
const t0 = performance.now();
const data = loadDataset(undefined, { trainLimit: Number(process.env.LIMIT ?? 0) });
console.log("load", (performance.now() - t0).toFixed(0), "ms", data.mean, data.std);
const modelName = process.env.MODEL ?? "mlp";
for (const mname of (process.env.METHODS ?? "dense,mcnc").split(",")) {
  const model = buildModel(modelName, data.imageShape, data.numClasses);
  const method = findMethod(mname)!;
  const config = method.configure(JSON.parse(process.env.CFG ?? "{}"), model.specs);
  console.log(mname, JSON.stringify(config));
  const r = await train(model, method, config, data, {
    epochs: Number(process.env.EPOCHS ?? 1), batch: 128, seed: 0, lr: process.env.LR ? Number(process.env.LR) : undefined,
    onEpoch: (e) => console.log(JSON.stringify(e)),
  });
  console.log(mname, r.accuracy, r.trainSamplesPerS.toFixed(0));
}
