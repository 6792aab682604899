/**
 * What mcnc compare runs: one job per (method, budget, seed), with the references beside them (dense
 * and quantisation from scratch; or the base and full fine-tuning for adapters), and how a method is
 * held to a budget.
 */
import { UserError } from "../../errors.js";
import { findMethod, type Method } from "../../methods/index.js";

export interface Job {
  label: string;
  method: string;
  budget: string;
  values: Record<string, unknown>;
  seed: number;
  /** No training: the start weights as they are (the base row). */
  evaluateOnly?: boolean;
  /** Start from the dense run of the same seed (post-training compression), or from the base. */
  fromDense?: boolean;
  /** Train an adapter on the base. */
  adapter?: boolean;
  /** Also store at 8 bits and measure that file (a row of its own, no extra training). */
  alsoEightBit?: boolean;
}

export interface Plan {
  /** Adapters on a base rather than networks from scratch. */
  adapters: boolean;
  methods: string[];
  ratios: number[];
  seeds: number[];
  quantBits: number[];
}

export function planJobs({ adapters, methods, ratios, seeds, quantBits }: Plan): Job[] {
  const budgeted = (extra: Partial<Job>, method: string) =>
    ratios.flatMap((ratio) => seeds.map((seed): Job => ({ label: method, method, budget: `${ratio}x`, values: { ratio }, seed, ...extra })));
  if (adapters) {
    return [
      { label: "base (no adapter)", method: "dense", budget: "-", values: {}, seed: seeds[0]!, evaluateOnly: true },
      ...seeds.map((seed): Job => ({ label: "full fine-tuning", method: "dense", budget: "1x", values: {}, seed, fromDense: true })),
      ...methods.flatMap((method) => budgeted({ adapter: true }, method)),
    ];
  }
  return [
    ...seeds.map((seed): Job => ({ label: "dense", method: "dense", budget: "1x", values: {}, seed })),
    // Every method whose file holds its own float numbers (latents, coefficients, factors) is also
    // measured stored at 8 bits; pruning's survivors and quantisation's codes are an encoding already.
    ...methods.flatMap((method) => budgeted({ alsoEightBit: !findMethod(method)?.codec }, method)),
    ...quantBits.flatMap((bits) =>
      seeds.flatMap((seed): Job[] => [
        { label: "quant (QAT)", method: "quant", budget: `${bits}-bit`, values: { bits }, seed },
        { label: "quant (post-training)", method: "quant", budget: `${bits}-bit`, values: { bits }, seed, fromDense: true },
      ]),
    ),
  ];
}

/**
 * Flag values that hold `method` to `ratio`: its own --ratio, or else the largest --rank whose stored
 * numbers fit the budget (LoRA, whose size only the rank sets). Throws UserError when out of reach.
 */
export function budgetValues(method: Method, ratio: number, storedFor: (values: Record<string, unknown>) => number, params: number): Record<string, unknown> {
  if (method.options.some((o) => o.name === "ratio")) return { ratio };
  let best: number | null = null;
  for (let rank = 1; rank <= 4096; rank++) {
    let stored: number;
    try {
      stored = storedFor({ rank });
    } catch {
      break;
    }
    if (stored > params / ratio) break;
    best = rank;
  }
  if (best === null) throw new UserError(`--ratio ${ratio} is out of reach: rank 1 already stores more`);
  return { rank: best };
}
