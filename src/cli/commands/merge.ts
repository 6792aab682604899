/** mcnc merge --model BASE --adapter A --out merged.safetensors|.mcnc: the adapted weights as one model. */
import { statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UserError } from "../../errors.js";
import { checkNewFolder, writeFileAtomic } from "../../format/atomic-write.js";
import { isHfFolder } from "../../format/hf-folder.js";
import { writeHfFolder } from "../../format/hf-folder-write.js";
import { encodeModelFile, timedRebuild } from "../../format/model-file.js";
import { MODEL_METADATA } from "../../format/safetensors.js";
import { writeSafetensors } from "../../format/write-safetensors.js";
import { findMethod } from "../../methods/index.js";
import type { FlagValues } from "../args.js";
import { ADAPTER_FLAG, command, JSON_FLAG, print, ENGINE_FLAGS } from "../command.js";
import { openModel, startEngine } from "./shared.js";

const FLAGS = [
  { name: "model", type: "string", help: "the base model file", required: true },
  { ...ADAPTER_FLAG, required: true },
  { name: "out", type: "string", help: "output file (.safetensors, or .mcnc for a dense mcnc file); for a Hugging Face base, a new folder", required: true },
  ...ENGINE_FLAGS,
  JSON_FLAG,
] as const;

async function run(f: FlagValues<typeof FLAGS>): Promise<void> {
  const out = resolve(f.out);
  // A Hugging Face base is written back as a folder of its own kind, which transformers loads.
  const toFolder = isHfFolder(f.model) && !/\.(safetensors|mcnc)$/.test(out);
  if (!toFolder && !/\.(safetensors|mcnc)$/.test(out)) throw new UserError("--out must end in .safetensors or .mcnc (or, for a Hugging Face base, name a new folder)");
  if (toFolder) checkNewFolder(out, "--out");
  if ([f.model, f.adapter].some((p) => resolve(p) === out)) throw new UserError("--out would overwrite an input file");
  await startEngine(f);
  const { loaded, base } = await openModel(f.model, f.adapter);
  const { params } = await timedRebuild(loaded, 0, base);
  const specs = loaded.model.specs;
  if (toFolder) writeHfFolder(f.model, out, params, { merged: `${basename(f.model)} with ${basename(f.adapter)}` });
  else if (out.endsWith(".mcnc")) {
    const file = { model: loaded.file.model, method: { name: "dense", config: {} }, seed: loaded.file.seed, trainable: params, meta: { merged: { base: basename(f.model), adapter: basename(f.adapter) } } };
    writeFileAtomic(out, encodeModelFile(file, loaded.model, findMethod("dense")!));
  } else {
    writeSafetensors(
      out,
      specs.map((s) => ({ name: s.name, shape: s.shape, data: params[s.name]! })),
      { base: basename(f.model), adapter: basename(f.adapter), method: loaded.method.name, model: loaded.model.name, [MODEL_METADATA]: JSON.stringify(loaded.model.description) },
    );
  }
  const bytes = statSync(toFolder ? join(out, "model.safetensors") : out).size;
  if (f.json) print(JSON.stringify({ command: "merge", out, bytes, tensors: specs.length }));
  else print(`wrote ${out} (${bytes} bytes, ${specs.length} tensors: ${basename(f.model)} with ${basename(f.adapter)} merged in)`);
}

export const mergeCommand = command({
  name: "merge",
  summary: "merge an adapter into its base: one model as .safetensors or a dense .mcnc",
  usage: "mcnc merge --model BASE.mcnc --adapter ADAPTER.mcnc --out merged.safetensors",
  examples: [
    "npx mcnc merge --model data/models/gpt-sotu.mcnc --adapter adapter.mcnc --out merged.safetensors",
  ],
  flags: FLAGS,
  maxPositionals: 0,
  run,
});
