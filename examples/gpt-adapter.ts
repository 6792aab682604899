/**
 * npm run demo:gpt: the language-model job through the public API. Loads the GPT pretrained on the
 * State of the Union addresses (data/models/gpt-sotu.mcnc), measures it on Moby-Dick, fine-tunes an
 * adapter of a few hundred numbers (MCNC generating LoRA factors of the attention, the paper's
 * setting), saves only the adapter, and samples text from the base and from the adapted model.
 */
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import {
  bundledPath,
  configureAdapter,
  countParams,
  decodeModelFile,
  defaultWarmup,
  encodeModelFile,
  findMethod,
  initEngine,
  loadText,
  producedSpecs,
  readModelFile,
  textTask,
  timedRebuild,
  toDevice,
  train,
  weightsHash,
  writeFileAtomic,
  type GptConfig,
  type HostParams,
} from "../src/index.js";
import { gptDecoder } from "../src/generate/decoder.js";
import { generate } from "../src/generate/sample.js";

const STEPS = Number(process.env.DEMO_STEPS ?? 150);
const RATIO = 1000; // the adapter stores 0.1% as many numbers as the base has parameters
const baseFile = join(bundledPath("sotu"), "..", "models", "gpt-sotu.mcnc");
const outDir = join(process.cwd(), "out");
mkdirSync(outDir, { recursive: true });

await initEngine();
const base = readModelFile(baseFile);
const model = base.model;
const description = model.description;
if (description.name !== "gpt") throw new Error(`${baseFile} is not a GPT`);
const gpt: GptConfig = description;
const baseWeights = (await timedRebuild(base, 0)).params;
const task = textTask(await loadText(bundledPath("moby-dick"), { name: "moby-dick" }), model, { evalTokens: 32768 });
const onMoby = await task.evaluate(toDevice(model.specs, baseWeights));
console.log(`${basename(baseFile)}: a ${gpt.layers}-layer GPT of ${countParams(model.specs)} parameters; on Moby-Dick ${onMoby.bits_per_byte!.toFixed(3)} bits per byte\n`);

const method = findMethod("mcnc-lora")!;
const { config, leaves } = configureAdapter(method, { ratio: RATIO }, model);
const stored = countParams(method.trainableShapes(config, producedSpecs(model, { leaves })));
console.log(`adapter: mcnc-lora on ${leaves.join(", ")}: ${stored} stored numbers, ${STEPS} steps`);
const run = await train(model, method, config, task, {
  steps: STEPS,
  batch: 32,
  seed: 0,
  schedule: { kind: "cosine", warmup: defaultWarmup(STEPS) },
  adapter: { base: baseWeights, leaves },
  onEpoch: (e) => console.log(`  step ${e.step}: loss ${e.loss.toFixed(3)}, ${e.metrics.bits_per_byte!.toFixed(3)} bits per byte, ${e.rate.toFixed(0)} tokens/s`),
});
const file = join(outDir, "moby-adapter.mcnc");
const bytes = encodeModelFile(
  { model: model.description, method: { name: method.name, config }, adapter: { base_sha256: weightsHash(model.specs, baseWeights), leaves }, seed: 0, trainable: run.trainable },
  model,
  method,
);
writeFileAtomic(file, bytes);
console.log(`wrote ${file}: ${bytes.length} bytes (the base is ${base.bytes}); Moby-Dick ${onMoby.bits_per_byte!.toFixed(3)} -> ${run.metrics.bits_per_byte!.toFixed(3)} bits per byte\n`);

async function sample(weights: HostParams): Promise<string> {
  const decoder = gptDecoder(gpt, toDevice(model.specs, weights));
  const out: number[] = [];
  for await (const b of generate(decoder, new TextEncoder().encode("The ship"), { tokens: 240, temperature: 0.8, topK: 0, seed: 7 })) out.push(b);
  decoder.dispose();
  return `The ship${new TextDecoder().decode(Uint8Array.from(out))}`;
}
const adapted = (await timedRebuild(decodeModelFile(bytes, file), 3, baseWeights)).params;
console.log(`base:\n${await sample(baseWeights)}\n\nwith the adapter:\n${await sample(adapted)}\n`);
console.log(`try: npx mcnc generate --model ${baseFile} --adapter ${file} --prompt "Call me Ishmael."`);
