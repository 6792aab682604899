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
  checkMemory(model.activationBytes?.(options.batch) ?? 0, `${model.name}'s attention and logits at --batch ${options.batch} (lower --batch or --context)`);
  if (perEpoch < 1) throw new UserError(`--batch ${options.batch} is larger than the training data (${task.size})`);
  const total = options.steps ?? (options.epochs ?? 1) * perEpoch;
  const evalEvery = options.evalEvery ?? Math.min(perEpoch, Math.max(total, 1));
  if (!Number.isInteger(evalEvery) || evalEvery < 1) throw new UserError(`--eval-every must be a positive integer, got ${evalEvery}`);
  return { total, evalEvery };
}

/** Refuse a run whose memory, counted from its configuration, is above the limit (before anything is allocated). */
export function checkTrainingMemory<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[], batch: number): void {
  // The rebuild forward and its cotangents backward, then a gradient and Adam's two moments per stored number.
  const stored = method.trainableShapes(config, specs).reduce((n, t) => n + sizeOf(t.shape), 0);
  checkMemory(2 * rebuildBytes(method, config, specs) + 12 * stored + (model.activationBytes?.(batch) ?? 0), `training ${model.name} with ${method.name} at this configuration`);
}
