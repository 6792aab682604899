/** mcnc eval FILE [--adapter A]: rebuild a model (or a base with an adapter) and measure it on held-out data. */
import { tree } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { timedRebuild } from "../../format/model-file.js";
import { toDevice } from "../../model/params.js";
import { DATA_FLAGS, EVAL_TOKENS_FLAG, JSON_FLAG, print, round, TEST_LIMIT_FLAG, ENGINE_FLAGS, type Command } from "../command.js";
import { Progress } from "../progress.js";
import { fileSize, jsonReport, metricLine, openModel, sizeLines, startEngine, taskFor } from "./shared.js";

export const ADAPTER_FLAG = { name: "adapter", type: "string" as const, help: "an adapter file to apply to the model (which must be its base)" };

async function run(f: Record<string, unknown>, [file]: string[]): Promise<void> {
  if (!file) throw new UserError("mcnc eval needs a FILE (see mcnc eval --help)");
  const testLimit = (f["test-limit"] as number | undefined) ?? 0;
  if (testLimit < 0) throw new UserError("--test-limit must be 0 or more");
  const adapterFile = f.adapter as string | undefined;
  await startEngine(f);
  const { loaded, base } = await openModel(file, adapterFile);
  const task = await taskFor(loaded.model, f, loaded.file.meta, "evaluate");
  const rebuilt = await timedRebuild(loaded, 3, base);
  const params = toDevice(loaded.model.specs, rebuilt.params);
  const shown = new Progress(process.stderr, !f.json).fraction(`evaluating on ${task.data}`);
  const metrics = await task.evaluate(params, shown.update);
  shown.done();
  tree.dispose(params);
  const size = fileSize(loaded);
  if (f.json) {
    print(
      JSON.stringify({
        command: "eval",
        file,
        ...(adapterFile ? { adapter: adapterFile } : {}),
        model: loaded.model.name,
        method: loaded.method.name,
        data: task.data,
        ...Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, k === "accuracy" ? v : round(v, 6)])),
        ...jsonReport(size, rebuilt),
      }),
    );
  } else {
    print(`${adapterFile ?? file}: ${loaded.model.name} with ${loaded.method.name}${adapterFile ? ` on ${file}` : ""}`);
    print(metricLine(metrics, ` on ${task.data}`));
    for (const line of sizeLines(size)) print(line);
    print(`rebuild          ${rebuilt.warmMs.toFixed(1)} ms (first ${rebuilt.coldMs.toFixed(0)} ms)`);
  }
}

export const evalCommand: Command = {
  name: "eval",
  summary: "rebuild a .mcnc model (or a base with --adapter) and report its held-out quality and size",
  usage: "mcnc eval FILE [--adapter ADAPTER] [--data PATH] [--json]",
  examples: [
    "npx mcnc eval data/models/mlp-fashion-mcnc-100x.mcnc",
    "npx mcnc eval data/models/gpt-sotu.mcnc --eval-tokens 4096 --json",
  ],
  flags: () => [ADAPTER_FLAG, TEST_LIMIT_FLAG, EVAL_TOKENS_FLAG, ...DATA_FLAGS, ...ENGINE_FLAGS, JSON_FLAG],
  maxPositionals: 1,
  run,
};
