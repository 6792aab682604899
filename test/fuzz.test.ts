/** A few thousand seeded hostile inputs per target, every run: accepted, or refused with a UserError; never a crash. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { initEngine } from "../src/engine/engine.js";
import { fuzzFlags, fuzzIdx, fuzzModelFiles, fuzzTablesImages } from "./fuzz/fuzz.js";
import { fuzzCheckpoints, fuzzForeignModels } from "./fuzz/fuzz-models.js";

await initEngine();
// One seed, so that the suite fails the same way on every run; `npm run fuzz` takes a new one each day.
const seed = 1;

for (const [name, fuzz, cases] of [["mcnc files", fuzzModelFiles, 3000], ["IDX and .npy files", fuzzIdx, 2000], ["tables and images", fuzzTablesImages, 2000], ["flags", fuzzFlags, 3000], ["checkpoints", fuzzCheckpoints, 2000], ["ONNX and TF.js models", fuzzForeignModels, 2000]] as const) {
  test(`fuzz ${name}: ${cases} cases, seed ${seed}`, async () => {
    const report = await fuzz(cases, seed);
    // Both outcomes occur: the mutations reach past the first check, and the valid inputs still pass.
    assert.ok(report.accepted > 0 && report.refused > 0, JSON.stringify(report));
  });
}
