/** Steps several commands take the same way: engine start, data loading, the size summary. */
import { UserError } from "../../errors.js";
import { initEngine } from "../../engine/engine.js";
import { DEFAULT_DATA_DIR, loadDataset, type Dataset } from "../../data/dataset.js";
import type { LoadedModel, TimedRebuild } from "../../format/model-file.js";
import { sizeReport, type SizeReport } from "../../format/size-report.js";
import { countParams } from "../../model/params.js";
import { round } from "../command.js";

export async function startEngine(flags: Record<string, unknown>): Promise<void> {
  try {
    await initEngine({ threads: flags.threads as number | undefined });
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`--threads: ${e.message}`);
    throw e;
  }
}

export function dataFrom(flags: Record<string, unknown>, limits: { trainLimit?: number; testLimit?: number }): Dataset {
  if (flags.data !== undefined && flags.dataset !== undefined) throw new UserError("give --dataset or --data, not both");
  return loadDataset((flags.data as string | undefined) ?? DEFAULT_DATA_DIR, limits);
}

export function checkDataFits(data: Dataset, loaded: LoadedModel): void {
  const { input, classes } = loaded.file.model;
  if (data.imageShape.some((d, i) => d !== input[i]) || data.numClasses > classes) {
    throw new UserError(
      `the data (${data.imageShape.join("x")}, ${data.numClasses} classes) does not fit this model (${input.join("x")}, ${classes} classes)`,
    );
  }
}

export function fileSize(loaded: LoadedModel): SizeReport {
  return sizeReport(countParams(loaded.model.specs), loaded.stored.map((t) => ({ ...t, dtype: loaded.storage[t.name] })), loaded.bytes);
}

export function sizeLines(r: SizeReport): string[] {
  return [
    `parameters       ${r.params}`,
    `stored numbers   ${r.stored_params}  (${round(r.param_ratio, 1)}x fewer${r.coded_params > 0 ? `; ${r.coded_params} of them integer codes of 1-8 bits` : ""})`,
    `file             ${r.file_bytes} bytes  (${round(r.bits_per_param, 3)} bits per parameter, ${round(r.byte_ratio, 1)}x smaller than float32)`,
  ];
}

export function jsonSize(r: SizeReport): Record<string, number> {
  return { ...r, bits_per_param: round(r.bits_per_param, 5), param_ratio: round(r.param_ratio, 3), byte_ratio: round(r.byte_ratio, 3) };
}

/** The counts and rebuild times every command that rebuilds a model reports. */
export function jsonReport(size: SizeReport, rebuilt: TimedRebuild): Record<string, number> {
  return { ...jsonSize(size), reconstruct_ms: round(rebuilt.warmMs, 3), reconstruct_cold_ms: round(rebuilt.coldMs, 3) };
}
