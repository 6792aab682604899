/**
 * What mcnc compare runs: its flags read into a plan (methods, budgets, seeds, length, training-set
 * sizes), one job per (method, budget, seed), with the references beside them (dense and quantisation
 * from scratch; or the base and full fine-tuning for adapters), how a method is held to a budget, and
 * how long the jobs left will take.
 */
import { UserError } from "../../errors.js";
import { findMethod, methodNames, type Method } from "../../methods/index.js";
import type { CompareFlags } from "./compare.js";

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

function list<T>(raw: string | undefined, fallback: T[], parse: (s: string) => T, flag: string, allowEmpty = false): T[] {
  if (raw === undefined) return fallback;
  const parts = raw.split(",").filter((p) => p !== "");
  const out = parts.map(parse);
  if ((out.length === 0 && !allowEmpty) || out.some((v) => typeof v === "number" && !Number.isFinite(v))) throw new UserError(`--${flag} must be a comma-separated list`);
  return out;
}

/** The comparison the flags ask for, each list checked (`adapters`: on a base, with --init). */
export function readPlan(f: CompareFlags, adapters: boolean): Omit<Plan, "adapters"> & { epochs?: number; steps?: number; limits: number[] } {
  const defaults = adapters ? ["lora", "nola", "mcnc-lora", "mcnc"] : ["mcnc", "mcnc-lora", "nola", "pranc", "prune"];
  const methods = list(f.methods, defaults, String, "methods");
  for (const m of methods) {
    const method = findMethod(m);
    if (!method) throw new UserError(`--methods: unknown method '${m}' (choose from ${methodNames().join(", ")})`);
    if (adapters && !method.adapterValues) throw new UserError(`--methods: ${m} has no adapter form (full fine-tuning runs as the reference)`);
    if (!method.options.some((o) => o.name === "ratio" || o.name === "rank")) throw new UserError(`--methods: ${m} has no --ratio or --rank, so it cannot be held to a budget (quant runs through --quant-bits)`);
  }
  const quantBits = adapters ? [] : list(f["quant-bits"], [8, 4, 2], Number, "quant-bits", true);
  for (const bits of quantBits) {
    try {
      findMethod("quant")!.configure({ bits }, []);
    } catch (e) {
      throw new UserError(`--quant-bits: ${(e as Error).message}`);
    }
  }
  const ratios = list(f.ratios, adapters ? [1000, 10000] : [200, 100, 50], Number, "ratios");
  if (ratios.some((r) => !(r > 1))) throw new UserError("--ratios must all be above 1");
  const seeds = list(f.seeds, [0, 1], Number, "seeds");
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UserError("--seeds must be non-negative integers");
  if (f.epochs !== undefined && f.steps !== undefined) throw new UserError("give --epochs or --steps, not both");
  const steps = f.steps;
  const epochs = steps === undefined ? (f.epochs ?? (adapters ? 1 : 3)) : undefined;
  if (f.limits !== undefined && f.limit !== undefined) throw new UserError("give --limit or --limits, not both");
  if (f.limits !== undefined && adapters) throw new UserError("--limits applies to image data, not to adapters on a language model");
  const limits = list(f.limits, [f.limit ?? 0], (v) => (v === "all" ? 0 : Number(v)), "limits");
  if (limits.some((l) => !Number.isInteger(l) || l < 0)) throw new UserError("--limits must be sample counts (or 'all'), comma-separated");
  return { methods, quantBits, ratios, seeds, epochs, steps, limits };
}

/**
 * Time left, from the runs done so far: each method's seconds per step where it has run, else the mean
 * of those that have (methods differ: PRANC's steps cost several of MCNC's).
 */
export class TimeLeft {
  readonly #pace = new Map<string, { seconds: number; steps: number }>();
  record(method: string, steps: number, seconds: number): void {
    const p = this.#pace.get(method) ?? { seconds: 0, steps: 0 };
    this.#pace.set(method, { seconds: p.seconds + seconds, steps: p.steps + steps });
  }
  /** Seconds for `jobs` of `steps` steps each; undefined before any run has finished. */
  estimate(jobs: readonly Job[], steps: number): number | undefined {
    const paces = [...this.#pace.values()].map((p) => p.seconds / p.steps);
    if (paces.length === 0) return undefined;
    const mean = paces.reduce((a, b) => a + b, 0) / paces.length;
    return jobs.filter((j) => !j.evaluateOnly).reduce((sum, j) => sum + steps * ((p) => (p ? p.seconds / p.steps : mean))(this.#pace.get(j.method)), 0);
  }
}
