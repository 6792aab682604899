/**
 * GPTQ (Frantar et al. 2022, arXiv 2210.17323): quantise one input row of W [in, out] at a time and
 * spread its rounding error over the rows not yet quantised, weighted by the inverse Hessian of the
 * layer's reconstruction error, H = X^T X on calibration inputs. Same grid and file as `rtn`, so its
 * error on the calibration outputs is never worse than rounding to nearest (up to the damping).
 */
import { UserError } from "../../../errors.js";
import { configureGrid, groupScale, quantizeValue, quantTensors, rowGroups, type QuantCodes } from "../../../methods/quant/index.js";
import { type CompressedLeaf, type Compressor, type LeafToCompress } from "../../compressor.js";
import { cholesky, inverseFromCholesky } from "../../../linalg.js";
import { QUANTIZE_OPTIONS, quantizeStorage, type QuantizeConfig } from "../../quantize.js";

/** The paper's damping: 1% of the mean diagonal, added so that H is safely positive definite. */
const DAMP = 0.01;

/** Upper Cholesky factor U of H^-1 (U^T U = H^-1), damping more until H factors. */
function inverseHessianFactor(h: Float64Array, n: number): Float64Array {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i]! / n;
  for (let damp = DAMP; damp <= 1e4; damp *= 10) {
    const H = Float64Array.from(h);
    for (let i = 0; i < n; i++) H[i * n + i]! += damp * mean;
    const L = cholesky(H, n);
    const Li = L && cholesky(inverseFromCholesky(L, n), n);
    if (!Li) continue;
    const U = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) U[i * n + j] = Li[j * n + i]!;
    return U;
  }
  throw new UserError("the calibration inputs' second moment is not positive definite even with heavy damping");
}

export const gptq: Compressor<QuantizeConfig> = {
  name: "gptq",
  summary: "GPTQ: quantisation with Hessian-weighted error feedback (calibrated)",
  options: QUANTIZE_OPTIONS,
  calibrated: "inputs",
  columnwise: true,
  configure: configureGrid,
  compressLeaf: (config, leaf) => gptqLeaf(config, leaf),
  storage: (config, _compressed, compress) => quantizeStorage(config, compress),
};

/**
 * GPTQ on one leaf (its input moments given): on the whole matrix, or, for a grouped Conv, on each
 * group's block of columns with that group's own moment.
 */
export function gptqLeaf(config: QuantizeConfig, { spec, rows, cols, weight, moments }: LeafToCompress): CompressedLeaf {
  const groups = rowGroups(rows, config.group);
  const q: QuantCodes = { codes: new Uint8Array(rows * cols), mins: new Float32Array(groups.length * cols), steps: new Float32Array(groups.length * cols) };
  const out = new Float32Array(rows * cols);
  const W = Float64Array.from(weight);
  const blocks = moments!.columnGroups ?? [moments!.hessian];
  const width = cols / blocks.length;
  blocks.forEach((h, b) => gptqColumns(config, h, W, [rows, cols], [b * width, (b + 1) * width], q, out));
  return { stored: quantTensors(spec.name, [rows, cols], q, config.bits), weight: out };
}

/** GPTQ on columns [c0, c1) of W [rows, cols] (changed in place by the error feedback), under moment `h`; codes and weights into q and out. */
function gptqColumns({ bits, group }: QuantizeConfig, h: Float64Array, W: Float64Array, [rows, cols]: [number, number], [c0, c1]: [number, number], q: QuantCodes, out: Float32Array): void {
  const H = Float64Array.from(h);
  // An input never seen in calibration carries no error signal: its weights do not matter there.
  for (let i = 0; i < rows; i++) {
    if (H[i * rows + i] === 0) {
      H[i * rows + i] = 1;
      W.fill(0, i * cols + c0, i * cols + c1);
    }
  }
  const U = inverseHessianFactor(H, rows);
  const groups = rowGroups(rows, group);
  const err = new Float64Array(cols);
  let g = -1;
  for (let i = 0; i < rows; i++) {
    // Scales from the weights as error feedback has left them when their group starts.
    if (g + 1 < groups.length && groups[g + 1]![0] === i) {
      g++;
      const [a, b] = groups[g]!;
      for (let c = c0; c < c1; c++) {
        const { min, step } = groupScale(W, cols, c, a, b, bits);
        q.mins[g * cols + c] = min;
        q.steps[g * cols + c] = step;
      }
    }
    const d = U[i * rows + i]!;
    for (let c = c0; c < c1; c++) {
      const { code, value } = quantizeValue(W[i * cols + c]!, q.mins[g * cols + c]!, q.steps[g * cols + c]!, bits);
      q.codes[i * cols + c] = code;
      out[i * cols + c] = value;
      err[c] = (W[i * cols + c]! - value) / d;
    }
    for (let j = i + 1; j < rows; j++) {
      const u = U[i * rows + j]!;
      if (u === 0) continue;
      const o = j * cols;
      for (let c = c0; c < c1; c++) W[o + c]! -= err[c]! * u;
    }
  }
}
