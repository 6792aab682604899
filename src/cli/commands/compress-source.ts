/**
 * A trained model as `mcnc compress` takes it in: an .mcnc file (rebuilt) or a Hugging Face GPT-2 folder, a safetensors file that
 * mcnc wrote (its network named in the metadata), or any other safetensors, ONNX or TF.js model,
 * whose tensors are compressed as matrices without a network to run them (data-free methods only).
 */
import { UserError } from "../../errors.js";
import { timedRebuild } from "../../format/model-file.js";
import { fileSource } from "../../files.js";
import { isHfFolder } from "../../format/hf-folder.js";
import { readModelFile } from "../../format/read-file.js";
import { foreignFormat, openForeign, type ForeignModel } from "../../format/foreign-model.js";
import type { MatrixLayout } from "../../model/tensors.js";
import { MODEL_METADATA, readSafetensors, type SafetensorsDtype, type SafetensorsReader } from "../../format/safetensors.js";
import { buildModel, parseDescription, type Model } from "../../model/models.js";
import type { HostParams } from "../../model/params.js";

export interface KnownSource {
  kind: "network";
  model: Model;
  weights: HostParams;
  /** Each tensor's dtype in the input, for writing back the same way. */
  dtypes: Record<string, SafetensorsDtype>;
  seed: number;
  /** What an .mcnc file says of its training data (the data set's name, its normalisation). */
  meta?: Record<string, unknown>;
}

export interface ForeignSource {
  kind: "tensors";
  model: ForeignModel;
}

export async function openSource(path: string, layout: MatrixLayout | undefined, startEngine: () => Promise<void>): Promise<KnownSource | ForeignSource> {
  if (path.endsWith(".mcnc") || isHfFolder(path)) {
    await startEngine();
    const loaded = readModelFile(path);
    if (loaded.file.adapter) throw new UserError(`${path} is an adapter: merge it into its base first (mcnc merge), then compress the merged model`);
    if (loaded.model.kind === "tensors") throw new UserError(`${path} is compressed already and holds another tool's tensors: compress the original model`);
    const { params } = await timedRebuild(loaded, 0);
    return { kind: "network", model: loaded.model, weights: params, dtypes: {}, seed: loaded.file.seed, meta: loaded.file.meta };
  }
  if (foreignFormat(path) !== "safetensors") return { kind: "tensors", model: openForeign(path, layout) };
  const source = fileSource(path);
  let reader: SafetensorsReader;
  try {
    reader = readSafetensors(source, path);
  } catch (e) {
    source.close?.();
    throw e;
  }
  const described = reader.metadata[MODEL_METADATA];
  if (described === undefined) {
    source.close?.();
    return { kind: "tensors", model: openForeign(path, layout) };
  }
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(described);
    } catch {
      throw new UserError(`${path}: metadata ${MODEL_METADATA} is not JSON`);
    }
    const model = buildModel(parseDescription(raw, `${path}: ${MODEL_METADATA}`));
    await startEngine();
    const byName = new Map(reader.entries.map((e) => [e.name, e]));
    for (const s of model.specs) {
      const e = byName.get(s.name);
      if (!e || e.shape.join("x") !== s.shape.join("x")) {
        throw new UserError(`${path}: the ${model.name} it describes needs ${s.name} [${s.shape.join(", ")}]; the file has ${e ? `[${e.shape.join(", ")}]` : "no such tensor"}`);
      }
    }
    if (reader.entries.length !== model.specs.length) throw new UserError(`${path}: ${reader.entries.length} tensors, the ${model.name} it describes has ${model.specs.length}`);
    const weights: HostParams = {};
    for (const s of model.specs) weights[s.name] = reader.read(s.name);
    return { kind: "network", model, weights, dtypes: Object.fromEntries(reader.entries.map((e) => [e.name, e.dtype])), seed: 0 };
  } finally {
    source.close?.();
  }
}
