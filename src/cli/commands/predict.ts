/**
 * mcnc predict --in MODEL: run a model on your own inputs. An .mcnc classifier (with --adapter, if
 * given) on images or CSV rows, prepared as its file records; a GPT's next byte after --prompt; any
 * ONNX model through onnxruntime, or TF.js graph model through TF.js, on images or one .npy per input.
 * Top-k classes, or JSON lines.
 */
import { dirname } from "node:path";
import { UserError } from "../../errors.js";
import { imagePaths, openModelInputs } from "../../data/model-inputs.js";
import { readWholeFile } from "../../files.js";
import { graphInputs, type GraphInput } from "../../format/onnx-graph.js";
import { readOnnx } from "../../format/onnx.js";
import { timedRebuild } from "../../format/model-file.js";
import { predictOnnx, predictWith, type Prediction } from "../../predict/predict-foreign.js";
import { openTfjs } from "../../format/tfjs.js";
import { tfjsInputs } from "../../format/tfjs-graph.js";
import { openTfjsSession } from "../../engine/tfjs-session.js";
import { predictNetwork, predictNextByte } from "../../predict/predict-network.js";
import type { Ranked } from "../../predict/top-k.js";
import type { FlagValues } from "../args.js";
import { ADAPTER_FLAG, command, ENGINE_FLAGS, JSON_FLAG, print, round } from "../command.js";
import { IMAGE_PREP_FLAGS, imagePrep } from "./compress-flags.js";
import { openModel, startEngine } from "./shared.js";

const MAX_TOP = 1000;
/** Rows one --csv may hold. */
const MAX_ROWS = 1 << 16;

const utf8 = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

const show = (top: Ranked[]) => top.map((r) => `${r.name ?? r.class} ${(100 * r.p).toFixed(1)}%`).join(", ");

function csvRows(path: string): number[][] {
  const lines = utf8(readWholeFile(path, "--csv file", 64 << 20)).split(/\r?\n/).filter((l) => l.trim() !== "");
  // A first line that is not numbers is a header.
  const start = lines.length > 0 && lines[0]!.split(/[,\t]/).some((v) => v.trim() !== "" && !Number.isFinite(Number(v))) ? 1 : 0;
  if (lines.length - start > MAX_ROWS) throw new UserError(`--csv holds more than ${MAX_ROWS} rows`);
  return lines.slice(start).map((line, i) =>
    line.split(/[,\t]/).map((v, j) => {
      const n = Number(v);
      if (v.trim() === "" || !Number.isFinite(n)) throw new UserError(`--csv line ${i + start + 1}: '${v.slice(0, 40)}' is not a number`);
      if (!Number.isFinite(Math.fround(n))) throw new UserError(`--csv line ${i + start + 1}, column ${j + 1}: ${v.trim().slice(0, 40)} does not fit in float32 (at most about 3.4e38)`);
      return n;
    }),
  );
}

function classNames(path: string | undefined): string[] | undefined {
  if (path === undefined) return undefined;
  return utf8(readWholeFile(path, "--classes file", 16 << 20)).split(/\r?\n/).filter((l, i, all) => l !== "" || i < all.length - 1);
}

const FLAGS = [
  { name: "in", type: "string", help: "the model: .mcnc (a classifier or a GPT), .onnx, or a TF.js graph model's model.json", required: true },
  ADAPTER_FLAG,
  { name: "image", type: "string", help: "a PNG or JPEG image, or a folder of them" },
  { name: "inputs", type: "string", help: "ONNX and TF.js: a folder of one .npy array per model input, samples first" },
  { name: "csv", type: "string", help: "rows of numbers, one sample a row (a header line is skipped)" },
  { name: "prompt", type: "string", help: "a GPT: the text whose next byte is predicted (mcnc generate continues it)" },
  { name: "top", type: "int", help: "classes shown per sample", min: 1, max: MAX_TOP, default: 5 },
  { name: "classes", type: "string", help: "ONNX and TF.js: a text file of class names, one a line, in index order" },
  { name: "raw", type: "bool", help: "ONNX and TF.js: every output's values too (with --json)" },
  ...IMAGE_PREP_FLAGS,
  ...ENGINE_FLAGS,
  JSON_FLAG,
] as const;

async function run(f: FlagValues<typeof FLAGS>): Promise<void> {
  const top = f.top;
  const given = (["image", "inputs", "csv", "prompt"] as const).filter((k) => f[k] !== undefined);
  if (given.length !== 1) throw new UserError("give one of --image FILE|DIR, --inputs DIR (one .npy per model input), --csv FILE or --prompt TEXT");
  await startEngine(f);
  if (f.in.endsWith(".onnx") || f.in.endsWith(".json")) {
    if (f.csv !== undefined || f.prompt !== undefined) throw new UserError("an ONNX or TF.js model takes --image or --inputs");
    if (f.adapter !== undefined) throw new UserError("--adapter applies to .mcnc models");
    const open = (inputs: GraphInput[]) => openModelInputs((f.image ?? f.inputs)!, inputs, imagePrep(f), f.image !== undefined ? "--image" : "--inputs");
    const classes = classNames(f.classes);
    const options = { top, ...(classes ? { classes } : {}), raw: Boolean(f.raw) };
    if (f.in.endsWith(".json")) {
      const model = openTfjs(f.in);
      if (!model.tfjs) throw new UserError(`${f.in}: a TF.js layers model; mcnc runs TF.js graph models`);
      const inputs = open(tfjsInputs(model.tfjs.topology));
      for await (const p of predictWith(await openTfjsSession(model.tfjs.artifacts(), "the model"), inputs, options)) printOnnx(p, Boolean(f.json));
      return;
    }
    // Read here for its inputs' names and shapes (and its external data checked); onnxruntime reads it by path.
    const graph = readOnnx(readWholeFile(f.in), f.in, { dir: dirname(f.in) }).message;
    for await (const p of predictOnnx(f.in, open(graphInputs(graph)), options)) printOnnx(p, Boolean(f.json));
    return;
  }
  for (const flag of ["input-size", "mean", "std", "bgr", "classes", "raw", "inputs"] as const) if (f[flag] !== undefined) throw new UserError(`--${flag} applies to ONNX and TF.js models; an .mcnc file records how its inputs are prepared`);
  const { loaded, base } = await openModel(f.in, f.adapter);
  const { params } = await timedRebuild(loaded, 0, base);
  if (f.prompt !== undefined) {
    const ranked = await predictNextByte(loaded.model, params, new TextEncoder().encode(f.prompt), top);
    print(f.json ? JSON.stringify({ prompt: f.prompt, next: ranked.map((r) => ({ ...r, p: round(r.p, 6) })) }) : `next byte: ${show(ranked)}`);
    return;
  }
  const files = f.image === undefined ? undefined : imagePaths(f.image, "--image");
  const rows = f.csv === undefined ? undefined : csvRows(f.csv);
  for (const p of await predictNetwork(loaded.model, params, loaded.file.meta, { ...(files ? { files } : {}), ...(rows ? { rows } : {}) }, top)) {
    print(f.json ? JSON.stringify({ sample: p.sample, top: p.top.map((r) => ({ ...r, p: round(r.p, 6) })) }) : `${p.sample}: ${show(p.top)}`);
  }
}

function printOnnx(p: Prediction, json: boolean): void {
  if (json) {
    print(JSON.stringify({ sample: p.sample, outputs: p.outputs.map((o) => ({ ...o, ...(o.top ? { top: o.top.map((r) => ({ ...r, p: round(r.p, 6) })) } : {}) })) }));
    return;
  }
  for (const o of p.outputs) {
    const best = o.best ? `; best class by position ${o.best.slice(0, 64).join(" ")}${o.best.length > 64 ? " ..." : ""}` : "";
    const what = o.top ? show(o.top) : o.range ? `[${o.dims.join(", ")}] from ${round(o.range.min, 4)} to ${round(o.range.max, 4)}, mean ${round(o.range.mean, 4)}${best}` : `[${o.dims.join(", ")}]`;
    print(`${p.sample}: ${o.name}: ${what}`);
  }
}

export const predictCommand = command({
  name: "predict",
  summary: "run a model (.mcnc, with --adapter; any ONNX or TF.js graph model) on your own images, CSV rows, arrays or prompt: top-k classes",
  usage: "mcnc predict --in MODEL(.mcnc|.onnx|model.json) (--image FILE|DIR | --inputs DIR | --csv FILE | --prompt TEXT) [--top K] [--json]",
  examples: [
    "npx mcnc predict --in data/models/mlp-fashion-mcnc-100x.mcnc --image shirt.png --top 3",
    "npx mcnc predict --in data/models/gpt-sotu.mcnc --prompt \"the United State\" --top 3",
  ],
  flags: FLAGS,
  maxPositionals: 0,
  run,
});
