import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const entry = fileURLToPath(new URL("../src/browser.js", import.meta.url));

test("the browser entry bundles for the browser: no Node built-in on the rebuild path", async () => {
  // esbuild refuses node: imports when the platform is the browser, so a Node-only module reaching
  // this entry fails here, not in a user's bundler.
  const result = await build({ entryPoints: [entry], bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" });
  const code = result.outputFiles[0]!.text;
  // (The worker shim's prelude mentions node:worker_threads inside a string run only by Node workers.)
  assert.doesNotMatch(code, /^\s*import[^;]*from\s*"node:/m);
  assert.match(code, /threefry2x32|decodeModelFile/);
});

test("a Node-only module does fail that bundle (the test can fail)", async () => {
  const nodeOnly = fileURLToPath(new URL("../src/format/read-file.js", import.meta.url));
  await assert.rejects(build({ entryPoints: [nodeOnly], bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" }));
});
