/**
 * What a training run will cost, known before it starts: how many steps it takes, and the memory its
 * configuration implies, refused above the limit before anything is allocated.
 */
import { UserError } from "../errors.js";
import { checkMemory } from "../limits.js";
import { rebuildBytes, type Method } from "../methods/method.js";
import type { Model } from "../model/model.js";
import { sizeOf, type ParamSpec } from "../model/params.js";
import type { Task } from "./tasks.js";

export interface RunShape {
  /** Passes over the training data (default 1 when `steps` is not given). */
  epochs?: number;
  /** Total optimisation steps, instead of epochs. */
  steps?: number;
  /** Steps between evaluations (default: one epoch, or the whole run if shorter). */
  evalEvery?: number;
  batch: number;
}

/** Total steps and steps per round for these options; refuses a step whose activations exceed the memory limit. */
export function runLength(model: Model, task: Task, options: RunShape): { total: number; evalEvery: number } {
  const perEpoch = task.stepsPerEpoch(options.batch);
  const what = model.kind === "language" ? "attention and logits" : "activations";
  checkMemory(model.activationBytes?.(options.batch) ?? 0, `${model.name}'s ${what} at --batch ${options.batch} (lower --batch${model.kind === "language" ? " or --context" : ""})`);
  if (perEpoch < 1) throw new UserError(`--batch ${options.batch} is larger than the training data (${task.size})`);
  const total = options.steps ?? (options.epochs ?? 1) * perEpoch;
  const evalEvery = options.evalEvery ?? Math.min(perEpoch, Math.max(total, 1));
  if (!Number.isInteger(evalEvery) || evalEvery < 1) throw new UserError(`--eval-every must be a positive integer, got ${evalEvery}`);
  return { total, evalEvery };
}

const WEIGHT_COPIES = 8;
const ACTIVATION_FACTOR = 3.2;

/** Refuse a run whose memory, counted from its configuration, is above the limit (before anything is allocated). */
export function checkTrainingMemory<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[], batch: number): void {
  // The rebuild forward and its cotangents backward, then a gradient and Adam's two moments per stored number.
  const stored = method.trainableShapes(config, specs).reduce((n, t) => n + sizeOf(t.shape), 0);
  // Measured at GPT-2 small's shape (an adapter at batch 1 on the native engine, docs/results.md): peaks
  // of 4,266 MiB at context 256 and 9,005 at 1,024 fit the model's weights held about 7.5 times (read,
  // rebuilt, on the host and the engine, the adapter's frozen base) and 3.1 times the scores and logits
  // activationBytes counts (the backward pass keeps more than the forward's).
  const weights = WEIGHT_COPIES * 4 * model.specs.reduce((n, s) => n + sizeOf(s.shape), 0);
  const activations = ACTIVATION_FACTOR * (model.activationBytes?.(batch) ?? 0);
  checkMemory(2 * rebuildBytes(method, config, specs) + 12 * stored + weights + activations, `training ${model.name} with ${method.name} at this configuration`);
}
