/** The rebuild in a real browser (the Chromium package.json brings): the same bits as Node, the golden files as pinned. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { readManifest } from "./fixtures/make-fixtures.js";

test("Chromium rebuilds every file bit-identically to Node, the golden files to their pinned hashes, and samples the same text", () => {
  const check = fileURLToPath(new URL("../bench/browser-check.js", import.meta.url));
  const r = spawnSync(process.execPath, [check], { encoding: "utf8", timeout: 300_000 });
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { check: string; file?: string; identical?: boolean; error?: string });
  assert.equal(r.status, 0, r.stdout.slice(0, 2000) + r.stderr.slice(-2000));
  const rebuilt = rows.filter((x) => x.check === "browser-fixture").map((x) => x.file);
  assert.deepEqual(rebuilt.sort(), Object.keys(readManifest()).sort(), "every golden file was rebuilt");
  for (const row of rows) assert.equal(row.identical, true, JSON.stringify(row).slice(0, 500));
});
