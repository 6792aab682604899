/** What compress's flags for models mcnc did not write mean, checked: image preparation, and which calibration each format takes. */
import type { Compressor } from "../../compress/compressor.js";
import type { ImagePrep } from "../../data/model-inputs.js";
import { UserError } from "../../errors.js";
import { STORES } from "../../format/foreign-model.js";
import type { FlagValues } from "../args.js";

/** How images become an ONNX model's input (compress's --calib and --eval, predict's --image). */
export const IMAGE_PREP_FLAGS = [
  { name: "input-size", type: "string", help: "ONNX and TF.js with images: HxW the images are resized to (where the model leaves it free)" },
  { name: "mean", type: "string", help: "with images: per-channel mean subtracted from pixels scaled to [0, 1], e.g. 0.485,0.456,0.406", defaultText: "0" },
  { name: "std", type: "string", help: "with images: per-channel divisor after the mean", defaultText: "1" },
  { name: "bgr", type: "bool", help: "with images: feed channels in BGR order" },
] as const;

function numbers(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map(Number);
  if (parts.length === 0 || parts.length > 4 || parts.some((n) => !Number.isFinite(n))) throw new UserError(`--${flag} takes one number or one per channel (e.g. 0.5 or 0.485,0.456,0.406), got ${value.slice(0, 60)}`);
  return parts;
}

export function imagePrep(f: FlagValues<typeof IMAGE_PREP_FLAGS>): ImagePrep {
  const prep: ImagePrep = {};
  if (f["input-size"] !== undefined) {
    const m = /^(\d{1,5})x(\d{1,5})$/.exec(f["input-size"]);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[1]) > 4096 || Number(m[2]) > 4096) throw new UserError(`--input-size takes HxW from 1x1 to 4096x4096 (e.g. 48x320), got ${f["input-size"].slice(0, 40)}`);
    prep.size = [Number(m[1]), Number(m[2])];
  }
  const [mean, std] = [numbers("mean", f.mean), numbers("std", f.std)];
  if (std?.some((s) => s === 0)) throw new UserError("--std must not be 0");
  return { ...prep, ...(mean ? { mean } : {}), ...(std ? { std } : {}), ...(f.bgr ? { bgr: true } : {}) };
}

/** Flags for a model mcnc runs in its own runtime (ONNX in onnxruntime, TF.js graph models in TF.js). */
export const RUN_FLAGS = ["eval", "input-size", "mean", "std", "bgr"] as const;
/** Flags for ONNX output only. */
const ONNX_OUTPUT = ["float", "qdq"] as const;
export const FOREIGN_ONLY = [...RUN_FLAGS, ...ONNX_OUTPUT] as const;

/** Calibration and --eval for a model mcnc did not write: which methods and formats take them. */
export function checkForeignCalibration(format: string, compressor: Compressor, f: Partial<Record<(typeof FOREIGN_ONLY)[number], unknown>> & { store?: string; calib?: string; "calib-samples"?: number }): void {
  const name = compressor.name;
  if (compressor.restructure) throw new UserError(`--method ${name} reshapes networks mcnc runs (its .mcnc files), not ${format} models`);
  if (compressor.calibrated === "gradients") throw new UserError(`--method ${name} weighs weights by loss gradients, and a model mcnc did not write has no loss to differentiate: use gptq, wanda, rom or eora with --calib DIR`);
  if (f.store !== undefined && !STORES[format as keyof typeof STORES]?.includes(f.store)) {
    throw new UserError(`--store ${f.store} does not apply to ${format}${format === "onnx" ? ": ONNX output keeps codes and factors in compact forms (or dense with --float)" : ` (it takes ${STORES[format as keyof typeof STORES]!.join(", ")})`}`);
  }
  for (const flag of format === "onnx" ? [] : ONNX_OUTPUT) if (f[flag] !== undefined) throw new UserError(`--${flag} applies to ONNX output (this is ${format})`);
  if (format === "safetensors") {
    if (compressor.calibrated) throw new UserError(`--method ${name} calibrates on the model's inputs, which mcnc runs for ONNX and TF.js graph models (a safetensors file holds no graph): use svd, rtn or magnitude`);
    for (const flag of RUN_FLAGS) if (f[flag] !== undefined) throw new UserError(`--${flag} applies to ONNX and TF.js models, which mcnc can run (this is safetensors)`);
    return;
  }
  if (compressor.calibrated && f.calib === undefined) throw new UserError(`--method ${name} is calibrated on the model's inputs: give --calib DIR (one .npy per model input, samples first, or a folder of images)`);
  if (!compressor.calibrated && (f.calib !== undefined || f["calib-samples"] !== undefined)) throw new UserError(`--method ${name} uses no calibration data (drop --calib and --calib-samples)`);
}

/** `names` without those --keep names. */
export function kept(names: string[], keep: string | undefined): string[] {
  if (keep === undefined) return names;
  const parts = keep.split(",").filter((p) => p !== "");
  for (const p of parts) if (!names.some((n) => n.includes(p))) throw new UserError(`--keep ${p.slice(0, 100)} matches none of the tensors to compress (mcnc inspect MODEL lists them)`);
  const left = names.filter((n) => !parts.some((p) => n.includes(p)));
  if (left.length === 0) throw new UserError("--keep leaves nothing to compress");
  return left;
}

/** A compressor that reshapes a network writes .mcnc (the new shape is in its header) and takes the whole network. */
export function checkReshaping(name: string, out: string, f: { compress?: string; keep?: string }): void {
  if (!out.endsWith(".mcnc")) throw new UserError(`--method ${name} makes a smaller network, written as .mcnc with its new shape in the header`);
  for (const flag of ["compress", "keep"] as const) if (f[flag] !== undefined) throw new UserError(`--${flag} does not apply to --method ${name}, which reshapes the whole network`);
}
