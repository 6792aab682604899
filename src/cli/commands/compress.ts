/**
 * mcnc compress --method M --in MODEL --out FILE: post-training compression of a trained model, written
 * as an .mcnc file that stores the compressed form, or back in the input's format (safetensors, ONNX,
 * TF.js) with the compressed weights materialised (so the tools that read the input read the output
 * unchanged). Reports quality before
 * and after, every stored byte, the time and the peak memory.
 */
import { resolve } from "node:path";
import { compressModel, matrixLeaves, probeInput, restructureModel, type CalibrationBatch } from "../../compress/compress-model.js";
import { compressorNames, findCompressor, type Compressor } from "../../compress/index.js";
import { UserError } from "../../errors.js";
import { DATA_RECORD_FIELDS } from "../../data/dataset.js";
import { isHfFolder } from "../../format/hf-folder.js";
import { writeHfFolder } from "../../format/hf-folder-write.js";
import { checkNewFolder, writeFileAtomic } from "../../format/atomic-write.js";
import { foreignFormat } from "../../format/foreign-model.js";
import { asMatrix } from "../../model/tensors.js";
import { decodeModelFile, encodeModelFile, timedRebuild } from "../../format/model-file.js";
import { MODEL_METADATA } from "../../format/safetensors.js";
import { writeSafetensors } from "../../format/write-safetensors.js";
import { findMethod } from "../../methods/index.js";
import { chooseCompressed } from "../../methods/leaves.js";
import type { Model } from "../../model/model.js";
import { countParams, type HostParams } from "../../model/params.js";
import { putAll } from "../../engine/program.js";
import { engineBatch } from "../../train/step.js";
import type { Metrics, Task } from "../../train/tasks.js";
import type { FlagValues } from "../args.js";
import { command, DATA_RUN_FLAGS, EVAL_TOKENS_FLAG, print, round, SEED_FLAG, TEST_LIMIT_FLAG } from "../command.js";
import { optionFlags, optionValues } from "../option-flags.js";
import { openSource, type KnownSource } from "./compress-source.js";
import { checkForeignMemory, checkMcncLimits, compressToMcnc, tensorsToCompress, writeBackCompressed } from "./compress-tensors.js";
import { compressOnnx } from "./compress-onnx.js";
import { compressTfjs } from "./compress-tfjs.js";
import { healer } from "./compress-heal.js";
import { Progress } from "../progress.js";
import { qualityLines, type Quality } from "./compare-outputs.js";
import { checkForeignCalibration, checkReshaping, FOREIGN_ONLY, IMAGE_PREP_FLAGS, imagePrep, kept } from "./compress-flags.js";
import { checkWritable, compared, fileSize, jsonSize, metricLine, peakRssMiB, sizeLines, startEngine, taskFor } from "./shared.js";

const compressors = (): Compressor[] => compressorNames().map((n) => findCompressor(n)!);

/** Calibration rows when none are asked for: windows of text, or images. */
// A file of another tool's tensors never reaches calibration (compress-source refuses it).
const CALIB_DEFAULT = { language: 128, classifier: 256, tensors: 0 } as const;
const CALIB_BATCH = { language: 16, classifier: 128, tensors: 0 } as const;
const MAX_CALIB_SAMPLES = 1 << 16;

const FLAGS = [
  { name: "method", type: "string", choices: compressorNames(), help: "post-training method", required: true },
  { name: "in", type: "string", help: "the trained model: .mcnc, .safetensors, .onnx, or a TF.js model.json", required: true },
  { name: "out", type: "string", help: "output: .mcnc (the compressed form), or the input's format with the weights materialised (dtypes kept)", required: true },
  { name: "compress", type: "string", help: "leaves to compress: names a,b,c", defaultText: "every weight matrix the network multiplies (not embeddings; in ONNX, what Conv, Gemm, MatMul and RNNs multiply)" },
  { name: "keep", type: "string", help: "leave tensors whose names contain any of a,b,c as they are (e.g. a fixed STFT basis)" },
  { name: "layout", type: "string", choices: ["in-out", "out-in", "out-first"], help: "how another model's tensors are [inputs, outputs] matrices", defaultText: "ONNX: from the node using it; safetensors: out-in (PyTorch), out-first above 2 axes; TF.js: from the node using it" },
  { name: "calib", type: "string", help: "calibration data: text file or folder for the GPT, IDX directory for images; for ONNX and TF.js, a folder of one .npy per model input (samples first) or of images", defaultText: "the model's training data" },
  { name: "eval", type: "string", help: "ONNX and TF.js: your inputs to measure the output change and latency on (in the model's own runtime), in the form --calib takes" },
  ...IMAGE_PREP_FLAGS,
  { name: "store", type: "string", choices: ["float32", "float16", "bfloat16", "uint16", "uint8"], help: "safetensors and TF.js: how the written float weights are stored (TF.js: float16, uint16, uint8 as its converter quantises; safetensors: float16, bfloat16)", defaultText: "the input's dtypes" },
  { name: "qdq", type: "bool", help: "ONNX: 8-bit per-channel codes as DequantizeLinear (for QDQ tools; onnxruntime then dequantises on every call)" },
  { name: "float", type: "bool", help: "ONNX: write compressed weights as float, not as codes, MatMulNBits or factors" },
  { name: "calib-samples", type: "int", help: "calibration rows: text windows or images", min: 1, max: MAX_CALIB_SAMPLES, defaultText: `${CALIB_DEFAULT.language} windows, or ${CALIB_DEFAULT.classifier} images` },
  { ...SEED_FLAG, help: "seed that picks the calibration samples" },
  { name: "skip-eval", type: "bool", help: "do not measure quality before and after" },
  EVAL_TOKENS_FLAG,
  TEST_LIMIT_FLAG,
  ...DATA_RUN_FLAGS,
] as const;
type Flags = FlagValues<typeof FLAGS>;

async function calibrationBatches(task: Task, model: Model, samples: number, seed: number): Promise<CalibrationBatch[]> {
  const per = CALIB_BATCH[model.kind];
  const out: CalibrationBatch[] = [];
  for (let step = 0, left = samples; left > 0; step++, left -= per) out.push(engineBatch(await task.batch(seed, step, Math.min(per, left))));
  return out;
}

/** The leaves to compress: --compress, or every weight matrix the network multiplies its inputs by. */
function leavesToCompress(model: Model, given: unknown, calibrated: Compressor["calibrated"]): string[] {
  const multiplied = matrixLeaves(model, probeInput(model));
  if (given === undefined) return model.specs.filter((s) => s.role === "weight" && multiplied.includes(s.name)).map((s) => s.name);
  const chosen = chooseCompressed(given, model.specs);
  for (const name of chosen) {
    const spec = model.specs.find((s) => s.name === name)!;
    if (spec.shape.length < 2) throw new UserError(`--compress: ${name} has one axis; these methods compress matrices`);
    if (calibrated === "inputs" && !multiplied.includes(name)) throw new UserError(`--compress: calibrated methods need a layer's inputs, and ${name} is not multiplied by any (choose from ${multiplied.join(", ")})`);
  }
  return chosen;
}

/** The model's test score with `weights`, its progress on a terminal under `label`. */
async function measure(task: Task | undefined, model: Model, weights: HostParams, progress: Progress, label: string): Promise<Metrics | undefined> {
  if (!task) return undefined;
  const shown = progress.fraction(label);
  const metrics = await task.evaluate(putAll(model.specs, weights), shown.update);
  shown.done();
  return metrics;
}

async function compressNetwork(f: Flags, src: KnownSource, compressor: Compressor, config: object, compress: string[], out: string, log: (s: string) => void): Promise<Record<string, unknown>> {
  const { model } = src;
  const seed = f.seed;
  const task = f["skip-eval"] ? undefined : await taskFor(model, f, src.meta);
  let calibration: CalibrationBatch[] = [];
  if (compressor.calibrated) {
    const samples = f["calib-samples"] ?? CALIB_DEFAULT[model.kind];
    const source = f.calib === undefined ? { ...f, "eval-tokens": 1 } : { data: f.calib, "eval-tokens": 1 };
    calibration = await calibrationBatches(await taskFor(model, source, f.calib === undefined ? src.meta : undefined), model, samples, seed);
  } else if (f.calib !== undefined || f["calib-samples"] !== undefined) throw new UserError(`--method ${compressor.name} uses no calibration data (drop --calib and --calib-samples)`);

  const progress = new Progress(process.stderr, !f.quiet && !f.json);
  const before = await measure(task, model, src.weights, progress, "evaluating the model as given");
  // Structured pruning writes a smaller network (`written`): what the file holds and what is measured.
  const { model: written, ...run } = compressor.restructure
    ? await restructureModel(model, src.weights, compressor, config, calibration, healer(f, src.meta, seed, log))
    : { model, ...(await compressModel(model, src.weights, compressor, config, compress, calibration, src.seed, (p) => log(`[${p.index + 1}/${p.of}] ${p.leaf} ${p.seconds.toFixed(1)}s`))) };
  for (const [x, y] of calibration) {
    x.dispose();
    y.dispose();
  }
  const method = findMethod(run.method.name)!;
  const bytes = encodeModelFile(
    { model: written.description, method: run.method, seed: src.seed, trainable: {}, meta: { compressed: { method: compressor.name, config }, ...pick(src.meta, ["dataset", "tokenizer_folder", ...DATA_RECORD_FIELDS]) } },
    written,
    method,
    { encoded: run.stored },
  );
  // What the file rebuilds is what is measured and written, whatever the format.
  const loaded = decodeModelFile(bytes, "the compressed model");
  const weights = (await timedRebuild(loaded, 0)).params;
  const after = await measure(task && written !== model ? await taskFor(written, f, src.meta) : task, written, weights, progress, "evaluating the compressed model");
  const store = f.store === undefined ? undefined : ({ float32: "F32", float16: "F16", bfloat16: "BF16" } as const)[f.store as "float32" | "float16" | "bfloat16"];
  if (out.endsWith(".mcnc")) writeFileAtomic(out, bytes);
  else if (isHfFolder(f.in) && !out.endsWith(".safetensors")) writeHfFolder(f.in, out, weights, { compressed_with: compressor.name }, store);
  else {
    const tensors = model.specs.map((s) => ({ name: s.name, shape: s.shape, dtype: store ?? src.dtypes[s.name] ?? "F32", data: weights[s.name]! }));
    writeSafetensors(out, tensors, { [MODEL_METADATA]: JSON.stringify(model.description), compressed_with: compressor.name });
  }
  // Counted against the network as given: a pruned one has fewer parameters of its own.
  const size = fileSize(loaded, countParams(model.specs));
  return { model: model.name, compressed: written === model ? compress.length : 0, storage: run.method.name, compress_seconds: round(run.seconds, 2), size, before, after, ...(written !== model ? { pruned: written.description } : {}) };
}

/** The entries of `meta` named in `keys` that it holds: what a compressed file carries on from its source. */
const pick = (meta: Record<string, unknown> | undefined, keys: string[]) => Object.fromEntries(keys.filter((k) => meta?.[k] !== undefined).map((k) => [k, meta![k]]));

async function run(f: Flags, _: string[], options: Record<string, unknown>): Promise<void> {
  const compressor = findCompressor(f.method)!;
  const out = resolve(f.out);
  // A Hugging Face folder is written back as one, where --out names no file of another format.
  const toFolder = isHfFolder(f.in) && !/\.(mcnc|safetensors|onnx|json)$/.test(out);
  if (!toFolder && !/\.(mcnc|safetensors|onnx|json)$/.test(out)) throw new UserError("--out must end in .mcnc, .safetensors, .onnx or .json (TF.js), or name a new folder for a Hugging Face model");
  if (toFolder) checkNewFolder(out, "--out");
  if (out === resolve(f.in)) throw new UserError("--out would overwrite the input file");
  if (f.store !== undefined && (out.endsWith(".mcnc") || ((out.endsWith(".safetensors") || toFolder) && !["float32", "float16", "bfloat16"].includes(f.store)))) throw new UserError(`--store ${f.store} does not apply to ${out.endsWith(".mcnc") ? ".mcnc output (it stores the compressed form)" : "safetensors (float32, float16 or bfloat16)"}`);
  checkWritable(out, "--out");
  const values = optionValues(compressor, compressors(), options);
  const log = (s: string) => f.quiet || process.stderr.write(`${s}\n`);
  const config = compressor.configure(values);
  // The engine starts only for a network mcnc runs: another model's tensors stream through without it.
  const src = await openSource(f.in, f.layout, () => startEngine(f));
  // What the method cannot compress at this budget stays as it is when chosen by default, and is an error when named.
  const fitting = (named: boolean, leaves: Array<{ name: string; rows: number; cols: number }>) => {
    const reasons: string[] = [];
    const fit = leaves.filter(({ name, rows, cols }) => {
      const why = compressor.skips?.(config, rows, cols);
      if (why && named) throw new UserError(`--compress: ${name}: ${why}`);
      if (why) reasons.push(`${name}: ${why}`);
      return !why;
    });
    if (fit.length === 0) throw new UserError(`--method ${compressor.name} at this budget compresses none of the matrices (${reasons[0] ?? "none chosen"})`);
    for (const r of reasons) log(`stays as it is: ${r}`);
    return fit.map((l) => l.name);
  };
  let report: Record<string, unknown>;
  if (src.kind === "network") {
    if (!toFolder && !/\.(mcnc|safetensors)$/.test(out)) throw new UserError("a network mcnc runs is written as .mcnc (the compressed form) or .safetensors (its weights)");
    if (compressor.restructure) checkReshaping(compressor.name, out, f);
    for (const flag of FOREIGN_ONLY) if (f[flag] !== undefined) throw new UserError(`--${flag} applies to ONNX and TF.js models; a network mcnc runs is measured on its test data`);
    const chosen = kept(leavesToCompress(src.model, f.compress, compressor.calibrated), f.keep);
    const specs = src.model.specs.filter((s) => new Set(chosen).has(s.name));
    const compress = fitting(f.compress !== undefined, specs.map((s) => ({ name: s.name, ...asMatrix(s.shape, "in-out") })));
    report = await compressNetwork(f, src, compressor, config, compress, out, log);
  } else {
    const { model } = src;
    const toMcnc = out.endsWith(".mcnc");
    try {
      if (!toMcnc && foreignFormat(out) !== model.format) throw new UserError(`a model mcnc did not write is written back in its own format (${model.format}) or as .mcnc`);
      checkForeignCalibration(model.format, compressor, f);
      const chosen = kept(tensorsToCompress(model, f.compress), f.keep);
      const selected = new Set(chosen);
      const compress = fitting(f.compress !== undefined, model.tensors.filter((t) => selected.has(t.name)).map((t) => ({ name: t.name, ...asMatrix(t.shape, t.layout) })));
      checkForeignMemory(model, compressor, compress, toMcnc, f.in, Boolean(compressor.calibrated) || f.eval !== undefined);
      if (toMcnc) checkMcncLimits(model, compress.length, 1);
      const dirOf = (dir: string | undefined, samples: number | undefined) => (dir === undefined ? undefined : { dir, ...(samples === undefined ? {} : { samples }) });
      const [calib, evaluate] = [dirOf(f.calib, f["calib-samples"]), dirOf(f.eval, f["test-limit"] || undefined)];
      const job = { compressor, config, chosen: compress, named: f.compress !== undefined, out, prep: imagePrep(f), log, ...(calib ? { calib } : {}), ...(evaluate ? { evaluate } : {}) };
      if (model.format === "onnx") {
        if (compressor.calibrated || f.eval !== undefined) await startEngine(f);
        report = await compressOnnx(model, { ...job, float: Boolean(f.float), qdq: Boolean(f.qdq) });
      } else if (model.format === "tfjs" && (compressor.calibrated || f.eval !== undefined)) {
        report = await compressTfjs(model, { ...job, ...(f.store === undefined ? {} : { store: f.store }) });
      } else report = toMcnc ? await compressToMcnc(model, compressor, config, compress, out, log) : writeBackCompressed(model, compressor, config, compress, out, log, f.store);
    } finally {
      model.close();
    }
  }
  const summary = { command: "compress", method: compressor.name, config, in: f.in, out, ...report, peak_rss_mib: peakRssMiB() };
  if (f.json) {
    const { size, ...rest } = summary as typeof summary & { size?: ReturnType<typeof fileSize> };
    print(JSON.stringify({ ...rest, ...(size ? jsonSize(size) : {}) }));
    return;
  }
  print(`${f.in}: ${String(report.model)}, ${report.pruned ? "reshaped" : `${String(report.compressed)} matrices compressed`} with ${compressor.name} in ${String(report.compress_seconds)} s; wrote ${out}`);
  const size = report.size as ReturnType<typeof fileSize> | undefined;
  if (size) for (const line of sizeLines(size)) print(line);
  const file = report.file_bytes as { in: number; out: number; in_gzip?: number; out_gzip?: number } | undefined;
  if (file) print(`file${report.model === "tfjs" ? "s" : " "}            ${file.in} bytes in, ${file.out} out (${compared(file.in / file.out, "smaller", "larger", "the same size")})${file.in_gzip !== undefined ? `; gzipped ${file.in_gzip} and ${file.out_gzip}` : ""}`);
  for (const [how, n] of Object.entries((report.forms as Record<string, number> | undefined) ?? {})) print(`  ${String(n).padStart(4)} x ${how}`);
  if (report.stored_payload_bytes !== undefined) print(`stored payload   ${String(report.stored_payload_bytes)} bytes for ${String(report.params)} parameters (what .mcnc would store; the file written holds them dense)`);
  if (report.quality) for (const line of qualityLines(report.quality as Quality)) print(line);
  else if (!size && !f["skip-eval"]) print(`quality          not measured: give --eval DIR with the model's inputs (ONNX, TF.js)`);
  if (report.before) print(metricLine(report.before as Metrics, " before"));
  if (report.after) print(metricLine(report.after as Metrics, " after"));
  print(`peak memory      ${summary.peak_rss_mib} MiB`);
}

export const compressCommand = command({
  name: "compress",
  summary: "compress a trained model without training (low rank, quantisation, pruning, MCNC fit): quality before and after, bytes",
  usage: "mcnc compress --method gptq --bits 4 --in MODEL(.mcnc|.safetensors|.onnx|model.json) --out OUT(.mcnc or the input's format)",
  examples: [
    "npx mcnc compress --method rtn --bits 8 --in data/models/gpt-sotu.mcnc --out gpt-8bit.mcnc",
    "npx mcnc compress --method gptq --bits 4 --in model.onnx --calib calib/ --out model-4bit.onnx",
  ],
  flags: FLAGS,
  optionFlags: () => [...optionFlags(compressors()).values()].map(({ flag }) => flag),
  maxPositionals: 0,
  run,
});
