/** A LLaMA-family description as a file header (or a Hugging Face config, mapped) gives it, checked field by field. */
import { UserError } from "../errors.js";
import { LLAMA_LIMITS, llamaParamCount } from "./llama.js";
import type { LlamaConfig } from "./model.js";

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const shown = (v: unknown) => JSON.stringify(v)?.slice(0, 40);

function positive(v: unknown, what: string, below = Infinity): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v >= below) throw new UserError(`${what} must be a positive number${below < Infinity ? ` below ${below}` : ""}, got ${shown(v)}`);
  return v;
}

function ropeScaling(v: unknown, what: string): LlamaConfig["ropeScaling"] {
  if (v === undefined) return undefined;
  if (!isRecord(v)) throw new UserError(`${what}.ropeScaling must be an object`);
  const s = {
    factor: positive(v.factor, `${what}.ropeScaling.factor`),
    lowFreqFactor: positive(v.lowFreqFactor, `${what}.ropeScaling.lowFreqFactor`),
    highFreqFactor: positive(v.highFreqFactor, `${what}.ropeScaling.highFreqFactor`),
    originalContext: positive(v.originalContext, `${what}.ropeScaling.originalContext`),
  };
  if (s.highFreqFactor <= s.lowFreqFactor) throw new UserError(`${what}.ropeScaling: highFreqFactor must exceed lowFreqFactor`);
  return s;
}

export function parseLlama(raw: Record<string, unknown>, what: string, maxParams: number): { name: "llama" } & LlamaConfig {
  const field = (name: keyof typeof LLAMA_LIMITS) => {
    const [lo, hi] = LLAMA_LIMITS[name];
    const v = raw[name];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new UserError(`${what}.${name} must be an integer from ${lo} to ${hi}, got ${shown(v)}`);
    return v as number;
  };
  if (!["none", "qkv", "qkvo"].includes(raw.attentionBias as string)) throw new UserError(`${what}.attentionBias must be none, qkv or qkvo, got ${shown(raw.attentionBias)}`);
  if (typeof raw.tied !== "boolean") throw new UserError(`${what}.tied must be true or false`);
  const d = {
    name: "llama" as const,
    layers: field("layers"),
    width: field("width"),
    heads: field("heads"),
    kvHeads: field("kvHeads"),
    headDim: field("headDim"),
    hidden: field("hidden"),
    context: field("context"),
    vocab: field("vocab"),
    ropeTheta: positive(raw.ropeTheta, `${what}.ropeTheta`),
    ...(raw.ropeScaling === undefined ? {} : { ropeScaling: ropeScaling(raw.ropeScaling, what) }),
    normEps: positive(raw.normEps, `${what}.normEps`, 1),
    attentionBias: raw.attentionBias as LlamaConfig["attentionBias"],
    tied: raw.tied,
  };
  if (d.heads % d.kvHeads !== 0) throw new UserError(`${what}: ${d.heads} heads are not a multiple of ${d.kvHeads} key/value heads`);
  if (d.headDim % 2 !== 0) throw new UserError(`${what}: rotary positions need an even head width, got ${d.headDim}`);
  const count = llamaParamCount(d);
  if (count > maxParams) throw new UserError(`${what}: ${count} parameters, above the limit of ${maxParams}`);
  return d;
}
