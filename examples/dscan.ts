import { initEngine, loadDataset, buildModel, findMethod, train } from "../src/index.js";
await initEngine();
const data = loadDataset(undefined, { trainLimit: 6400, testLimit: 1000 });
const model = buildModel("mlp", data.imageShape, data.numClasses);
const m = findMethod("mcnc")!;
for (const d of (process.env.DS ?? "1600,1955,1956,1960,1968,2000,2048").split(",").map(Number)) {
  const config = m.configure({ d }, model.specs);
  const r = await train(model, m, config, data, { epochs: 2, batch: 128, seed: 0 });
  console.log(d, r.history.map((h) => h.samplesPerS.toFixed(0)).join(" "));
}
