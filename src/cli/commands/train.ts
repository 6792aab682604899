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
import { decodeModelFile, encodeModelFile, timedRebuild, type ModelFile } from "../../format/model-file.js";
import { readModelFile } from "../../format/read-file.js";
import { weightsHash } from "../../format/weights-hash.js";
import { configureAdapter, producedSpecs } from "../../methods/adapter.js";
import { findMethod, methodNames } from "../../methods/index.js";
import { countParams, toDevice } from "../../model/params.js";
import { checkSeed } from "../../rng/seeded.js";
import { PLATEAU_DEFAULTS } from "../../train/plateau.js";
import { defaultWarmup, type ScheduleOptions } from "../../train/schedule.js";
import { defaultBatch } from "../../train/tasks.js";
import { checkTrainingMemory, runLength } from "../../train/budget.js";
import { train, type Adapter } from "../../train/trainer.js";
import type { Flag } from "../args.js";
import { BATCH_FLAG, DATA_FLAGS, EVAL_TOKENS_FLAG, GPT_FLAGS, JSON_FLAG, LIMIT_FLAG, MODEL_FLAG, print, QUIET_FLAG, round, TEST_LIMIT_FLAG, ENGINE_FLAGS, type Command } from "../command.js";
import { optionFlags, optionValues, type OptionOwner } from "../option-flags.js";
import { Progress } from "../progress.js";
import { checkWritable, fileSize, jsonReport, metricLine, modelAndTask, sizeLines, startEngine, taskFor } from "./shared.js";

const allMethods = (): OptionOwner[] => methodNames().map((name) => findMethod(name)!);

function flags(): Flag[] {
  return [
    MODEL_FLAG,
    ...GPT_FLAGS,
    { name: "method", type: "string", choices: methodNames(), help: "compression method", default: "mcnc" },
    ...[...optionFlags(allMethods()).values()].map(({ flag }) => flag),
    { name: "epochs", type: "int", help: "passes over the training data (0 with --init: post-training compression only)", default: "3, or 1 for gpt" },
    { name: "steps", type: "int", help: "optimisation steps in all, instead of --epochs" },
    { name: "eval-every", type: "int", help: "steps between evaluations", default: "an epoch" },
    EVAL_TOKENS_FLAG,
    {
      name: "init",
      type: "string",
      help: "start from this file: dense, prune and quant fine-tune its weights; the other methods train an adapter on it (a frozen base), storing only the adapter",
    },
    BATCH_FLAG,
    { name: "lr", type: "float", help: "Adam step size (default: the method's; mcnc 0.02, dense 0.001; as an adapter mcnc-lora 0.2, mcnc 0.1, nola 0.1, lora 0.02)" },
    { name: "schedule", type: "string", choices: ["plateau", "cosine"], help: "learning rate: reduce-on-plateau, or warm-up and cosine decay", default: "plateau, or cosine for gpt" },
    { name: "warmup", type: "int", help: "cosine: steps of linear warm-up", default: "a tenth of the run, at most 100" },
    { name: "patience", type: "int", help: "plateau: evaluation rounds without improvement before the rate halves", default: String(PLATEAU_DEFAULTS.patience) },
    { name: "seed", type: "int", help: "seed of everything random (stored in the file)", default: "0" },
    { name: "out", type: "string", help: "output file", default: "<model>-<method>.mcnc" },
    { name: "checkpoint-every", type: "int", help: "write the whole training state every N steps (to --checkpoint)" },
    { name: "checkpoint", type: "string", help: "checkpoint file", default: "<out>.ckpt" },
    { name: "resume", type: "string", help: "continue a run from its checkpoint (same flags); the result is the uninterrupted run's, byte for byte" },
    { name: "store-bits", type: "int", help: "8: store the method's numbers as 8-bit codes (dense-kept leaves stay float32)", default: "32" },
    LIMIT_FLAG,
    TEST_LIMIT_FLAG,
    ...DATA_FLAGS,
    ...ENGINE_FLAGS,
    QUIET_FLAG,
    JSON_FLAG,
  ];
}

function intFlag(v: unknown, fallback: number, name: string, lo: number, hi: number): number {
  const n = (v as number | undefined) ?? fallback;
  if (n < lo || n > hi) throw new UserError(`--${name} must be from ${lo} to ${hi}, got ${n}`);
  return n;
}

async function run(f: Record<string, unknown>): Promise<void> {
  const methodName = (f.method as string | undefined) ?? "mcnc";
  const method = findMethod(methodName)!;
  const values = optionValues(method, allMethods(), f);
  const storeBits = (f["store-bits"] as number | undefined) ?? 32;
  if (storeBits !== 8 && storeBits !== 32) throw new UserError(`--store-bits must be 8 or 32, got ${storeBits}`);
  if (storeBits === 8 && method.codec) throw new UserError(`--store-bits does not apply to --method ${method.name}: it stores its own encoding, chosen by its own flags`);
  const lr = f.lr as number | undefined;
  if (lr !== undefined && !(lr > 0 && lr < 10)) throw new UserError(`--lr must be in (0, 10), got ${lr}`);
  const seed = (() => {
    try {
      return checkSeed((f.seed as number | undefined) ?? 0);
    } catch (e) {
      throw new UserError(`--seed: ${(e as Error).message}`);
    }
  })();
  if (f.epochs !== undefined && f.steps !== undefined) throw new UserError("give --epochs or --steps, not both");

  // Where the weights start: a file's (fine-tuning all of them) or a base under an adapter.
  const initFile = f.init as string | undefined;
  const startFrom = initFile === undefined ? undefined : readModelFile(initFile);
  if (startFrom?.file.adapter) throw new UserError(`--init ${initFile} is an adapter: merge it into its base first (mcnc merge)`);
  if (startFrom && f.model !== undefined && f.model !== startFrom.model.name) throw new UserError(`--init ${initFile} holds a ${startFrom.model.name}, not --model ${String(f.model)}`);
  if (startFrom) for (const g of GPT_FLAGS) if (f[g.name] !== undefined) throw new UserError(`--${g.name}: the size comes from --init ${initFile}`);
  const adapting = startFrom !== undefined && !method.startsFromWeights;
  const modelName = startFrom?.model.name ?? (f.model as string | undefined) ?? "mlp";
  const language = modelName === "gpt";
  const epochs = f.steps === undefined ? intFlag(f.epochs, language ? 1 : 3, "epochs", 0, 10000) : undefined;
  if (epochs === 0 && initFile === undefined) throw new UserError("--epochs 0 needs --init FILE (weights to compress without training)");
  const steps = f.steps === undefined ? undefined : intFlag(f.steps, 0, "steps", 1, 1e9);
  // Checked before the data is read; its default depends on the data's size (below).
  if (f.batch !== undefined) intFlag(f.batch, 0, "batch", 1, 65536);
  // In the working directory, named after a spec file's name (never beside it, in someone's source tree).
  const out = resolve((f.out as string | undefined) ?? `${basename(modelName).replace(/\.json$/i, "")}-${methodName}.mcnc`);
  checkWritable(out, "--out");
  const checkpointEvery = f["checkpoint-every"] === undefined ? 0 : intFlag(f["checkpoint-every"], 0, "checkpoint-every", 1, 1e9);
  const checkpointPath = resolve((f.checkpoint as string | undefined) ?? `${out}.ckpt`);
  if (checkpointEvery > 0) checkWritable(checkpointPath, "--checkpoint");
  else if (f.checkpoint !== undefined) throw new UserError("--checkpoint names where --checkpoint-every writes; give both");
  if (typeof f.resume === "string") regularFileSize(f.resume);
  const progress = new Progress(process.stderr, !f.quiet);

  await startEngine(f);
  // Fine-tuning a file's weights prepares the data as the file records (its data set, scaling and classes);
  // an adapter trains on whatever data it is given.
  const { model, task } = startFrom ? { model: startFrom.model, task: await taskFor(startFrom.model, f, adapting ? undefined : startFrom.file.meta) } : await modelAndTask(f);
  const batch = intFlag(f.batch, defaultBatch(model, task.samples), "batch", 1, 65536);
  const startWeights = startFrom && (await timedRebuild(startFrom, 0)).params;
  let config: object;
  let adapter: Adapter | undefined;
  if (adapting) {
    const a = configureAdapter(method, values, model);
    config = a.config;
    adapter = { base: startWeights!, leaves: a.leaves };
  } else {
    config = method.configure(values, model.specs);
  }
  const specs = producedSpecs(model, adapter);
  const params = countParams(model.specs);
  const { total } = runLength(model, task, { epochs, steps, batch, evalEvery: f["eval-every"] as number | undefined });
  checkTrainingMemory(model, method, config, specs, batch);
  const schedule: ScheduleOptions =
    ((f.schedule as string | undefined) ?? (language ? "cosine" : "plateau")) === "cosine"
      ? { kind: "cosine", warmup: intFlag(f.warmup, defaultWarmup(total), "warmup", 0, 1e9) }
      : { kind: "plateau", patience: intFlag(f.patience, PLATEAU_DEFAULTS.patience, "patience", 0, 10000) };
  const adapted = adapter ? `, an adapter on ${adapter.leaves.length} of ${model.specs.length} leaves of ${basename(initFile!)}` : "";
  progress.message(`mcnc: ${model.name} (${params} parameters) with ${method.name} ${JSON.stringify(config)}${adapted}, ${total} steps of ${batch}; ${task.size}`);
  for (const note of method.notes?.(config, specs) ?? []) process.stderr.write(`mcnc: note: ${note}\n`);

  const baseHash = adapter ? weightsHash(model.specs, adapter.base) : undefined;
  // Everything that decides the result: a checkpoint resumes only into the run that wrote it.
  const identity = { model: model.description, method: method.name, config, seed, batch, lr: lr ?? null, schedule, total, eval_every: f["eval-every"] ?? null, data: task.data, data_size: task.size, limit: f.limit ?? null, test_limit: f["test-limit"] ?? null, eval_tokens: f["eval-tokens"] ?? null, init: initFile ? weightsHash(model.specs, startWeights!) : null, base: baseHash ?? null };
  const resumeFile = f.resume as string | undefined;
  const resume = resumeFile === undefined ? undefined : decodeCheckpoint(readCheckpoint(resumeFile), resumeFile, identity, method.trainableShapes(config, specs));
  if (resume) progress.message(`mcnc: resuming at step ${resume.step} of ${total} from ${resumeFile}`);

  const result = await train(model, method, config, task, {
    epochs,
    steps,
    evalEvery: f["eval-every"] as number | undefined,
    batch,
    lr,
    seed,
    schedule,
    start: adapting ? undefined : (startWeights ?? undefined),
    adapter,
    resume,
    checkpoint: checkpointEvery > 0 ? { every: checkpointEvery, save: (state) => writeFileAtomic(checkpointPath, encodeCheckpoint(identity, state)) } : undefined,
    onStep: (p) => progress.step(p),
    onEpoch: (e) => progress.epoch(e),
  });

  const metric = task.metric;
  const meta = {
    dataset: task.data,
    ...(epochs === undefined ? { steps: total } : { epochs }),
    batch,
    [`${metric}_f32`]: result.metrics[metric],
    ...task.recorded,
    ...(initFile === undefined ? {} : { init: basename(initFile) }),
  };
  const file: ModelFile = {
    model: model.description,
    method: { name: method.name, config },
    ...(adapter ? { adapter: { base_sha256: baseHash!, leaves: adapter.leaves } } : {}),
    seed,
    trainable: result.trainable,
    meta,
  };
  const bytes = encodeModelFile(file, model, method, { storeBits: storeBits as 8 | 32 });
  writeFileAtomic(out, bytes);

  // The file on disk, read back, must rebuild exactly the weights training ended with (or, stored at
  // 8 bits, what those codes give: then it is measured again).
  const loaded = decodeModelFile(bytes, out);
  const rebuilt = await timedRebuild(loaded, 3, adapter?.base);
  let metrics = result.metrics;
  if (storeBits === 32) {
    for (const s of model.specs) {
      const a = rebuilt.params[s.name]!;
      const b = result.params[s.name]!;
      if (a.length !== b.length || !a.every((v, i) => Object.is(v, b[i]))) throw new Error(`rebuilt weights of ${s.name} differ from the trained ones`);
    }
  } else {
    const stored = toDevice(model.specs, rebuilt.params);
    metrics = await task.evaluate(stored);
    tree.dispose(stored);
  }

  const size = fileSize(loaded);
  const rateKey = task.unit === "tokens" ? "train_tokens_per_s" : "train_samples_per_s";
  if (f.json) {
    print(
      JSON.stringify({
        command: "train",
        out,
        model: model.name,
        model_config: model.description,
        method: method.name,
        config,
        ...(adapter ? { adapter: { base: basename(initFile!), base_sha256: baseHash, leaves: adapter.leaves.length, adapted_params: countParams(specs) } } : {}),
        seed,
        ...roundMetrics(metrics),
        [`${metric}_f32`]: result.metrics[metric],
        store_bits: storeBits,
        ...jsonReport(size, rebuilt),
        steps: total,
        [rateKey]: round(result.rate, 1), engine: result.engine,
        train_seconds: round(result.trainSeconds, 3),
        history: result.history.map((h) => ({ ...h, metrics: roundMetrics(h.metrics), loss: round(h.loss, 5), trainSeconds: round(h.trainSeconds, 3), rate: round(h.rate, 1) })),
      }),
    );
  } else {
    print(`wrote ${out}${adapter ? ` (an adapter: it needs ${basename(initFile!)})` : ""}`);
    print(metricLine(metrics, storeBits === 8 ? ` (${result.metrics[metric]!.toFixed(4)} before 8-bit storage)` : ""));
    for (const line of sizeLines(size)) print(line);
    print(`rebuild          ${rebuilt.warmMs.toFixed(1)} ms (first ${rebuilt.coldMs.toFixed(0)} ms)${storeBits === 32 ? ", bit-identical to the trained weights" : ""}`);
    print(`training         ${result.rate.toFixed(0)} ${task.unit}/s on the ${result.engine} engine`);
  }
}

const readCheckpoint = (path: string): Uint8Array => readWholeFile(path, "checkpoint");

function roundMetrics(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v, 6)]));
}

export const trainCommand: Command = {
  name: "train",
  summary: "train a model in compressed form (or an adapter on a base) and save it as .mcnc",
  usage: "mcnc train [--model mlp|lenet|gpt|SPEC.json] [--method M] [--ratio R | method flags] [--epochs N | --steps N] [--init FILE] [--data PATH] [--out FILE]",
  examples: [
    "npx mcnc train --method mcnc --ratio 100 --epochs 1 --limit 2000 --out mlp.mcnc   # about 30 s",
    "npx mcnc train --dataset wine --method dense --epochs 20 --out wine.mcnc",
  ],
  flags,
  maxPositionals: 0,
  run: (f) => run(f),
};
