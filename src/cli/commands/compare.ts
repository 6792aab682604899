/**
 * mcnc compare: every method through the same loop at the same stored budgets, several seeds, and a
 * table and a plot of accuracy against file bytes (the comparison issue 3 asks for).
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError } from "../../errors.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import { tree } from "@jax-js/jax";
import { decodeModelFile, encodeModelFile, rebuildParams } from "../../format/model-file.js";
import { findMethod, methodNames } from "../../methods/index.js";
import { countParams, type HostParams } from "../../model/params.js";
import { train } from "../../train/trainer.js";
import { DATA_FLAGS, JSON_FLAG, LIMIT_FLAG, MODEL_FLAG, print, QUIET_FLAG, round, TEST_LIMIT_FLAG, THREADS_FLAG, type Command } from "../command.js";
import { Progress } from "../progress.js";
import { fileSize, modelAndTask, startEngine } from "./shared.js";
import { accuracyPlot, type Series } from "./svg-plot.js";

interface Run {
  /** Row name: the method, with how it was stored or applied when that differs. */
  label: string;
  method: string;
  /** The budget: a target ratio, or bits per weight for quantisation. */
  budget: string;
  seed: number;
  accuracy: number;
  stored_params: number;
  file_bytes: number;
  bits_per_param: number;
  train_seconds: number;
}

interface Job {
  label: string;
  method: string;
  budget: string;
  values: Record<string, unknown>;
  seed: number;
  epochs: number;
  /** Start from the dense run of the same seed (post-training compression). */
  fromDense?: boolean;
  /** Also store at 8 bits and measure that file (a row of its own, no extra training). */
  alsoEightBit?: boolean;
}

function list<T>(raw: unknown, fallback: T[], parse: (s: string) => T, flag: string, allowEmpty = false): T[] {
  if (raw === undefined) return fallback;
  const parts = String(raw).split(",").filter((p) => p !== "");
  const out = parts.map(parse);
  if ((out.length === 0 && !allowEmpty) || out.some((v) => typeof v === "number" && !Number.isFinite(v))) throw new UserError(`--${flag} must be a comma-separated list`);
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function run(f: Record<string, unknown>): Promise<void> {
  const modelName = (f.model as string | undefined) ?? "mlp";
  const methods = list(f.methods, ["mcnc", "mcnc-lora", "nola", "pranc", "prune"], String, "methods");
  for (const m of methods) {
    const method = findMethod(m);
    if (!method) throw new UserError(`--methods: unknown method '${m}' (choose from ${methodNames().join(", ")})`);
    if (!method.options.some((o) => o.name === "ratio")) throw new UserError(`--methods: ${m} has no --ratio, so it cannot be held to a budget (quant runs through --quant-bits)`);
  }
  const quantBits = list(f["quant-bits"], [8, 4, 2], Number, "quant-bits", true);
  for (const bits of quantBits) {
    try {
      findMethod("quant")!.configure({ bits }, []);
    } catch (e) {
      throw new UserError(`--quant-bits: ${(e as Error).message}`);
    }
  }
  const ratios = list(f.ratios, [200, 100, 50], Number, "ratios");
  if (ratios.some((r) => !(r > 1))) throw new UserError("--ratios must all be above 1");
  const seeds = list(f.seeds, [0, 1], Number, "seeds");
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UserError("--seeds must be non-negative integers");
  const epochs = (f.epochs as number | undefined) ?? 3;
  if (epochs < 1) throw new UserError("--epochs must be at least 1");
  const outDir = resolve((f["out-dir"] as string | undefined) ?? "compare");
  const progress = new Progress(process.stderr, !f.quiet);

  await startEngine(f);
  const { model, task } = await modelAndTask(f);
  const params = countParams(model.specs);

  const runs: Run[] = [];
  const jobs: Job[] = [
    ...seeds.map((seed) => ({ label: "dense", method: "dense", budget: "1x", values: {}, seed, epochs })),
    ...methods.flatMap((method) =>
      ratios.flatMap((ratio) => seeds.map((seed) => ({ label: method, method, budget: `${ratio}x`, values: { ratio }, seed, epochs, alsoEightBit: method === "mcnc" }))),
    ),
    ...quantBits.flatMap((bits) =>
      seeds.flatMap((seed) => [
        { label: "quant (QAT)", method: "quant", budget: `${bits}-bit`, values: { bits }, seed, epochs },
        { label: "quant (post-training)", method: "quant", budget: `${bits}-bit`, values: { bits }, seed, epochs: 0, fromDense: true },
      ]),
    ),
  ];
  const denseWeights = new Map<number, HostParams>();
  const record = (job: Job, label: string, bytes: Uint8Array, accuracy: number, seconds: number) => {
    const size = fileSize(decodeModelFile(bytes));
    const row: Run = {
      label,
      method: job.method,
      budget: job.budget,
      seed: job.seed,
      accuracy,
      stored_params: size.stored_params,
      file_bytes: size.file_bytes,
      bits_per_param: round(size.bits_per_param, 4),
      train_seconds: round(seconds, 2),
    };
    runs.push(row);
    if (f.json) print(JSON.stringify({ command: "compare", ...row }));
  };
  for (const [i, job] of jobs.entries()) {
    const method = findMethod(job.method)!;
    const config = method.configure(job.values, model.specs);
    progress.message(`mcnc compare: ${i + 1}/${jobs.length} ${job.label} at ${job.budget}, seed ${job.seed}`);
    const r = await train(model, method, config, task, {
      epochs: job.epochs,
      batch: 128,
      seed: job.seed,
      start: job.fromDense ? denseWeights.get(job.seed) : undefined,
      onStep: (p) => progress.step(p),
      onEpoch: (e) => progress.epoch(e),
    });
    if (job.method === "dense") denseWeights.set(job.seed, r.params);
    const file = { model: model.description, method: { name: method.name, config }, seed: job.seed, trainable: r.trainable };
    record(job, job.label, encodeModelFile(file, model, method), r.metrics.accuracy!, r.trainSeconds);
    if (job.alsoEightBit) {
      const bytes = encodeModelFile(file, model, method, { storeBits: 8 });
      const stored = await rebuildParams(decodeModelFile(bytes));
      record(job, `${job.label} (8-bit storage)`, bytes, (await task.evaluate(stored)).accuracy!, r.trainSeconds);
      tree.dispose(stored);
    }
  }

  // One row per (method, ratio): mean and range over seeds.
  const groups = new Map<string, Run[]>();
  for (const r of runs) groups.set(`${r.label}@${r.budget}`, [...(groups.get(`${r.label}@${r.budget}`) ?? []), r]);
  const command = `mcnc compare --model ${modelName} --methods ${methods.join(",")} --ratios ${ratios.join(",")} --quant-bits ${quantBits.join(",")} --seeds ${seeds.join(",")} --epochs ${epochs}`;
  const lines = [
    `${task.data}, ${model.name} (${params} parameters), ${epochs} epochs, seeds ${seeds.join(", ")}, ${task.size}.`,
    `Command: \`${command}\``,
    "",
    "| method | budget | stored numbers | file bytes | bits/param | accuracy (mean) | min - max | train s (mean) |",
    "|---|---|---|---|---|---|---|---|",
  ];
  const series = new Map<string, Series>();
  for (const rs of groups.values()) {
    const accs = rs.map((r) => r.accuracy);
    const r0 = rs[0]!;
    lines.push(
      `| ${r0.label} | ${r0.budget} | ${r0.stored_params} | ${r0.file_bytes} | ${r0.bits_per_param} | ${mean(accs).toFixed(4)} | ${Math.min(...accs).toFixed(4)} - ${Math.max(...accs).toFixed(4)} | ${mean(rs.map((r) => r.train_seconds)).toFixed(1)} |`,
    );
    const s = series.get(r0.label) ?? { name: r0.label, points: [] };
    s.points.push({ x: r0.file_bytes, y: mean(accs), lo: Math.min(...accs), hi: Math.max(...accs) });
    series.set(r0.label, s);
  }
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `compare-${modelName}`);
  writeFileAtomic(`${base}.md`, new TextEncoder().encode(`${lines.join("\n")}\n`));
  writeFileAtomic(`${base}.jsonl`, new TextEncoder().encode(runs.map((r) => JSON.stringify(r)).join("\n") + "\n"));
  writeFileAtomic(`${base}.svg`, new TextEncoder().encode(accuracyPlot([...series.values()], `${model.name}: test accuracy against file bytes (${epochs} epochs)`)));
  if (!f.json) {
    for (const l of lines.slice(3)) print(l);
    print(`wrote ${base}.md, ${base}.svg and ${base}.jsonl`);
  }
}

export const compareCommand: Command = {
  name: "compare",
  summary: "train every method at the same stored budgets and seeds; write a table and a plot",
  usage: "mcnc compare [--model mlp] [--methods mcnc,mcnc-lora,nola,pranc,prune] [--ratios 200,100,50] [--quant-bits 8,4,2] [--seeds 0,1] [--epochs 3]",
  flags: () => [
    MODEL_FLAG,
    { name: "methods", type: "string", help: "methods with a --ratio, comma-separated (dense runs as the reference)", default: "mcnc,mcnc-lora,nola,pranc,prune" },
    { name: "ratios", type: "string", help: "stored-parameter ratios, comma-separated (pruning: file-size ratios)", default: "200,100,50" },
    { name: "quant-bits", type: "string", help: "quantisation rows, trained (QAT) and post-training from the dense run; '' for none", default: "8,4,2" },
    { name: "seeds", type: "string", help: "seeds, comma-separated", default: "0,1" },
    { name: "epochs", type: "int", help: "epochs per run", default: "3" },
    LIMIT_FLAG,
    TEST_LIMIT_FLAG,
    { name: "out-dir", type: "string", help: "where the table, plot and runs go", default: "compare" },
    ...DATA_FLAGS,
    THREADS_FLAG,
    QUIET_FLAG,
    JSON_FLAG,
  ],
  maxPositionals: 0,
  run: (f) => run(f),
};
