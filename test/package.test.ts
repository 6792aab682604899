/**
 * mcnc as a package people install: the packed tarball, installed into a fresh project (offline, its
 * dependencies from this checkout), imported in Node as `mcnc`, bundled for a web page as
 * `mcnc/browser`, and typed.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { methodNames } from "../src/methods/index.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const npm = (args: string[], cwd: string) => spawnSync("npm", args, { cwd, encoding: "utf8", timeout: 180_000 });

test("the packed tarball installs, imports in Node, bundles for the browser through mcnc/browser, and is typed", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-package-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // dist/ is built by npm test; packing must not rebuild it.
  const packed = npm(["pack", "--ignore-scripts", "--json", "--pack-destination", dir], ROOT);
  assert.equal(packed.status, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; size: number; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  assert.ok(files.includes("dist/src/browser.d.ts") && files.includes("data/models/gpt-sotu.mcnc"));
  assert.ok(!files.some((f) => f.startsWith("data/fashion-mnist/") || f.startsWith("dist/test") || f.startsWith("dist/bench")), "the tarball carries only the library and the small data");
  assert.ok(info!.size < 10 * 2 ** 20, `${info!.size} bytes packed (onnxruntime-node, 288 MB installed, stays an optional peer)`);

  const project = join(dir, "app");
  execFileSync("mkdir", [project]);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true }));
  // Offline: the tarball's dependencies come from this checkout's node_modules (npm ci put them there).
  const deps = ["@jax-js/jax", "@huggingface/tokenizers", "protobufjs", "jpeg-js", "pngjs", "@webgpu/types"].map((d) => join(ROOT, "node_modules", d));
  const installed = npm(["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", join(dir, info!.filename), ...deps], project);
  assert.equal(installed.status, 0, installed.stderr);

  // Node: the main entry, its CLI's building blocks and the bundled GPT; the default image set is the
  // subset the package ships.
  writeFileSync(
    join(project, "node.mjs"),
    `import { findMethod, loadDataset, readModelFile, methodNames } from "mcnc";
     import { createRequire } from "node:module";
     const file = createRequire(import.meta.url).resolve("mcnc/package.json").replace("package.json", "data/models/gpt-sotu.mcnc");
     const loaded = readModelFile(file);
     const images = loadDataset();
     console.log(JSON.stringify({ methods: methodNames().length, mcnc: typeof findMethod("mcnc"), model: loaded.model.name, images: [images.name, images.train.count, images.test.count] }));`,
  );
  const node = spawnSync(process.execPath, ["node.mjs"], { cwd: project, encoding: "utf8" });
  assert.equal(node.status, 0, node.stderr);
  assert.deepEqual(JSON.parse(node.stdout), { methods: methodNames().length, mcnc: "object", model: "gpt", images: ["fashion-mnist-small", 4000, 1000] });

  // The README's API example runs as written (in JavaScript, one epoch), and so does a plain `mcnc train`.
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const example = /```ts\n(import \{ initEngine[^`]*)```/.exec(readme)![1]!.replaceAll(")!", ")").replace("epochs: 3", "epochs: 1");
  writeFileSync(join(project, "readme.mjs"), example);
  const ran = spawnSync(process.execPath, ["readme.mjs"], { cwd: project, encoding: "utf8" });
  assert.equal(ran.status, 0, ran.stderr);
  assert.ok(statSync(join(project, "mlp.mcnc")).size < 20_000);
  const cli = spawnSync(process.execPath, [join(project, "node_modules", "mcnc", "dist", "src", "cli", "main.js"), "train", "--epochs", "1", "--json"], { cwd: project, encoding: "utf8" });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stderr, /note: the full Fashion-MNIST ships with the mcnc repository, not the npm package: using fashion-mnist-small/);
  const trained = JSON.parse(cli.stdout.trim().split("\n").at(-1)!) as { accuracy: number; out: string };
  assert.ok(trained.accuracy > 0.5 && trained.out === join(project, "mlp-mcnc.mcnc"), `${trained.accuracy} ${trained.out}`);

  // onnxruntime-node is an optional peer: without it the engine says so in one line and runs on wasm.
  writeFileSync(
    join(project, "engine.mjs"),
    `import { initEngine } from "mcnc";
     const lines = [];
     const first = await initEngine({ onNote: (l) => lines.push(l) });
     const asked = await initEngine({ engine: "native", onNote: (l) => lines.push(l) });
     console.log(JSON.stringify({ first: first.engine, asked: asked.engine, lines }));`,
  );
  const engine = spawnSync(process.execPath, ["engine.mjs"], { cwd: project, encoding: "utf8" });
  assert.equal(engine.status, 0, engine.stderr);
  assert.deepEqual(JSON.parse(engine.stdout), {
    first: "wasm",
    asked: "wasm",
    lines: ["onnxruntime-node is not installed; using the wasm engine (install onnxruntime-node for native speed)", "the native engine cannot start: onnxruntime-node is not installed; using wasm"],
  });

  // A web page's bundle: mcnc/browser resolves through the exports map and pulls in no Node built-in.
  writeFileSync(join(project, "page.js"), `import { initEngine, decodeModelFile, timedRebuild } from "mcnc/browser";\nexport const api = [initEngine, decodeModelFile, timedRebuild];\n`);
  const bundle = await build({ entryPoints: [join(project, "page.js")], absWorkingDir: project, bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" });
  assert.match(bundle.outputFiles[0]!.text, /decodeModelFile/);
  // The main entry is Node's: bundling it for a browser is refused, as it should be.
  writeFileSync(join(project, "wrong.js"), `import { readModelFile } from "mcnc";\nexport const f = readModelFile;\n`);
  await assert.rejects(build({ entryPoints: [join(project, "wrong.js")], absWorkingDir: project, bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" }));

  // Types through the exports map, as a strict NodeNext project sees them.
  writeFileSync(
    join(project, "typed.ts"),
    `import { decodeModelFile, type LoadedModel } from "mcnc/browser";
     import { train, type Method } from "mcnc";
     const f: (bytes: Uint8Array) => LoadedModel = (b) => decodeModelFile(b);
     const m: Method | undefined = undefined;
     void f; void m; void train;
     // @ts-expect-error: the browser entry has no file reading
     import("mcnc/browser").then((b) => b.readModelFile);\n`,
  );
  const typecheck = (compilerOptions: Record<string, unknown>) => {
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, ...compilerOptions }, files: ["typed.ts"] }));
    return spawnSync(process.execPath, [TSC, "-p", project], { cwd: project, encoding: "utf8" });
  };
  const typed = typecheck({ skipLibCheck: true, types: [], lib: ["ES2023", "DOM"] });
  assert.equal(typed.status, 0, typed.stdout + typed.stderr);
  // Checking every library's types too: jax-js's name Float16Array and WebGPU's types, which the README's
  // two settings bring.
  const strict = typecheck({ skipLibCheck: false, types: ["@webgpu/types"], lib: ["ES2023", "ESNext.Float16", "DOM"] });
  assert.equal(strict.status, 0, strict.stdout + strict.stderr);
  assert.ok(readdirSync(join(project, "node_modules", "mcnc", "dist", "src")).includes("browser.d.ts"));
  assert.ok(statSync(join(project, "node_modules", "mcnc", "data", "models", "gpt-sotu.mcnc")).size > 0);
});
