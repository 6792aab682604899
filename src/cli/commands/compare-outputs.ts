/**
 * A compressed model against its original on the user's own inputs, each run where it runs
 * (onnxruntime, TF.js): how far each output moved (largest and mean absolute difference), and where
 * its last axis holds a vector (scores, an embedding), how often the top-1 stays the same and the mean
 * cosine between the two vectors; and both models' latency, measured in the same run with the two
 * taking turns batch by batch.
 */
import type { ModelInputs } from "../../data/model-inputs.js";
import { feedValues, type Feed, type ModelSession } from "../../engine/model-session.js";
import { round } from "../command.js";

export interface OutputChange {
  name: string;
  max_abs_diff: number;
  mean_abs_diff: number;
  /** Where the last axis holds two or more scores: the share of positions whose argmax agrees. */
  top1_agreement?: number;
  /** There too: the mean over positions of the cosine between the two vectors. */
  mean_cosine?: number;
}

export interface Quality {
  samples: number;
  outputs: OutputChange[];
  /** Median milliseconds per run of `batch` samples, each model on the same batches. */
  latency_ms: { original: number; compressed: number; batch: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** The two sessions are closed when it returns. */
export async function compareOutputs(sessions: readonly [original: ModelSession, compressed: ModelSession], inputs: ModelInputs): Promise<Quality> {
  const times: [number[], number[]] = [[], []];
  const acc = new Map<string, { max: number; sum: number; count: number; agree: number; cosine: number; positions: number }>();
  try {
    for (let from = 0, turn = 0; from < inputs.samples; from += inputs.batchSize, turn++) {
      const feeds = inputs.batch(from, Math.min(inputs.samples, from + inputs.batchSize));
      const results: Array<Record<string, Feed>> = [];
      // Alternate which model runs first, so neither always finds the caches warm.
      for (const k of turn % 2 === 0 ? [0, 1] : [1, 0]) {
        const t = performance.now();
        results[k] = await sessions[k]!.run(feeds);
        times[k as 0 | 1].push(performance.now() - t);
      }
      for (const [name, a] of Object.entries(results[0]!)) {
        const b = results[1]![name];
        if (!b || a.type === "float16" || a.type === "bool") continue;
        const [x, y] = [feedValues(a), feedValues(b)];
        const s = acc.get(name) ?? { max: 0, sum: 0, count: 0, agree: 0, cosine: 0, positions: 0 };
        for (let i = 0; i < x.length; i++) {
          const d = Math.abs(x[i]! - y[i]!);
          s.max = Math.max(s.max, Number.isNaN(d) ? Infinity : d);
          s.sum += d;
        }
        s.count += x.length;
        const last = a.dims.at(-1) ?? 0;
        // An output shaped like an input is state carried to the next call (a recurrent model's), not scores.
        const state = Object.values(feeds).some((f) => f.dims.join() === a.dims.join());
        if (a.dims.length >= 2 && last >= 2 && a.type.startsWith("float") && !state) {
          for (let p = 0; p < x.length / last; p++) {
            s.agree += argmax(x, p * last, last) === argmax(y, p * last, last) ? 1 : 0;
            s.cosine += cosine(x, y, p * last, last);
            s.positions++;
          }
        }
        acc.set(name, s);
      }
    }
  } finally {
    for (const s of sessions) await s.close();
  }
  const outputs = [...acc.entries()].map(([name, s]) => ({
    name,
    max_abs_diff: round(s.max, 6),
    mean_abs_diff: round(s.sum / Math.max(1, s.count), 6),
    ...(s.positions > 0 ? { top1_agreement: round(s.agree / s.positions, 4), mean_cosine: round(s.cosine / s.positions, 6) } : {}),
  }));
  return { samples: inputs.samples, outputs, latency_ms: { original: round(median(times[0]), 2), compressed: round(median(times[1]), 2), batch: inputs.batchSize } };
}

function argmax(x: Float64Array, at: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[at + i]! > x[at + best]!) best = i;
  return best;
}

function cosine(x: Float64Array, y: Float64Array, at: number, n: number): number {
  let [xy, xx, yy] = [0, 0, 0];
  for (let i = at; i < at + n; i++) [xy, xx, yy] = [xy + x[i]! * y[i]!, xx + x[i]! * x[i]!, yy + y[i]! * y[i]!];
  return xx === 0 && yy === 0 ? 1 : xy / Math.sqrt(xx * yy || Infinity);
}

/** The quality lines a report prints. */
export function qualityLines(q: Quality): string[] {
  const lines = q.outputs.map((o) => `output ${o.name.padEnd(10)} max |diff| ${o.max_abs_diff}, mean |diff| ${o.mean_abs_diff}${o.top1_agreement !== undefined ? `, top-1 agreement ${(100 * o.top1_agreement).toFixed(1)}%, mean cosine ${o.mean_cosine}` : ""} (${q.samples} samples)`);
  lines.push(`latency          ${q.latency_ms.original} ms original, ${q.latency_ms.compressed} ms compressed (median per run of ${q.latency_ms.batch})`);
  return lines;
}
