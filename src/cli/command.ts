/** The shape every `mcnc <command>` has, and the flags several of them share. */
import { DEFAULT_THREADS, MAX_THREADS } from "../engine/engine.js";
import { ENGINE_NAMES } from "../engine/program.js";
import { BUNDLED_NAMES } from "../data/bundled.js";
import { GPT_DEFAULTS } from "../model/gpt.js";
import { MAX_SEED } from "../rng/seeded.js";
import { DEFAULT_EVAL_TOKENS } from "../train/tasks.js";
import { MODEL_NAMES } from "../model/models.js";
import type { Flag, FlagValues } from "./args.js";

export interface Command<Fs extends readonly Flag[] = readonly Flag[]> {
  name: string;
  summary: string;
  usage: string;
  flags: Fs;
  /** The registered methods' options as flags: those given reach `run` as they are, for the method to check. */
  optionFlags?: () => Flag[];
  /** Command lines shown under --help, each working as written from a clone of the repository. */
  examples?: string[];
  maxPositionals: number;
  run(flags: FlagValues<Fs>, positionals: string[], options: Record<string, unknown>): Promise<void>;
}

/** A command with its flags' types checked against its `run`, listed beside the others. */
export function command<const Fs extends readonly Flag[]>(c: Command<Fs>): Command {
  return c as unknown as Command;
}

export const ADAPTER_FLAG = { name: "adapter", type: "string", help: "an adapter file to apply to the model (an .mcnc file whose base it is, or a PEFT LoRA folder)" } as const;
export const SEED_FLAG = { name: "seed", type: "int", help: "seed", min: 0, max: MAX_SEED, default: 0 } as const;
export const JSON_FLAG = { name: "json", type: "bool", help: "print one JSON object last on stdout (progress stays on stderr)", group: "output" } as const;
export const QUIET_FLAG = { name: "quiet", type: "bool", help: "no progress on stderr", group: "output" } as const;
/** The engine's flags, which every command that computes takes. */
export const ENGINE_FLAGS = [
  {
    name: "engine",
    type: "string",
    choices: ENGINE_NAMES,
    help: "where training, evaluation, generation and calibration run: native (onnxruntime-node) or wasm (jax-js); rebuilds from files always run on wasm (or MCNC_ENGINE)",
    defaultText: "native where onnxruntime-node is installed, else wasm",
    group: "engine",
  },
  {
    name: "threads",
    type: "int",
    help: "threads of either engine (or MCNC_THREADS); train --model lenet uses 2 on a multi-core machine",
    min: 1,
    max: MAX_THREADS,
    defaultText: String(DEFAULT_THREADS),
    group: "engine",
  },
] as const;
export const MODEL_FLAG = {
  name: "model",
  type: "string",
  help: `network: ${MODEL_NAMES.join(", ")}, or a spec file (.json) of layers, e.g. {"layers": [{"type": "conv3x3", "channels": 16}, "relu", "maxpool2", "flatten", {"type": "dense", "units": 10}]}`,
  defaultText: "mlp",
} as const;
/** Absent unless given: each is refused beside --init or a model other than the GPT. */
export const GPT_FLAGS = [
  { name: "layers", type: "int", help: "gpt: transformer blocks", defaultText: String(GPT_DEFAULTS.layers) },
  { name: "width", type: "int", help: "gpt: embedding width", defaultText: String(GPT_DEFAULTS.width) },
  { name: "heads", type: "int", help: "gpt: attention heads (dividing the width)", defaultText: String(GPT_DEFAULTS.heads) },
  { name: "context", type: "int", help: "gpt: tokens (bytes) of context; with --init, a LLaMA-family folder's window", defaultText: String(GPT_DEFAULTS.context) },
] as const;
export const TOKENIZER_FLAG = { name: "tokenizer", type: "string", help: "a folder whose tokenizer.json (or vocab.json + merges.txt) reads the text", defaultText: "the model folder's, or the one its file records" } as const;
/** The window a LLaMA-family folder is run over: its positions can far exceed what a CPU attends over. */
export const WINDOW_FLAG = { name: "context", type: "int", help: "a LLaMA-family folder's window in tokens", min: 2, max: 1 << 16, defaultText: "max_position_embeddings, at most 2048" } as const;
export const EVAL_TOKENS_FLAG = { name: "eval-tokens", type: "int", help: "gpt: validation tokens scored per evaluation, evenly spaced (0: all)", defaultText: String(DEFAULT_EVAL_TOKENS) } as const;
export const LIMIT_FLAG = { name: "limit", type: "int", help: "train on the first N samples only (0: all)", min: 0, defaultText: "0" } as const;
export const BATCH_FLAG = { name: "batch", type: "int", help: "minibatch size", min: 1, max: 65536, defaultText: "128, halved down to 32 until an epoch has 64 steps; 32 for gpt" } as const;
export const TEST_LIMIT_FLAG = { name: "test-limit", type: "int", help: "evaluate on the first N test samples only (0: all)", min: 0, defaultText: "0" } as const;
export const DATA_FLAGS = [
  {
    name: "dataset",
    type: "string",
    choices: BUNDLED_NAMES,
    help: "bundled data set (images: fashion-mnist, and fashion-mnist-small, its 4,000-image subset, which the npm package ships in its place; mnist-10k, 10,000 handwritten digits; cmudict-syllables, 70,000 words' spellings labelled with their syllable count; tables: wine, digits, letter-recognition, 20,000 letters as 16 measurements; text: sotu, moby-dick)",
    defaultText: "fashion-mnist, or sotu for gpt",
    group: "data",
  },
  {
    name: "data",
    type: "string",
    help: "classes: a directory of IDX or .npy arrays, a CSV/TSV table (or train and test tables in a directory), or folders of PNG/JPEG images by class; gpt: a UTF-8 text file or folder of .txt[.gz] documents",
    group: "data",
  },
  { name: "label-column", type: "string", help: "a table's label column, by header name or 0-based index", defaultText: "label, class or target, else the last", group: "data" },
] as const;

/** What every command that trains or measures on data takes last: the data, the engine, and the output's form. */
export const DATA_RUN_FLAGS = [...DATA_FLAGS, ...ENGINE_FLAGS, QUIET_FLAG, JSON_FLAG] as const;

/** Round for display and JSON without losing what matters. */
export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
