/** Progress on stderr: a live bar with rate and ETA on a terminal, a few plain lines otherwise. */
import type { EpochStats, StepProgress } from "../train/trainer.js";

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
}

export class Progress {
  readonly #tty: boolean;
  #lastPlain = -1;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
  ) {
    this.#tty = Boolean(stream.isTTY);
  }

  step(p: StepProgress): void {
    if (!this.enabled) return;
    const frac = p.step / p.steps;
    const etaText = duration(p.etaSeconds);
    if (this.#tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = "#".repeat(filled) + "-".repeat(width - filled);
      this.stream.write(
        `\repoch ${p.epoch}/${p.epochs} [${bar}] ${(100 * frac).toFixed(0).padStart(3)}%  ${p.samplesPerS.toFixed(0)} samples/s  ETA ${etaText}  loss ${p.loss.toFixed(4)}  `,
      );
    } else {
      // Plain logs: a line per quarter epoch, never a flood.
      const quarter = Math.floor(frac * 4);
      const key = p.epoch * 10 + quarter;
      if (quarter > 0 && key !== this.#lastPlain) {
        this.#lastPlain = key;
        this.stream.write(`epoch ${p.epoch}/${p.epochs} ${(100 * frac).toFixed(0)}% ${p.samplesPerS.toFixed(0)} samples/s ETA ${etaText} loss ${p.loss.toFixed(4)}\n`);
      }
    }
  }

  epoch(e: EpochStats, epochs: number): void {
    if (!this.enabled) return;
    if (this.#tty) this.stream.write("\r\x1b[K");
    this.stream.write(
      `epoch ${e.epoch}/${epochs}  loss ${e.loss.toFixed(4)}  test accuracy ${e.accuracy.toFixed(4)}  lr ${e.lr.toPrecision(3)}  ${e.samplesPerS.toFixed(0)} samples/s  ${e.trainSeconds.toFixed(1)}s\n`,
    );
  }

  message(text: string): void {
    if (this.enabled) this.stream.write(`${text}\n`);
  }
}
