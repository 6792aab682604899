/**
 * Learning-rate schedules: reduce-on-plateau (PyTorch's ReduceLROnPlateau, acting after each
 * evaluation round on the round's training loss), or a linear warm-up and a cosine decay to a tenth
 * (nanoGPT's, for the language models, where a run is a number of steps rather than of epochs).
 */
import { Plateau, PLATEAU_DEFAULTS, type PlateauOptions } from "./plateau.js";

export type ScheduleOptions = ({ kind: "plateau" } & Partial<PlateauOptions>) | { kind: "cosine"; warmup: number; minRatio?: number };

export interface Schedule {
  /** The rate for step `t` (0-based) of `total`. */
  at(t: number, total: number): number;
  /** An evaluation round ended with this mean training loss. */
  endRound(loss: number): void;
  /** What a checkpoint must hold to continue exactly. */
  state(): Record<string, number>;
}

export const COSINE_MIN_RATIO = 0.1;

/** The cosine schedule's warm-up when none is given: a tenth of the run, at most 100 steps. */
export const defaultWarmup = (total: number): number => Math.min(100, Math.floor(total / 10));

export function makeSchedule(lr: number, options: ScheduleOptions = { kind: "plateau" }, state?: Record<string, number>): Schedule {
  if (options.kind === "cosine") {
    const { warmup } = options;
    const minRatio = options.minRatio ?? COSINE_MIN_RATIO;
    return {
      at(t, total) {
        if (t < warmup) return (lr * (t + 1)) / (warmup + 1);
        const progress = total > warmup ? Math.min(1, (t - warmup) / (total - warmup)) : 1;
        return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
      },
      endRound() {},
      state: () => ({}),
    };
  }
  const { kind: _, ...plateauOptions } = options;
  const plateau = new Plateau(lr, { ...PLATEAU_DEFAULTS, ...plateauOptions }, state);
  return { at: () => plateau.lr, endRound: (loss) => void plateau.step(loss), state: () => plateau.state() };
}
