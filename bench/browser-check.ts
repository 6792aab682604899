/**
 * npm run check:browser: rebuild .mcnc files in headless Chromium (the one package.json brings:
 * @sparticuz/chromium, driven by playwright-core) and in Node,
 * and compare the rebuilt weights bit for bit (CRC-32 of each leaf's little-endian bytes); the golden
 * files of test/fixtures/ against the SHA-256 their manifest pins; then a GPT
 * base with an adapter on it, rebuilt and sampled in the page, against the same in Node (the same
 * seed must give the same bytes). JSON lines on stdout; exit code 1 on any difference. Serves only on
 * 127.0.0.1; removes its temporary folder. test/browser.test.ts runs it in npm test.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildModel, configureAdapter, decodeModelFile, encodeModelFile, findMethod, initEngine, initParams, producedSpecs, timedRebuild, toDevice, weightsHash } from "../src/index.js";
import { gptDecoder } from "../src/generate/decoder.js";
import { generate } from "../src/generate/sample.js";
import { crc32 } from "../src/format/crc32.js";
import { withPage } from "../test/browser/chromium.js";
import { FIXTURES, readManifest } from "../test/fixtures/make-fixtures.js";

// The page runs jax-js on Wasm: Node's side of every comparison does too (the native engine's sums
// differ in the last bits, which sampling may turn into another byte).
await initEngine({ engine: "wasm" });
const dir = mkdtempSync(join(tmpdir(), "mcnc-browser-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
// Stopped by a signal, it still removes its folder (the "exit" handler runs on process.exit).
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));
await build({ entryPoints: [fileURLToPath(new URL("../src/browser.js", import.meta.url))], bundle: true, platform: "browser", format: "esm", outfile: join(dir, "mcnc.js"), logLevel: "silent" });

// Files with perturbed numbers, so nothing an initialisation regenerates is being compared.
const cases: Array<{ file: string; model: "mlp" | "lenet"; method: string; values: Record<string, unknown> }> = [
  { file: "mlp-mcnc.mcnc", model: "mlp", method: "mcnc", values: { ratio: 100 } },
  { file: "lenet-mcnc.mcnc", model: "lenet", method: "mcnc", values: { ratio: 100, residual: true } },
  { file: "mlp-mcnc-lora.mcnc", model: "mlp", method: "mcnc-lora", values: { rank: 8, ratio: 100 } },
];
function leafCrcs(params: Record<string, Float32Array>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, data] of Object.entries(params)) {
    const bytes = new Uint8Array(data.length * 4);
    const view = new DataView(bytes.buffer);
    data.forEach((v, i) => view.setFloat32(4 * i, v, true));
    out[name] = crc32(bytes).toString(16);
  }
  return out;
}
const inNode: Record<string, Record<string, string>> = {};
for (const c of cases) {
  const model = buildModel({ name: c.model, input: [28, 28, 1], classes: 10 });
  const method = findMethod(c.method)!;
  const config = method.configure(c.values, model.specs);
  const trainable = await method.init(config, model.specs, 7);
  for (const t of Object.values(trainable)) t.forEach((v, i) => (t[i] = v + 0.01 * Math.sin(i)));
  const bytes = encodeModelFile({ model: model.description, method: { name: c.method, config }, seed: 7, trainable }, model, method);
  writeFileSync(join(dir, c.file), bytes);
  inNode[c.file] = leafCrcs((await timedRebuild(decodeModelFile(bytes), 1)).params);
}

// A GPT base and an MCNC-over-LoRA adapter on it, perturbed; Node's rebuild and sampled bytes.
const gptShape = { name: "gpt" as const, layers: 2, width: 32, heads: 4, context: 32, vocab: 256 };
const gpt = buildModel(gptShape);
const baseWeights = await initParams(gpt.specs, 3);
for (const t of Object.values(baseWeights)) t.forEach((v, i) => (t[i] = v + 0.01 * Math.sin(i)));
const dense = findMethod("dense")!;
writeFileSync(join(dir, "gpt-base.mcnc"), encodeModelFile({ model: gpt.description, method: { name: "dense", config: {} }, seed: 3, trainable: baseWeights }, gpt, dense));
const mcncLora = findMethod("mcnc-lora")!;
const adapted = configureAdapter(mcncLora, { ratio: 100, rank: 4 }, gpt);
const adapterTrainable = await mcncLora.init(adapted.config, producedSpecs(gpt, adapted), 5);
for (const t of Object.values(adapterTrainable)) t.forEach((v, i) => (t[i] = v + 0.05 * Math.cos(i)));
const adapterBytes = encodeModelFile(
  { model: gpt.description, method: { name: "mcnc-lora", config: adapted.config }, adapter: { base_sha256: weightsHash(gpt.specs, baseWeights), leaves: adapted.leaves }, seed: 5, trainable: adapterTrainable },
  gpt,
  mcncLora,
);
writeFileSync(join(dir, "gpt-adapter.mcnc"), adapterBytes);
// The golden files, served from their own folder: each must rebuild to the hash the manifest pins.
const manifest = readManifest();
for (const file of Object.keys(manifest)) writeFileSync(join(dir, `fixture-${file}`), readFileSync(FIXTURES + file));

const SAMPLE = { tokens: 80, temperature: 0.9, topK: 40, seed: 11 };
const gptWeights = (await timedRebuild(decodeModelFile(adapterBytes), 0, baseWeights)).params;
inNode["gpt-adapter.mcnc"] = leafCrcs(gptWeights);
const nodeText: number[] = [];
const nodeDecoder = gptDecoder(gptShape, toDevice(gpt.specs, gptWeights));
for await (const b of generate(nodeDecoder, new TextEncoder().encode("Call me "), SAMPLE)) nodeText.push(b);

// The page leaves its result in window.mcncResult, where the driver reads it.
writeFileSync(
  join(dir, "index.html"),
  `<!doctype html><meta charset="utf-8"><body>running</body><script type="module">
import { initEngine, decodeModelFile, timedRebuild, checkBase, gptDecoder, generate, toDevice, crc32, buildModel, weightsHash } from "./mcnc.js";
const files = ${JSON.stringify(cases.map((c) => c.file))};
const out = {};
const crcsOf = (params) => {
  const crcs = {};
  for (const [name, data] of Object.entries(params)) {
    const b = new Uint8Array(data.length * 4), v = new DataView(b.buffer);
    data.forEach((x, i) => v.setFloat32(4 * i, x, true));
    crcs[name] = crc32(b).toString(16);
  }
  return crcs;
};
const bytesOf = async (f) => new Uint8Array(await (await fetch(f)).arrayBuffer());
try {
  await initEngine();
  for (const f of files) out[f] = { crcs: crcsOf((await timedRebuild(decodeModelFile(await bytesOf(f), f), 0)).params) };
  const base = decodeModelFile(await bytesOf("gpt-base.mcnc"), "gpt-base.mcnc");
  const baseWeights = (await timedRebuild(base, 0)).params;
  const adapter = decodeModelFile(await bytesOf("gpt-adapter.mcnc"), "gpt-adapter.mcnc");
  checkBase(adapter, baseWeights);
  const weights = (await timedRebuild(adapter, 0, baseWeights)).params;
  const text = [];
  const decoder = gptDecoder(adapter.model.description, toDevice(adapter.model.specs, weights));
  for await (const b of generate(decoder, new TextEncoder().encode("Call me "), ${JSON.stringify(SAMPLE)})) text.push(b);
  out["gpt-adapter.mcnc"] = { crcs: crcsOf(weights), text };
  const manifest = ${JSON.stringify(manifest)};
  const rebuildFixture = async (f) => {
    const loaded = decodeModelFile(await bytesOf("fixture-" + f), f);
    const base = manifest[f].base ? await rebuildFixture(manifest[f].base) : undefined;
    return (await timedRebuild(loaded, 0, base)).params;
  };
  out.fixtures = {};
  for (const f of Object.keys(manifest)) {
    const loaded = decodeModelFile(await bytesOf("fixture-" + f), f);
    out.fixtures[f] = weightsHash(buildModel(loaded.file.model).specs, await rebuildFixture(f));
  }
  window.mcncResult = out;
} catch (e) {
  window.mcncResult = { error: String(e) };
}
</script>`,
);

const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".mcnc": "application/octet-stream" };
const server = createServer((req, res) => {
  const path = join(dir, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1)) || "index.html");
  if (!path.startsWith(dir) || !existsSync(path)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(readFileSync(path));
});
await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
const port = (server.address() as { port: number }).port;

let body: string;
try {
  body = await withPage(async (page) => {
    await page.goto(`http://127.0.0.1:${port}/index.html`);
    await page.waitForFunction(() => (globalThis as { mcncResult?: unknown }).mcncResult !== undefined, undefined, { timeout: 180_000 });
    return JSON.stringify(await page.evaluate(() => (globalThis as { mcncResult?: unknown }).mcncResult));
  });
} catch (e) {
  process.stdout.write(`${JSON.stringify({ check: "browser", error: `no result from Chromium: ${(e as Error).message.split("\n")[0]}` })}\n`);
  process.exit(1);
} finally {
  server.closeAllConnections();
  server.close();
}
const browser = JSON.parse(body) as Record<string, { crcs: Record<string, string>; text?: number[] }> & { error?: string };
let allSame = !browser.error;
for (const file of [...cases.map((c) => c.file), "gpt-adapter.mcnc"]) {
  const b = browser[file];
  const identical = !!b && JSON.stringify(b.crcs) === JSON.stringify(inNode[file]);
  allSame &&= identical;
  process.stdout.write(`${JSON.stringify({ check: "browser", file, identical, node: inNode[file], chromium: b?.crcs ?? browser.error })}\n`);
}
const fixtures = (browser as { fixtures?: Record<string, string> }).fixtures ?? {};
for (const [file, entry] of Object.entries(manifest)) {
  const identical = fixtures[file] === entry.sha256;
  allSame &&= identical;
  process.stdout.write(`${JSON.stringify({ check: "browser-fixture", file, identical, pinned: entry.sha256, chromium: fixtures[file] ?? browser.error })}\n`);
}
const pageText = browser["gpt-adapter.mcnc"]?.text ?? [];
const sameText = JSON.stringify(pageText) === JSON.stringify(nodeText);
allSame &&= sameText;
const show = (bytes: number[]) => new TextDecoder().decode(Uint8Array.from(bytes));
process.stdout.write(`${JSON.stringify({ check: "browser-generate", identical: sameText, node: show(nodeText), chromium: show(pageText) })}\n`);
process.exitCode = allSame ? 0 : 1;
