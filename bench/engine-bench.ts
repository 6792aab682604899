/**
 * The two engines side by side on the work besides training that runs again and again: evaluation
 * (the bundled MLP on 10,000 test images, the shipped GPT on 65,536 validation tokens), the
 * calibration of post-training compression (gptq at 4 bits on the shipped GPT, 32 windows) and what
 * each native session costs to create (trace, lowering, onnxruntime's setup), per program and shape.
 * Engines alternate run by run, each run in its own process; medians and the spread are printed.
 *
 *   node dist/bench/engine-bench.js [--rounds 3] [--threads 1] [--only eval,calibrate]
 *
 * JSON lines on stdout.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { option } from "./bench-args.js";

const args = process.argv.slice(2);
const opt = option;
const emit = (row: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(row)}\n`);
const MODELS = fileURLToPath(new URL("../../data/models/", import.meta.url));
const JOBS = ["eval-mlp", "eval-gpt", "calibrate-gpt"] as const;
type Job = (typeof JOBS)[number];

/** One job in this process, on the engine MCNC_ENGINE names: its seconds and the sessions it made. */
async function one(job: Job): Promise<void> {
  const { initEngine, readModelFile, timedRebuild, imageTask, textTask, loadDataset, loadText, bundledPath, compressModel, findCompressor } = await import("../src/index.js");
  const { putAll, sessionCosts } = await import("../src/engine/program.js");
  const { engineBatch } = await import("../src/train/step.js");
  const { engine, threads } = await initEngine();
  const gpt = job !== "eval-mlp";
  const loaded = readModelFile(`${MODELS}${gpt ? "gpt-sotu.mcnc" : "mlp-fashion-mcnc-100x.mcnc"}`);
  const { params } = await timedRebuild(loaded, 0);
  const model = loaded.model;
  // The data is read before the clock starts: only the engine's work is timed.
  const task = gpt ? textTask(await loadText(bundledPath("sotu"), { name: "sotu" }), model, job === "calibrate-gpt" ? { evalTokens: 1 } : {}) : imageTask(loadDataset(undefined, {}), model);
  const started = performance.now();
  if (job === "calibrate-gpt") {
    const batches = [];
    for (let step = 0; step < 4; step++) batches.push(engineBatch(await task.batch(0, step, 8)));
    const c = findCompressor("gptq")!;
    const compress = model.specs.filter((s) => s.role === "weight" && s.name.startsWith("h.")).map((s) => s.name);
    await compressModel(model, params, c, c.configure({ bits: 4 }), compress, batches, 0);
  } else {
    await task.evaluate(putAll(model.specs, params));
  }
  const seconds = (performance.now() - started) / 1000;
  emit({ job, engine, threads, seconds: +seconds.toFixed(3), sessions: sessionCosts().map((c) => ({ ...c, trace: +c.trace.toFixed(3), lower: +c.lower.toFixed(3), session: +c.session.toFixed(3) })) });
}

function run(job: Job, engine: string, threads: number): Record<string, unknown> | null {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--one", job], { encoding: "utf8", env: { ...process.env, MCNC_ENGINE: engine, MCNC_THREADS: String(threads) } });
  if (r.status !== 0) {
    emit({ bench: "engine", job, engine, error: r.stderr.trim().split("\n").slice(-3).join(" | ") });
    return null;
  }
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

if (args[0] === "--one") await one(args[1] as Job);
else {
  const rounds = Number(opt("rounds", "3"));
  const threads = Number(opt("threads", "1"));
  const only = opt("only", "eval,calibrate").split(",");
  for (const job of JOBS.filter((j) => only.some((o) => j.startsWith(o)))) {
    const times: Record<string, number[]> = { native: [], wasm: [] };
    for (let round = 0; round < rounds; round++) {
      for (const engine of round % 2 === 0 ? ["native", "wasm"] : ["wasm", "native"]) {
        const row = run(job, engine, threads);
        if (!row) continue;
        times[engine]!.push(row.seconds as number);
        emit({ bench: "engine-run", round, ...row, sessions: round === 0 ? row.sessions : undefined });
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    if (times.native!.length && times.wasm!.length) {
      emit({
        bench: "engine",
        job,
        threads,
        native_seconds: [Math.min(...times.native!), median(times.native!), Math.max(...times.native!)],
        wasm_seconds: [Math.min(...times.wasm!), median(times.wasm!), Math.max(...times.wasm!)],
        speedup: +(median(times.wasm!) / median(times.native!)).toFixed(2),
        note: "seconds: min, median, max over the rounds; each run in its own process, the session's creation included",
      });
    }
  }
}
