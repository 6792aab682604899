/**
 * npm run web: the page that rebuilds a compressed model in the browser and uses it. Bundles
 * web/page/page.ts with esbuild (it imports mcnc/browser, as any page would), and serves it on
 * 127.0.0.1 with the bundled models, 32 Fashion-MNIST test images and `mcnc compare`'s MLP results.
 *
 *   node dist/web/serve.js [--port 8080] [--models DIR]      prints the address, serves until stopped
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { availableBundled, bundledPath } from "../src/data/bundled.js";
import { readIdxFile } from "../src/data/idx.js";
import { parseArgs, type FlagValues } from "../src/cli/args.js";
import { systemReason, UserError } from "../src/errors.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PAGE = join(ROOT, "web", "page");
const SAMPLES = 32;

/** SAMPLES test images of the bundled Fashion-MNIST (or the package's subset of it). */
function samples(): string | undefined {
  const dir = bundledPath(availableBundled("fashion-mnist").name);
  const images = join(dir, "t10k-images-idx3-ubyte.gz");
  const labels = join(dir, "t10k-labels-idx1-ubyte.gz");
  if (!existsSync(images) || !existsSync(labels)) return undefined;
  const x = readIdxFile(images);
  const y = readIdxFile(labels);
  const side = x.shape[1]!;
  // Evenly spaced: all ten classes, not the file's first few.
  const stride = Math.floor(x.shape[0]! / SAMPLES);
  const pick = Array.from({ length: SAMPLES }, (_, i) => i * stride);
  return JSON.stringify({ side, labels: pick.map((i) => y.data[i]!), images: pick.map((i) => Array.from(x.data.subarray(i * side * side, (i + 1) * side * side))) });
}

export async function startServer(port: number, modelsDir: string): Promise<{ server: Server; url: string }> {
  const bundle = await build({ entryPoints: [join(PAGE, "page.ts")], bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent", absWorkingDir: ROOT });
  const script = bundle.outputFiles[0]!.contents;
  const models = readdirSync(modelsDir)
    .filter((f) => f.endsWith(".mcnc"))
    .sort((a, b) => statSync(join(modelsDir, a)).size - statSync(join(modelsDir, b)).size)
    .map((name) => ({ name, bytes: statSync(join(modelsDir, name)).size }));
  const sampleJson = samples();
  const compare = join(ROOT, "docs", "compare", "compare-mlp.jsonl");
  const routes: Record<string, () => [string, string | Uint8Array] | undefined> = {
    "/": () => ["text/html; charset=utf-8", readFileSync(join(PAGE, "index.html"))],
    "/page.js": () => ["text/javascript", script],
    "/models/index.json": () => ["application/json", JSON.stringify(models)],
    "/samples.json": () => (sampleJson ? ["application/json", sampleJson] : undefined),
    "/compare.jsonl": () => (existsSync(compare) ? ["text/plain", readFileSync(compare)] : undefined),
  };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const model = path.startsWith("/models/") ? models.find((m) => `/models/${m.name}` === path) : undefined;
    const hit = model ? (["application/octet-stream", readFileSync(join(modelsDir, model.name))] as [string, Uint8Array]) : routes[path]?.();
    if (!hit) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": hit[0], "cache-control": "no-store" }).end(hit[1]);
  });
  // Only this machine: the page is for the person running it.
  await new Promise<void>((ok, fail) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      fail(e.code === "EADDRINUSE" ? new UserError(`port ${port} is in use: stop what holds it, or give --port N (0 picks a free one)`) : new UserError(`cannot serve on port ${port}: ${systemReason(e)}`)),
    );
    server.listen(port, "127.0.0.1", ok);
  });
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` };
}

const FLAGS = [
  { name: "port", type: "int", help: "port on 127.0.0.1 (0: any free one)", min: 0, max: 65535, default: 8080 },
  { name: "models", type: "string", help: "folder of .mcnc files to list", defaultText: "data/models" },
] as const;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fail = (e: unknown): never => {
    if (!(e instanceof UserError)) throw e;
    process.stderr.write(`mcnc web: ${e.message}\n`);
    process.exit(2);
  };
  const f = (() => {
    try {
      return parseArgs(process.argv.slice(2), FLAGS, "web", 0).flags as FlagValues<typeof FLAGS>;
    } catch (e) {
      return fail(e);
    }
  })();
  const modelsDir = resolve(f.models ?? join(ROOT, "data", "models"));
  const { url } = await startServer(f.port, modelsDir).catch(fail);
  process.stdout.write(`mcnc web: open ${url} (models from ${modelsDir}; Ctrl-C stops)\n`);
}
