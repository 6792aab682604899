/**
 * npm run bench: JSON lines on stdout. Each thread count runs in its own child process (jax-js fixes
 * its threads when it loads); the PyTorch peer, when /usr/bin/python3 has torch, runs in the same
 * invocation so the ratios compare one machine at one moment.
 *
 *   node dist/bench/bench.js [--threads 1,2] [--quick] [--only matmul,train,rebuild,rebuild-100x,gpt]
 *
 * `gpt` runs bench/gpt-bench.ts: the GPT's training and generation tokens/s beside PyTorch's,
 * interleaved, and the cost of switching adapters.
 */
// The library first: its preload must run before jax-js loads (engine/preload.ts).
import { buildModel, findMethod, imageTask, initEngine, loadDataset, materializer, toDevice, toHost, train, type McncConfig } from "../src/index.js";
import { jit, numpy as np, tree } from "@jax-js/jax";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const threadList = (args[args.indexOf("--threads") + 1] && args.includes("--threads") ? args[args.indexOf("--threads") + 1]! : "1,2").split(",").map(Number);
const child = args.includes("--child");
const only = args.includes("--only") ? args[args.indexOf("--only") + 1]!.split(",") : null;
/** Sections: matmul, train, rebuild, rebuild-100x, gpt (all by default). */
const want = (section: string) => only === null || only.includes(section);

type Row = Record<string, unknown>;
const emit = (row: Row) => process.stdout.write(`${JSON.stringify(row)}\n`);

async function measure(): Promise<void> {
  const { threads } = await initEngine();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  // Matmul peak: the ceiling the rebuild's GFLOP/s is read against.
  for (const n of want("matmul") ? [512, 1024] : []) {
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

  // Training throughput at batch 128: the second epoch (compiled) of a short run.
  const data = loadDataset(undefined, { trainLimit: quick ? 2560 : 12800, testLimit: 1000 });
  for (const modelName of want("train") ? (["mlp", "lenet"] as const) : []) {
    for (const methodName of ["dense", "mcnc"]) {
      const model = buildModel({ name: modelName, input: data.imageShape, classes: data.numClasses });
      const method = findMethod(methodName)!;
      const config = method.configure(methodName === "mcnc" ? { ratio: 100 } : {}, model.specs);
      const sub = modelName === "lenet" ? { ...data, train: { ...data.train, count: 1280, x: data.train.x.subarray(0, 1280 * 784), y: data.train.y.subarray(0, 1280) } } : data;
      const r = await train(model, method, config, imageTask(sub, model), { epochs: 2, batch: 128, seed: 0 });
      emit({ bench: "train", threads, model: modelName, method: methodName, batch: 128, samples: sub.train.count, train_samples_per_s: +r.history[1]!.rate.toFixed(1) });
    }
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

function torchRows(): Row[] {
  const peer = fileURLToPath(new URL("../../../shared/peers/torch_mcnc.py", import.meta.url));
  const python = "/usr/bin/python3";
  if (!existsSync(peer) || !existsSync(python) || spawnSync(python, ["-c", "import torch"]).status !== 0) {
    return [{ bench: "torch", skipped: "no /usr/bin/python3 with torch, or no ../shared/peers/torch_mcnc.py" }];
  }
  const data = fileURLToPath(new URL("../../data/fashion-mnist", import.meta.url));
  const rows: Row[] = [];
  for (const model of ["mlp", "lenet"]) {
    for (const method of ["dense", "mcnc"]) {
      const limit = model === "lenet" ? 1280 : quick ? 2560 : 12800;
      const r = spawnSync(python, [peer, "--data", data, "--model", model, "--method", method, "--epochs", "1", "--limit", String(limit), "--threads", "2"], { encoding: "utf8" });
      const lines = r.stdout.trim().split("\n").filter((l) => l.startsWith("{"));
      const epoch = lines.map((l) => JSON.parse(l) as Row).find((o) => "train_samples_per_s" in o);
      rows.push({ bench: "torch-train", threads: 2, model, method, batch: 128, samples: limit, train_samples_per_s: epoch?.train_samples_per_s ?? null, reconstruct_ms: epoch?.reconstruct_ms ?? null });
    }
  }
  return rows;
}

if (child) {
  await measure();
} else {
  const self = fileURLToPath(import.meta.url);
  const ours: Row[] = [];
  for (const t of ["matmul", "train", "rebuild", "rebuild-100x"].some(want) ? threadList : []) {
    const passOn = [...(quick ? ["--quick"] : []), ...(only ? ["--only", only.join(",")] : [])];
    const r = spawnSync(process.execPath, [self, "--child", ...passOn], { encoding: "utf8", env: { ...process.env, MCNC_THREADS: String(t) } });
    if (r.status !== 0) {
      emit({ bench: "error", threads: t, stderr: r.stderr.trim().split("\n").slice(-3).join(" | ") });
      continue;
    }
    for (const line of r.stdout.trim().split("\n")) {
      const row = JSON.parse(line) as Row;
      ours.push(row);
      emit(row);
    }
  }
  if (want("gpt")) {
    const gpt = fileURLToPath(new URL("./gpt-bench.js", import.meta.url));
    const r = spawnSync(process.execPath, [gpt, "--threads", threadList.join(",")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    process.stdout.write(r.stdout);
  }
  const torch = want("train") ? torchRows() : [];
  for (const row of torch) emit(row);
  // Ratios: ours over PyTorch's, same model, method and batch, measured in this run.
  for (const t of torch.filter((r) => r.bench === "torch-train" && typeof r.train_samples_per_s === "number")) {
    for (const o of ours.filter((r) => r.bench === "train" && r.model === t.model && r.method === t.method)) {
      emit({ bench: "ratio-vs-torch", model: t.model, method: t.method, threads: o.threads, torch_threads: 2, ratio: +((o.train_samples_per_s as number) / (t.train_samples_per_s as number)).toFixed(3) });
    }
  }
}
