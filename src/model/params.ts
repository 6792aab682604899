/** Parameter trees: the shapes a model declares, and their values on the host or in the engine. */
import { numpy as np } from "@jax-js/jax";
import { fromHost } from "../engine/program.js";
import { seededUniform, STREAM } from "../rng/seeded.js";

export interface ParamSpec {
  name: string;
  shape: number[];
  /**
   * Weight matrices, kernels and embeddings are what compression methods compress by default; biases
   * start at zero and normalisation gains at one. Statistics (batch normalisation's mean and variance)
   * are measured after training, not trained; they start at zero mean and unit variance.
   */
  role: "weight" | "bias" | "gain" | "statistic";
  /**
   * Inputs feeding one output unit: the standard initialisation draws within 1/sqrt(fanIn). A model
   * with another rule (GPT-2's std 0.02) gives the fan-in that yields its bound.
   */
  fanIn: number;
}

/** A parameter tree in the engine: a flat record, in the order of the model's specs. */
export type Params = Record<string, np.Array>;
/** The same tree on the host, as float32 data. */
export type HostParams = Record<string, Float32Array>;

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Numbers held by a list of shapes: a model's parameters, or a method's stored tensors. */
export function countParams(specs: ReadonlyArray<{ shape: readonly number[] }>): number {
  return specs.reduce((n, s) => n + sizeOf(s.shape), 0);
}

/**
 * The standard initialisation (PyTorch's default for Linear/Conv: uniform within 1/sqrt(fan_in)
 * for weights; zero biases, as in the reference peer; unit gains), drawn from the seed so that it can be
 * regenerated instead of stored (the residual form's theta_0).
 */
export async function initParams(specs: readonly ParamSpec[], seed: number): Promise<HostParams> {
  const out: HostParams = {};
  for (const [i, spec] of specs.entries()) {
    const size = sizeOf(spec.shape);
    if (spec.role === "bias" || (spec.role === "statistic" && spec.name.endsWith(".mean"))) {
      out[spec.name] = new Float32Array(size);
    } else if (spec.role === "gain" || spec.role === "statistic") {
      out[spec.name] = new Float32Array(size).fill(1);
    } else {
      const bound = 1 / Math.sqrt(spec.fanIn);
      out[spec.name] = await seededUniform(seed, [STREAM.init, i], size, -bound, bound);
    }
  }
  return out;
}

export interface NamedShape {
  name: string;
  shape: number[];
}

export function toDevice(shapes: readonly NamedShape[], host: HostParams): Params {
  const out: Params = {};
  for (const s of shapes) out[s.name] = fromHost(host[s.name]!, s.shape);
  return out;
}

/** Copy a tree (on either engine) to the host, consuming it. */
export async function toHost(names: readonly string[], params: Record<string, { data(): Promise<unknown> }>): Promise<HostParams> {
  const out: HostParams = {};
  for (const name of names) out[name] = new Float32Array((await params[name]!.data()) as Float32Array);
  return out;
}
