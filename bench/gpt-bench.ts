/**
 * The GPT's speed beside PyTorch's (ours on the engine MCNC_ENGINE names, else the default), measured like with like: the same network (bench/torch_gpt.py),
 * batch, context and optimiser, each side at 1 and 2 threads, interleaved (ours, theirs, ours,
 * theirs, ...) so a ratio measured on a shared machine still holds on a quiet one; medians with the
 * spread. Then the cost of switching adapters, per method: FLOPs and milliseconds to produce an
 * adapter's weights with its frozen parts (generator, bases) cached and from cold.
 *
 *   node dist/bench/gpt-bench.js [--repeats 3] [--threads 1,2] [--only train,generate,swap] [--base FILE]
 *   node dist/bench/gpt-bench.js --only peer-pretrain [--threads 2] [--steps 5000]
 *
 * `peer-pretrain` trains PyTorch's copy of the shipped base with its documented settings (5000 steps of
 * 32 x 128 bytes of the State of the Union addresses, the same split), for quality side by side.
 *
 * JSON lines on stdout. PyTorch rows need /usr/bin/python3 with torch (Debian's python3-torch); without
 * it they are skipped with a visible line.
 */
import { buildModel, bundledPath, configureAdapter, countParams, findMethod, initEngine, initParams, loadText, materializer, producedSpecs, readModelFile, textTask, timedRebuild, toDevice, toHost, train } from "../src/index.js";
import { gptDecoder } from "../src/generate/decoder.js";
import { generate } from "../src/generate/sample.js";
import { tree } from "@jax-js/jax";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { option } from "./bench-args.js";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  process.stdout.write("node dist/bench/gpt-bench.js [--repeats 3] [--threads 1,2] [--only train,generate,swap] [--base FILE]\nnode dist/bench/gpt-bench.js --only peer-pretrain [--threads 2] [--steps 5000]\n");
  process.exit(0);
}
const arg = option;
const repeats = Number(arg("repeats", "3"));
const threadList = arg("threads", "1,2").split(",").map(Number);
const only = arg("only", "train,generate,swap").split(",");
const child = arg("child", "");
const GPT = { name: "gpt" as const, layers: 4, width: 128, heads: 4, context: 128, vocab: 256 };
const BATCH = 32;
const STEPS = 12;
const SKIP = 3;
const GEN_TOKENS = 256;

type Row = Record<string, unknown>;
const emit = (row: Row) => process.stdout.write(`${JSON.stringify(row)}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Our side, in a child process per thread count (jax-js fixes its threads when it loads). */
async function ours(kind: string): Promise<void> {
  const { threads, engine } = await initEngine();
  const model = buildModel(GPT);
  if (kind === "train") {
    const task = textTask(await loadText(bundledPath("sotu"), { name: "sotu" }), model, { evalTokens: 128 });
    let started = 0;
    let ended = 0;
    await train(model, findMethod("dense")!, {}, task, {
      steps: STEPS,
      batch: BATCH,
      seed: 0,
      schedule: { kind: "cosine", warmup: 1 },
      // The first steps compile; time the rest (the peer skips as many).
      onStep: (p) => {
        if (p.step === SKIP) started = performance.now();
        ended = performance.now();
      },
    });
    emit({ side: "mcnc", engine, threads, tokens_per_s: +(((STEPS - SKIP) * BATCH * GPT.context) / ((ended - started) / 1000)).toFixed(1) });
  } else {
    const decoder = gptDecoder(GPT, toDevice(model.specs, await initParams(model.specs, 0)));
    const options = { temperature: 0.8, topK: 0, seed: 0 };
    // Warm-up: compile the prefill and the step.
    for await (const _ of generate(decoder, Uint8Array.of(10), { ...options, tokens: 8 }));
    const t = performance.now();
    let n = 0;
    for await (const _ of generate(decoder, Uint8Array.of(10), { ...options, tokens: GEN_TOKENS })) n++;
    emit({ side: "mcnc", engine, threads, tokens_per_s: +(n / ((performance.now() - t) / 1000)).toFixed(1), note: `KV cache, ${GEN_TOKENS} tokens sampled, the window re-prefilled from its last half when full` });
    decoder.dispose();
  }
}

/** Runs a child (ours, at its thread count, or the peer): its stdout, or null after an error row. */
function spawned(bench: string, side: string, threads: number, command: string, argv: string[], env = process.env): string | null {
  const r = spawnSync(command, argv, { encoding: "utf8", env });
  if (r.status === 0) return r.stdout;
  emit({ bench, side, threads, error: r.stderr.trim().split("\n").slice(-2).join(" | ") });
  return null;
}

const lastRow = (stdout: string | null): Row | null => (stdout === null ? null : (JSON.parse(stdout.trim().split("\n").at(-1)!) as Row));

function runOurs(kind: string, threads: number, extra: string[] = []): string | null {
  return spawned(kind === "swap" ? "adapter-swap" : `gpt-${kind}`, "mcnc", threads, process.execPath, [fileURLToPath(import.meta.url), "--child", kind, ...extra], { ...process.env, MCNC_THREADS: String(threads) });
}

const PYTHON = "/usr/bin/python3";
const PEER = fileURLToPath(new URL("../../bench/torch_gpt.py", import.meta.url));
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import torch"]).status === 0;

function runTorch(kind: string, threads: number, files: { train: string; valid: string }): Row | null {
  const extra = kind === "train" ? ["--steps", String(STEPS), "--skip", String(SKIP), "--no-eval"] : ["--generate", String(GEN_TOKENS)];
  return lastRow(spawned(`gpt-${kind}`, "torch", threads, PYTHON, [PEER, "--train", files.train, "--valid", files.valid, "--threads", String(threads), "--batch", String(BATCH), "--warmup", "1", ...extra]));
}

/** mcnc's split of the bundled SOTU corpus, as files the peer reads. */
async function splitFiles(): Promise<{ train: string; valid: string }> {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-gpt-bench-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const corpus = await loadText(bundledPath("sotu"));
  const files = { train: join(dir, "train.bin"), valid: join(dir, "valid.bin") };
  writeFileSync(files.train, corpus.train);
  writeFileSync(files.valid, corpus.valid);
  return files;
}

async function speedAgainstTorch(kind: string): Promise<void> {
  const files = await splitFiles();
  if (!hasTorch) emit({ bench: `gpt-${kind}`, side: "torch", skipped: "no /usr/bin/python3 with torch (apt-get install python3-torch): our side only" });
  const seen: Record<string, number[]> = {};
  for (let rep = 0; rep < repeats; rep++) {
    for (const t of threadList) {
      for (const side of hasTorch ? ["mcnc", "torch"] : ["mcnc"]) {
        const row = side === "mcnc" ? lastRow(runOurs(kind, t)) : runTorch(kind, t, files);
        if (!row) continue;
        emit({ bench: `gpt-${kind}`, rep, ...row });
        (seen[`${side}/${t}`] ??= []).push(row.tokens_per_s as number);
      }
    }
  }
  const best = (side: string) =>
    threadList
      .map((t) => ({ t, xs: seen[`${side}/${t}`] ?? [] }))
      .filter((s) => s.xs.length > 0)
      .map((s) => ({ ...s, median: median(s.xs) }))
      .sort((a, b) => b.median - a.median)[0];
  const [m, p] = [best("mcnc"), best("torch")];
  for (const [side, b] of [["mcnc", m], ["torch", p]] as const) {
    if (b) emit({ bench: `gpt-${kind}-best`, side, threads: b.t, median_tokens_per_s: b.median, min: Math.min(...b.xs), max: Math.max(...b.xs), runs: b.xs.length });
  }
  if (m && p) {
    emit({
      bench: `gpt-${kind}-ratio`,
      ratio: +(m.median / p.median).toFixed(3),
      spread: [+(Math.min(...m.xs) / Math.max(...p.xs)).toFixed(3), +(Math.max(...m.xs) / Math.min(...p.xs)).toFixed(3)],
      mcnc_threads: m.t,
      torch_threads: p.t,
      note: "ours / PyTorch's tokens/s, medians at each side's best thread count; spread: worst and best pairing",
    });
  }
}

/**
 * Switching adapters on a loaded base, per method and budget (the base's parameters over the adapter's
 * stored numbers), adapting c_attn: FLOPs to produce the adapted weights, and milliseconds with the
 * frozen parts (generator, bases, theta_0) cached ("warm") and regenerated from the seed ("cold").
 * MCNC over LoRA runs with the default generator and with the paper's LLM one (k 5, hidden 32, 32).
 */
async function adapterSwap(baseFile?: string): Promise<void> {
  const { threads } = await initEngine();
  const loaded = baseFile ? readModelFile(baseFile) : null;
  const model = loaded?.model ?? buildModel(GPT);
  const base = loaded ? (await timedRebuild(loaded, 0)).params : await initParams(model.specs, 0);
  const cases: Array<[string, Record<string, unknown>]> = [
    ["lora", { rank: 1 }],
    ...[400, 1000, 10000].flatMap((ratio): Array<[string, Record<string, unknown>]> => [
      ["nola", { ratio, rank: 8 }],
      ["mcnc-lora", { ratio }],
      ["mcnc-lora", { ratio, k: 5, hidden: [32, 32] }],
      ["mcnc", { ratio }],
    ]),
  ];
  for (const [name, values] of cases) {
    const method = findMethod(name)!;
    const { config, leaves } = configureAdapter(method, values, model);
    const specs = producedSpecs(model, { leaves });
    const trainable = await method.init(config, specs, 1);
    for (const t of Object.values(trainable)) t.forEach((v, i) => (t[i] = v + 0.01 * Math.sin(i)));
    const rebuild = materializer(method, config, specs);
    const shapes = method.trainableShapes(config, specs);
    const cold: number[] = [];
    const warm: number[] = [];
    const frozenCached = await method.frozen(config, specs, 1, base);
    for (let i = 0; i < 6; i++) {
      let t = performance.now();
      const frozen = await method.frozen(config, specs, 1, base);
      await toHost(leaves, rebuild(toDevice(shapes, trainable), frozen));
      if (i > 0) cold.push(performance.now() - t);
      t = performance.now();
      await toHost(leaves, rebuild(toDevice(shapes, trainable), tree.ref(frozenCached)));
      if (i > 0) warm.push(performance.now() - t);
    }
    tree.dispose(frozenCached);
    const adapted = countParams(specs);
    const stored = countParams(shapes);
    const flops = method.rebuildFlops(config, specs);
    emit({
      bench: "adapter-swap",
      threads,
      method: name,
      config,
      stored_params: stored,
      percent_of_base: +((100 * stored) / countParams(model.specs)).toFixed(4),
      adapted_params: adapted,
      flops,
      flops_per_weight: +(flops / adapted).toFixed(1),
      warm_ms: +median(warm).toFixed(3),
      cold_ms: +median(cold).toFixed(3),
    });
  }
}

if (child === "train" || child === "generate") {
  await ours(child);
} else if (only.includes("peer-pretrain")) {
  if (!hasTorch) emit({ bench: "peer-pretrain", skipped: "no /usr/bin/python3 with torch (apt-get install python3-torch)" });
  else {
    const files = await splitFiles();
    const steps = arg("steps", "5000");
    const r = spawnSync(PYTHON, [PEER, "--train", files.train, "--valid", files.valid, "--steps", steps, "--threads", threadList.at(-1)!.toString(), "--eval-tokens", "65536"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    emit({ bench: "peer-pretrain", ...(JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as Row) });
  }
} else if (child === "swap") {
  await adapterSwap(args.includes("--base") ? arg("base", "") : undefined);
} else {
  for (const kind of ["train", "generate"]) if (only.includes(kind)) await speedAgainstTorch(kind);
  if (only.includes("swap")) {
    for (const t of threadList) process.stdout.write(runOurs("swap", t, args.includes("--base") ? ["--base", arg("base", "")] : []) ?? "");
  }
}
