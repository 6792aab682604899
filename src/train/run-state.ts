/**
 * What a run records as it goes: each evaluation round's numbers, and the whole state between two steps
 * that a checkpoint file holds (format/checkpoint-file.ts) and a resumed run starts from.
 */
import type { HostParams, NamedShape } from "../model/params.js";
import type { Metrics } from "./tasks.js";

export interface EpochStats {
  epoch: number;
  /** Optimisation steps done by the end of this round. */
  step: number;
  /** Mean training loss over the round. */
  loss: number;
  metrics: Metrics;
  lr: number;
  trainSeconds: number;
  /** Samples (or tokens) per second over the round. */
  rate: number;
}

/** The whole state of a run between two steps. */
export interface Checkpoint {
  step: number;
  trainable: HostParams;
  adam: { m: HostParams; v: HostParams };
  schedule: Record<string, number>;
  history: EpochStats[];
  trainSeconds: number;
  /** Frozen tensors that training changes (pruning masks), for methods that refresh them. */
  frozen?: { shapes: NamedShape[]; data: HostParams };
  /** The unfinished round so far: its loss sum, steps and seconds. */
  round: { lossSum: number; steps: number; seconds: number };
}
