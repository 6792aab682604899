/**
 * What a compression method is: a reparameterisation from a few trainable numbers (what the file
 * stores) plus frozen numbers regenerated from the seed (never stored) to the model's parameter tree.
 * Training differentiates the task loss through `materialize`; rebuilding a file calls it once.
 */
import { tree } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { rebuildProgram } from "../engine/program.js";
import type { HostParams, ParamSpec, Params } from "../model/params.js";
import { registry } from "../registry.js";

/** A method's knob, declared once: the CLI parses and documents it, the file stores it. */
export interface MethodOption {
  name: string;
  type: "int" | "float" | "bool" | "int-list" | "string";
  help: string;
}

/** Flag values as parsed from the command line or read back from a file's header. */
export type OptionValues = Record<string, unknown>;

/** One adapted leaf's update as LoRA factors: the leaf becomes W + down @ up (down [rows, rank], up [rank, cols]). */
export interface LoraFactors {
  leaf: string;
  rank: number;
  down: Float32Array;
  up: Float32Array;
}

export interface Method<Config extends object = object> {
  name: string;
  summary: string;
  options: MethodOption[];
  /** Adam step size when the user gives none. */
  defaultLearningRate: number;
  /** The same for the adapter form on a frozen base, where it differs (measured: docs/results.md). */
  adapterLearningRate?: number;
  /**
   * Validate and complete a configuration for this model. Called on the CLI's flags and again on a
   * file's header, so a stored configuration is held to the same rules. Throws UserError.
   */
  configure(values: OptionValues, specs: readonly ParamSpec[]): Config;
  /** Names and shapes of the trainable (stored) tensors, in storage order. */
  trainableShapes(config: Config, specs: readonly ParamSpec[]): Array<{ name: string; shape: number[] }>;
  /**
   * Starting values of the trainable tensors. `start`, for methods that declare `startsFromWeights`,
   * is a trained network's weights to begin from (fine-tuning, post-training compression).
   */
  init(config: Config, specs: readonly ParamSpec[], seed: number, start?: HostParams): Promise<HostParams>;
  /** The method's trainable tensors are the network's own leaves, so it can start from trained weights. */
  startsFromWeights?: boolean;
  /**
   * Frozen tensors, a pure function of (config, seed, base). `base`, for an adapter, is the pretrained
   * model's weights: the theta_0 of a residual form, in place of the seeded initialisation.
   */
  frozen(config: Config, specs: readonly ParamSpec[], seed: number, base?: HostParams): Promise<Params>;
  /**
   * The option values that make this method an adapter (its residual form, theta_0 + a delta that
   * starts at zero), for fine-tuning a frozen base; absent for methods that cannot adapt.
   */
  adapterValues?: OptionValues;
  /**
   * Trainable + frozen -> parameter tree, as a chain of stages (often one). Each stage maps the
   * previous stage's output (`{}` for the first) to its own; the last returns the model's tree.
   * Training on Wasm differentiates each stage in its own program: jax-js fuses elementwise chains
   * into matmul loads, and a generator's backward pass fused whole ran 15x slower (docs/results.md).
   */
  stages(config: Config, specs: readonly ParamSpec[]): Stage[];
  /**
   * Where an adapter's update of each leaf is a low-rank product (LoRA; MCNC and NOLA over LoRA
   * factors): those factors, from the stored tensors and the seed, so that a tool that knows only LoRA
   * (PEFT) can load the adapter. On the host; UserError for a configuration that is no adapter.
   */
  loraFactors?(config: Config, specs: readonly ParamSpec[], trainable: HostParams, seed: number): Promise<LoraFactors[]>;
  /** Advice about a valid but poor configuration (shown, never fatal). */
  notes?(config: Config, specs: readonly ParamSpec[]): string[];
  /** Floating-point operations to rebuild all weights once (for rebuild-speed reports). */
  rebuildFlops(config: Config, specs: readonly ParamSpec[]): number;
  /**
   * Float32 numbers a rebuild holds at once besides the stored tensors and the weights it produces:
   * frozen tensors (generators, bases, theta_0) and the largest intermediate values. Counted from the
   * configuration alone, so the memory limit is checked before any of it exists.
   */
  workingSet(config: Config, specs: readonly ParamSpec[]): number;
  /**
   * Post-training methods (pruning, quantisation) store an encoding of the weights, not their
   * trainable tensors: a file then holds `codec.encode` of the trained weights, and rebuilding is
   * `codec.decode`. Training reports the decoded weights, so its accuracy is the file's.
   */
  codec?: Codec<Config>;
  /**
   * Training-time state that follows the weights (pruning masks): when `due`, the trainer hands the
   * current trainable tensors to `frozenAt` and uses what it returns as the frozen tensors from then on.
   */
  refresh?: {
    due(config: Config, step: number, steps: number): boolean;
    frozenAt(config: Config, specs: readonly ParamSpec[], step: number, steps: number, trainable: HostParams): Params;
  };
}

/** A tensor as a file stores it: floats, or unsigned integer codes of 1, 2, 3, 4 or 8 bits. */
export type StoredTensor = { name: string; shape: number[]; data: Float32Array } | { name: string; shape: number[]; codes: Uint8Array; bits: 1 | 2 | 3 | 4 | 8 };

/** Read access to a file's stored tensors. */
export interface StoredReader {
  shapes: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  floats(name: string): Float32Array;
  /** With `bits`, refused unless the tensor is stored at that width (a header cannot lie about it). */
  codes(name: string, bits?: number): Uint8Array;
}

export interface Codec<Config> {
  encode(config: Config, specs: readonly ParamSpec[], weights: HostParams): StoredTensor[];
  /** Validates what it reads (UserError on anything inconsistent). */
  decode(config: Config, specs: readonly ParamSpec[], stored: StoredReader): HostParams;
}

/** A reader over tensors still in memory: what a file would give back at full precision. */
export function memoryReader(tensors: readonly StoredTensor[]): StoredReader {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const get = (name: string) => {
    const t = byName.get(name);
    if (!t) throw new Error(`no stored tensor ${name}`);
    return t;
  };
  return {
    shapes: tensors,
    floats: (name) => {
      const t = get(name);
      if (!("data" in t)) throw new Error(`${name} holds codes`);
      return t.data;
    },
    codes: (name, bits) => {
      const t = get(name);
      if (!("codes" in t)) throw new Error(`${name} holds floats`);
      if (bits !== undefined && t.bits !== bits) throw new Error(`${name} holds ${t.bits}-bit codes, not ${bits}-bit`);
      return t.codes;
    },
  };
}

/** Trained weights as a file of this method would give them back (identity for reparameterisations). */
export function roundTrip<C extends object>(method: Method<C>, config: C, specs: readonly ParamSpec[], weights: HostParams): HostParams {
  return method.codec ? method.codec.decode(config, specs, memoryReader(method.codec.encode(config, specs, weights))) : weights;
}

/** One step of a reparameterisation. Pure and jittable; consumes its arguments. */
export type Stage = (carry: Params, trainable: Params, frozen: Params) => Params;

const methods = registry<Method>("method");

/** One line per method in methods/index.ts; the CLI and trainer find methods only through here. */
/**
 * Bytes a rebuild holds at its peak: the stored numbers, the method's working set four times (frozen
 * numbers are drawn as bits in the engine, copied out, converted and copied back in: a 512 MiB
 * generator took 1.6 GB to rebuild, measured), and the weights twice (in the engine, and copied out
 * to the host). What a file or a flag set is checked on.
 */
export function rebuildBytes<C extends object>(method: Method<C>, config: C, specs: readonly ParamSpec[]): number {
  const stored = method.trainableShapes(config, specs).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const weights = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return 4 * (stored + 4 * method.workingSet(config, specs) + 2 * weights);
}

export function registerMethod<C extends object>(method: Method<C>): void {
  methods.register(method as unknown as Method);
}

export const methodNames = (): string[] => methods.names();
export const findMethod = (name: string): Method | undefined => methods.find(name);

/**
 * The jitted rebuild for one (method, config, model): the trainer's final weights and a file's
 * rebuilt weights both come from this function, which is why they are bit-identical.
 * Consumes its arguments.
 */
export function materializer<C extends object>(method: Method<C>, config: C, specs: readonly ParamSpec[]): (trainable: Params, frozen: Params) => Params {
  return rebuildProgram(composeStages(method.stages(config, specs)));
}

/** The stages as one function (trainable, frozen) -> parameter tree. Consumes its arguments. */
export function composeStages(stages: readonly Stage[]): (trainable: Params, frozen: Params) => Params {
  return (trainable, frozen) => {
    let carry: Params = {};
    stages.forEach((stage, i) => {
      const last = i === stages.length - 1;
      carry = stage(carry, last ? trainable : tree.ref(trainable), last ? frozen : tree.ref(frozen));
    });
    return carry;
  };
}

/**
 * --ratio as every method reads it: absent, or a finite number above 1. `instead`: the option it stands
 * in for (--d, --bases, --sparsity), refused beside it.
 */
export function ratioValue(values: OptionValues, instead?: string): number | undefined {
  const ratio = values.ratio;
  if (ratio === undefined) return undefined;
  if (instead !== undefined && values[instead] !== undefined) throw new UserError(`give --${instead} or --ratio, not both`);
  if (typeof ratio !== "number" || !Number.isFinite(ratio) || ratio <= 1) throw new UserError(`--ratio must be a number above 1, got ${String(ratio)}`);
  return ratio;
}
