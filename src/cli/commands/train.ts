/** mcnc train: train a model through a method, save it, and prove the file rebuilds it exactly. */
import { accessSync, constants } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { UserError } from "../../errors.js";
import { decodeModelFile, encodeModelFile, rebuildParams, timedRebuild } from "../../format/model-file.js";
import { readModelFile } from "../../format/read-file.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import { findMethod, methodNames, type Method } from "../../methods/index.js";
import { buildModel } from "../../model/models.js";
import { countParams, toDevice, toHost } from "../../model/params.js";
import { checkSeed } from "../../rng/seeded.js";
import { PLATEAU_DEFAULTS } from "../../train/plateau.js";
import { accuracy, predictor } from "../../train/evaluate.js";
import { train } from "../../train/trainer.js";
import type { Flag } from "../args.js";
import { DATA_FLAGS, JSON_FLAG, LIMIT_FLAG, MODEL_FLAG, print, QUIET_FLAG, round, TEST_LIMIT_FLAG, THREADS_FLAG, type Command } from "../command.js";
import { Progress } from "../progress.js";
import { checkDataFits, dataFrom, fileSize, jsonReport, sizeLines, startEngine } from "./shared.js";

function methodFlags(): Map<string, { flag: Flag; methods: string[] }> {
  const out = new Map<string, { flag: Flag; methods: string[]; helps: Map<string, string[]> }>();
  for (const name of methodNames()) {
    for (const o of findMethod(name)!.options) {
      const entry = out.get(o.name) ?? { flag: { name: o.name, type: o.type, help: o.help }, methods: [] as string[], helps: new Map<string, string[]>() };
      entry.methods.push(name);
      entry.helps.set(o.help, [...(entry.helps.get(o.help) ?? []), name]);
      out.set(o.name, entry);
    }
  }
  // A flag several methods share says what it means (and defaults to) for each of them.
  for (const entry of out.values()) entry.flag.help = [...entry.helps].map(([help, methods]) => `${help} [${methods.join(", ")}]`).join("; ");
  return out;
}

function flags(): Flag[] {
  return [
    MODEL_FLAG,
    { name: "method", type: "string", choices: methodNames(), help: "compression method", default: "mcnc" },
    ...[...methodFlags().values()].map(({ flag }) => flag),
    { name: "epochs", type: "int", help: "passes over the training data (0 with --init: post-training compression only)", default: "3" },
    { name: "init", type: "string", help: "start from this file's weights (methods that train the weights themselves: dense, prune, quant)" },
    { name: "batch", type: "int", help: "minibatch size", default: "128" },
    { name: "lr", type: "float", help: "Adam step size (default: the method's; mcnc 0.02, dense 0.001)" },
    { name: "patience", type: "int", help: "epochs without improvement before the rate halves", default: String(PLATEAU_DEFAULTS.patience) },
    { name: "seed", type: "int", help: "seed of everything random (stored in the file)", default: "0" },
    { name: "out", type: "string", help: "output file", default: "<model>-<method>.mcnc" },
    { name: "store-bits", type: "int", help: "8: store the method's numbers as 8-bit codes (dense-kept leaves stay float32)", default: "32" },
    LIMIT_FLAG,
    TEST_LIMIT_FLAG,
    ...DATA_FLAGS,
    THREADS_FLAG,
    QUIET_FLAG,
    JSON_FLAG,
  ];
}

function intFlag(v: unknown, fallback: number, name: string, lo: number, hi: number): number {
  const n = (v as number | undefined) ?? fallback;
  if (n < lo || n > hi) throw new UserError(`--${name} must be from ${lo} to ${hi}, got ${n}`);
  return n;
}

function methodValues(method: Method, given: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const own = new Set(method.options.map((o) => o.name));
  for (const [name, { methods }] of methodFlags()) {
    if (!(name in given)) continue;
    if (!own.has(name)) throw new UserError(`--${name} does not apply to --method ${method.name} (it is for ${methods.join(", ")})`);
    values[name] = given[name];
  }
  return values;
}

async function run(f: Record<string, unknown>): Promise<void> {
  const methodName = (f.method as string | undefined) ?? "mcnc";
  const method = findMethod(methodName)!;
  const values = methodValues(method, f);
  const epochs = intFlag(f.epochs, 3, "epochs", 0, 10000);
  const batch = intFlag(f.batch, 128, "batch", 1, 65536);
  const patience = intFlag(f.patience, PLATEAU_DEFAULTS.patience, "patience", 0, 10000);
  const limit = intFlag(f.limit, 0, "limit", 0, 2 ** 31);
  const testLimit = intFlag(f["test-limit"], 0, "test-limit", 0, 2 ** 31);
  const storeBits = (f["store-bits"] as number | undefined) ?? 32;
  if (storeBits !== 8 && storeBits !== 32) throw new UserError(`--store-bits must be 8 or 32, got ${storeBits}`);
  if (storeBits === 8 && method.codec) throw new UserError(`--store-bits does not apply to --method ${method.name}: it stores its own encoding, chosen by its own flags`);
  const lr = f.lr as number | undefined;
  if (lr !== undefined && !(lr > 0 && lr < 10)) throw new UserError(`--lr must be in (0, 10), got ${lr}`);
  const seed = (() => {
    try {
      return checkSeed((f.seed as number | undefined) ?? 0);
    } catch (e) {
      throw new UserError(`--seed: ${(e as Error).message}`);
    }
  })();
  const initFile = f.init as string | undefined;
  if (initFile !== undefined && !method.startsFromWeights) {
    throw new UserError(`--init does not apply to --method ${method.name} (it is for ${methodNames().filter((n) => findMethod(n)!.startsFromWeights).join(", ")})`);
  }
  if (epochs === 0 && initFile === undefined) throw new UserError("--epochs 0 needs --init FILE (weights to compress without training)");
  const startFrom = initFile === undefined ? undefined : readModelFile(initFile);
  if (startFrom && f.model !== undefined && f.model !== startFrom.model.name) throw new UserError(`--init ${initFile} holds a ${startFrom.model.name}, not --model ${String(f.model)}`);
  const modelName = startFrom?.model.name ?? (f.model as string | undefined) ?? "mlp";
  const out = resolve((f.out as string | undefined) ?? `${modelName}-${methodName}.mcnc`);
  // Fail before training, not after minutes of it.
  try {
    accessSync(dirname(out), constants.W_OK);
  } catch {
    throw new UserError(`cannot write to ${dirname(out)} (for --out ${out})`);
  }
  const progress = new Progress(process.stderr, !f.quiet);

  await startEngine(f);
  const data = dataFrom(f, { trainLimit: limit, testLimit });
  if (batch > data.train.count) throw new UserError(`--batch ${batch} is larger than the ${data.train.count} training samples`);
  const model = buildModel(modelName, data.imageShape, data.numClasses);
  if (startFrom) checkDataFits(data, startFrom);
  const start = startFrom && (await toHost(model.specs.map((s) => s.name), await rebuildParams(startFrom)));
  const config = method.configure(values, model.specs);
  const params = countParams(model.specs);
  progress.message(`mcnc: ${model.name} (${params} parameters) with ${method.name} ${JSON.stringify(config)}, ${data.train.count} training samples`);
  for (const note of method.notes?.(config, model.specs) ?? []) process.stderr.write(`mcnc: note: ${note}\n`);

  const result = await train(model, method, config, data, {
    epochs,
    batch,
    lr,
    seed,
    plateau: { patience },
    start,
    onStep: (p) => progress.step(p),
    onEpoch: (e) => progress.epoch(e, epochs),
  });

  const fileModel = { name: model.name, input: data.imageShape, classes: data.numClasses };
  const meta = {
    dataset: data.name,
    train_samples: data.train.count,
    test_samples: data.test.count,
    epochs,
    batch,
    accuracy_f32: result.accuracy,
    ...(initFile === undefined ? {} : { init: basename(initFile) }),
  };
  const bytes = encodeModelFile({ model: fileModel, method: { name: method.name, config }, seed, trainable: result.trainable, meta }, model, method, {
    storeBits: storeBits as 8 | 32,
  });
  writeFileAtomic(out, bytes);

  // The file on disk, read back, must rebuild exactly the weights training ended with (or, stored at
  // 8 bits, what those codes give: then it is measured again).
  const loaded = decodeModelFile(bytes, out);
  const rebuilt = await timedRebuild(loaded);
  let accuracyStored = result.accuracy;
  if (storeBits === 32) {
    for (const s of model.specs) {
      const a = rebuilt.params[s.name]!;
      const b = result.params[s.name]!;
      if (a.length !== b.length || !a.every((v, i) => Object.is(v, b[i]))) throw new Error(`rebuilt weights of ${s.name} differ from the trained ones`);
    }
  } else {
    accuracyStored = await accuracy(predictor(model), toDevice(model.specs, rebuilt.params), data.test, data.imageShape);
  }

  const size = fileSize(loaded);
  if (f.json) {
    print(
      JSON.stringify({
        command: "train",
        out,
        model: model.name,
        method: method.name,
        config,
        seed,
        accuracy: accuracyStored,
        accuracy_f32: result.accuracy,
        store_bits: storeBits,
        ...jsonReport(size, rebuilt),
        train_samples_per_s: round(result.trainSamplesPerS, 1),
        train_seconds: round(result.trainSeconds, 3),
        history: result.history.map((h) => ({ ...h, loss: round(h.loss, 5), trainSeconds: round(h.trainSeconds, 3), samplesPerS: round(h.samplesPerS, 1) })),
      }),
    );
  } else {
    print(`wrote ${out}`);
    print(`test accuracy    ${accuracyStored.toFixed(4)}${storeBits === 8 ? ` (${result.accuracy.toFixed(4)} before 8-bit storage)` : ""}`);
    for (const line of sizeLines(size)) print(line);
    print(`rebuild          ${rebuilt.warmMs.toFixed(1)} ms (first ${rebuilt.coldMs.toFixed(0)} ms)${storeBits === 32 ? ", bit-identical to the trained weights" : ""}`);
    print(`training         ${result.trainSamplesPerS.toFixed(0)} samples/s`);
  }
}

export const trainCommand: Command = {
  name: "train",
  summary: "train a model in compressed form and save it as .mcnc",
  usage: "mcnc train [--model mlp|lenet] [--method M] [--ratio R | method flags] [--epochs N] [--init FILE] [--out FILE]",
  flags,
  maxPositionals: 0,
  run: (f) => run(f),
};
