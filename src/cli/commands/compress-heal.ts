/** Healing a network that compression reshaped: a short dense fine-tune on its own training data. */
import type { Heal } from "../../compress/compress-model.js";
import { findMethod } from "../../methods/index.js";
import { defaultBatch } from "../../train/tasks.js";
import { train } from "../../train/trainer.js";
import { taskFor, type DataFlags } from "./shared.js";

/** A Heal on the data the flags (or the source file's record) name, logging its start and its score. */
export function healer(flags: DataFlags, recorded: Record<string, unknown> | undefined, seed: number, log: (s: string) => void): Heal {
  return async (model, weights, steps) => {
    const task = await taskFor(model, flags, recorded);
    log(`healing: ${steps} steps of dense fine-tuning on ${task.data}`);
    const run = await train(model, findMethod("dense")!, {}, task, { batch: defaultBatch(model, task.samples), seed, steps, start: weights });
    log(`healed: ${JSON.stringify(run.metrics)}`);
    return run.params;
  };
}
