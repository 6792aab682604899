/** Steps several commands take the same way: engine start, data for a model, models and adapters from files, the size summary. */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { UserError } from "../../errors.js";
import { readJsonObject } from "../../files.js";
import { initEngine } from "../../engine/engine.js";
import type { EngineName } from "../../engine/program.js";
import { availableBundled, BUNDLED, BUNDLED_NAMES, bundledPath, type BundledName } from "../../data/bundled.js";
import { loadDataset, recordedOptions, type Dataset, type LoadOptions } from "../../data/dataset.js";
import { loadText } from "../../data/text.js";
import { checkBase, timedRebuild, type LoadedModel, type TimedRebuild } from "../../format/model-file.js";
import { isPeftFolder, readPeftAdapter } from "../../format/peft-read.js";
import { readModelFile } from "../../format/read-file.js";
import { sizeReport, type SizeReport } from "../../format/size-report.js";
import { buildModel, MODEL_NAMES, parseDescription, type Model } from "../../model/models.js";
import { countParams, type HostParams } from "../../model/params.js";
import { imageTask, textTask, type Metrics, type Task } from "../../train/tasks.js";
import { didYouMean } from "../args.js";
import { GPT_DEFAULTS } from "../../model/gpt.js";
import { round } from "../command.js";

/** The flags that say which data, and how much of it. */
export interface DataFlags {
  data?: string;
  dataset?: BundledName;
  "label-column"?: string;
  limit?: number;
  "test-limit"?: number;
  "eval-tokens"?: number;
}

/** The flags that describe a network to build, besides its data. */
export interface ModelFlags extends DataFlags {
  model?: string;
  layers?: number;
  width?: number;
  heads?: number;
  context?: number;
}

export async function startEngine(flags: { threads?: number; engine?: EngineName }): Promise<void> {
  try {
    await initEngine({ threads: flags.threads, engine: flags.engine });
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`${/engine/.test(e.message) ? "--engine or MCNC_ENGINE" : "--threads"}: ${e.message}`);
    throw e;
  }
}

/**
 * Which data: --data, --dataset, or else what a file recorded it was trained on (a bundled name), or
 * else the bundled default for the model's kind. A file trained on data outside the bundle is never
 * silently measured on the bundled set.
 */
function dataSource(flags: DataFlags, kind: "images" | "text", recorded?: unknown): { path: string; name: string } {
  if (flags.data !== undefined && flags.dataset !== undefined) throw new UserError("give --dataset or --data, not both");
  if (flags.data !== undefined) return { path: flags.data, name: flags.data };
  let name = flags.dataset;
  if (name === undefined && recorded !== undefined) {
    if (!BUNDLED_NAMES.includes(recorded as BundledName)) throw new UserError(`the model was trained on ${String(recorded).slice(0, 200)}: give --data (or --dataset)`);
    name = recorded as BundledName;
  }
  name ??= kind === "images" ? "fashion-mnist" : "sotu";
  const available = availableBundled(name);
  if (available.note) process.stderr.write(`mcnc: note: ${available.note}\n`);
  name = available.name;
  const holds = BUNDLED[name].kind;
  if ((holds === "text") !== (kind === "text")) throw new UserError(`--dataset ${name} holds ${holds === "table" ? "a table" : holds}; this model reads ${kind === "text" ? "text" : "images or tables"}`);
  return { path: bundledPath(name), name };
}

/** What the data flags ask of the loader. */
function dataOptions(flags: DataFlags): LoadOptions {
  const labelColumn = flags["label-column"];
  return { trainLimit: flags.limit ?? 0, testLimit: flags["test-limit"] ?? 0, ...(labelColumn !== undefined ? { labelColumn } : {}) };
}

export function imageData(flags: DataFlags, limits: LoadOptions, recorded?: unknown): Dataset {
  const { path, name } = dataSource(flags, "images", recorded);
  const data = loadDataset(path, limits);
  return { ...data, name };
}

/** The task for a model built already (the GPT, or an image model from a file). */
/**
 * `recorded`: what a trained file says of its data (meta: the data set's name, the pixel statistics it
 * was normalised with), so it is measured on data scaled the same way.
 */
export async function taskFor(model: Model, flags: DataFlags, recorded?: Record<string, unknown>, use: "train" | "evaluate" = "train"): Promise<Task> {
  if (model.kind === "tensors") throw new UserError(`the file holds a ${model.name} model, which mcnc stores but cannot run: decompress it (with --template, back into the model)`);
  if (model.kind === "language") {
    for (const f of ["limit", "test-limit", "label-column"] as const) if (flags[f] !== undefined) throw new UserError(`--${f} applies to image data; text runs choose --steps and --eval-tokens`);
    const { path, name } = dataSource(flags, "text", recorded?.dataset);
    return textTask(await loadText(path, { name }), model, { evalTokens: flags["eval-tokens"] });
  }
  const options = { ...recordedOptions(recorded), ...dataOptions(flags) };
  // Evaluating reads the training split for its labels alone when the file recorded the statistics: its
  // values are not prepared (nor counted against --max-memory).
  if (use === "evaluate" && options.normalisation) options.trainLimit = 1;
  const data = imageData(flags, options, recorded?.dataset);
  checkDataFits(data, model);
  return imageTask(data, model);
}

/** The network the flags describe, and its task (image models take their shape from the data). */
export async function modelAndTask(flags: ModelFlags): Promise<{ model: Model; task: Task }> {
  const name = flags.model ?? "mlp";
  if (name === "gpt") {
    const get = (f: "layers" | "width" | "heads" | "context") => flags[f] ?? GPT_DEFAULTS[f];
    const model = buildModel(parseDescription({ name, layers: get("layers"), width: get("width"), heads: get("heads"), context: get("context"), vocab: GPT_DEFAULTS.vocab }, "--model gpt"));
    return { model, task: await taskFor(model, flags) };
  }
  for (const f of ["layers", "width", "heads", "context", "eval-tokens"] as const) if (flags[f] !== undefined) throw new UserError(`--${f} applies to --model gpt`);
  const spec = name.endsWith(".json") ? readSpec(name) : undefined;
  if (spec?.name === "sequential-lm") {
    const model = buildModel(parseDescription(spec, name));
    return { model, task: await taskFor(model, flags) };
  }
  if (!spec && name !== "mlp" && name !== "lenet") throw new UserError(`--model must be mlp, lenet, gpt or a spec file (.json), got '${name.slice(0, 64)}'${didYouMean(name.slice(0, 64), MODEL_NAMES)}`);
  const data = imageData(flags, dataOptions(flags));
  // A spec's input and classes, where it leaves them out, are the data's.
  const raw = spec ? { input: data.imageShape, classes: data.numClasses, ...spec, name: "sequential" } : { name, input: data.imageShape, classes: data.numClasses };
  const model = buildModel(parseDescription(raw, spec ? name : `--model ${name}`));
  return { model, task: imageTask(data, model) };
}

/** Largest spec file read: a description of layers is a few hundred bytes. */
const MAX_SPEC_BYTES = 1 << 16;

/**
 * A model spec file: JSON, `{ "layers": [...] }` (and optionally `input`, `classes`), as model/sequential.ts
 * reads it; or a language model's, `{ "name": "sequential-lm", "vocab", "context", "width", "layers" }`
 * (model/sequential-lm.ts).
 */
const readSpec = (path: string): Record<string, unknown> => readJsonObject(path, 'spec file (an object with "layers")', MAX_SPEC_BYTES);

export function checkDataFits(data: Dataset, model: Model): void {
  const d = model.description;
  if (d.name === "gpt" || d.name === "llama" || d.name === "sequential-lm" || d.name === "tensors") return;
  if (data.imageShape.some((v, i) => v !== d.input[i]) || data.numClasses > d.classes) {
    throw new UserError(`the data (${data.imageShape.join("x")}, ${data.numClasses} classes) does not fit this model (${d.input.join("x")}, ${d.classes} classes)`);
  }
}

/** A model as a user names it on the command line: a file, and an adapter on it. */
export interface OpenedModel {
  /** The file whose method produces the weights (the adapter, when there is one). */
  loaded: LoadedModel;
  /** The base's weights, for an adapter. */
  base?: HostParams;
  baseFile?: string;
}

/**
 * FILE, or BASE with --adapter FILE: an .mcnc adapter is checked against its base before anything is
 * built; a PEFT folder is read onto the base. `context`: a LLaMA-family folder's window (not with an
 * adapter, which runs over the window it was trained over); `tokenizer`: a folder whose tokenizer reads the text.
 */
export async function openModel(file: string, adapterFile?: string, options: { context?: number; tokenizer?: string } = {}): Promise<OpenedModel> {
  if (options.context !== undefined && adapterFile !== undefined) throw new UserError("--context does not apply with --adapter: the adapter runs over the window it was trained over");
  const first = readModelFile(file, options);
  if (first.file.adapter) throw new UserError(`${file} is an adapter: give its base model, and the adapter with --adapter ${basename(file)}`);
  if (adapterFile === undefined) return { loaded: first };
  // PEFT's adapters name no base: they are read onto this one.
  if (isPeftFolder(adapterFile)) {
    const base = (await timedRebuild(first, 0)).params;
    return { loaded: readPeftAdapter(adapterFile, first, base), base, baseFile: file };
  }
  const adapter = readModelFile(adapterFile);
  if (!adapter.file.adapter) throw new UserError(`${adapterFile} is not an adapter (it holds a whole ${adapter.model.name})`);
  const base = (await timedRebuild(first, 0)).params;
  checkBase(adapter, base, file);
  // The text is the base's: its tokenizer (a Hugging Face folder's) reads it under the adapter too.
  const tokenizer = first.model.tokenizer;
  return { loaded: tokenizer ? { ...adapter, model: { ...adapter.model, tokenizer } } : adapter, base, baseFile: file };
}

/** The file's counts, against `params` (default: the parameters of the network it holds). */
export function fileSize(loaded: LoadedModel, params = countParams(loaded.model.specs)): SizeReport {
  return sizeReport(params, loaded.stored.map((t) => ({ ...t, dtype: loaded.storage[t.name] })), loaded.bytes);
}

/** A ratio of before to after in words: "12.5x smaller", "2.1x larger", never "0.5x smaller". */
export function compared(ratio: number, fewer: string, more: string, same: string): string {
  if (ratio >= 1.05) return `${round(ratio, 1)}x ${fewer}`;
  if (ratio <= 1 / 1.05) return `${round(1 / ratio, 1)}x ${more}`;
  return same;
}

export function sizeLines(r: SizeReport): string[] {
  return [
    `parameters       ${r.params}`,
    `stored numbers   ${r.stored_params}  (${compared(r.param_ratio, "fewer", "more", "about as many")}${r.coded_params > 0 ? `; ${r.coded_params} of them codes of 2-8 bits` : ""}${r.index_bits > 0 ? `; plus ${r.index_bits} bits of positions` : ""})`,
    `file             ${r.file_bytes} bytes  (${round(r.bits_per_param, 3)} bits per parameter, ${compared(r.byte_ratio, "smaller than float32", "larger than float32", "the size of float32")})`,
  ];
}

export function jsonSize(r: SizeReport): Record<string, number> {
  return { ...r, bits_per_param: round(r.bits_per_param, 5), param_ratio: round(r.param_ratio, 3), byte_ratio: round(r.byte_ratio, 3) };
}

/** The counts and rebuild times every command that rebuilds a model reports. */
export function jsonReport(size: SizeReport, rebuilt: TimedRebuild): Record<string, number> {
  return { ...jsonSize(size), reconstruct_ms: round(rebuilt.warmMs, 3), reconstruct_cold_ms: round(rebuilt.coldMs, 3), peak_rss_mib: peakRssMiB() };
}

/** The process's peak resident memory so far: what --max-memory's estimates are measured against. */
export function peakRssMiB(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

/** A metric line for people: "test accuracy 0.8123" or "bits per byte 2.214 (perplexity 4.64)". */
export function metricLine(m: Metrics, where: string): string {
  if (m.accuracy !== undefined) return `test accuracy    ${m.accuracy.toFixed(4)}${where}`;
  return `bits per byte    ${m.bits_per_byte!.toFixed(4)} (perplexity ${m.perplexity!.toFixed(3)})${where}`;
}

/** Refuse an output path that cannot be written, before any training. */
export function checkWritable(path: string, flag: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${flag} ${path} is a directory`);
  // A folder not made yet is made on writing: its nearest existing parent must take it.
  let dir = dirname(path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    if (!statSync(dir).isDirectory()) throw new Error("not a folder");
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UserError(`cannot write to ${dirname(path)} (for ${flag} ${path})`);
  }
}
