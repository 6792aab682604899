/**
 * The page of `npm run web`, end to end in a real Chromium: it rebuilds the bundled models, reports their
 * real sizes, classifies test images and a drawing, and generates the same text as Node. With
 * MCNC_SCREENSHOT=path, it also saves a screenshot there (docs/web-page.png is one).
 */
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { initEngine } from "../src/engine/engine.js";
import { decodeModelFile, encodeModelFile, timedRebuild } from "../src/format/model-file.js";
import { weightsHash } from "../src/format/weights-hash.js";
import { configureAdapter, producedSpecs } from "../src/methods/adapter.js";
import { findMethod } from "../src/methods/index.js";
import { gptDecoder } from "../src/generate/decoder.js";
import { generate } from "../src/generate/sample.js";
import { buildModel, type GptConfig } from "../src/model/models.js";
import { toDevice } from "../src/model/params.js";
import { startServer } from "../web/serve.js";
import { withPage } from "./browser/chromium.js";

const MODELS = fileURLToPath(new URL("../../data/models/", import.meta.url));
const FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const PROMPT = "The state of the Union is ";

/** A LoRA adapter on the shipped GPT, its factors set away from zero (no training: the numbers only need to differ). */
async function adapterFile(): Promise<Uint8Array> {
  await initEngine();
  const base = decodeModelFile(readFileSync(join(MODELS, "gpt-sotu.mcnc")));
  const baseWeights = (await timedRebuild(base, 0)).params;
  const lora = findMethod("lora")!;
  const { config, leaves } = configureAdapter(lora, { rank: 2 }, base.model);
  const trainable = await lora.init(config, producedSpecs(base.model, { leaves }), 1);
  for (const t of Object.values(trainable)) t.forEach((v, i) => (t[i] = v + 0.2 * Math.sin(i)));
  const file = { model: base.file.model, method: { name: "lora", config }, adapter: { base_sha256: weightsHash(base.model.specs, baseWeights), leaves }, seed: 1, trainable };
  return encodeModelFile(file, base.model, lora);
}

/** A dense classifier of one flatten and one dense layer for inputs of `input`, with `meta` as training would record it (weights as initialised). */
async function denseFile(input: [number, number, number], meta: Record<string, unknown>): Promise<Uint8Array> {
  await initEngine();
  const description = { name: "sequential" as const, input, classes: 3, layers: [{ type: "flatten" as const }, { type: "dense" as const, units: 3 }] };
  const model = buildModel(description);
  const dense = findMethod("dense")!;
  const config = dense.configure({}, model.specs);
  return encodeModelFile({ model: description, method: { name: "dense", config }, seed: 0, trainable: await dense.init(config, model.specs, 0), meta }, model, dense);
}

/** What Node generates from the shipped GPT (with `adapter` on it) for the page's settings at temperature 0. */
async function nodeText(tokens: number, adapter?: Uint8Array): Promise<string> {
  // The page's engine: Wasm, so the two runs compute the same bits.
  await initEngine({ engine: "wasm" });
  const base = decodeModelFile(readFileSync(join(MODELS, "gpt-sotu.mcnc")));
  let weights = (await timedRebuild(base, 0)).params;
  const loaded = adapter ? decodeModelFile(adapter) : base;
  if (adapter) weights = (await timedRebuild(loaded, 0, weights)).params;
  const decoder = gptDecoder(loaded.file.model as GptConfig & { name: "gpt" }, toDevice(loaded.model.specs, weights));
  const out: number[] = [];
  for await (const b of generate(decoder, new TextEncoder().encode(PROMPT), { tokens, temperature: 0, topK: 0, seed: 0 })) out.push(b);
  return new TextDecoder().decode(Uint8Array.from(out));
}

test("the web page rebuilds a 9 KB classifier and the GPT in Chromium, classifies, generates Node's text, with an adapter and without", async () => {
  const { server, url } = await startServer(0, MODELS);
  // A second server on the same port is one clear line, not a stack trace.
  await assert.rejects(startServer(Number(new URL(url).port), MODELS), /port \d+ is in use: stop what holds it, or give --port N/);
  try {
    await withPage(async (page) => {
      // (The page's globals are the browser's; this file compiles without the DOM library, so predicates are strings.)
      const state = (s: string, timeout = 120_000) => page.waitForFunction(`document.body.dataset.state === "${s}"`, undefined, { timeout });
      const ready = () => state("ready");
      await page.goto(url);
      await ready();
      // The smallest bundled file comes first: the MLP at 100x.
      const first = await page.$eval("#models", (s) => (s as unknown as { value: string }).value);
      assert.equal(first, "mlp-fashion-mcnc-100x.mcnc");
      const sizes = await page.$eval("#sizes", (t) => t.textContent ?? "");
      assert.match(sizes, new RegExp(`this file${statSync(join(MODELS, first)).size.toLocaleString("en-US")} bytes`));
      assert.match(sizes, /float32814,120 bytes/);
      // Bars to scale: the 9 KB file's is 1/90 of the float32 one (not drawn as a third of it, as on a log scale).
      const widths = (await page.$$eval("#sizes .bar", (bars) => bars.map((b) => (b as unknown as { style: { width: string } }).style.width))).map(parseFloat);
      assert.ok(Math.abs(widths[0]! - (300 * statSync(join(MODELS, first)).size) / 814120) < 0.01 && widths[1] === 300, String(widths));
      // On a phone's width, nothing is wider than the screen.
      await page.setViewportSize({ width: 375, height: 800 });
      const wide = `[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > 375).map((e) => e.tagName + "#" + e.id).slice(0, 8).join(" ")`;
      assert.ok((await page.evaluate("document.documentElement.scrollWidth")) as number <= 375, `wider than a phone: ${String(await page.evaluate(wide))}`);
      await page.setViewportSize({ width: 1024, height: 800 });
      // Test images it never saw, classified in the page: about as often right as the file's accuracy says.
      const score = await page.$eval("#sample-score", (e) => ({ right: Number(e.dataset.right), total: Number(e.dataset.total) }));
      assert.equal(score.total, 32);
      assert.ok(score.right >= 22, `${score.right} of 32`);
      // A drawing: a filled rectangle (a bag, roughly), stroked with the mouse.
      const draw = async () => {
        const b = (await (await page.$("#pad"))!.boundingBox())!;
        await page.mouse.move(b.x + 60, b.y + 90);
        await page.mouse.down();
        for (const [x, y] of [[220, 90], [220, 230], [60, 230], [60, 90], [220, 160], [60, 160]]) await page.mouse.move(b.x + x!, b.y + y!, { steps: 8 });
        await page.mouse.up();
        await page.waitForFunction('document.getElementById("probs").dataset.top !== undefined');
        return page.$eval("#probs", (t) => t.dataset.top ?? "");
      };
      assert.ok(FASHION.includes(await draw()));
      if (process.env.MCNC_SCREENSHOT) writeFileSync(process.env.MCNC_SCREENSHOT, await page.screenshot({ fullPage: true }));
      // The GPT: rebuilt, then 60 bytes at temperature 0, byte for byte what Node generates.
      await page.selectOption("#models", "gpt-sotu.mcnc");
      await ready();
      await page.fill("#prompt", PROMPT);
      await page.fill("#tokens", "60");
      await page.fill("#temperature", "0");
      await page.click("#generate");
      await state("generated");
      const baseText = await nodeText(60);
      assert.equal(await page.$eval("#gen-out", (e) => e.textContent ?? ""), baseText);
      // An adapter dropped on it: rebuilt on the loaded base, and generating what Node generates with it.
      const adapter = await adapterFile();
      await page.setInputFiles("#file", { name: "lora-adapter.mcnc", mimeType: "application/octet-stream", buffer: Buffer.from(adapter) });
      await ready();
      assert.match(await page.$eval("#status", (e) => e.textContent ?? ""), /an adapter on gpt-sotu\.mcnc/);
      assert.match(await page.$eval("#sizes", (t) => t.textContent ?? ""), /an adapter: it needs its base beside itgpt-sotu\.mcnc, 3,377,316 bytes/);
      // The list shows what is loaded: a dropped file joins it, selected.
      assert.equal(await page.$eval("#models", (e) => (e as unknown as { value: string }).value), "dropped:lora-adapter.mcnc");
      await page.click("#generate");
      await state("generated");
      const adapted = await page.$eval("#gen-out", (e) => e.textContent ?? "");
      assert.equal(adapted, await nodeText(60, adapter));
      assert.notEqual(adapted, baseText);
      // And back to the base: picking it again switches the adapter off.
      await page.selectOption("#models", "mlp-fashion-mcnc-100x.mcnc");
      await ready();
      await page.setInputFiles("#file", { name: "lora-adapter.mcnc", mimeType: "application/octet-stream", buffer: Buffer.from(adapter) });
      await state("error", 30_000);
      assert.match(await page.$eval("#status", (e) => e.textContent ?? ""), /trained on another base/);
      // A file that is not one is refused in the page, with the reader's own message.
      await page.setInputFiles("#file", { name: "junk.mcnc", mimeType: "application/octet-stream", buffer: Buffer.from("not a model at all, just text") });
      await state("error", 30_000);
      assert.match(await page.$eval("#status", (e) => e.textContent ?? ""), /^junk\.mcnc: (too short|not an \.mcnc file)/);
      assert.ok(await page.$eval("#sizes", (t) => t.classList.contains("hidden")), "no other model's sizes under an error");
      assert.ok(!(await page.$$eval("#models option", (os) => os.map((o) => (o as unknown as { value: string }).value))).includes("dropped:junk.mcnc"), "a refused file is not listed");
      // Models of one's own data: an 8x8 classifier predicts a drawing by its recorded class names (the
      // 28x28 samples do not fit it); a table's model is rebuilt and sized, but the page draws no rows.
      const own = [
        ["shapes-8x8.mcnc", denseFile([8, 8, 1], { dataset: "shapes/", normalisation: { mean: 0.2, std: 0.4 }, classes: ["ring", "bar", "dot"] })],
        ["wine.mcnc", denseFile([1, 1, 13], { dataset: "wine", normalisation: { mean: Array(13).fill(0), std: Array(13).fill(1) }, label_column: "class" })],
      ] as const;
      await page.setInputFiles("#file", { name: own[0][0], mimeType: "application/octet-stream", buffer: Buffer.from(await own[0][1]) });
      await ready();
      assert.match(await page.$eval("#sample-score", (e) => e.textContent ?? ""), /the test images are 28x28; this model reads 8x8/);
      assert.ok(["ring", "bar", "dot"].includes(await draw()));
      await page.setInputFiles("#file", { name: own[1][0], mimeType: "application/octet-stream", buffer: Buffer.from(await own[1][1]) });
      await ready();
      assert.match(await page.$eval("#status", (e) => e.textContent ?? ""), /wine\.mcnc: rebuilt in \d+ ms \(not used here: sequential classifies table rows, not images\)/);
    });
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
