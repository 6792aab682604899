/**
 * A Hugging Face model folder written back: the source folder's config and tokenizer files copied, the
 * weights in one model.safetensors under the source's own tensor names (with or without `transformer.`,
 * the tied head where it was saved) and dtypes, so that transformers loads it as it loaded the source.
 * Written into a temporary folder beside the target and renamed into place: whole or not at all.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { systemReason, UserError } from "../errors.js";
import { fileSource } from "../files.js";
import type { HostParams } from "../model/params.js";
import { hfWeightFiles, leafName } from "./hf-folder.js";
import { readSafetensors, type SafetensorsDtype } from "./safetensors.js";
import { writeSafetensors } from "./write-safetensors.js";

/** Files of a model folder that are not weights: copied as they are. */
const CARRIED = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"];

/** Each saved tensor's name, dtype and shape in the source folder, in its order. */
function sourceLayout(dir: string): Array<{ name: string; dtype: SafetensorsDtype; shape: number[] }> {
  return hfWeightFiles(dir).flatMap((file) => {
    const source = fileSource(file);
    try {
      return readSafetensors(source, file).entries.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    } finally {
      source.close?.();
    }
  });
}

/** Refuse an output folder that exists: a model folder is not merged into another. */
export function checkNewFolder(out: string, flag: string): void {
  if (existsSync(out)) throw new UserError(`${flag} ${out} exists: give a new folder`);
}

/** `dtype`: every tensor in this dtype instead of the source's. */
export function writeHfFolder(source: string, out: string, weights: HostParams, metadata: Record<string, string>, dtype?: SafetensorsDtype): void {
  checkNewFolder(out, "--out");
  // The tied head, where the source saved it, is the embedding; buffers (the causal mask) are left out.
  const tensors = sourceLayout(source)
    .map((t) => ({ ...t, dtype: dtype ?? t.dtype, data: weights[t.name === "lm_head.weight" ? "wte.weight" : leafName(t.name)] }))
    .filter((t): t is typeof t & { data: Float32Array } => t.data !== undefined);
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.${randomBytes(8).toString("hex")}.tmp`);
  try {
    mkdirSync(tmp, { recursive: true });
    for (const name of CARRIED) if (existsSync(join(source, name))) copyFileSync(join(source, name), join(tmp, name));
    writeSafetensors(join(tmp, "model.safetensors"), tensors, { format: "pt", ...metadata });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot write ${out}: ${systemReason(e)}`);
  }
}
