/** Reduce-on-plateau, as PyTorch's ReduceLROnPlateau (mode min, relative threshold). */
export interface PlateauOptions {
  /** Epochs without improvement tolerated before the rate is cut. */
  patience: number;
  factor: number;
  threshold: number;
  minLr: number;
}

export const PLATEAU_DEFAULTS: PlateauOptions = { patience: 5, factor: 0.5, threshold: 1e-4, minLr: 1e-6 };

export class Plateau {
  #best = Infinity;
  #bad = 0;
  constructor(
    public lr: number,
    private readonly options: PlateauOptions = PLATEAU_DEFAULTS,
    saved?: Record<string, number>,
  ) {
    if (saved) {
      this.lr = saved.lr!;
      this.#best = saved.best!;
      this.#bad = saved.bad!;
    }
  }

  /** Everything that decides later rates (JSON numbers round-trip exactly; Infinity is kept as null). */
  state(): Record<string, number> {
    return { lr: this.lr, best: this.#best, bad: this.#bad };
  }

  /** Record an epoch's monitored loss; returns the learning rate for the next epoch. */
  step(loss: number): number {
    if (loss < this.#best * (1 - this.options.threshold)) {
      this.#best = loss;
      this.#bad = 0;
    } else if (++this.#bad > this.options.patience) {
      this.lr = Math.max(this.lr * this.options.factor, this.options.minLr);
      this.#bad = 0;
    }
    return this.lr;
  }
}
