/**
 * A trained model as a file: which network, which method with which configuration and seed, and
 * the method's trainable numbers. Everything frozen (generator weights, theta_0) is regenerated from
 * the seed, so rebuilding needs this file and this library, nothing else.
 */
import { UserError } from "../errors.js";
import { findMethod, materializer, methodNames, type Method } from "../methods/index.js";
import { KEPT } from "../methods/leaves.js";
import { buildModel, type ImageShape, type Model } from "../model/models.js";
import { countParams, toDevice, toHost, type HostParams, type NamedShape, type Params } from "../model/params.js";
import { checkSeed, RNG_ALGORITHM } from "../rng/seeded.js";
import { checkShape, decodeContainer, elements, encodeContainer, type Dtype } from "./container.js";

export const LIBRARY = "mcnc 0.1.0";
/** Largest model a file may describe: 2^28 parameters (1 GiB of float32). */
export const MAX_MODEL_PARAMS = 2 ** 28;

export interface ModelFile {
  model: { name: string; input: ImageShape; classes: number };
  method: { name: string; config: object };
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
}

export function encodeModelFile(f: ModelFile, model: Model, method: Method, options: EncodeOptions = {}): Uint8Array {
  const q8 = options.storeBits === 8;
  const config = f.method.config;
  const tensors = method.codec
    ? method.codec.encode(config, model.specs, f.trainable)
    : method.trainableShapes(config, model.specs).map((t) => ({ name: t.name, shape: t.shape, data: f.trainable[t.name]! }));
  return encodeContainer(
    {
      format: "mcnc",
      library: LIBRARY,
      model: { ...f.model, params: model.specs.map((s) => ({ name: s.name, shape: s.shape, role: s.role })) },
      method: f.method,
      seed: f.seed,
      rng: RNG_ALGORITHM,
      meta: f.meta ?? {},
    },
    // A codec chose its own precision; 8-bit storage is for a reparameterisation's numbers.
    tensors.map((t) => ("data" in t ? { ...t, q8: q8 && !method.codec && !t.name.startsWith(KEPT) } : t)),
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new UserError(`${what} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  return v as number;
}

export function decodeModelFile(bytes: Uint8Array, name = "file"): LoadedModel {
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

  if (!isRecord(h.model) || typeof h.model.name !== "string") throw bad("header has no model");
  const input = h.model.input;
  if (!Array.isArray(input) || input.length !== 3) throw bad("model.input must be [height, width, channels]");
  const shape = input.map((v, i) => intIn(v, 1, 4096, `${name}: model.input[${i}]`)) as unknown as ImageShape;
  const classes = intIn(h.model.classes, 2, 1 << 16, `${name}: model.classes`);
  // Claimed parameter shapes are bounded before any model is built from them.
  if (!Array.isArray(h.model.params)) throw bad("model.params must be a list");
  let claimed = 0;
  for (const p of h.model.params) {
    if (!isRecord(p)) throw bad("malformed model.params entry");
    claimed += elements(checkShape(p.shape, `${name}: parameter ${String(p.name)}`));
    if (claimed > MAX_MODEL_PARAMS) throw bad(`header claims more than ${MAX_MODEL_PARAMS} parameters; refusing to build the model`);
  }
  let model: Model;
  try {
    model = buildModel(h.model.name, shape, classes);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const total = countParams(model.specs);
  if (total > MAX_MODEL_PARAMS) throw bad(`model has ${total} parameters, above the limit of ${MAX_MODEL_PARAMS}`);
  const specsMatch =
    h.model.params.length === model.specs.length &&
    model.specs.every((s, i) => {
      const p = (h.model as { params: Array<{ name: unknown; shape: number[] }> }).params[i]!;
      return p.name === s.name && p.shape.length === s.shape.length && p.shape.every((d, j) => d === s.shape[j]);
    });
  if (!specsMatch) throw bad(`parameter list does not match model ${model.name} for input ${shape.join("x")}`);

  if (!isRecord(h.method) || typeof h.method.name !== "string") throw bad("header has no method");
  const method = findMethod(h.method.name);
  if (!method) throw bad(`unknown method '${h.method.name}' (this mcnc knows ${methodNames().join(", ")})`);
  if (!isRecord(h.method.config)) throw bad("method.config must be an object");
  let config: object;
  try {
    config = method.configure(h.method.config, model.specs);
  } catch (e) {
    throw bad(`method config: ${(e as Error).message}`);
  }

  const stored = h.tensors;
  const trainable: HostParams = {};
  if (method.codec) {
    try {
      Object.assign(trainable, method.codec.decode(config, model.specs, { shapes: stored, floats: c.tensor, codes: c.codes }));
    } catch (e) {
      throw bad(`${method.name} tensors: ${(e as Error).message}`);
    }
  } else {
    const wanted = method.trainableShapes(config, model.specs);
    const sameTensors =
      wanted.length === stored.length &&
      wanted.every((w, i) => stored[i]!.name === w.name && stored[i]!.shape.length === w.shape.length && stored[i]!.shape.every((d, j) => d === w.shape[j]));
    if (!sameTensors) throw bad(`stored tensors do not match what ${method.name} with this configuration needs`);
    for (const w of wanted) trainable[w.name] = c.tensor(w.name);
  }
  return {
    file: { model: { name: model.name, input: shape, classes }, method: { name: method.name, config }, seed, trainable, meta: isRecord(h.meta) ? h.meta : {} },
    model,
    method,
    config,
    bytes: bytes.length,
    storage: Object.fromEntries(stored.map((t) => [t.name, t.dtype])),
    stored: stored.map((t) => ({ name: t.name, shape: t.shape })),
  };
}

/** The model's weights from the file's numbers. Consumes nothing the caller keeps. */
export async function rebuildParams(loaded: LoadedModel, rebuild = materializer(loaded.method, loaded.config, loaded.model.specs)): Promise<Params> {
  const { method, config, model, file } = loaded;
  // A codec's file decodes straight to the weights.
  if (method.codec) return toDevice(model.specs, file.trainable);
  const frozen = await method.frozen(config, model.specs, file.seed);
  return rebuild(toDevice(method.trainableShapes(config, model.specs), file.trainable), frozen);
}


export interface TimedRebuild {
  params: HostParams;
  /** First rebuild in this process: generator regenerated, programs compiled, weights copied out. */
  coldMs: number;
  /** Median of later rebuilds, same work without compilation. */
  warmMs: number;
}

/** Rebuild the weights and time it as a user would see it: seed -> generator -> weights on the host. */
export async function timedRebuild(loaded: LoadedModel, repeats = 3): Promise<TimedRebuild> {
  const rebuild = materializer(loaded.method, loaded.config, loaded.model.specs);
  const names = loaded.model.specs.map((s) => s.name);
  const once = async () => {
    const t = performance.now();
    const params = await toHost(names, await rebuildParams(loaded, rebuild));
    return { params, ms: performance.now() - t };
  };
  const cold = await once();
  const warm: number[] = [];
  for (let i = 0; i < repeats; i++) warm.push((await once()).ms);
  warm.sort((a, b) => a - b);
  return { params: cold.params, coldMs: cold.ms, warmMs: warm[Math.floor(warm.length / 2)] ?? cold.ms };
}
