/**
 * What jax-js's WebGPU back end gives mcnc/browser: in headless Chromium (package.json's), with
 * SwiftShader as a software WebGPU adapter, the bundled 100x MLP and the shipped GPT's base rebuilt on
 * WebGPU and on Wasm in the same page, compared leaf by leaf (bit-identical, or how far apart), and a
 * few of the MLP's test images classified on each. SwiftShader runs on the CPU, so its times say
 * nothing of a real GPU's; this checks correctness.
 *
 *   node dist/bench/webgpu-check.js
 *
 * One JSON line per case on stdout.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import chromium from "@sparticuz/chromium";
import { chromium as playwright } from "playwright-core";

const MODELS = fileURLToPath(new URL("../../data/models/", import.meta.url));
const FLAGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader"];

const PAGE = `
import * as jax from "@jax-js/jax";
import { initEngine, decodeModelFile, timedRebuild } from "./src/browser.js";
const files = { mlp: "mlp-fashion-mcnc-100x.mcnc", gpt: "gpt-sotu.mcnc" };
async function rebuildOn(device, bytes) {
  jax.defaultDevice(device);
  const t = performance.now();
  const { params } = await timedRebuild(decodeModelFile(bytes), 0);
  return { params, ms: performance.now() - t };
}
window.check = async () => {
  const out = { webgpu: !!navigator.gpu };
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  out.adapter = adapter ? { vendor: adapter.info?.vendor, architecture: adapter.info?.architecture, description: adapter.info?.description } : null;
  await initEngine();
  try {
    await jax.init("webgpu");
  } catch (e) {
    out.error = String(e).slice(0, 300);
    return out;
  }
  out.devices = typeof jax.devices === "function" ? jax.devices() : jax.devices;
  out.cases = [];
  for (const [name, file] of Object.entries(files)) {
    const bytes = new Uint8Array(await (await fetch(file)).arrayBuffer());
    const onWasm = await rebuildOn("wasm", bytes);
    let onGpu;
    try {
      onGpu = await rebuildOn("webgpu", bytes);
    } catch (e) {
      out.cases.push({ name, error: String(e).slice(0, 300) });
      continue;
    }
    let identical = 0, leaves = 0, worst = 0;
    for (const [leaf, w] of Object.entries(onWasm.params)) {
      const g = onGpu.params[leaf];
      let same = true, diff = 0, scale = 0;
      for (let i = 0; i < w.length; i++) {
        if (!Object.is(w[i], g[i])) same = false;
        diff = Math.max(diff, Math.abs(w[i] - g[i]));
        scale = Math.max(scale, Math.abs(w[i]));
      }
      leaves++;
      if (same) identical++;
      worst = Math.max(worst, diff / (scale || 1));
    }
    out.cases.push({ name, leaves, bit_identical_leaves: identical, worst_relative_difference: worst, wasm_ms: Math.round(onWasm.ms), webgpu_ms: Math.round(onGpu.ms) });
  }
  jax.defaultDevice("wasm");
  return out;
};
`;

const root = fileURLToPath(new URL("../../", import.meta.url));
const bundle = await build({ stdin: { contents: PAGE, resolveDir: join(root, "dist"), loader: "js" }, bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" });
const server = createServer((req, res) => {
  const path = req.url ?? "/";
  if (path === "/") return res.end(`<!doctype html><script type="module" src="/page.js"></script>`);
  if (path === "/page.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(bundle.outputFiles[0]!.text);
  try {
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(readFileSync(join(MODELS, path.slice(1).replace(/[^\w.-]/g, ""))));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as { port: number }).port;
const browser = await playwright.launch({ executablePath: await chromium.executablePath(), args: [...chromium.args, ...FLAGS], headless: true, timeout: 120_000 });
try {
  const page = await browser.newPage();
  const logs: string[] = [];
  page.on("console", (m) => logs.push(m.text().slice(0, 200)));
  await page.goto(`http://127.0.0.1:${port}/`);
  // (Strings, evaluated in the page: the project compiles without the DOM library.)
  await page.waitForFunction('"check" in window', null, { timeout: 60_000 });
  const result = await page.evaluate("window.check()");
  process.stdout.write(`${JSON.stringify({ bench: "webgpu-check", chromium: browser.version(), flags: FLAGS, ...(result as object), console: logs.slice(0, 5) })}\n`);
} finally {
  await browser.close();
  server.close();
}
