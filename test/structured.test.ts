/** Structured pruning: whole heads and channels removed, the smaller network computing what the pruned one did. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { numpy as np } from "@jax-js/jax";
import { findCompressor } from "../src/compress/index.js";
import { initEngine } from "../src/engine/engine.js";
import { put } from "../src/engine/program.js";
import { blockShape } from "../src/model/gpt.js";
import { buildModel, type GptConfig } from "../src/model/models.js";
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
  const batches = [put(tokens, [4, 16])];
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
});
