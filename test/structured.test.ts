/** Structured pruning: whole heads and channels removed, the smaller network computing what the pruned one did. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { numpy as np } from "@jax-js/jax";
import type { CalibrationBatch } from "../src/compress/compress-model.js";
import { findCompressor } from "../src/compress/index.js";
import { initEngine } from "../src/engine/engine.js";
import { put } from "../src/engine/program.js";
import { blockShape } from "../src/model/gpt.js";
import { buildModel, type GptConfig } from "../src/model/models.js";
import { readModelFile } from "../src/format/read-file.js";
import { timedRebuild } from "../src/format/model-file.js";
import { countParams, initParams, toDevice, type HostParams } from "../src/model/params.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";

await initEngine();

const C: GptConfig = { layers: 2, width: 32, heads: 4, context: 16, vocab: 256 };

/** Which rows of `full` [n, cols] the pruned matrix's rows are, in order (rows are distinct). */
function rowsKept(full: Float32Array, pruned: Float32Array, cols: number): number[] {
  const key = (a: Float32Array, r: number) => a.subarray(r * cols, (r + 1) * cols).join();
  const index = new Map(Array.from({ length: full.length / cols }, (_, r) => [key(full, r), r]));
  return Array.from({ length: pruned.length / cols }, (_, r) => index.get(key(pruned, r))!);
}

test("structured: the pruned GPT computes what the full one does with the removed heads and channels silenced; the budget holds; the least important go first", async () => {
  const model = buildModel({ name: "gpt", ...C });
  const weights: HostParams = await initParams(model.specs, 3);
  // Block 1's MLP channel 5 sends nothing on: it must be among the first removed.
  weights["h.1.mlp.c_proj.weight"]!.fill(0, 5 * 32, 6 * 32);
  const tokens = Int32Array.from({ length: 4 * 16 }, (_, i) => (i * 37) % 256);
  const batches: CalibrationBatch[] = [[put(tokens, [4, 16]), put(tokens, [4, 16])]];
  const structured = findCompressor("structured")!;
  for (const reduction of [0.2, 0.5]) {
    const { description, weights: pruned } = await structured.restructure!(structured.configure({ reduction }), model, weights, batches);
    const small = buildModel(description);
    assert.equal(description.name, "gpt");
    const D = 32 / 4;
    const silenced: HostParams = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, v.slice()]));
    for (let l = 0; l < 2; l++) {
      const h = `h.${l}`;
      const heads = rowsKept(weights[`${h}.attn.c_proj.weight`]!, pruned[`${h}.attn.c_proj.weight`]!, 32);
      const channels = rowsKept(weights[`${h}.mlp.c_proj.weight`]!, pruned[`${h}.mlp.c_proj.weight`]!, 32);
      for (let j = 0; j < 4 * D; j++) if (!heads.includes(j)) silenced[`${h}.attn.c_proj.weight`]!.fill(0, j * 32, (j + 1) * 32);
      for (let j = 0; j < 128; j++) if (!channels.includes(j)) silenced[`${h}.mlp.c_proj.weight`]!.fill(0, j * 32, (j + 1) * 32);
      const kept = blockShape((small.description as GptConfig), l);
      assert.deepEqual([heads.length, channels.length], [kept.heads * D, kept.hidden]);
      if (l === 1) assert.ok(!channels.includes(5), "a channel that sends nothing is removed");
      // Each block loses at least the asked share of its matrices' parameters, and less than one more head.
      const removed = 4 * 32 * (4 * D - heads.length) + 2 * 32 * (128 - channels.length);
      assert.ok(removed >= reduction * (4 * 32 * 32 + 2 * 32 * 128) && removed < reduction * (4 * 32 * 32 + 2 * 32 * 128) + 4 * 32 * D + 64, `block ${l}: ${removed} removed at ${reduction}`);
    }
    const logits = async (m: typeof model, w: HostParams) => (await m.apply(toDevice(m.specs, w), np.array(tokens).reshape([4, 16])).data()) as Float32Array;
    const [got, want] = [await logits(small, pruned), await logits(model, silenced)];
    assert.ok(got.every((v, i) => Math.abs(v - want[i]!) < 1e-4), `reduction ${reduction}`);
    assert.ok(countParams(small.specs) < countParams(model.specs));
  }
});

test("mcnc compress --method structured: a smaller GPT and MLP in .mcnc, with the new shape in the header, that eval and generate run; other inputs refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-structured-"));
  const gpt = join(dir, "gpt.mcnc");
  const r = mcnc("compress", "--method", "structured", "--reduction", "0.33", "--in", "data/models/gpt-sotu.mcnc", "--out", gpt, "--calib-samples", "32", "--eval-tokens", "4096", "--json");
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout) as { after: { bits_per_byte: number }; params: number; stored_params: number; file_bytes: number; pruned: { blocks: unknown[] } };
  assert.equal(j.params, 842496, "counted against the network as given");
  assert.ok(j.stored_params < 0.7 * 842496 && j.file_bytes === readFileSync(gpt).length);
  assert.equal(j.pruned.blocks.length, 4);
  assert.ok(Math.abs((lastJson(mcnc("eval", gpt, "--eval-tokens", "4096", "--json").stdout).bits_per_byte as number) - j.after.bits_per_byte) < 1e-6);
  assert.match(mcnc("inspect", gpt).stdout, /pruned: heads [\d,]+, MLP [\d,]+/);
  const g = mcnc("generate", "--model", gpt, "--prompt", "The", "--tokens", "20", "--temperature", "0", "--json");
  assert.equal(g.code, 0, g.stderr);
  assert.equal((lastJson(g.stdout) as { tokens: number }).tokens, 20);

  const mlp = join(dir, "mlp.mcnc");
  assert.equal(mcnc("train", "--method", "dense", "--epochs", "1", "--limit", "2000", "--test-limit", "500", "--out", mlp, "--quiet").code, 0);
  const small = join(dir, "mlp-small.mcnc");
  const m = lastJson(mcnc("compress", "--method", "structured", "--reduction", "0.5", "--in", mlp, "--out", small, "--test-limit", "500", "--json").stdout) as { after: { accuracy: number }; stored_params: number };
  assert.ok(m.after.accuracy > 0.5 && m.stored_params < 0.55 * 203530, JSON.stringify(m));
  assert.equal(lastJson(mcnc("eval", small, "--test-limit", "500", "--json").stdout).accuracy, m.after.accuracy);
  assertCleanError(mcnc("compress", "--method", "structured", "--reduction", "0.5", "--in", mlp, "--out", join(dir, "x.safetensors")), /written as \.mcnc with its new shape/);
  assertCleanError(mcnc("compress", "--method", "structured", "--in", mlp, "--out", join(dir, "y.mcnc")), /--reduction must be in \(0, 1\)/);
  assertCleanError(mcnc("compress", "--method", "structured", "--reduction", "0.5", "--compress", "w1", "--in", mlp, "--out", join(dir, "z.mcnc")), /--compress does not apply to --method structured/);
});

test("drop-blocks: the GPT without a block computes what the full one does with that block silenced; a block that does nothing goes first", async () => {
  // The shipped GPT with its block 2 made to add nothing to the residual stream (output projections zero):
  // dropping it costs nothing, dropping any trained block costs loss on real text.
  const loaded = readModelFile("data/models/gpt-sotu.mcnc");
  const model = buildModel(loaded.file.model);
  const weights: HostParams = (await timedRebuild(loaded, 0)).params;
  for (const leaf of ["attn.c_proj.weight", "attn.c_proj.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"]) weights[`h.2.${leaf}`] = new Float32Array(weights[`h.2.${leaf}`]!.length);
  const text = new TextEncoder().encode("The people of the United States have a right to expect from the Congress a careful and candid account of the state of the Union, and of the measures ".repeat(2));
  const tokens = Int32Array.from(text.subarray(0, 4 * 32));
  const next = Int32Array.from(text.subarray(1, 4 * 32 + 1));
  const batches: CalibrationBatch[] = [[put(tokens, [4, 32]), put(next, [4, 32])]];
  const dropBlocks = findCompressor("drop-blocks")!;
  const { description, weights: smaller } = await dropBlocks.restructure!(dropBlocks.configure({ drop: 1 }), model, weights, batches);
  assert.equal((description as GptConfig).layers, 3);
  // Blocks 0, 1 and 3 stay, renumbered 0, 1 and 2: the same weights under the new names.
  assert.deepEqual([smaller["h.1.mlp.c_fc.weight"], smaller["h.2.mlp.c_fc.weight"]], [weights["h.1.mlp.c_fc.weight"], weights["h.3.mlp.c_fc.weight"]]);
  const logits = async (m: typeof model, w: HostParams) => (await m.apply(toDevice(m.specs, w), np.array(tokens).reshape([4, 32])).data()) as Float32Array;
  const [got, want] = [await logits(buildModel(description), smaller), await logits(model, weights)];
  assert.ok(got.every((v, i) => Math.abs(v - want[i]!) < 1e-4));
  assert.throws(() => dropBlocks.configure({ drop: 0 }), /--drop must be a positive integer/);
  await assert.rejects(dropBlocks.restructure!(dropBlocks.configure({ drop: 4 }), model, weights, batches), /would leave none of the 4 blocks/);
});

test("mcnc compress --method drop-blocks: a GPT of fewer blocks, healed by a short fine-tune when asked; eval and generate run it", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-drop-"));
  const [raw, healed] = [join(dir, "raw.mcnc"), join(dir, "healed.mcnc")];
  const run = (out: string, ...extra: string[]) => lastJson(mcnc("compress", "--method", "drop-blocks", "--drop", "1", ...extra, "--in", "data/models/gpt-sotu.mcnc", "--out", out, "--calib-samples", "32", "--eval-tokens", "4096", "--json").stdout) as { after: { bits_per_byte: number }; pruned: { layers: number } };
  const [a, b] = [run(raw), run(healed, "--heal-steps", "40")];
  assert.equal(a.pruned.layers, 3);
  assert.ok(b.after.bits_per_byte < a.after.bits_per_byte, `healing: ${a.after.bits_per_byte} -> ${b.after.bits_per_byte}`);
  assert.ok(Math.abs((lastJson(mcnc("eval", healed, "--eval-tokens", "4096", "--json").stdout).bits_per_byte as number) - b.after.bits_per_byte) < 1e-6);
  assert.equal(mcnc("generate", "--model", healed, "--prompt", "The", "--tokens", "10").code, 0);
  assertCleanError(mcnc("compress", "--method", "drop-blocks", "--drop", "4", "--in", "data/models/gpt-sotu.mcnc", "--out", join(dir, "none.mcnc")), /would leave none of the 4 blocks/);
});
