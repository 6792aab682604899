#!/usr/bin/env node
/**
 * The `mcnc` executable. jax-js fixes its thread count when it loads, so --threads is read here,
 * before anything imports the engine, and handed on as MCNC_THREADS.
 */
import { availableParallelism } from "node:os";

const argv = process.argv.slice(2);

// `mcnc ... | head` closes the pipe early: that is the reader's choice, not an error of ours.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code !== "EPIPE") throw e;
  process.exit(0);
});

function flagValue(name: string): string | undefined {
  const at = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (at < 0) return undefined;
  return argv[at]!.includes("=") ? argv[at]!.slice(name.length + 3) : argv[at + 1];
}

/** The network a train command works on: --model, or the one in its --init file's header. */
async function trainedModel(): Promise<string | undefined> {
  const init = flagValue("init");
  const model = flagValue("model");
  if (init === undefined && model?.endsWith(".json")) {
    // A spec of layers: convolutions make steps big enough for two threads, as LeNet's.
    try {
      const { readWholeFile } = await import("../files.js");
      const spec = JSON.parse(new TextDecoder().decode(readWholeFile(model, "spec", 1 << 16))) as { layers?: unknown };
      const convolutional = Array.isArray(spec.layers) && spec.layers.some((l: unknown) => (l as { type?: unknown } | null)?.type === "conv3x3");
      return convolutional ? "convolutional spec" : "spec";
    } catch {
      return undefined; // train reports a bad spec itself
    }
  }
  if (init === undefined) return model;
  try {
    // The container reader loads no engine, so the thread count can still be chosen.
    const { decodeContainer } = await import("../format/container.js");
    const { readWholeFile } = await import("../files.js");
    const model = decodeContainer(readWholeFile(init), init).header.model as { name?: unknown } | undefined;
    return typeof model?.name === "string" ? model.name : undefined;
  } catch {
    return undefined; // train reports a bad file itself
  }
}

const threads = flagValue("threads");
if (threads !== undefined && /^\d+$/.test(threads)) process.env.MCNC_THREADS = threads;
else if (process.env.MCNC_THREADS === undefined && argv[0] === "train" && availableParallelism() >= 2 && ["lenet", "gpt", "convolutional spec"].includes((await trainedModel()) ?? "")) {
  // Measured (docs/results.md): convolution and transformer steps are big enough for 2 threads to pay
  // (LeNet 1.4x, the GPT 1.7x); the MLP's small steps are slower with them, so it keeps the default of 1.
  process.env.MCNC_THREADS = "2";
}

// Before any module that imports jax-js: the preload installs the thread shim MCNC_THREADS asks for.
await import("../engine/preload.js");
const { main, reportFailure } = await import("./cli.js");
try {
  process.exitCode = await main(argv);
} catch (e) {
  process.exitCode = reportFailure(e, argv);
}
