/** mcnc eval FILE: rebuild a model from its file and measure it on the test split. */
import { UserError } from "../../errors.js";
import { timedRebuild } from "../../format/model-file.js";
import { readModelFile } from "../../format/read-file.js";
import { toDevice } from "../../model/params.js";
import { accuracy, predictor } from "../../train/evaluate.js";
import { DATA_FLAGS, JSON_FLAG, print, TEST_LIMIT_FLAG, THREADS_FLAG, type Command } from "../command.js";
import { checkDataFits, dataFrom, fileSize, jsonReport, sizeLines, startEngine } from "./shared.js";

async function run(f: Record<string, unknown>, [file]: string[]): Promise<void> {
  if (!file) throw new UserError("mcnc eval needs a FILE (see mcnc eval --help)");
  const loaded = readModelFile(file);
  const testLimit = (f["test-limit"] as number | undefined) ?? 0;
  if (testLimit < 0) throw new UserError("--test-limit must be 0 or more");
  await startEngine(f);
  const data = dataFrom(f, { trainLimit: 1, testLimit });
  checkDataFits(data, loaded);
  const rebuilt = await timedRebuild(loaded);
  const acc = await accuracy(predictor(loaded.model), toDevice(loaded.model.specs, rebuilt.params), data.test, data.imageShape);
  const size = fileSize(loaded);
  if (f.json) {
    print(
      JSON.stringify({
        command: "eval",
        file,
        model: loaded.model.name,
        method: loaded.method.name,
        accuracy: acc,
        test_samples: data.test.count,
        ...jsonReport(size, rebuilt),
      }),
    );
  } else {
    print(`${file}: ${loaded.model.name} with ${loaded.method.name}`);
    print(`test accuracy    ${acc.toFixed(4)} on ${data.test.count} samples`);
    for (const line of sizeLines(size)) print(line);
    print(`rebuild          ${rebuilt.warmMs.toFixed(1)} ms (first ${rebuilt.coldMs.toFixed(0)} ms)`);
  }
}

export const evalCommand: Command = {
  name: "eval",
  summary: "rebuild a .mcnc model and report its test accuracy and size",
  usage: "mcnc eval FILE [--data DIR] [--json]",
  flags: () => [TEST_LIMIT_FLAG, ...DATA_FLAGS, THREADS_FLAG, JSON_FLAG],
  maxPositionals: 1,
  run,
};
