/**
 * Additive vector quantisation (AQLM's form, codebooks.ts) as a file method: an encoding of the weights.
 * Trained dense and encoded without data at the end (`mcnc train --method vq`), or written calibrated
 * by `mcnc compress --method vq`.
 */
import { UserError } from "../../errors.js";
import { sizeOf, type ParamSpec, type Params } from "../../model/params.js";
import { chooseCompressed, decodeLeafwise, encodeLeafwise, trainsTheWeights } from "../leaves.js";
import { matrixShape } from "../lora/index.js";
import { type Method, type OptionValues, type StoredReader, type StoredTensor } from "../method.js";
import { decodeVq, encodeVq, type VqLeaf, type VqShape } from "./codebooks.js";

export interface VqConfig extends VqShape {
  compress: string[];
}

export const VQ_DEFAULTS = { codebooks: 2, codeBits: 8, group: 8, iterations: 10 } as const;
/** Code widths the file stores (packed codes of 1, 2, 3, 4 or 8 bits). */
const CODE_BITS = [1, 2, 3, 4, 8];

const int = (v: unknown, fallback: number, lo: number, hi: number, flag: string): number => {
  const x = v ?? fallback;
  if (!(typeof x === "number" && Number.isInteger(x) && x >= lo && x <= hi)) throw new UserError(`--${flag} must be an integer from ${lo} to ${hi}, got ${String(x)}`);
  return x;
};

/** Codebook counts and widths, checked; `bits` per weight, where given, picks the codebooks: bits * group / code bits. */
export function vqShape(values: OptionValues): VqShape {
  // Flags say --code-bits; a file's header stores the configuration's own field name.
  const codeBits = int(values["code-bits"] ?? values.codeBits, VQ_DEFAULTS.codeBits, 1, 8, "code-bits");
  if (!CODE_BITS.includes(codeBits)) throw new UserError(`--code-bits must be one of ${CODE_BITS.join(", ")} (codebooks of 2 to 256 entries), got ${codeBits}`);
  const group = int(values.group, VQ_DEFAULTS.group, 1, 64, "group");
  if (values.bits !== undefined && values.codebooks !== undefined) throw new UserError("give --bits or --codebooks, not both");
  const bits = values.bits;
  if (bits !== undefined && !(typeof bits === "number" && Number.isInteger((bits * group) / codeBits) && bits > 0)) throw new UserError(`--bits ${String(bits)} is not a whole number of ${codeBits}-bit codes per group of ${group}`);
  const codebooks = bits !== undefined ? ((bits as number) * group) / codeBits : int(values.codebooks, VQ_DEFAULTS.codebooks, 1, 8, "codebooks");
  if (codebooks > 8) throw new UserError(`--bits ${String(bits)} needs ${codebooks} codebooks, more than 8`);
  return { codebooks, codeBits, group };
}

export const VQ_OPTIONS = [
  { name: "bits", type: "float" as const, help: "code bits per weight, codebooks * code bits / group (instead of --codebooks)" },
  { name: "codebooks", type: "int" as const, help: `codebooks summed per group (default ${VQ_DEFAULTS.codebooks})` },
  { name: "code-bits", type: "int" as const, help: `bits of each code, 1-4 or 8: codebooks of 2^bits entries (default ${VQ_DEFAULTS.codeBits})` },
  { name: "group", type: "int" as const, help: `consecutive input weights per group (default ${VQ_DEFAULTS.group})` },
];

/** Why a [rows, cols] matrix cannot be vector quantised in groups of `group`, if it cannot. */
export function vqSkips(s: VqShape, rows: number): string | undefined {
  return rows % s.group !== 0 ? `its ${rows} inputs do not split into groups of ${s.group}` : undefined;
}

export function vqTensors(name: string, s: VqShape, leaf: VqLeaf, rows: number, cols: number): StoredTensor[] {
  return [
    { name: `${name}.codebooks`, shape: [s.codebooks, 2 ** s.codeBits, s.group], data: leaf.books },
    { name: `${name}.codes`, shape: [s.codebooks, rows / s.group, cols], codes: leaf.codes, bits: s.codeBits as 1 | 2 | 3 | 4 | 8 },
  ];
}

function decodeLeaf(spec: ParamSpec, s: VqShape, stored: StoredReader): Float32Array {
  const [rows, cols] = matrixShape(spec.shape);
  const books = stored.floats(`${spec.name}.codebooks`);
  const codes = stored.codes(`${spec.name}.codes`, s.codeBits);
  if (books.length !== s.codebooks * 2 ** s.codeBits * s.group || codes.length !== (s.codebooks * rows * cols) / s.group) throw new UserError(`${spec.name}: its codes or codebooks are not the configuration's shape`);
  return decodeVq(s, { books, codes }, rows, cols);
}

export const vq: Method<VqConfig> = {
  name: "vq",
  summary: "additive vector quantisation: groups of weights as sums of codewords from learned codebooks (AQLM's form)",
  options: [...VQ_OPTIONS, { name: "compress", type: "string", help: "leaves to quantise: 'weights' (default), 'all', or names a,b,c" }],
  defaultLearningRate: 1e-3,
  ...trainsTheWeights,
  configure(values, specs) {
    const shape = vqShape(values);
    const chosen = chooseCompressed(values.compress, specs);
    // By default a matrix whose inputs do not split into groups stays as it is (a 3x3 kernel over 3 channels); named, it is an error.
    const compress = chosen.filter((name) => {
      const why = vqSkips(shape, matrixShape(specs.find((s) => s.name === name)!.shape)[0]);
      if (why && values.compress !== undefined) throw new UserError(`--compress: ${name}: ${why}`);
      return !why;
    });
    return { ...shape, compress };
  },
  frozen: async () => ({}),
  // Trained dense; the codebooks are learned from the trained weights when the file is written.
  stages: () => [(_carry: Params, trainable: Params) => trainable],
  codec: {
    encode(config, specs, weights) {
      return encodeLeafwise(specs, config.compress, weights, (s, w) => {
        const [rows, cols] = matrixShape(s.shape);
        return vqTensors(s.name, config, encodeVq(config, w, rows, cols, VQ_DEFAULTS.iterations), rows, cols);
      });
    },
    decode: (config, specs, stored) => decodeLeafwise(specs, config.compress, stored, (s, read) => decodeLeaf(s, config, read)),
  },
  workingSet: () => 0,
  rebuildFlops: (config, specs) => specs.filter((s) => config.compress.includes(s.name)).reduce((n, s) => n + config.codebooks * sizeOf(s.shape), 0),
};
