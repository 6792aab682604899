/**
 * A trained model as a file: which network, which method with which configuration and seed, and
 * the method's trainable numbers. Everything frozen (generator weights, theta_0) is regenerated from
 * the seed, so rebuilding needs this file and this library, nothing else.
 */
import { UserError } from "../errors.js";
import { producedSpecs, type AdapterInfo } from "../methods/adapter.js";
import { checkMemory } from "../limits.js";
import { findMethod, materializer, methodNames, rebuildBytes, type Method, type StoredTensor } from "../methods/index.js";
import { KEPT } from "../methods/leaves.js";
import { buildModel, MAX_MODEL_PARAMS, parseDescription, type Model, type ModelDescription } from "../model/models.js";
import { countParams, sizeOf, toDevice, toHost, type HostParams, type NamedShape, type ParamSpec, type Params } from "../model/params.js";
import { checkSeed, RNG_ALGORITHM } from "../rng/seeded.js";
import { checkShape, decodeContainer, elements, encodeContainer, type Dtype } from "./container.js";
import { weightsHash } from "./weights-hash.js";

export const LIBRARY = "mcnc 0.1.0";

export interface ModelFile {
  model: ModelDescription;
  method: { name: string; config: object };
  /** An adapter: the method produces these leaves of the base with this hash; the file holds nothing else of it. */
  adapter?: AdapterInfo;
  seed: number;
  /** The method's trainable tensors; for a method with a codec, the weights it encodes (or decoded). */
  trainable: HostParams;
  /** Informational: data set, accuracy, training settings. Not used to rebuild. */
  meta?: Record<string, unknown>;
}

export interface LoadedModel {
  file: ModelFile;
  model: Model;
  method: Method;
  config: object;
  /** The leaves the method produces (the model's, or an adapter's). */
  specs: ParamSpec[];
  bytes: number;
  /** How each stored tensor is encoded in the file (f32, q8 or integer codes). */
  storage: Record<string, Dtype>;
  /** The file's tensors, as its header lists them. */
  stored: NamedShape[];
}

export interface EncodeOptions {
  /**
   * 8: store the method's own tensors (latents, amplitudes, coefficients, factors) as 8-bit codes;
   * leaves kept dense stay float32. 32 (default): everything float32. Ignored by methods with a codec.
   */
  storeBits?: 8 | 32;
  /**
   * The tensors already encoded in this method's storage (by a post-training compressor), written as
   * they are instead of encoding `trainable`.
   */
  encoded?: StoredTensor[];
}

export function encodeModelFile(f: ModelFile, model: Model, method: Method, options: EncodeOptions = {}): Uint8Array {
  const q8 = options.storeBits === 8;
  const config = f.method.config;
  const specs = producedSpecs(model, f.adapter);
  const tensors = method.codec
    ? (options.encoded ?? method.codec.encode(config, specs, f.trainable))
    : method.trainableShapes(config, specs).map((t) => {
        // Encoded tensors come in any order; the file holds them in the method's.
        const given = options.encoded ? options.encoded.find((e) => e.name === t.name) : { data: f.trainable[t.name]! };
        if (!given || !("data" in given)) throw new Error(`no float tensor ${t.name} for ${method.name}`);
        return { name: t.name, shape: t.shape, data: given.data };
      });
  return encodeContainer(
    {
      format: "mcnc",
      library: LIBRARY,
      // An adapter names its base by hash and is read against it: the leaf list would only add bytes.
      model: f.adapter ? f.model : { ...f.model, params: model.specs.map((s) => ({ name: s.name, shape: s.shape, role: s.role })) },
      method: f.method,
      ...(f.adapter ? { adapter: f.adapter } : {}),
      seed: f.seed,
      rng: RNG_ALGORITHM,
      meta: f.meta ?? {},
    },
    // A codec chose its own precision; 8-bit storage is for a reparameterisation's numbers.
    tensors.map((t) => ("data" in t ? { ...t, q8: q8 && !method.codec && !options.encoded && !t.name.startsWith(KEPT) } : t)),
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface DecodeOptions {
  /** Bytes a rebuild may take (default: the process's memory limit); Infinity to read a header whatever it implies. */
  memoryLimit?: number;
  /** false: what a model says of itself, without reading its numbers where they are apart (a Hugging Face folder's weights). */
  weights?: boolean;
  /** A LLaMA-family folder's window: the tokens it attends over (its description's context). */
  context?: number;
}

export function decodeModelFile(bytes: Uint8Array, name = "file", options: DecodeOptions = {}): LoadedModel {
  const c = decodeContainer(bytes, name);
  const h = c.header;
  const bad = (msg: string) => new UserError(`${name}: ${msg}`);
  if (h.format !== "mcnc") throw bad("header does not say format 'mcnc'");
  if (h.rng !== RNG_ALGORITHM) throw bad(`RNG ${JSON.stringify(h.rng)} is not supported (only ${RNG_ALGORITHM})`);
  const seed = (() => {
    try {
      return checkSeed(h.seed as number);
    } catch (e) {
      throw bad((e as Error).message);
    }
  })();

  if (!isRecord(h.model)) throw bad("header has no model");
  let description: ModelDescription;
  try {
    description = parseDescription(h.model, "model");
  } catch (e) {
    throw bad((e as Error).message);
  }
  // Claimed parameter shapes are bounded before any model is built from them. An adapter lists none
  // (its base's description and hash say it all); every other file must.
  const listed = h.model.params;
  if (listed === undefined && h.adapter === undefined) throw bad("model.params must be a list");
  if (listed !== undefined && !Array.isArray(listed)) throw bad("model.params must be a list");
  let claimed = 0;
  for (const p of listed ?? []) {
    if (!isRecord(p)) throw bad("malformed model.params entry");
    claimed += elements(checkShape(p.shape, `${name}: parameter ${String(p.name)}`));
    if (claimed > MAX_MODEL_PARAMS) throw bad(`header claims more than ${MAX_MODEL_PARAMS} parameters; refusing to build the model`);
  }
  // Building the specs allocates nothing: the count is checked before any tensor exists.
  const model = buildModel(description);
  const total = countParams(model.specs);
  if (total > MAX_MODEL_PARAMS) throw bad(`model has ${total} parameters, above the limit of ${MAX_MODEL_PARAMS}`);
  const specsMatch =
    listed === undefined ||
    (listed.length === model.specs.length &&
      model.specs.every((s, i) => {
        const p = (listed as Array<{ name: unknown; shape: number[] }>)[i]!;
        return p.name === s.name && p.shape.length === s.shape.length && p.shape.every((d, j) => d === s.shape[j]);
      }));
  if (!specsMatch) throw bad(`parameter list does not match model ${model.name} as described`);
  const adapter = h.adapter === undefined ? undefined : parseAdapter(h.adapter, model, bad);
  const specs = producedSpecs(model, adapter);

  if (!isRecord(h.method) || typeof h.method.name !== "string") throw bad("header has no method");
  const method = findMethod(h.method.name);
  if (!method) throw bad(`unknown method '${h.method.name}' (this mcnc knows ${methodNames().join(", ")})`);
  if (!isRecord(h.method.config)) throw bad("method.config must be an object");
  let config: object;
  try {
    config = method.configure(h.method.config, specs);
  } catch (e) {
    throw bad(`method config: ${(e as Error).message}`);
  }

  // What rebuilding costs follows from the header alone: refused here, before any of it is allocated.
  checkMemory(rebuildBytes(method, config, specs), `${name}: rebuilding its weights`, options.memoryLimit);

  const stored = h.tensors;
  const trainable: HostParams = {};
  if (method.codec) {
    try {
      Object.assign(trainable, method.codec.decode(config, specs, { shapes: stored, floats: c.tensor, codes: c.codes }));
    } catch (e) {
      throw bad(`${method.name} tensors: ${(e as Error).message}`);
    }
  } else {
    const wanted = method.trainableShapes(config, specs);
    const sameTensors =
      wanted.length === stored.length &&
      wanted.every((w, i) => stored[i]!.name === w.name && stored[i]!.shape.length === w.shape.length && stored[i]!.shape.every((d, j) => d === w.shape[j]));
    if (!sameTensors) throw bad(`stored tensors do not match what ${method.name} with this configuration needs`);
    for (const w of wanted) trainable[w.name] = c.tensor(w.name);
  }
  return {
    file: { model: description, method: { name: method.name, config }, ...(adapter ? { adapter } : {}), seed, trainable, meta: isRecord(h.meta) ? h.meta : {} },
    model,
    method,
    config,
    specs,
    bytes: bytes.length,
    storage: Object.fromEntries(stored.map((t) => [t.name, t.dtype])),
    stored: stored.map((t) => ({ name: t.name, shape: t.shape })),
  };
}

function parseAdapter(raw: unknown, model: Model, bad: (msg: string) => UserError): AdapterInfo {
  if (!isRecord(raw) || typeof raw.base_sha256 !== "string" || !/^[0-9a-f]{64}$/.test(raw.base_sha256)) throw bad("adapter.base_sha256 must be a SHA-256 in hex");
  const leaves = raw.leaves;
  if (!Array.isArray(leaves) || leaves.length === 0 || leaves.length > model.specs.length) throw bad("adapter.leaves must list the adapted leaves");
  const known = new Set(model.specs.map((s) => s.name));
  if (leaves.some((l) => typeof l !== "string" || !known.has(l)) || new Set(leaves).size !== leaves.length) throw bad("adapter.leaves names leaves the model does not have");
  return { base_sha256: raw.base_sha256, leaves: model.specs.filter((s) => leaves.includes(s.name)).map((s) => s.name) };
}

/** The base an adapter file must be rebuilt on: refused, in one line, unless it is the one it was trained on. */
export function checkBase(loaded: LoadedModel, base: HostParams | undefined, what = "base"): HostParams | undefined {
  const adapter = loaded.file.adapter;
  if (!adapter) return undefined;
  if (!base) throw new UserError(`this file is an adapter: rebuild it on its base model (--model BASE.mcnc)`);
  // Another network altogether has other leaves: said so before any hash is taken of them.
  const missing = loaded.model.specs.find((s) => base[s.name]?.length !== sizeOf(s.shape));
  if (missing) throw new UserError(`the adapter was trained on another base: ${what} has no ${missing.name} of ${sizeOf(missing.shape)} weights (the adapter is for a ${loaded.model.name})`);
  const hash = weightsHash(loaded.model.specs, base);
  if (hash !== adapter.base_sha256) {
    throw new UserError(`the adapter was trained on another base (its base's weights hash to ${adapter.base_sha256.slice(0, 12)}..., ${what}'s to ${hash.slice(0, 12)}...)`);
  }
  return base;
}

/**
 * The model's weights from the file's numbers (and, for an adapter, its base's weights, already
 * checked with checkBase). Consumes nothing the caller keeps.
 */
export async function rebuildParams(loaded: LoadedModel, base?: HostParams, rebuild = materializer(loaded.method, loaded.config, loaded.specs)): Promise<Params> {
  const { method, config, model, file, specs } = loaded;
  const rest = file.adapter ? toDevice(model.specs.filter((s) => !file.adapter!.leaves.includes(s.name)), base!) : {};
  // A codec's file decodes straight to the weights.
  if (method.codec) return { ...toDevice(specs, file.trainable), ...rest };
  const frozen = await method.frozen(config, specs, file.seed, file.adapter ? base : undefined);
  return { ...rebuild(toDevice(method.trainableShapes(config, specs), file.trainable), frozen), ...rest };
}

export interface TimedRebuild {
  params: HostParams;
  /** First rebuild in this process: generator regenerated, programs compiled, weights copied out. */
  coldMs: number;
  /** Median of later rebuilds, same work without compilation. */
  warmMs: number;
}

/** Rebuild the weights and time it as a user would see it: seed -> generator -> weights on the host. */
export async function timedRebuild(loaded: LoadedModel, repeats = 3, base?: HostParams): Promise<TimedRebuild> {
  const rebuild = materializer(loaded.method, loaded.config, loaded.specs);
  const names = loaded.model.specs.map((s) => s.name);
  const once = async () => {
    const t = performance.now();
    const params = await toHost(names, await rebuildParams(loaded, base, rebuild));
    return { params, ms: performance.now() - t };
  };
  const cold = await once();
  const warm: number[] = [];
  for (let i = 0; i < repeats; i++) warm.push((await once()).ms);
  warm.sort((a, b) => a - b);
  return { params: cold.params, coldMs: cold.ms, warmMs: warm[Math.floor(warm.length / 2)] ?? cold.ms };
}
