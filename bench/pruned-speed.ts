/**
 * Inference speed of the shipped GPT as compressed after training, like with like: the base, rom (whose
 * file stores factors but rebuilds the full matrices, so it runs as the base does) and structured pruning
 * (a smaller network) at the same budgets. Each model's forward pass over a batch of windows, and one
 * stream of greedy decoding, timed interleaved (base, rom, structured, base, ...) on the same engine, so the
 * ratios hold on a shared machine; medians of the rounds with their spread, and each model's median ratio
 * to the base in the same round.
 *
 *   node dist/bench/pruned-speed.js [--rounds 5] [--reductions 0.2,0.33,0.5] [--batch 16] [--decode 64]
 *
 * JSON lines on stdout.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { numpy as np, tree } from "@jax-js/jax";
import { compile, put, read } from "../src/engine/program.js";
import { languageDecoder } from "../src/generate/decoder.js";
import { generate } from "../src/generate/sample.js";
import { buildModel, countParams, initEngine, readModelFile, timedRebuild, toDevice } from "../src/index.js";
import type { Params } from "../src/model/params.js";
import { option } from "./bench-args.js";

const rounds = Number(option("rounds", "5"));
const reductions = option("reductions", "0.2,0.33,0.5").split(",");
const batch = Number(option("batch", "16"));
const decodeTokens = Number(option("decode", "64"));
const base = fileURLToPath(new URL("../../data/models/gpt-sotu.mcnc", import.meta.url));
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "mcnc-pruned-speed-"));

const files: Array<{ name: string; file: string }> = [{ name: "base", file: base }];
for (const r of reductions) {
  for (const method of ["rom", "structured"]) {
    const file = join(dir, `${method}-${r}.mcnc`);
    const made = spawnSync(process.execPath, [cli, "compress", "--method", method, "--reduction", r, "--in", base, "--out", file, "--skip-eval", "--quiet"], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`${method} ${r}: ${made.stderr}`);
    files.push({ name: `${method} ${r}`, file });
  }
}

await initEngine();
const T = 128;
const tokens = put(Int32Array.from({ length: batch * T }, (_, i) => (i * 31 + 7) % 256), [batch, T]);
const runs = [];
for (const { name, file } of files) {
  const loaded = readModelFile(file);
  const model = buildModel(loaded.file.model);
  const params = toDevice(model.specs, (await timedRebuild(loaded, 0)).params);
  const forward = compile((p: Params, x: np.Array) => model.apply(p, x).sum(), { name: `${name} forward` });
  const pass = async () => (await read(await forward(tree.ref(params), tokens.ref)))[0];
  const decode = async () => {
    const decoder = languageDecoder(model.lm!, tree.ref(params));
    for await (const _ of generate(decoder, Uint8Array.of(10), { tokens: decodeTokens, temperature: 0, topK: 1, seed: 0 }));
    decoder.dispose();
  };
  await pass();
  await decode();
  runs.push({ name, params: countParams(model.specs), pass, decode, forward: [] as number[], decoding: [] as number[] });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (let round = 0; round < rounds; round++) {
  for (const r of runs) {
    let t = performance.now();
    for (let i = 0; i < 5; i++) await r.pass();
    r.forward.push((5 * batch * T) / ((performance.now() - t) / 1000));
    t = performance.now();
    await r.decode();
    r.decoding.push(decodeTokens / ((performance.now() - t) / 1000));
  }
}
const [ref] = runs;
for (const r of runs) {
  const ratio = (mine: number[], theirs: number[]) => Number(median(mine.map((v, i) => v / theirs[i]!)).toFixed(3));
  const spread = (xs: number[]) => [Math.round(Math.min(...xs)), Math.round(Math.max(...xs))];
  process.stdout.write(
    `${JSON.stringify({ model: r.name, params: r.params, forward_tokens_per_s: Math.round(median(r.forward)), forward_spread: spread(r.forward), forward_vs_base: ratio(r.forward, ref!.forward), decode_tokens_per_s: Math.round(median(r.decoding)), decode_spread: spread(r.decoding), decode_vs_base: ratio(r.decoding, ref!.decoding), rounds, batch, window: T })}\n`,
  );
}
rmSync(dir, { recursive: true, force: true });
