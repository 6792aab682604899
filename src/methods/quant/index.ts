/**
 * Uniform affine quantisation of the weights at 8, 4, 3 or 2 bits, with one (min, step) pair per output
 * channel or per group of rows within a channel. Trained with quantisation in the loop (the forward
 * pass sees quantised weights, the gradient passes straight through to float weights: QAT), or
 * applied to trained weights with `--init FILE --epochs 0` (post-training quantisation). The file
 * stores the packed codes and the float32 (min, step) pairs.
 */
import { lax, numpy as np } from "@jax-js/jax";
import { UserError } from "../../errors.js";
import { sizeOf, type ParamSpec, type Params } from "../../model/params.js";
import { chooseCompressed, decodeLeafwise, encodeLeafwise, trainsTheWeights } from "../leaves.js";
import { matrixShape } from "../lora/index.js";
import { type Method, type OptionValues, type StoredReader, type StoredTensor } from "../method.js";

export interface QuantConfig {
  bits: 8 | 4 | 3 | 2;
  /** Rows per (min, step) pair within a column; 0: one pair per column (per channel). */
  group: number;
  compress: string[];
}

export const QUANT_DEFAULTS = { bits: 4, group: 0 } as const;
const BITS = [8, 4, 3, 2] as const;

/** --bits and --group, by the rules every quantised encoding shares (quant, quant-lora, rtn, gptq, eora). */
export function configureGrid(values: OptionValues): Pick<QuantConfig, "bits" | "group"> {
  const bits = values.bits ?? QUANT_DEFAULTS.bits;
  if (!BITS.includes(bits as 8)) throw new UserError(`--bits must be one of ${BITS.join(", ")}, got ${String(bits)}`);
  const group = values.group ?? QUANT_DEFAULTS.group;
  if (typeof group !== "number" || !Number.isInteger(group) || group < 0) throw new UserError(`--group must be 0 (per channel) or a positive number of rows, got ${String(group)}`);
  return { bits: bits as QuantConfig["bits"], group };
}

function configureQuant(values: OptionValues, specs: readonly ParamSpec[]): QuantConfig {
  return { ...configureGrid(values), compress: chooseCompressed(values.compress, specs) };
}

/** Row ranges [from, to) that share a (min, step) pair: groups of `group` rows, the last maybe shorter. */
export function rowGroups(rows: number, group: number): Array<[number, number]> {
  const size = group === 0 || group >= rows ? rows : group;
  const out: Array<[number, number]> = [];
  for (let from = 0; from < rows; from += size) out.push([from, Math.min(rows, from + size)]);
  return out;
}

/** Round half to even, as jax-js's round does: host codes and in-training codes agree. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantise-dequantise rows [rows, cols] of one group in float32, with the straight-through gradient.
 * Consumes x.
 */
function fakeQuant(x: np.Array, bits: number): np.Array {
  const levels = 2 ** bits - 1;
  const lo = x.ref.min(0, { keepdims: true });
  const step = x.ref.max(0, { keepdims: true }).sub(lo.ref).div(levels);
  const safe = np.where(step.ref.greater(0), step.ref, 1);
  const q = np.clip(np.round(x.ref.sub(lo.ref).div(safe)), 0, levels).mul(step).add(lo);
  return x.ref.add(lax.stopGradient(q.sub(x)));
}

/** A matrix's codes and its (min, step) per group and column. */
export interface QuantCodes {
  codes: Uint8Array;
  mins: Float32Array;
  steps: Float32Array;
}

/** (min, step) of the values w[r * cols + c] for rows [a, b) of column c, as fakeQuant computes them. */
export function groupScale(w: ArrayLike<number>, cols: number, c: number, a: number, b: number, bits: number): { min: number; step: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let r = a; r < b; r++) {
    lo = Math.min(lo, w[r * cols + c]!);
    hi = Math.max(hi, w[r * cols + c]!);
  }
  // fakeQuant's float32 arithmetic, so trained and stored codes agree (but for a weight within
  // rounding of a tie: jax-js divides a little differently).
  return { min: Math.fround(lo), step: Math.fround(Math.fround(hi - lo) / (2 ** bits - 1)) };
}

/** The code of value v on the grid (min, step), and the value a reader gets back for it. */
export function quantizeValue(v: number, min: number, step: number, bits: number): { code: number; value: number } {
  const code = step > 0 ? Math.max(0, Math.min(2 ** bits - 1, roundEven(Math.fround(Math.fround(v - min) / step)))) : 0;
  return { code, value: Math.fround(Math.fround(code * step) + min) };
}

/** Round-to-nearest quantisation of a [rows, cols] matrix, per column and group of rows. */
export function quantizeMatrix(w: Float32Array, rows: number, cols: number, bits: number, group: number): QuantCodes {
  const groups = rowGroups(rows, group);
  const out: QuantCodes = { codes: new Uint8Array(rows * cols), mins: new Float32Array(groups.length * cols), steps: new Float32Array(groups.length * cols) };
  groups.forEach(([a, b], g) => {
    for (let c = 0; c < cols; c++) {
      const { min, step } = groupScale(w, cols, c, a, b, bits);
      out.mins[g * cols + c] = min;
      out.steps[g * cols + c] = step;
      for (let r = a; r < b; r++) out.codes[r * cols + c] = quantizeValue(w[r * cols + c]!, min, step, bits).code;
    }
  });
  return out;
}

/** The tensors a quant file stores for one leaf. */
export function quantTensors(leaf: string, [rows, cols]: [number, number], q: QuantCodes, bits: QuantConfig["bits"]): StoredTensor[] {
  return [
    { name: leaf + ".codes", shape: [rows, cols], codes: q.codes, bits },
    { name: leaf + ".min", shape: [q.mins.length / cols, cols], data: q.mins },
    { name: leaf + ".step", shape: [q.steps.length / cols, cols], data: q.steps },
  ];
}

/** One leaf's weights back from its codes and scales (validated against the matrix's shape). */
export function decodeQuantLeaf(leaf: string, [rows, cols]: [number, number], { bits, group }: Pick<QuantConfig, "bits" | "group">, read: StoredReader): Float32Array {
  const groups = rowGroups(rows, group);
  const codes = read.codes(leaf + ".codes", bits);
  const mins = read.floats(leaf + ".min");
  const steps = read.floats(leaf + ".step");
  if (codes.length !== rows * cols || mins.length !== groups.length * cols || steps.length !== mins.length) {
    throw new UserError(`${leaf}: stored codes or scales do not fit a ${rows}x${cols} matrix in ${groups.length} group(s)`);
  }
  const w = new Float32Array(rows * cols);
  groups.forEach(([a, b], g) => {
    for (let r = a; r < b; r++) {
      for (let c = 0; c < cols; c++) w[r * cols + c] = Math.fround(codes[r * cols + c]! * steps[g * cols + c]!) + mins[g * cols + c]!;
    }
  });
  return w;
}

export const quant: Method<QuantConfig> = {
  name: "quant",
  summary: "uniform quantisation at 8/4/3/2 bits, per channel or per group; QAT, or post-training with --epochs 0",
  options: [
    { name: "bits", type: "int", help: `bits per weight: ${BITS.join(", ")} (default ${QUANT_DEFAULTS.bits})` },
    { name: "group", type: "int", help: "rows sharing one (min, step) pair within a column; 0 (default): per channel" },
    { name: "compress", type: "string", help: "leaves to quantise: 'weights' (default), 'all', or names a,b,c" },
  ],
  defaultLearningRate: 1e-3,
  ...trainsTheWeights,
  configure: configureQuant,
  frozen: async () => ({}),

  stages(config, specs) {
    return [
      (_carry, trainable) => {
        const out: Params = {};
        for (const s of specs) {
          const w = trainable[s.name]!;
          if (!config.compress.includes(s.name)) {
            out[s.name] = w;
            continue;
          }
          const [rows, cols] = matrixShape(s.shape);
          const m = w.reshape([rows, cols]);
          const parts = rowGroups(rows, config.group).map(([a, b]) => fakeQuant(m.ref.slice([a, b]), config.bits));
          m.dispose();
          out[s.name] = (parts.length === 1 ? parts[0]! : np.concatenate(parts, 0)).reshape(s.shape);
        }
        return out;
      },
    ];
  },

  codec: {
    encode(config, specs, weights) {
      return encodeLeafwise(specs, config.compress, weights, (s, w) => {
        const [rows, cols] = matrixShape(s.shape);
        return quantTensors(s.name, [rows, cols], quantizeMatrix(w, rows, cols, config.bits, config.group), config.bits);
      });
    },

    decode(config, specs, stored) {
      return decodeLeafwise(specs, config.compress, stored, (s, read) => decodeQuantLeaf(s.name, matrixShape(s.shape), config, read));
    },
  },

  // Decoded on the host straight into the weights.
  workingSet: () => 0,
  rebuildFlops: (config, specs) => specs.filter((s) => config.compress.includes(s.name)).reduce((n, s) => n + 2 * sizeOf(s.shape), 0),
};
