/**
 * Training speed against PyTorch, like with like: the same networks and MCNC layout (bench/torch_mcnc.py
 * is handed our chunk size and generator), batch 128, each side's second epoch (both warmed up: compiled,
 * caches filled), each side at 1 and 2 threads. The two sides alternate, run by run (ours, PyTorch,
 * PyTorch, ours, ...), several rounds, so drifting load on a shared machine falls on both; medians and the
 * spread are printed, and the ratio is taken between each side's best thread count.
 *
 * Ours runs on each engine asked for (the native engine by default; wasm, jax-js's own, for the before).
 *
 *   node dist/bench/train-vs-torch.js [--rounds 3] [--models mlp,lenet] [--methods dense,mcnc] [--threads 1,2] [--engines native,wasm]
 *
 * JSON lines on stdout: one per run ("run"), then a summary per model, method and engine ("train-vs-torch").
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

type Row = Record<string, unknown>;
export const emit = (row: Row): void => void process.stdout.write(`${JSON.stringify(row)}\n`);
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : fallback);

const DATA = fileURLToPath(new URL("../../data/fashion-mnist", import.meta.url));
const PEER = fileURLToPath(new URL("../../bench/torch_mcnc.py", import.meta.url));
const PYTHON = "/usr/bin/python3";
/** Training images per run: two epochs of these, the second timed. LeNet's are fewer (it is ~40x slower per image). */
const SAMPLES = { mlp: 12800, lenet: 1280 } as const;
export type ModelName = keyof typeof SAMPLES;

/** One run of ours in this process: two epochs, the second's samples/s, and the MCNC layout to hand the peer. */
async function ours(model: ModelName, methodName: string): Promise<void> {
  const { buildModel, findMethod, imageTask, initEngine, loadDataset, train } = await import("../src/index.js");
  const { threads, engine } = await initEngine();
  const data = loadDataset(undefined, { trainLimit: SAMPLES[model], testLimit: 1000 });
  const net = buildModel({ name: model, input: data.imageShape, classes: data.numClasses });
  const method = findMethod(methodName)!;
  const config = method.configure(methodName === "mcnc" ? { ratio: 100 } : {}, net.specs) as Record<string, unknown>;
  const r = await train(net, method, config, imageTask(data, net), { epochs: 2, batch: 128, seed: 0 });
  emit({ threads, engine, config, samples_per_s: r.history[1]!.rate });
}

function runOurs(model: ModelName, method: string, threads: number, engine: string): Row {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--one", model, method], { encoding: "utf8", env: { ...process.env, MCNC_THREADS: String(threads), MCNC_ENGINE: engine } });
  if (r.status !== 0) throw new Error(`ours ${model} ${method}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  const row = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Row;
  if (row.engine !== engine) throw new Error(`ours ${model} ${method}: asked for the ${engine} engine, ran on ${String(row.engine)}`);
  return row;
}

function runTorch(model: ModelName, method: string, threads: number, config: Record<string, unknown>): number {
  const layout = method === "mcnc" ? ["--d", String(config.d), "--k", String(config.k), "--hidden", (config.hidden as number[]).join(","), "--L", String(config.L)] : [];
  const r = spawnSync(PYTHON, [PEER, "--data", DATA, "--model", model, "--method", method, "--epochs", "2", "--limit", String(SAMPLES[model]), "--threads", String(threads), ...layout], { encoding: "utf8" });
  const epochs = r.stdout.split("\n").filter((l) => l.includes("train_samples_per_s")).map((l) => JSON.parse(l) as { train_samples_per_s: number });
  if (r.status !== 0 || epochs.length < 2) throw new Error(`torch ${model} ${method}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return epochs[1]!.train_samples_per_s;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, digits = 1) => Number(x.toFixed(digits));

export const hasTorch = (): boolean => existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import torch"]).status === 0;
export const NO_TORCH = "no /usr/bin/python3 with torch (Debian: apt-get install python3-torch libopenblas0-pthread)";

export interface Comparison {
  rounds: number;
  threads: number[];
  models: ModelName[];
  methods: string[];
  engines: string[];
}

/** The interleaved runs and their summaries, as JSON lines. */
export function compareTraining({ rounds, threads: threadList, models, methods, engines }: Comparison): void {
  if (!hasTorch()) {
    emit({ bench: "train-vs-torch", skipped: NO_TORCH });
    return;
  }
  for (const model of models) {
    for (const method of methods) {
      const sides = [...engines, "torch"];
      const rates: Record<string, Record<number, number[]>> = Object.fromEntries(sides.map((s) => [s, {}]));
      let config: Record<string, unknown> = {};
      for (let pass = 0; pass < rounds; pass++) {
        for (const threads of threadList) {
          // Alternate which side goes first, so a trend in the machine's load favours none.
          for (const side of pass % 2 === 0 ? sides : [...sides].reverse()) {
            let rate: number;
            if (side !== "torch") {
              const row = runOurs(model, method, threads, side);
              config = row.config as Record<string, unknown>;
              rate = row.samples_per_s as number;
            } else {
              if (method === "mcnc" && config.d === undefined) config = runOurs(model, method, threads, engines[0]!).config as Record<string, unknown>;
              rate = runTorch(model, method, threads, config);
            }
            (rates[side]![threads] ??= []).push(rate);
            emit({ bench: "run", model, method, side, threads, round: pass, samples_per_s: round(rate) });
          }
        }
      }
      const summary = (side: string) => {
        const byThreads = Object.entries(rates[side]!).map(([t, xs]) => ({ threads: Number(t), median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }));
        const best = byThreads.reduce((a, b) => (b.median > a.median ? b : a));
        return { best, byThreads };
      };
      const t = summary("torch");
      for (const engine of engines) {
        const o = summary(engine);
        // The spread of the ratio: each of our runs at our best thread count over each of theirs at theirs.
        const pairs = rates[engine]![o.best.threads]!.flatMap((a) => rates.torch![t.best.threads]!.map((b) => a / b));
        emit({
          bench: "train-vs-torch",
          model,
          method,
          engine,
          batch: 128,
          samples: SAMPLES[model],
          ...(method === "mcnc" ? { d: config.d } : {}),
          ours: Object.fromEntries(o.byThreads.map((r) => [`threads_${r.threads}`, [round(r.min), round(r.median), round(r.max)]])),
          torch: Object.fromEntries(t.byThreads.map((r) => [`threads_${r.threads}`, [round(r.min), round(r.median), round(r.max)]])),
          ours_best_threads: o.best.threads,
          torch_best_threads: t.best.threads,
          ratio: round(o.best.median / t.best.median, 3),
          ratio_range: [round(Math.min(...pairs), 3), round(Math.max(...pairs), 3)],
        });
      }
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (args[0] === "--one") await ours(args[1] as ModelName, args[2]!);
  else
    compareTraining({
      rounds: Number(opt("rounds", "3")),
      threads: opt("threads", "1,2").split(",").map(Number),
      models: opt("models", "mlp,lenet").split(",") as ModelName[],
      methods: opt("methods", "dense,mcnc").split(","),
      engines: opt("engines", "native").split(","),
    });
}
