/**
 * npm run bench: JSON lines on stdout, every speed beside what it is measured against in the same run.
 *
 *   node dist/bench/bench.js [--threads 1,2] [--rounds 3] [--quick] [--only ceiling,matmul,train,rebuild,rebuild-100x,gpt,engine]
 *
 * - ceiling: the Wasm SIMD ceiling of one core (bench/wasm-ceiling.ts), what any Wasm matmul can reach.
 * - matmul: jax-js's matmul and PyTorch's (when /usr/bin/python3 has torch), interleaved round by round
 *   at each thread count, medians and spread, each as a fraction of the ceiling.
 * - train: training samples/s against bench/torch_mcnc.py, interleaved (bench/train-vs-torch.ts), on
 *   the native engine (--engines native,wasm there for both).
 * - rebuild, rebuild-100x: weights from the compressed form, GFLOP/s against this run's matmul.
 * - gpt: bench/gpt-bench.ts, the GPT's training and generation beside PyTorch's copy, interleaved.
 * - engine: bench/engine-bench.ts, evaluation and calibration on each engine, and what sessions cost.
 *
 * Each of our thread counts runs in its own child process (jax-js fixes its threads when it loads).
 */
// The library first: its preload must run before jax-js loads (engine/preload.ts).
import { buildModel, findMethod, initEngine, materializer, toDevice, toHost, type McncConfig } from "../src/index.js";
import { jit, numpy as np, tree } from "@jax-js/jax";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { compareTraining, emit, hasTorch, NO_TORCH, type ModelName } from "./train-vs-torch.js";
import { wasmSimdCeiling } from "./wasm-ceiling.js";
import { has, option } from "./bench-args.js";

const quick = has("quick");
const threadList = option("threads", "1,2").split(",").map(Number);
const isChild = has("child");
const only = option("only")?.split(",") ?? null;
const rounds = Number(option("rounds", quick ? "1" : "3"));
const MATMUL_SIZES = [512, 1024];
/** Sections: ceiling, matmul, train, rebuild, rebuild-100x, gpt, engine (all by default). */
const want = (section: string) => only === null || only.includes(section);

type Row = Record<string, unknown>;

async function measure(): Promise<void> {
  const { threads } = await initEngine();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  // Matmul peak: the ceiling the rebuild's GFLOP/s is read against.
  for (const n of want("matmul") ? MATMUL_SIZES : []) {
    const mm = jit((a: np.Array, b: np.Array) => np.matmul(a, b));
    const a = np.ones([n, n]);
    const b = np.ones([n, n]);
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = performance.now();
      await (mm(a.ref, b.ref) as np.Array).data();
      if (i > 0) times.push(performance.now() - t);
    }
    emit({ bench: "matmul", threads, n, ms: +median(times).toFixed(2), gflops: +((2 * n ** 3) / median(times) / 1e6).toFixed(1) });
  }

  // Rebuild: weights from (alpha, beta) with the default generator, for 1M and 10M parameters.
  const mcnc = findMethod("mcnc")!;
  for (const n of want("rebuild") ? [1_000_000, 10_000_000] : []) {
    const specs = [{ name: "w", shape: [n], role: "weight" as const, fanIn: 1 }];
    const config = mcnc.configure({}, specs) as McncConfig;
    const trainable = toDevice(mcnc.trainableShapes(config, specs), await mcnc.init(config, specs, 0));
    const rebuild = materializer(mcnc, config, specs);
    const frozenStart = performance.now();
    const frozen = await mcnc.frozen(config, specs, 0);
    const regenerateMs = performance.now() - frozenStart;
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await toHost(["w"], rebuild(tree.ref(trainable), tree.ref(frozen)));
      if (i > 0) times.push(performance.now() - t);
    }
    const ms = median(times);
    const flops = mcnc.rebuildFlops(config, specs);
    emit({
      bench: "rebuild",
      threads,
      params: n,
      generator: [config.k, ...config.hidden, config.d].join("-"),
      regenerate_generator_ms: +regenerateMs.toFixed(2),
      ms: +ms.toFixed(2),
      params_per_s: Math.round(n / (ms / 1000)),
      gflop: +(flops / 1e9).toFixed(3),
      gflops: +(flops / ms / 1e6).toFixed(2),
    });
  }

  // Rebuild cost at an equal budget (100x), method against method: FLOPs counted, and the time from
  // the seed to the weights split into regenerating the frozen tensors and computing the weights.
  for (const modelName of want("rebuild-100x") ? (["mlp", "lenet"] as const) : []) {
    const model = buildModel({ name: modelName, input: [28, 28, 1], classes: 10 });
    for (const [methodName, values] of [
      ["mcnc", { ratio: 100 }],
      // The ranks measured best in docs/results.md; LeNet's first and last layers are too small for rank 16.
      ["mcnc-lora", modelName === "mlp" ? { ratio: 100, rank: 10 } : { ratio: 100, rank: 16, compress: "c2,w1" }],
      ["nola", { ratio: 100 }],
      ["pranc", { ratio: 100 }],
    ] as const) {
      const method = findMethod(methodName)!;
      const config = method.configure(values, model.specs);
      const trainable = toDevice(method.trainableShapes(config, model.specs), await method.init(config, model.specs, 0));
      const rebuild = materializer(method, config, model.specs);
      const names = model.specs.map((s) => s.name);
      const regenerate: number[] = [];
      const compute: number[] = [];
      for (let i = 0; i < 4; i++) {
        const t0 = performance.now();
        const frozen = await method.frozen(config, model.specs, 0);
        const t1 = performance.now();
        await toHost(names, rebuild(tree.ref(trainable), frozen));
        if (i > 0) regenerate.push(t1 - t0), compute.push(performance.now() - t1);
      }
      const flops = method.rebuildFlops(config, model.specs);
      emit({
        bench: "rebuild-100x",
        threads,
        model: modelName,
        method: methodName,
        config,
        flops,
        flops_per_weight: +(flops / names.reduce((n, name) => n + model.specs.find((s) => s.name === name)!.shape.reduce((a, b) => a * b, 1), 0)).toFixed(1),
        regenerate_ms: +median(regenerate).toFixed(2),
        weights_ms: +median(compute).toFixed(2),
      });
    }
  }
}

const PYTHON = "/usr/bin/python3";

/** PyTorch's float32 matmul at `threads`, the same sizes and timing rule as ours (median of five after a warm-up). */
function torchMatmul(threads: number): Row[] {
  const script = `
import json, time, torch
torch.set_num_threads(${threads})
for n in (${MATMUL_SIZES.join(", ")}):
    a = torch.ones(n, n); b = torch.ones(n, n)
    a @ b
    ts = []
    for _ in range(5):
        t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
    ts.sort()
    print(json.dumps({"n": n, "ms": ts[2] * 1000, "gflops": 2 * n ** 3 / ts[2] / 1e9}))`;
  const r = spawnSync(PYTHON, ["-c", script], { encoding: "utf8" });
  return r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Row);
}

/** Our sections in a child per thread count; its JSON lines. */
function child(threads: number, sections: string[]): Row[] {
  const passOn = [...(quick ? ["--quick"] : []), "--only", sections.join(",")];
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", ...passOn], { encoding: "utf8", env: { ...process.env, MCNC_THREADS: String(threads) } });
  if (r.status !== 0) {
    emit({ bench: "error", threads, stderr: r.stderr.trim().split("\n").slice(-3).join(" | ") });
    return [];
  }
  return r.stdout.trim().split("\n").map((line) => JSON.parse(line) as Row);
}

const spread = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { median: +sorted[Math.floor(sorted.length / 2)]!.toFixed(1), min: +sorted[0]!.toFixed(1), max: +sorted.at(-1)!.toFixed(1) };
};

if (isChild) {
  await measure();
} else {
  let ceiling: number | undefined;
  if (want("ceiling") || want("matmul")) {
    const c = (await wasmSimdCeiling())!;
    ceiling = c.gflops;
    emit({ bench: "wasm-simd-ceiling", threads: 1, gflops: +c.gflops.toFixed(1), runs: c.runs.map((g) => +g.toFixed(1)), what: "f32x4 mul+add, 8 accumulators, no relaxed SIMD (FMA)" });
    // What fused multiply-add would give, measured in a child that may enable it (not used by mcnc: it differs across runtimes).
    const fused = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", fileURLToPath(new URL("./wasm-ceiling.js", import.meta.url)), "--fused"], { encoding: "utf8" });
    const row = fused.status === 0 ? (JSON.parse(fused.stdout.trim() || "null") as Row | null) : null;
    emit(row ? { bench: "wasm-simd-ceiling-fma", threads: 1, ...row, what: "f32x4 relaxed_madd, 8 accumulators (not used: results differ across runtimes)" } : { bench: "wasm-simd-ceiling-fma", skipped: "this runtime has no relaxed SIMD" });
  }
  // Matmul, ours and PyTorch's, alternating round by round at each thread count.
  const matmul: Record<string, number[]> = {};
  if (want("matmul")) {
    const torch = hasTorch();
    if (!torch) emit({ bench: "torch-matmul", skipped: NO_TORCH });
    for (let round = 0; round < rounds; round++) {
      for (const t of threadList) {
        for (const row of child(t, ["matmul"])) (matmul[`ours ${t} ${String(row.n)}`] ??= []).push(row.gflops as number);
        for (const row of torch ? torchMatmul(t) : []) (matmul[`torch ${t} ${String(row.n)}`] ??= []).push(row.gflops as number);
      }
    }
    for (const [key, runs] of Object.entries(matmul)) {
      const [side, t, n] = key.split(" ");
      const s = spread(runs);
      emit({ bench: "matmul", side, threads: Number(t), n: Number(n), gflops: s, of_wasm_ceiling: +(s.median / (ceiling! * Number(t))).toFixed(3) });
    }
    for (const t of threadList) {
      for (const n of MATMUL_SIZES) {
        const [o, p] = [matmul[`ours ${t} ${n}`], matmul[`torch ${t} ${n}`]];
        if (o && p) emit({ bench: "matmul-vs-torch", threads: t, n, ratio: +(spread(o).median / spread(p).median).toFixed(3) });
      }
    }
  }
  const sections = ["rebuild", "rebuild-100x"].filter(want);
  for (const t of sections.length > 0 ? threadList : []) {
    for (const row of child(t, sections)) {
      // The rebuild against jax-js's own matmul peak at the same thread count, measured above.
      const peak = matmul[`ours ${t} 1024`];
      emit(row.bench === "rebuild" && peak ? { ...row, of_matmul_peak: +((row.gflops as number) / spread(peak).median).toFixed(3) } : row);
    }
  }
  if (want("train")) compareTraining({ rounds, threads: threadList, models: ["mlp", "lenet"] as ModelName[], methods: ["dense", "mcnc"], engines: ["native"] });
  if (want("engine")) {
    const engines = fileURLToPath(new URL("./engine-bench.js", import.meta.url));
    const r = spawnSync(process.execPath, [engines, "--rounds", String(rounds)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    process.stdout.write(r.stdout);
  }
  if (want("gpt")) {
    const gpt = fileURLToPath(new URL("./gpt-bench.js", import.meta.url));
    const r = spawnSync(process.execPath, [gpt, "--threads", threadList.join(",")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    process.stdout.write(r.stdout);
  }
}
