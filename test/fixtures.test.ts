/** Format stability: every golden file under test/fixtures/ still rebuilds to the weights it did when it was written. */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { initEngine } from "../src/engine/engine.js";
import { decodeModelFile } from "../src/format/model-file.js";
import { weightsHash } from "../src/format/weights-hash.js";
import { methodNames } from "../src/methods/index.js";
import { buildModel } from "../src/model/models.js";
import { FIXTURES, readManifest, rebuildFixture } from "./fixtures/make-fixtures.js";
import { readFileSync } from "node:fs";

await initEngine();
const manifest = readManifest();

test("every method has a golden file, and every golden file is in the manifest", () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith(".mcnc")).sort();
  assert.deepEqual(files, Object.keys(manifest).sort());
  const methods = new Set(files.map((f) => decodeModelFile(readFileSync(FIXTURES + f), f).method.name));
  assert.deepEqual([...methods].sort(), methodNames().sort());
});

for (const [file, entry] of Object.entries(manifest)) {
  test(`${file} rebuilds to the weights it was written with`, async () => {
    const loaded = decodeModelFile(readFileSync(FIXTURES + file), file);
    const weights = await rebuildFixture(file, manifest);
    assert.equal(weightsHash(buildModel(loaded.file.model).specs, weights), entry.sha256);
  });
}
