/**
 * A compressed ONNX model in a web page: written by mcnc compress in its compact forms (packed codes,
 * MatMulNBits), loaded by onnxruntime-web in the headless Chromium package.json brings, and run on the
 * same input as onnxruntime-node. Prints one JSON line per model: whether it loaded, and how far the two
 * runtimes' outputs are apart.
 *
 *   node dist/bench/ort-web-check.js MODEL.onnx [--input-size HxW]   (a model with one image input [1, 3, H, W])
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { withPage } from "../test/browser/chromium.js";
import { option } from "./bench-args.js";

const model = process.argv[2];
if (!model) throw new Error("usage: ort-web-check MODEL.onnx [--input-size HxW]");
const [h, w] = option("input-size", "48x320").split("x").map(Number) as [number, number];
const ORT_WEB = join(createRequire(import.meta.url).resolve("onnxruntime-web"), "..");
const bytes = readFileSync(model);
const input = Float32Array.from({ length: 3 * h * w }, (_, i) => Math.sin(i * 0.013) * 0.8);

const node = await ort.InferenceSession.create(bytes);
const inputName = node.inputNames[0]!;
const fromNode = await node.run({ [inputName]: new ort.Tensor("float32", input, [1, 3, h, w]) });
const outName = node.outputNames[0]!;
const expected = fromNode[outName]!.data as Float32Array;

const TYPES: Record<string, string> = { mjs: "text/javascript", wasm: "application/wasm", html: "text/html" };
const server = createServer((req, res) => {
  const url = req.url ?? "/";
  const file = url === "/model.onnx" ? model : url.startsWith("/ort/") ? join(ORT_WEB, url.slice(5).replace(/[^\w.-]/g, "")) : undefined;
  try {
    const body = file ? readFileSync(file) : Buffer.from("<!doctype html><title>ort-web</title>");
    res.writeHead(200, { "content-type": TYPES[(file ?? ".html").split(".").pop()!] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
const port = (server.address() as { port: number }).port;
try {
  const result = await withPage(async (page) => {
    await page.goto(`http://127.0.0.1:${port}/`);
    return page.evaluate(
      async ({ values, dims, inputName, outName }) => {
        try {
          const web = (await import("/ort/ort.wasm.min.mjs" as string)) as any;
          web.env.wasm.wasmPaths = "/ort/";
          web.env.wasm.numThreads = 1;
          const data = new Uint8Array(await (await fetch("/model.onnx")).arrayBuffer());
          const session = await web.InferenceSession.create(data, { executionProviders: ["wasm"] });
          const out = await session.run({ [inputName]: new web.Tensor("float32", Float32Array.from(values), dims) });
          return { ok: true, values: Array.from(out[outName].data as Float32Array) };
        } catch (e) {
          return { ok: false, error: String((e as Error)?.message ?? e).slice(0, 300) };
        }
      },
      { values: Array.from(input), dims: [1, 3, h, w], inputName, outName },
    );
  });
  const diff = result.ok ? result.values!.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0) : undefined;
  process.stdout.write(`${JSON.stringify({ check: "ort-web", model, bytes: bytes.length, loaded: result.ok, ...(result.ok ? { max_abs_diff_from_node: diff } : { error: result.error }) })}\n`);
} finally {
  server.close();
}
