/**
 * mcnc train: train a model through a method (from scratch, from a file's weights, or as an adapter
 * on a frozen base), save it, and prove the file rebuilds it exactly.
 */
import { readWholeFile, regularFileSize } from "../../files.js";
import { basename, resolve } from "node:path";
import { tree } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../format/checkpoint-file.js";
import { decodeModelFile, encodeModelFile, timedRebuild, type LoadedModel, type ModelFile } from "../../format/model-file.js";
import { readModelFile } from "../../format/read-file.js";
import { weightsHash } from "../../format/weights-hash.js";
import { configureAdapter, producedSpecs } from "../../methods/adapter.js";
import { findMethod, methodNames, type Method } from "../../methods/index.js";
import type { Model } from "../../model/model.js";
import { countParams, toDevice } from "../../model/params.js";
import { PLATEAU_DEFAULTS } from "../../train/plateau.js";
import { defaultWarmup, type ScheduleOptions } from "../../train/schedule.js";
import { defaultBatch, type Task } from "../../train/tasks.js";
import { checkTrainingMemory, runLength } from "../../train/budget.js";
import { train, type Adapter, type TrainResult } from "../../train/trainer.js";
import type { FlagValues } from "../args.js";
import { BATCH_FLAG, command, DATA_RUN_FLAGS, EVAL_TOKENS_FLAG, GPT_FLAGS, LIMIT_FLAG, MODEL_FLAG, print, round, SEED_FLAG, TEST_LIMIT_FLAG } from "../command.js";
import { optionFlags, optionValues, type OptionOwner } from "../option-flags.js";
import { Progress } from "../progress.js";
import { checkWritable, fileSize, jsonReport, metricLine, modelAndTask, sizeLines, startEngine, taskFor } from "./shared.js";

const allMethods = (): OptionOwner[] => methodNames().map((name) => findMethod(name)!);

const FLAGS = [
  MODEL_FLAG,
  ...GPT_FLAGS,
  { name: "method", type: "string", choices: methodNames(), help: "compression method", default: "mcnc" },
  { name: "epochs", type: "int", help: "passes over the training data (0 with --init: post-training compression only)", min: 0, max: 10000, defaultText: "3, or 1 for gpt" },
  { name: "steps", type: "int", help: "optimisation steps in all, instead of --epochs", min: 1, max: 1e9 },
  { name: "eval-every", type: "int", help: "steps between evaluations", min: 1, max: 1e9, defaultText: "an epoch" },
  EVAL_TOKENS_FLAG,
  {
    name: "init",
    type: "string",
    help: "start from this file: dense, prune and quant fine-tune its weights; the other methods train an adapter on it (a frozen base), storing only the adapter",
  },
  BATCH_FLAG,
  { name: "lr", type: "float", help: "Adam step size, above 0 and below 10", defaultText: "the method's: mcnc 0.02, dense 0.001; as an adapter mcnc-lora 0.2, mcnc 0.1, nola 0.1, lora 0.02" },
  { name: "schedule", type: "string", choices: ["plateau", "cosine"], help: "learning rate: reduce-on-plateau, or warm-up and cosine decay", defaultText: "plateau, or cosine for gpt" },
  { name: "warmup", type: "int", help: "cosine: steps of linear warm-up", min: 0, max: 1e9, defaultText: "a tenth of the run, at most 100" },
  { name: "patience", type: "int", help: "plateau: evaluation rounds without improvement before the rate halves", min: 0, max: 10000, default: PLATEAU_DEFAULTS.patience },
  { ...SEED_FLAG, help: "seed of everything random (stored in the file)" },
  { name: "out", type: "string", help: "output file", defaultText: "<model>-<method>.mcnc" },
  { name: "checkpoint-every", type: "int", help: "write the whole training state every N steps (to --checkpoint)", min: 1, max: 1e9 },
  { name: "checkpoint", type: "string", help: "checkpoint file", defaultText: "<out>.ckpt" },
  { name: "resume", type: "string", help: "continue a run from its checkpoint (same flags); the result is the uninterrupted run's, byte for byte" },
  { name: "store-bits", type: "int", help: "8: store the method's numbers as 8-bit codes (dense-kept leaves stay float32), or 32", default: 32 },
  LIMIT_FLAG,
  TEST_LIMIT_FLAG,
  ...DATA_RUN_FLAGS,
] as const;
type Flags = FlagValues<typeof FLAGS>;

/** Where the weights start: a file's (fine-tuning all of them), or a base under an adapter. */
function startingFile(f: Flags): LoadedModel | undefined {
  if (f.init === undefined) return undefined;
  const startFrom = readModelFile(f.init, { context: f.context });
  if (startFrom.file.adapter) throw new UserError(`--init ${f.init} is an adapter: merge it into its base first (mcnc merge)`);
  if (f.model !== undefined && f.model !== startFrom.model.name) throw new UserError(`--init ${f.init} holds a ${startFrom.model.name}, not --model ${f.model}`);
  for (const g of GPT_FLAGS) if (g.name !== "context" && f[g.name] !== undefined) throw new UserError(`--${g.name}: the size comes from --init ${f.init}`);
  return startFrom;
}

/** The flags' rules that need no data, checked before anything is read. */
function checkFlags(f: Flags, method: Method): void {
  if (f["store-bits"] !== 8 && f["store-bits"] !== 32) throw new UserError(`--store-bits must be 8 or 32, got ${f["store-bits"]}`);
  if (f["store-bits"] === 8 && method.codec) throw new UserError(`--store-bits does not apply to --method ${method.name}: it stores its own encoding, chosen by its own flags`);
  if (f.lr !== undefined && !(f.lr > 0 && f.lr < 10)) throw new UserError(`--lr must be in (0, 10), got ${f.lr}`);
  if (f.epochs !== undefined && f.steps !== undefined) throw new UserError("give --epochs or --steps, not both");
  if (f.epochs === 0 && f.init === undefined) throw new UserError("--epochs 0 needs --init FILE (weights to compress without training)");
  if (f["checkpoint-every"] === undefined && f.checkpoint !== undefined) throw new UserError("--checkpoint names where --checkpoint-every writes; give both");
  if (f.resume !== undefined) regularFileSize(f.resume);
}

async function run(f: Flags, _: string[], options: Record<string, unknown>): Promise<void> {
  const method = findMethod(f.method)!;
  const values = optionValues(method, allMethods(), options);
  checkFlags(f, method);
  const startFrom = startingFile(f);
  const adapting = startFrom !== undefined && !method.startsFromWeights;
  const modelName = startFrom?.model.name ?? f.model ?? "mlp";
  const epochs = f.steps === undefined ? (f.epochs ?? (modelName === "gpt" ? 1 : 3)) : undefined;
  // In the working directory, named after a spec file's name (never beside it, in someone's source tree).
  const out = resolve(f.out ?? `${basename(modelName).replace(/\.json$/i, "")}-${f.method}.mcnc`);
  checkWritable(out, "--out");
  const checkpointPath = resolve(f.checkpoint ?? `${out}.ckpt`);
  if (f["checkpoint-every"] !== undefined) checkWritable(checkpointPath, "--checkpoint");
  const progress = new Progress(process.stderr, !f.quiet);

  await startEngine(f);
  // Fine-tuning a file's weights prepares the data as the file records (its data set, scaling and classes);
  // an adapter trains on whatever data it is given.
  const { model, task } = startFrom ? { model: startFrom.model, task: await taskFor(startFrom.model, f, adapting ? undefined : startFrom.file.meta) } : await modelAndTask(f);
  const batch = f.batch ?? defaultBatch(model, task.samples);
  const startWeights = startFrom && (await timedRebuild(startFrom, 0)).params;
  const adapted = adapting ? configureAdapter(method, values, model) : undefined;
  const adapter: Adapter | undefined = adapted && { base: startWeights!, leaves: adapted.leaves };
  const config = adapted ? adapted.config : method.configure(values, model.specs);
  const specs = producedSpecs(model, adapter);
  const { total } = runLength(model, task, { epochs, steps: f.steps, batch, evalEvery: f["eval-every"] });
  checkTrainingMemory(model, method, config, specs, batch);
  const schedule: ScheduleOptions =
    (f.schedule ?? (model.kind === "language" ? "cosine" : "plateau")) === "cosine" ? { kind: "cosine", warmup: f.warmup ?? defaultWarmup(total) } : { kind: "plateau", patience: f.patience };
  const on = adapter ? `, an adapter on ${adapter.leaves.length} of ${model.specs.length} leaves of ${basename(f.init!)}` : "";
  progress.message(`mcnc: ${model.name} (${countParams(model.specs)} parameters) with ${method.name} ${JSON.stringify(config)}${on}, ${total} steps of ${batch}; ${task.size}`);
  for (const note of method.notes?.(config, specs) ?? []) process.stderr.write(`mcnc: note: ${note}\n`);

  const baseHash = adapter ? weightsHash(model.specs, adapter.base) : undefined;
  // Everything that decides the result: a checkpoint resumes only into the run that wrote it.
  const identity = { model: model.description, method: method.name, config, seed: f.seed, batch, lr: f.lr ?? null, schedule, total, eval_every: f["eval-every"] ?? null, data: task.data, data_size: task.size, limit: f.limit ?? null, test_limit: f["test-limit"] ?? null, eval_tokens: f["eval-tokens"] ?? null, init: startWeights ? weightsHash(model.specs, startWeights) : null, base: baseHash ?? null };
  const resume = f.resume === undefined ? undefined : decodeCheckpoint(readWholeFile(f.resume, "checkpoint"), f.resume, identity, method.trainableShapes(config, specs));
  if (resume) progress.message(`mcnc: resuming at step ${resume.step} of ${total} from ${f.resume}`);
  const every = f["checkpoint-every"];

  const result = await train(model, method, config, task, {
    epochs,
    steps: f.steps,
    evalEvery: f["eval-every"],
    batch,
    lr: f.lr,
    seed: f.seed,
    schedule,
    start: adapting ? undefined : startWeights,
    adapter,
    resume,
    checkpoint: every === undefined ? undefined : { every, save: (state) => writeFileAtomic(checkpointPath, encodeCheckpoint(identity, state)) },
    onStep: (p) => progress.step(p),
    onEpoch: (e) => progress.epoch(e),
  });

  const meta = {
    dataset: task.data,
    ...(epochs === undefined ? { steps: total } : { epochs }),
    batch,
    [`${task.metric}_f32`]: result.metrics[task.metric],
    ...task.recorded,
    ...(f.init === undefined ? {} : { init: basename(f.init) }),
    // A whole model fine-tuned from a Hugging Face folder reads text with that folder's tokenizer.
    ...(startFrom?.file.meta?.tokenizer_folder !== undefined && !adapter ? { tokenizer_folder: startFrom.file.meta.tokenizer_folder } : {}),
  };
  const file: ModelFile = {
    model: model.description,
    method: { name: method.name, config },
    ...(adapter ? { adapter: { base_sha256: baseHash!, leaves: adapter.leaves } } : {}),
    seed: f.seed,
    trainable: result.trainable,
    meta,
  };
  const saved = await saveAndCheck(out, file, model, method, f["store-bits"] as 8 | 32, result, task, adapter);
  report(f, { out, model, method, config, adapter, baseHash, task, result, total, ...saved });
}

/**
 * The file written, read back, and proved: it must rebuild exactly the weights training ended with (or,
 * stored at 8 bits, what those codes give: then the model is measured again).
 */
async function saveAndCheck(out: string, file: ModelFile, model: Model, method: Method, storeBits: 8 | 32, result: TrainResult, task: Task, adapter?: Adapter) {
  const bytes = encodeModelFile(file, model, method, { storeBits });
  writeFileAtomic(out, bytes);
  const loaded = decodeModelFile(bytes, out);
  const rebuilt = await timedRebuild(loaded, 3, adapter?.base);
  if (storeBits === 8) {
    const stored = toDevice(model.specs, rebuilt.params);
    const metrics = await task.evaluate(stored);
    tree.dispose(stored);
    return { loaded, rebuilt, metrics, storeBits };
  }
  for (const s of model.specs) {
    const a = rebuilt.params[s.name]!;
    const b = result.params[s.name]!;
    if (a.length !== b.length || !a.every((v, i) => Object.is(v, b[i]))) throw new Error(`rebuilt weights of ${s.name} differ from the trained ones`);
  }
  return { loaded, rebuilt, metrics: result.metrics, storeBits };
}

type Trained = Awaited<ReturnType<typeof saveAndCheck>> & {
  out: string;
  model: Model;
  method: Method;
  config: object;
  adapter?: Adapter;
  baseHash?: string;
  task: Task;
  result: TrainResult;
  total: number;
};

function report(f: Flags, t: Trained): void {
  const { out, model, task, result, rebuilt, metrics, storeBits, adapter } = t;
  const metric = task.metric;
  const size = fileSize(t.loaded);
  if (f.json) {
    const rateKey = task.unit === "tokens" ? "train_tokens_per_s" : "train_samples_per_s";
    print(
      JSON.stringify({
        command: "train",
        out,
        model: model.name,
        model_config: model.description,
        method: t.method.name,
        config: t.config,
        ...(adapter ? { adapter: { base: basename(f.init!), base_sha256: t.baseHash, leaves: adapter.leaves.length, adapted_params: countParams(producedSpecs(model, adapter)) } } : {}),
        seed: f.seed,
        ...roundMetrics(metrics),
        [`${metric}_f32`]: result.metrics[metric],
        store_bits: storeBits,
        ...jsonReport(size, rebuilt),
        steps: t.total,
        [rateKey]: round(result.rate, 1),
        engine: result.engine,
        train_seconds: round(result.trainSeconds, 3),
        history: result.history.map((h) => ({ ...h, metrics: roundMetrics(h.metrics), loss: round(h.loss, 5), trainSeconds: round(h.trainSeconds, 3), rate: round(h.rate, 1) })),
      }),
    );
    return;
  }
  print(`wrote ${out}${adapter ? ` (an adapter: it needs ${basename(f.init!)})` : ""}`);
  print(metricLine(metrics, storeBits === 8 ? ` (${result.metrics[metric]!.toFixed(4)} before 8-bit storage)` : ""));
  for (const line of sizeLines(size)) print(line);
  print(`rebuild          ${rebuilt.warmMs.toFixed(1)} ms (first ${rebuilt.coldMs.toFixed(0)} ms)${storeBits === 32 ? ", bit-identical to the trained weights" : ""}`);
  print(`training         ${result.rate.toFixed(0)} ${task.unit}/s on the ${result.engine} engine`);
}

function roundMetrics(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v, 6)]));
}

export const trainCommand = command({
  name: "train",
  summary: "train a model in compressed form (or an adapter on a base) and save it as .mcnc",
  usage: "mcnc train [--model mlp|lenet|gpt|SPEC.json] [--method M] [--ratio R | method flags] [--epochs N | --steps N] [--init FILE] [--data PATH] [--out FILE]",
  examples: [
    "npx mcnc train --method mcnc --ratio 100 --epochs 1 --limit 2000 --out mlp.mcnc   # a few seconds",
    "npx mcnc train --dataset wine --method dense --epochs 20 --out wine.mcnc",
  ],
  flags: FLAGS,
  optionFlags: () => [...optionFlags(allMethods()).values()].map(({ flag }) => flag),
  maxPositionals: 0,
  run,
});
