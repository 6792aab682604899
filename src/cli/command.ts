/** The shape every `mcnc <command>` has, and the flags several of them share. */
import { DEFAULT_THREADS } from "../engine/engine.js";
import { ENGINE_NAMES } from "../engine/program.js";
import { BUNDLED_NAMES } from "../data/bundled.js";
import { GPT_DEFAULTS } from "../model/gpt.js";
import { MODEL_NAMES } from "../model/models.js";
import type { Flag } from "./args.js";

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: () => Flag[];
  /** Command lines shown under --help, each working as written from a clone of the repository. */
  examples?: string[];
  maxPositionals: number;
  run(flags: Record<string, unknown>, positionals: string[]): Promise<void>;
}

export const JSON_FLAG: Flag = { name: "json", type: "bool", help: "print one JSON object last on stdout (progress stays on stderr)", group: "output" };
const THREADS_FLAG: Flag = {
  name: "threads",
  type: "int",
  help: "threads of either engine (or MCNC_THREADS); train --model lenet uses 2 on a multi-core machine",
  default: String(DEFAULT_THREADS),
};
const ENGINE_FLAG: Flag = {
  name: "engine",
  type: "string",
  choices: ENGINE_NAMES,
  help: "where training, evaluation, generation and calibration run: native (onnxruntime-node) or wasm (jax-js); rebuilds from files always run on wasm (or MCNC_ENGINE)",
  default: "native where onnxruntime-node is installed, else wasm",
};
/** The engine's flags, which every command that computes takes. */
export const ENGINE_FLAGS: Flag[] = [ENGINE_FLAG, THREADS_FLAG].map((f) => ({ ...f, group: "engine" }));
export const MODEL_FLAG: Flag = {
  name: "model",
  type: "string",
  help: `network: ${MODEL_NAMES.join(", ")}, or a spec file (.json) of layers, e.g. {"layers": [{"type": "conv3x3", "channels": 16}, "relu", "maxpool2", "flatten", {"type": "dense", "units": 10}]}`,
  default: "mlp",
};
export const GPT_FLAGS: Flag[] = [
  { name: "layers", type: "int", help: "gpt: transformer blocks", default: String(GPT_DEFAULTS.layers) },
  { name: "width", type: "int", help: "gpt: embedding width", default: String(GPT_DEFAULTS.width) },
  { name: "heads", type: "int", help: "gpt: attention heads (dividing the width)", default: String(GPT_DEFAULTS.heads) },
  { name: "context", type: "int", help: "gpt: tokens (bytes) of context", default: String(GPT_DEFAULTS.context) },
];
export const EVAL_TOKENS_FLAG: Flag = { name: "eval-tokens", type: "int", help: "gpt: validation tokens scored per evaluation, evenly spaced (0: all)", default: "65536" };
export const LIMIT_FLAG: Flag = { name: "limit", type: "int", help: "train on the first N samples only (0: all)", default: "0" };
export const BATCH_FLAG: Flag = { name: "batch", type: "int", help: "minibatch size", default: "128, halved down to 32 until an epoch has 64 steps; 32 for gpt" };
export const TEST_LIMIT_FLAG: Flag = { name: "test-limit", type: "int", help: "evaluate on the first N test samples only (0: all)", default: "0" };
export const QUIET_FLAG: Flag = { name: "quiet", type: "bool", help: "no progress on stderr", group: "output" };
export const DATA_FLAGS: Flag[] = ([
  { name: "dataset", type: "string", choices: BUNDLED_NAMES, help: "bundled data set (images: fashion-mnist, and fashion-mnist-small, its 4,000-image subset, which the npm package ships in its place; tables: wine, digits; text: sotu, moby-dick)", default: "fashion-mnist, or sotu for gpt" },
  { name: "data", type: "string", help: "classes: a directory of IDX or .npy arrays, a CSV/TSV table (or train and test tables in a directory), or folders of PNG/JPEG images by class; gpt: a UTF-8 text file or folder of .txt[.gz] documents" },
  { name: "label-column", type: "string", help: "a table's label column, by header name or 0-based index", default: "label, class or target, else the last" },
] as Flag[]).map((f) => ({ ...f, group: "data" }));

/** Round for display and JSON without losing what matters. */
export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
