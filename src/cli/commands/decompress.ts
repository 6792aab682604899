/**
 * mcnc decompress FILE --out weights.safetensors: the full float32 weights, for any other tool. A file
 * holding another tool's tensors (mcnc compress --out x.mcnc on its model) is rebuilt in their own
 * shapes, or, with --template, written back into that model (ONNX, TF.js, safetensors) in its dtypes.
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../../errors.js";
import { foreignFormat, openForeign } from "../../format/foreign-model.js";
import { timedRebuild, type LoadedModel } from "../../format/model-file.js";
import { checkNewFolder } from "../../format/atomic-write.js";
import { writePeftAdapter } from "../../format/peft.js";
import { readModelFile } from "../../format/read-file.js";
import { MODEL_METADATA } from "../../format/safetensors.js";
import { writeSafetensors } from "../../format/write-safetensors.js";
import type { HostParams } from "../../model/params.js";
import { originalTensors, type TensorsDescription } from "../../model/tensors.js";
import type { FlagValues } from "../args.js";
import { command, JSON_FLAG, print, round, ENGINE_FLAGS } from "../command.js";
import { startEngine } from "./shared.js";

/** The rebuilt tensors put back into `template` (the model they came from), written at `out` in its format. */
function intoTemplate(template: string, out: string, d: TensorsDescription, weights: HostParams): void {
  if (foreignFormat(template) !== d.format) throw new UserError(`--template must be the ${d.format} model the tensors came from`);
  if (foreignFormat(out) !== d.format) throw new UserError(`--out must be a ${d.format} file like the template`);
  const tensors = originalTensors(d, weights);
  const model = openForeign(template);
  try {
    const names = new Set(model.tensors.map((t) => t.name));
    const missing = [...tensors.keys()].find((n) => !names.has(n));
    if (missing !== undefined) throw new UserError(`--template has no tensor '${missing.slice(0, 100)}': it is not the model these tensors came from`);
    if (names.size !== tensors.size) throw new UserError(`--template has ${names.size} float tensors, the file ${tensors.size}: it is not the model these tensors came from`);
    model.writeBack(
      out,
      (t, data) => {
        const mine = tensors.get(t.name);
        if (!mine) return data;
        if (mine.shape.join("x") !== t.shape.join("x")) throw new UserError(`--template's ${t.name} is [${t.shape.join(", ")}], the file's [${mine.shape.join(", ")}]`);
        return mine.data;
      },
      { rebuilt_with: "mcnc decompress" },
    );
  } finally {
    model.close();
  }
}

/** Streamed tensor by tensor: the weights are the only copy held. */
function asSafetensors(out: string, file: string, loaded: LoadedModel, weights: HostParams): void {
  const d = loaded.file.model;
  if (d.name === "tensors") {
    const tensors = [...originalTensors(d, weights)].map(([name, t]) => ({ name, ...t }));
    return writeSafetensors(out, tensors, { source: file, tensors_of: d.format, method: loaded.method.name });
  }
  const tensors = loaded.model.specs.map((s) => ({ name: s.name, shape: s.shape, data: weights[s.name]! }));
  writeSafetensors(out, tensors, {
    source: file,
    model: loaded.model.name,
    [MODEL_METADATA]: JSON.stringify(d),
    method: loaded.method.name,
    layout: "dense: [in, out]; conv: [kh, kw, in, out] (HWIO)",
  });
}

const FLAGS = [
  { name: "out", type: "string", help: "output .safetensors file, or with --template a file in the template's format; for a LoRA adapter, a new folder in PEFT's format", required: true },
  { name: "template", type: "string", help: "for a file compressed from another tool's model: that model, whose tensors are replaced by the rebuilt ones" },
  ...ENGINE_FLAGS,
  JSON_FLAG,
] as const;

async function run(f: FlagValues<typeof FLAGS>, [file]: string[]): Promise<void> {
  if (!file) throw new UserError("mcnc decompress needs a FILE (see mcnc decompress --help)");
  const out = resolve(f.out);
  if (out === resolve(file) || (f.template !== undefined && out === resolve(f.template))) throw new UserError("--out would overwrite an input file");
  const loaded = readModelFile(file);
  const d = loaded.file.model;
  // An adapter's factors as PEFT writes them: a folder, which PEFT loads onto the base.
  if (loaded.file.adapter && !out.endsWith(".safetensors")) {
    checkNewFolder(out, "--out");
    await startEngine(f);
    await writePeftAdapter(out, loaded, String(loaded.file.meta?.init ?? "gpt2"));
    if (f.json) print(JSON.stringify({ command: "decompress", file, out, format: "peft" }));
    else print(`wrote ${out} (a PEFT LoRA adapter: adapter_config.json, adapter_model.safetensors)`);
    return;
  }
  if (f.template !== undefined && d.name !== "tensors") throw new UserError(`--template is for files holding another tool's tensors; ${file} holds mcnc's ${loaded.model.name}`);
  if (f.template === undefined && !out.endsWith(".safetensors")) throw new UserError("--out must end in .safetensors (or give --template MODEL to write into that model's format)");
  await startEngine(f);
  const rebuilt = await timedRebuild(loaded, 0);
  if (d.name === "tensors" && f.template !== undefined) intoTemplate(f.template, out, d, rebuilt.params);
  else asSafetensors(out, file, loaded, rebuilt.params);
  const bytes = statSync(out).size;
  const tensors = loaded.model.specs.length;
  if (f.json) print(JSON.stringify({ command: "decompress", file, out, bytes, tensors, reconstruct_ms: round(rebuilt.coldMs, 3) }));
  else print(`wrote ${out} (${bytes} bytes, ${tensors} tensors)`);
}

export const decompressCommand = command({
  name: "decompress",
  summary: "rebuild a .mcnc file's full weights into a .safetensors file, or back into the model its tensors came from",
  usage: "mcnc decompress FILE --out weights.safetensors | mcnc decompress FILE --template MODEL(.onnx|.json|.safetensors) --out OUT",
  examples: [
    "npx mcnc decompress data/models/mlp-fashion-mcnc-100x.mcnc --out mlp.safetensors",
    "npx mcnc decompress small.mcnc --template model.onnx --out rebuilt.onnx",
  ],
  flags: FLAGS,
  maxPositionals: 1,
  run,
});
