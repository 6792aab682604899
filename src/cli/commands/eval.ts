/** mcnc eval FILE [--adapter A]: rebuild a model (or a base with an adapter) and measure it on held-out data. */
import { tree } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { timedRebuild } from "../../format/model-file.js";
import { toDevice } from "../../model/params.js";
import type { FlagValues } from "../args.js";
import { ADAPTER_FLAG, command, DATA_FLAGS, ENGINE_FLAGS, EVAL_TOKENS_FLAG, JSON_FLAG, print, round, TEST_LIMIT_FLAG, TOKENIZER_FLAG, WINDOW_FLAG } from "../command.js";
import { Progress } from "../progress.js";
import { fileSize, jsonReport, metricLine, openModel, sizeLines, startEngine, taskFor } from "./shared.js";

const FLAGS = [ADAPTER_FLAG, TEST_LIMIT_FLAG, EVAL_TOKENS_FLAG, WINDOW_FLAG, TOKENIZER_FLAG, ...DATA_FLAGS, ...ENGINE_FLAGS, JSON_FLAG] as const;

async function run(f: FlagValues<typeof FLAGS>, [file]: string[]): Promise<void> {
  if (!file) throw new UserError("mcnc eval needs a FILE (see mcnc eval --help)");
  const adapterFile = f.adapter;
  await startEngine(f);
  const { loaded, base } = await openModel(file, adapterFile, { context: f.context, tokenizer: f.tokenizer });
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

export const evalCommand = command({
  name: "eval",
  summary: "rebuild a .mcnc model (or a base with --adapter) and report its held-out quality and size",
  usage: "mcnc eval FILE [--adapter ADAPTER] [--data PATH] [--json]",
  examples: [
    "npx mcnc eval data/models/mlp-fashion-mcnc-100x.mcnc",
    "npx mcnc eval data/models/gpt-sotu.mcnc --eval-tokens 4096 --json",
  ],
  flags: FLAGS,
  maxPositionals: 1,
  run,
});
