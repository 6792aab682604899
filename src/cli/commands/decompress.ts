/** mcnc decompress FILE --out weights.safetensors: the full float32 weights, for any other tool. */
import { resolve } from "node:path";
import { UserError } from "../../errors.js";
import { writeFileAtomic } from "../../format/atomic-write.js";
import { timedRebuild } from "../../format/model-file.js";
import { readModelFile } from "../../format/read-file.js";
import { encodeSafetensors, MODEL_METADATA } from "../../format/safetensors.js";
import { JSON_FLAG, print, round, THREADS_FLAG, type Command } from "../command.js";
import { startEngine } from "./shared.js";

async function run(f: Record<string, unknown>, [file]: string[]): Promise<void> {
  if (!file) throw new UserError("mcnc decompress needs a FILE (see mcnc decompress --help)");
  if (typeof f.out !== "string" || f.out === "") throw new UserError("mcnc decompress needs --out weights.safetensors");
  const out = resolve(f.out);
  if (out === resolve(file)) throw new UserError("--out would overwrite the input file");
  const loaded = readModelFile(file);
  await startEngine(f);
  const rebuilt = await timedRebuild(loaded, 0);
  const tensors = loaded.model.specs.map((s) => ({ name: s.name, shape: s.shape, data: rebuilt.params[s.name]! }));
  const bytes = encodeSafetensors(tensors, {
    source: file,
    model: loaded.model.name,
    [MODEL_METADATA]: JSON.stringify(loaded.model.description),
    method: loaded.method.name,
    layout: "dense: [in, out]; conv: [kh, kw, in, out] (HWIO)",
  });
  writeFileAtomic(out, bytes);
  if (f.json) print(JSON.stringify({ command: "decompress", file, out, bytes: bytes.length, tensors: tensors.length, reconstruct_ms: round(rebuilt.coldMs, 3) }));
  else print(`wrote ${out} (${bytes.length} bytes, ${tensors.length} tensors)`);
}

export const decompressCommand: Command = {
  name: "decompress",
  summary: "rebuild a .mcnc file's full weights into a .safetensors file",
  usage: "mcnc decompress FILE --out weights.safetensors",
  flags: () => [{ name: "out", type: "string", help: "output .safetensors file (required)" }, THREADS_FLAG, JSON_FLAG],
  maxPositionals: 1,
  run,
};
