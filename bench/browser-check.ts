/**
 * npm run check:browser: rebuild .mcnc files in headless Chromium (Debian's `chromium`) and in Node,
 * and compare the rebuilt weights bit for bit (CRC-32 of each leaf's little-endian bytes). JSON lines
 * on stdout. Needs /usr/bin/chromium; serves only on 127.0.0.1.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildModel, decodeModelFile, encodeModelFile, findMethod, initEngine, timedRebuild } from "../src/index.js";
import { crc32 } from "../src/format/crc32.js";

const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) {
  process.stdout.write(`${JSON.stringify({ check: "browser", skipped: "no /usr/bin/chromium (apt-get install chromium)" })}\n`);
  process.exit(0);
}

await initEngine();
const dir = mkdtempSync(join(tmpdir(), "mcnc-browser-"));
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

writeFileSync(
  join(dir, "index.html"),
  `<!doctype html><meta charset="utf-8"><body>running</body><script type="module">
import { initEngine, decodeModelFile, timedRebuild, crc32 } from "./mcnc.js";
const files = ${JSON.stringify(cases.map((c) => c.file))};
const out = {};
try {
  await initEngine();
  for (const f of files) {
    const bytes = new Uint8Array(await (await fetch(f)).arrayBuffer());
    const r = await timedRebuild(decodeModelFile(bytes, f), 0);
    const crcs = {};
    for (const [name, data] of Object.entries(r.params)) {
      const b = new Uint8Array(data.length * 4), v = new DataView(b.buffer);
      data.forEach((x, i) => v.setFloat32(4 * i, x, true));
      crcs[name] = crc32(b).toString(16);
    }
    out[f] = { crcs };
  }
  document.body.textContent = "RESULT" + JSON.stringify(out) + "END";
} catch (e) {
  document.body.textContent = "RESULT" + JSON.stringify({ error: String(e) }) + "END";
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

const run = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
  // Asynchronous: the server above must keep answering while Chromium runs.
  const p = spawn(CHROMIUM, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", `--user-data-dir=${join(dir, "profile")}`, "--virtual-time-budget=120000",
    "--dump-dom", `http://127.0.0.1:${port}/index.html`,
  ]);
  let stdout = "";
  let stderr = "";
  p.stdout.on("data", (d: Buffer) => (stdout += d));
  p.stderr.on("data", (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => p.kill("SIGKILL"), 180_000);
  p.on("close", () => {
    clearTimeout(timer);
    resolve({ stdout, stderr });
  });
});
server.close();


const match = /RESULT(.*)END/s.exec(run.stdout);
if (!match) {
  process.stdout.write(`${JSON.stringify({ check: "browser", error: "no result from Chromium", stderr: run.stderr.slice(-500) })}\n`);
  process.exit(1);
}
// (No timings: --virtual-time-budget runs the page on virtual time.)
const browser = JSON.parse(match[1]!) as Record<string, { crcs: Record<string, string> }> & { error?: string };
let allSame = !browser.error;
for (const c of cases) {
  const b = browser[c.file];
  const identical = !!b && JSON.stringify(b.crcs) === JSON.stringify(inNode[c.file]);
  allSame &&= identical;
  process.stdout.write(`${JSON.stringify({ check: "browser", file: c.file, identical, node: inNode[c.file], chromium: b?.crcs ?? browser.error })}\n`);
}
process.exitCode = allSame ? 0 : 1;
