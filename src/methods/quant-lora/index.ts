/**
 * Quantised weights plus a low-rank correction: each compressed leaf is its `quant` codes decoded,
 * plus down @ up. Written by `mcnc compress --method eora` (the correction fitted to the quantisation
 * error in the input activations' eigenspace); encoding trained weights here, without calibration
 * data, quantises to nearest and fits the correction to the error by truncated SVD.
 */
import { UserError } from "../../errors.js";
import { gram, matmul, symmetricEigen } from "../../linalg.js";
import { sizeOf, type ParamSpec } from "../../model/params.js";
import { chooseCompressed, decodeLeafwise, encodeLeafwise, trainsTheWeights } from "../leaves.js";
import { DOWN, matrixShape, UP } from "../lora/index.js";
import { memoryReader, registerMethod, type Method, type OptionValues, type StoredTensor } from "../method.js";
import { configureGrid, decodeQuantLeaf, QUANT_DEFAULTS, quantizeMatrix, quantTensors, type QuantConfig } from "../quant/index.js";

export interface QuantLoraConfig {
  bits: QuantConfig["bits"];
  group: number;
  /** Correction rank per compressed leaf, in model order. */
  ranks: number[];
  compress: string[];
}

function configure(values: OptionValues, specs: readonly ParamSpec[]): QuantLoraConfig {
  const { bits, group } = configureGrid(values);
  const compress = chooseCompressed(values.compress, specs);
  const given = values.ranks ?? (values.rank === undefined ? undefined : compress.map(() => values.rank));
  const ranks = (given ?? compress.map(() => 8)) as unknown[];
  if (!Array.isArray(ranks) || ranks.length !== compress.length) throw new UserError(`--ranks must list ${compress.length} ranks, one per compressed leaf`);
  compress.forEach((name, i) => {
    const [rows, cols] = matrixShape(specs.find((s) => s.name === name)!.shape);
    const r = ranks[i];
    if (!(typeof r === "number" && Number.isInteger(r) && r >= 1 && r <= Math.min(rows, cols))) throw new UserError(`correction rank ${String(r)} does not fit ${name} (${rows}x${cols})`);
  });
  return { bits, group, ranks: ranks as number[], compress };
}

/** Factors of `error` [rows, cols] projected on the top-r eigenvectors of `outputMoment`: error ~ (error V) V^T. */
export function correctionFactors(error: Float32Array, rows: number, cols: number, outputMoment: Float64Array, r: number): { down: Float32Array; up: Float32Array } {
  const { vectors } = symmetricEigen(outputMoment, cols);
  const V = new Float64Array(cols * r);
  for (let i = 0; i < cols; i++) for (let j = 0; j < r; j++) V[i * r + j] = vectors[i * cols + j]!;
  const up = new Float32Array(r * cols);
  for (let j = 0; j < r; j++) for (let i = 0; i < cols; i++) up[j * cols + i] = V[i * r + j]!;
  return { down: Float32Array.from(matmul(error, V, rows, cols, r)), up };
}

/** The correction's tensors, stored after the leaf's quant tensors. */
export function correctionTensors(leaf: string, [rows, cols]: [number, number], down: Float32Array, up: Float32Array): StoredTensor[] {
  const r = up.length / cols;
  return [
    { name: leaf + DOWN, shape: [rows, r], data: down },
    { name: leaf + UP, shape: [r, cols], data: up },
  ];
}

export const quantLora: Method<QuantLoraConfig> = {
  name: "quant-lora",
  summary: "quantised weights plus a low-rank correction (what mcnc compress --method eora writes)",
  options: [
    { name: "bits", type: "int", help: `bits per weight: 8, 4, 3 or 2 (default ${QUANT_DEFAULTS.bits})` },
    { name: "group", type: "int", help: "rows sharing one (min, step) pair within a column; 0 (default): per channel" },
    { name: "rank", type: "int", help: "correction rank for every leaf (default 8)" },
    { name: "ranks", type: "int-list", help: "a correction rank per compressed leaf, in model order" },
    { name: "compress", type: "string", help: "leaves to compress: 'weights' (default) or names a,b,c" },
  ],
  defaultLearningRate: 1e-3,
  ...trainsTheWeights,
  configure,
  frozen: async () => ({}),
  // Trained as dense weights; the encoding happens when the file is written.
  stages: () => [(_carry, trainable) => trainable],

  codec: {
    encode(config, specs, weights) {
      return encodeLeafwise(specs, config.compress, weights, (s, w) => {
        const [rows, cols] = matrixShape(s.shape);
        const q = quantizeMatrix(w, rows, cols, config.bits, config.group);
        const base = decodeQuantLeaf(s.name, [rows, cols], config.group, memoryReader(quantTensors(s.name, [rows, cols], q, config.bits)));
        const error = w.map((v, i) => v - base[i]!);
        const { down, up } = correctionFactors(error, rows, cols, gram(error, rows, cols), config.ranks[config.compress.indexOf(s.name)]!);
        return [...quantTensors(s.name, [rows, cols], q, config.bits), ...correctionTensors(s.name, [rows, cols], down, up)];
      });
    },
    decode(config, specs, stored) {
      return decodeLeafwise(specs, config.compress, stored, (s, read) => {
        const [rows, cols] = matrixShape(s.shape);
        const w = decodeQuantLeaf(s.name, [rows, cols], config.group, read);
        const down = read.floats(s.name + DOWN);
        const up = read.floats(s.name + UP);
        const r = config.ranks[config.compress.indexOf(s.name)]!;
        if (down.length !== rows * r || up.length !== r * cols) throw new UserError(`${s.name}: correction factors do not fit rank ${r} of a ${rows}x${cols} matrix`);
        const c = matmul(down, up, rows, r, cols);
        for (let i = 0; i < w.length; i++) w[i] = Math.fround(w[i]! + c[i]!);
        return w;
      });
    },
  },

  rebuildFlops: (config, specs) => specs.filter((s) => config.compress.includes(s.name)).reduce((n, s, i) => n + 2 * sizeOf(s.shape) * (1 + config.ranks[i]!), 0),
};

registerMethod(quantLora);
