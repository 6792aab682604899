/** Progress on stderr: a live bar with rate and ETA on a terminal, a few plain lines otherwise. */
import type { EpochStats } from "../train/run-state.js";
import type { StepProgress } from "../train/trainer.js";

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
}

/** "test accuracy 0.8123" or "bits/byte 2.214". */
function metricText(m: Record<string, number>): string {
  return m.accuracy !== undefined ? `test accuracy ${m.accuracy.toFixed(4)}` : `bits/byte ${m.bits_per_byte!.toFixed(4)}`;
}

export class Progress {
  readonly #tty: boolean;
  #lastPlain = -1;
  #unit = "samples";
  #rounds = 0;
  #estimated = false;
  /** The step and time the estimate's clock started: the third step, past the first steps' compilation. */
  #clock?: { step: number; at: number };
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
    /** Whether to say, early in the run, how long its training will take. */
    private readonly estimateRun = true,
  ) {
    this.#tty = Boolean(stream.isTTY);
  }

  step(p: StepProgress): void {
    this.#unit = p.unit;
    this.#rounds = p.epochs;
    if (!this.enabled) return;
    const frac = p.step / p.steps;
    const etaText = duration(p.etaSeconds);
    const rate = `${p.rate.toFixed(0)} ${p.unit}/s`;
    // Once, early in the first round: how long the whole run will take at the pace of ten steps
    // measured after the first two (which compile the programs).
    if (this.estimateRun && !this.#estimated && p.epoch === 1) {
      if (p.step === 3) this.#clock = { step: 3, at: performance.now() };
      const clock = this.#clock;
      if (clock && p.step >= clock.step + 10 && p.step < p.steps) {
        this.#estimated = true;
        const pace = (performance.now() - clock.at) / 1000 / (p.step - clock.step);
        const left = pace * ((p.epochs - p.epoch) * p.steps + p.steps - p.step);
        this.stream.write(`${this.#tty ? "\r\x1b[K" : ""}estimate: about ${duration(left)} of training left (${pace < 1 ? `${(1000 * pace).toFixed(0)} ms` : `${pace.toFixed(1)} s`} a step over steps ${clock.step + 1}-${p.step}; evaluations come on top)\n`);
      }
    }
    if (this.#tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = "#".repeat(filled) + "-".repeat(width - filled);
      this.stream.write(`\r${this.#label(p.epoch)} [${bar}] ${(100 * frac).toFixed(0).padStart(3)}%  ${rate}  ETA ${etaText}  loss ${p.loss.toFixed(4)}  `);
    } else {
      // Plain logs: a line per quarter round, never a flood.
      const quarter = Math.floor(frac * 4);
      const key = p.epoch * 10 + quarter;
      if (quarter > 0 && key !== this.#lastPlain) {
        this.#lastPlain = key;
        this.stream.write(`${this.#label(p.epoch)} ${(100 * frac).toFixed(0)}% ${rate} ETA ${etaText} loss ${p.loss.toFixed(4)}\n`);
      }
    }
  }

  /** Rounds are epochs of image data, and spans of steps between evaluations of text. */
  #label(round: number): string {
    return `${this.#unit === "tokens" ? "round" : "epoch"} ${round}/${this.#rounds}`;
  }

  epoch(e: EpochStats): void {
    if (!this.enabled) return;
    if (this.#tty) this.stream.write("\r\x1b[K");
    this.stream.write(
      `${this.#label(e.epoch)}  step ${e.step}  loss ${e.loss.toFixed(4)}  ${metricText(e.metrics)}  lr ${e.lr.toPrecision(3)}  ${e.rate.toFixed(0)} ${this.#unit}/s  ${e.trainSeconds.toFixed(1)}s\n`,
    );
  }

  message(text: string): void {
    if (this.enabled) this.stream.write(`${text}\n`);
  }

  /**
   * A reporter for work without steps (an evaluation): its percentage on one live line, on a terminal
   * only (plain logs get nothing); call `done` to clear the line.
   */
  fraction(label: string): { update: (done: number) => void; done: () => void } {
    const live = this.enabled && this.#tty;
    let shown = -1;
    return {
      update: (done) => {
        const pct = Math.floor(100 * done);
        if (!live || pct === shown) return;
        shown = pct;
        this.stream.write(`\r\x1b[K${label} ${pct}%`);
      },
      done: () => live && shown >= 0 && this.stream.write("\r\x1b[K"),
    };
  }
}
