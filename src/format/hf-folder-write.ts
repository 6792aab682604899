/**
 * A Hugging Face model folder written back: the source folder's config and tokenizer files copied, the
 * weights in one model.safetensors under the source's own tensor names (with or without the prefix, the
 * tied head where it was saved), layouts and dtypes, so that transformers loads it as it loaded the source.
 */
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { fileSource } from "../files.js";
import type { HostParams } from "../model/params.js";
import { writeFolderAtomic } from "./atomic-write.js";
import { transpose } from "../linalg.js";
import { hfWeightFiles, leafName, readHfArchitecture } from "./hf-folder.js";
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

/** `dtype`: every tensor in this dtype instead of the source's. */
export function writeHfFolder(source: string, out: string, weights: HostParams, metadata: Record<string, string>, dtype?: SafetensorsDtype): void {
  const arch = readHfArchitecture(source);
  // The tied head, where the source saved it, is the embedding; buffers (the causal mask) are left out.
  const leafOf = (name: string) => (name === "lm_head.weight" && arch.tiedTo ? arch.tiedTo : leafName(arch, name));
  const tensors = sourceLayout(source).flatMap((t) => {
    const leaf = leafOf(t.name);
    const data = weights[leaf];
    if (!data) return [];
    const [rows, cols] = t.shape as [number, number];
    const laid = arch.transposed(leaf, t.shape) ? transpose(data, cols, rows, new Float32Array(data.length)) : data;
    return [{ ...t, dtype: dtype ?? t.dtype, data: laid }];
  });
  writeFolderAtomic(out, (dir) => {
    for (const name of CARRIED) if (existsSync(join(source, name))) copyFileSync(join(source, name), join(dir, name));
    writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt", ...metadata });
  });
}
