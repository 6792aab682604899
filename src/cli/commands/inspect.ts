/** mcnc inspect FILE: what a file holds and what it costs, without rebuilding anything. */
import { UserError } from "../../errors.js";
import { readModelFile } from "../../format/read-file.js";
import { memoryLimit } from "../../limits.js";
import { rebuildBytes } from "../../methods/index.js";
import type { FlagValues } from "../args.js";
import { command, JSON_FLAG, print } from "../command.js";
import { fileSize, jsonSize, sizeLines } from "./shared.js";
import { inspectForeign, isForeign } from "./inspect-foreign.js";

const FLAGS = [JSON_FLAG] as const;

async function run(f: FlagValues<typeof FLAGS>, [file]: string[]): Promise<void> {
  if (!file) throw new UserError("mcnc inspect needs a FILE (see mcnc inspect --help)");
  if (isForeign(file)) return inspectForeign(file, Boolean(f.json));
  // Reading a header allocates little whatever it claims: inspect shows what a rebuild would cost.
  const loaded = readModelFile(file, { memoryLimit: Infinity, weights: false });
  const { model, method, config } = loaded;
  const size = fileSize(loaded);
  const tensors = loaded.stored.map((t) => ({ ...t, dtype: loaded.storage[t.name] }));
  const info = {
    command: "inspect",
    file,
    model: model.name,
    model_config: loaded.file.model,
    method: method.name,
    ...(loaded.file.adapter ? { adapter: loaded.file.adapter } : {}),
    config,
    seed: loaded.file.seed,
    tensors,
    rebuild_flops: method.rebuildFlops(config, loaded.specs),
    rebuild_bytes: rebuildBytes(method, config, loaded.specs),
    meta: loaded.file.meta,
    ...jsonSize(size),
  };
  if (f.json) {
    print(JSON.stringify(info));
    return;
  }
  const d = loaded.file.model;
  const shape =
    d.name === "gpt" || d.name === "llama"
      ? `${d.layers} layers, width ${d.width}, ${d.heads} heads${d.name === "llama" && d.kvHeads !== d.heads ? ` (${d.kvHeads} key/value)` : ""}${d.name === "gpt" && d.blocks ? ` (pruned: heads ${d.blocks.map((b) => b.heads).join(",")}, MLP ${d.blocks.map((b) => b.hidden).join(",")})` : ""}, context ${d.context}`
      : d.name === "tensors" ? `${d.params.length} tensors` : d.name === "sequential-lm" ? `${d.layers.length} layers, width ${d.width}, context ${d.context}, vocabulary ${d.vocab}` : `${d.input.join("x")} -> ${d.classes} classes`;
  print(`${file}: ${model.name} (${shape}), method ${method.name}, seed ${info.seed}`);
  if (loaded.file.adapter) print(`adapter          on ${loaded.file.adapter.leaves.length} leaves of the base with weights SHA-256 ${loaded.file.adapter.base_sha256.slice(0, 16)}...`);
  print(`config           ${JSON.stringify(config)}`);
  for (const line of sizeLines(size)) print(line);
  print(`stored tensors   ${tensors.map((t) => `${t.name}[${t.shape.join(",")}]:${t.dtype}`).join(" ")}`);
  print(`rebuild cost     ${(info.rebuild_flops / 1e6).toFixed(2)} MFLOP, about ${Math.ceil(info.rebuild_bytes / 2 ** 20)} MiB${info.rebuild_bytes > memoryLimit() ? ` (above the limit of ${memoryLimit() / 2 ** 20} MiB: other commands refuse it)` : ""}`);
  if (Object.keys(info.meta ?? {}).length > 0) print(`recorded         ${JSON.stringify(info.meta)}`);
}

export const inspectCommand = command({
  name: "inspect",
  summary: "show a .mcnc file's model, method, stored numbers, bytes and ratios; or another model's inputs and tensors (what --compress and --keep can name)",
  usage: "mcnc inspect FILE(.mcnc|.onnx|.safetensors|model.json) [--json]",
  examples: [
    "npx mcnc inspect data/models/gpt-sotu.mcnc",
    "npx mcnc inspect model.onnx --json",
  ],
  flags: FLAGS,
  maxPositionals: 1,
  run,
});
