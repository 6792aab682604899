/**
 * mcnc compare: every method through the same loop at the same stored budgets, several seeds, and a
 * table and a plot of quality against file bytes. From scratch on images (issue 3's comparison), or,
 * with --init BASE, as adapters on a frozen base (the paper's language-model setting): adapter bytes
 * against bits per byte, beside the base itself and full fine-tuning.
 */
import { basename, join, resolve } from "node:path";
import { tree } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { decodeModelFile, encodeModelFile, rebuildParams, timedRebuild, type ModelFile } from "../../format/model-file.js";
import { readModelFile } from "../../format/read-file.js";
import { weightsHash } from "../../format/weights-hash.js";
import { configureAdapter, producedSpecs } from "../../methods/adapter.js";
import { findMethod, type Method } from "../../methods/index.js";
import type { Model } from "../../model/models.js";
import { countParams, toDevice, type HostParams } from "../../model/params.js";
import { defaultWarmup } from "../../train/schedule.js";
import { defaultBatch, type Task } from "../../train/tasks.js";
import { runLength } from "../../train/budget.js";
import { train, type Adapter } from "../../train/trainer.js";
import type { FlagValues } from "../args.js";
import { BATCH_FLAG, command, DATA_RUN_FLAGS, EVAL_TOKENS_FLAG, LIMIT_FLAG, MODEL_FLAG, print, round, TEST_LIMIT_FLAG } from "../command.js";
import { duration, Progress } from "../progress.js";
import { fileSize, modelAndTask, startEngine, taskFor } from "./shared.js";
import { budgetValues, planJobs, readPlan, TimeLeft, type Job } from "./compare-jobs.js";
import { writeReport } from "./compare-report.js";

export interface Run {
  /** Row name: the method, with how it was stored or applied when that differs. */
  label: string;
  method: string;
  /** The budget: a target ratio, or bits per weight for quantisation. */
  budget: string;
  seed: number;
  /** The task's metric (accuracy, or bits per byte); null where the budget is out of the method's reach. */
  score: number | null;
  stored_params: number;
  file_bytes: number;
  bits_per_param: number;
  train_seconds: number;
  config?: object;
  note?: string;
  /** Training samples the run was limited to (--limits), 0 for all. */
  limit?: number;
}

const FLAGS = [
  MODEL_FLAG,
  { name: "init", type: "string", help: "compare adapters on this base model (its size, frozen), with the base and full fine-tuning as references" },
  { name: "methods", type: "string", help: "methods held to each budget, comma-separated (with --ratio, or LoRA's largest --rank within it)", defaultText: "mcnc,mcnc-lora,nola,pranc,prune; adapters: lora,nola,mcnc-lora,mcnc" },
  { name: "ratios", type: "string", help: "stored-parameter ratios, comma-separated (pruning: file-size ratios; adapters: the base's parameters over the adapter's numbers)", defaultText: "200,100,50; adapters: 1000,10000" },
  { name: "quant-bits", type: "string", help: "quantisation rows, trained (QAT) and post-training from the dense run; '' for none", defaultText: "8,4,2" },
  { name: "compress", type: "string", help: "adapters: the leaves adapted (module names such as c_attn, or 'weights')", defaultText: "the model's adapter targets" },
  { name: "seeds", type: "string", help: "seeds, comma-separated", defaultText: "0,1" },
  { name: "epochs", type: "int", help: "epochs per run", min: 1, max: 10000, defaultText: "3; adapters: 1" },
  { name: "steps", type: "int", help: "steps per run, instead of --epochs", min: 1, max: 1e9 },
  BATCH_FLAG,
  EVAL_TOKENS_FLAG,
  LIMIT_FLAG,
  { name: "limits", type: "string", help: "training-set sizes, comma-separated ('all': the whole split): the comparison at each, tabled side by side", defaultText: "--limit" },
  TEST_LIMIT_FLAG,
  { name: "out-dir", type: "string", help: "where the table, plot and runs go", default: "compare" },
  ...DATA_RUN_FLAGS,
] as const;
export type CompareFlags = FlagValues<typeof FLAGS>;

/** What the jobs at one training-set size share. */
interface Setting {
  model: Model;
  task: Task;
  params: number;
  batch: number;
  /** The base's weights, for adapters. */
  baseWeights?: HostParams;
  /** Each seed's dense run, which post-training rows start from. */
  denseWeights: Map<number, HostParams>;
}

/** The method's configuration for a job (an adapter's too), held to its budget; UserError where out of reach. */
function configureJob(job: Job, method: Method, s: Setting, compress: string | undefined): { config: object; adapter?: Adapter } {
  if (job.adapter) {
    const adapt = (v: Record<string, unknown>) => configureAdapter(method, { ...(compress === undefined ? {} : { compress }), ...v }, s.model);
    const storedFor = (v: Record<string, unknown>) => {
      const a = adapt(v);
      return countParams(method.trainableShapes(a.config, producedSpecs(s.model, a)));
    };
    const a = adapt(budgetValues(method, Number(job.values.ratio), storedFor, s.params));
    return { config: a.config, adapter: { base: s.baseWeights!, leaves: a.leaves } };
  }
  const storedFor = (v: Record<string, unknown>) => countParams(method.trainableShapes(method.configure(v, s.model.specs), s.model.specs));
  return { config: method.configure(job.values.ratio === undefined ? job.values : budgetValues(method, Number(job.values.ratio), storedFor, s.params), s.model.specs) };
}

/** One job's rows: trained (or evaluated) and measured from its file, with its 8-bit twin where asked. */
async function runJob(job: Job, s: Setting, length: { epochs?: number; steps?: number }, compress: string | undefined, progress: Progress, record: Recorder): Promise<void> {
  const { model, task } = s;
  if (job.evaluateOnly) {
    const weights = toDevice(model.specs, s.baseWeights!);
    record(job, job.label, null, (await task.evaluate(weights))[task.metric]!, 0);
    tree.dispose(weights);
    return;
  }
  const method = findMethod(job.method)!;
  let configured: { config: object; adapter?: Adapter };
  try {
    configured = configureJob(job, method, s, compress);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    // A budget one method cannot reach is a cell of the table, not the end of the comparison.
    record(job, job.label, null, null, 0, { note: e.message });
    progress.message(`mcnc compare: ${job.label} at ${job.budget}: ${e.message}`);
    return;
  }
  const { config, adapter } = configured;
  const r = await train(model, method, config, task, {
    ...length,
    batch: s.batch,
    seed: job.seed,
    schedule: model.kind === "language" ? { kind: "cosine", warmup: defaultWarmup(runLength(model, task, { ...length, batch: s.batch }).total) } : undefined,
    start: job.fromDense ? (s.baseWeights ?? s.denseWeights.get(job.seed)) : undefined,
    adapter,
    onStep: (p) => progress.step(p),
    onEpoch: (e) => progress.epoch(e),
  });
  if (job.method === "dense") s.denseWeights.set(job.seed, r.params);
  const file: ModelFile = {
    model: model.description,
    method: { name: method.name, config },
    ...(adapter ? { adapter: { base_sha256: weightsHash(model.specs, adapter.base), leaves: adapter.leaves } } : {}),
    seed: job.seed,
    trainable: r.trainable,
  };
  record(job, job.label, encodeModelFile(file, model, method), r.metrics[task.metric]!, r.trainSeconds, { config });
  if (job.alsoEightBit) {
    const bytes = encodeModelFile(file, model, method, { storeBits: 8 });
    const stored = await rebuildParams(decodeModelFile(bytes));
    record(job, `${job.label} (8-bit storage)`, bytes, (await task.evaluate(stored))[task.metric]!, r.trainSeconds);
    tree.dispose(stored);
  }
}

type Recorder = (job: Job, label: string, bytes: Uint8Array | null, score: number | null, seconds: number, extra?: Partial<Run>) => void;

/** The command that reproduces the table: everything that changes one of its numbers. */
function commandLine(f: CompareFlags, plan: ReturnType<typeof readPlan>, model: Model, initFile: string | undefined): string {
  const { methods, ratios, quantBits, seeds, steps, epochs } = plan;
  return [
    "mcnc compare",
    // A spec file by its path: the model's name (sequential) would not rebuild it.
    ...(initFile ? [`--init ${basename(initFile)}`] : [`--model ${f.model?.endsWith(".json") ? f.model : model.name}`]),
    ...(f.data !== undefined ? [`--data ${f.data}`] : f.dataset !== undefined ? [`--dataset ${f.dataset}`] : []),
    `--methods ${methods.join(",")}`,
    `--ratios ${ratios.join(",")}`,
    ...(initFile ? [] : [`--quant-bits ${quantBits.length > 0 ? quantBits.join(",") : "''"}`]),
    ...(f.compress !== undefined ? [`--compress ${f.compress}`] : []),
    `--seeds ${seeds.join(",")}`,
    steps === undefined ? `--epochs ${epochs}` : `--steps ${steps}`,
    ...(["batch", "eval-tokens", "limit", "limits", "test-limit"] as const).filter((k) => f[k] !== undefined).map((k) => `--${k} ${String(f[k])}`),
  ].join(" ");
}

async function run(f: CompareFlags): Promise<void> {
  const initFile = f.init;
  const base = initFile === undefined ? undefined : readModelFile(initFile);
  if (base?.file.adapter) throw new UserError(`--init ${initFile} is an adapter: merge it into its base first (mcnc merge)`);
  const plan = readPlan(f, base !== undefined);
  const { methods, quantBits, ratios, seeds, epochs, steps, limits } = plan;
  const compress = f.compress;
  const outDir = resolve(f["out-dir"]);
  // compare's own estimate covers all runs; each run's would cover only itself.
  const progress = new Progress(process.stderr, !f.quiet, false);

  await startEngine(f);
  let s!: Setting;
  const sizes: string[] = [];
  const runs: Run[] = [];
  const jobs = planJobs({ adapters: base !== undefined, methods, ratios, seeds, quantBits });
  const timeLeft = new TimeLeft();
  // One whole comparison per training-set size: the same jobs on the first N samples.
  for (const [at, limit] of limits.entries()) {
    const { model, task } = base ? { model: base.model, task: await taskFor(base.model, f) } : await modelAndTask({ ...f, limit });
    const batch = f.batch ?? defaultBatch(model, task.samples);
    s = { model, task, params: countParams(model.specs), batch, baseWeights: base && (await timedRebuild(base, 0)).params, denseWeights: new Map() };
    sizes.push(task.size);
    const runSteps = runLength(model, task, { epochs, steps, batch }).total;
    if (at === 0) progress.message(`mcnc compare: ${jobs.length * limits.length} runs of up to ${runSteps} steps each; the time left is estimated from the runs as they finish`);
    const record: Recorder = (job, label, bytes, score, seconds, extra = {}) => {
      const size = bytes ? fileSize(decodeModelFile(bytes)) : null;
      const row: Run = {
        label,
        method: job.method,
        budget: job.budget,
        seed: job.seed,
        score: score === null ? null : round(score, 6),
        stored_params: size?.stored_params ?? 0,
        file_bytes: size?.file_bytes ?? 0,
        bits_per_param: size ? round(size.bits_per_param, 4) : 0,
        train_seconds: round(seconds, 2),
        ...(limits.length > 1 ? { limit } : {}),
        ...extra,
      };
      runs.push(row);
      if (f.json) {
        const { score: sc, ...rest } = row;
        print(JSON.stringify({ command: "compare", ...rest, [task.metric]: sc }));
      }
    };
    for (const [i, job] of jobs.entries()) {
      const left = timeLeft.estimate([...jobs.slice(i), ...Array.from({ length: limits.length - 1 - at }, () => jobs).flat()], runSteps);
      progress.message(`mcnc compare: ${i + 1}/${jobs.length} ${job.label} at ${job.budget}, seed ${job.seed}${limits.length > 1 ? `, ${task.size}` : ""}${left === undefined ? "" : ` (about ${duration(left)} left)`}`);
      const started = performance.now();
      await runJob(job, s, { epochs, steps }, compress, progress, record);
      if (!job.evaluateOnly) timeLeft.record(job.method, runSteps, (performance.now() - started) / 1000);
    }
  }

  const { model, task } = s;
  const params = countParams(model.specs);
  const length = steps === undefined ? `${epochs} epoch${epochs === 1 ? "" : "s"}` : `${steps} steps`;
  const what = base ? `adapters on ${basename(initFile!)} (${params} parameters), ${task.data}` : `${task.data}, ${model.name} (${params} parameters)`;
  const out = join(outDir, `compare-${base ? `${basename(initFile!, ".mcnc")}-adapters` : model.name}`);
  const lines = writeReport(runs, { out, command: commandLine(f, plan, model, initFile), heading: `${what}, ${length}, seeds ${seeds.join(", ")}, ${sizes.join("; ")}.`, metric: task.metric, title: `${base ? "adapters" : model.name}: %s against file bytes (${length})` });
  if (!f.json) {
    for (const l of lines.slice(3)) print(l);
    print(`wrote ${out}.md, ${out}.svg and ${out}.jsonl`);
  }
}

export const compareCommand = command({
  name: "compare",
  summary: "train every method at the same stored budgets and seeds (or adapters on a base); write a table and a plot",
  usage: "mcnc compare [--model mlp | --init BASE.mcnc --dataset D] [--methods ...] [--ratios 200,100,50] [--quant-bits 8,4,2] [--seeds 0,1] [--epochs 3 | --steps N]",
  examples: [
    "npx mcnc compare --methods mcnc,pranc --ratios 100 --epochs 1 --limit 2000",
  ],
  flags: FLAGS,
  maxPositionals: 0,
  run: (f) => run(f),
});
