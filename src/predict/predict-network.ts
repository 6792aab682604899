/**
 * A model mcnc trained, run on a user's inputs: images or table rows prepared the way the file says
 * its training data was (its normalisation, its classes), or a prompt's next byte for a GPT.
 */
import { numpy as np, tree } from "@jax-js/jax";
import { compile, put, putAll, read } from "../engine/program.js";
import { UserError } from "../errors.js";
import { recordedOptions } from "../data/dataset.js";
import { prepareImage } from "../data/prepare-image.js";
import { languageDecoder } from "../generate/decoder.js";
import type { Model } from "../model/model.js";
import { toDevice, type HostParams, type Params } from "../model/params.js";
import { topK, type Ranked } from "./top-k.js";

export interface NetworkPrediction {
  sample: string;
  top: Ranked[];
}

/** Class rankings for `samples` (image files, or rows of numbers), prepared as `meta` records. */
export async function predictNetwork(model: Model, weights: HostParams, meta: Record<string, unknown> | undefined, samples: { files?: string[]; rows?: number[][] }, top: number): Promise<NetworkPrediction[]> {
  const d = model.description;
  if (d.name === "gpt" || d.name === "llama" || d.name === "sequential-lm" || d.name === "tensors") throw new UserError(`${model.name} does not classify images or rows`);
  const [h, w, c] = d.input;
  const { normalisation, classNames } = recordedOptions(meta);
  const x: Float32Array[] = [];
  const names: string[] = [];
  if (samples.files) {
    if (!normalisation || typeof normalisation.mean !== "number") throw new UserError("the file records no image normalisation: it was trained on a table, give --csv rows");
    if (c !== 1 && c !== 3) throw new UserError(`${model.name} takes ${c} channels a pixel: images give 1 or 3`);
    for (const f of samples.files) {
      x.push(prepareImage(f, [h, w], c, true, { mean: [normalisation.mean], std: [normalisation.std as number] }));
      names.push(f);
    }
  } else {
    const columns = h * w * c;
    const n = normalisation && Array.isArray(normalisation.mean) ? (normalisation as { mean: number[]; std: number[] }) : undefined;
    for (const [i, row] of (samples.rows ?? []).entries()) {
      if (row.length !== columns) throw new UserError(`row ${i + 1} has ${row.length} numbers; ${model.name} takes ${columns}`);
      x.push(Float32Array.from(row, (v, j) => (n ? (v - n.mean[j]!) / n.std[j]! : v)));
      names.push(`row ${i + 1}`);
    }
  }
  const run = compile((p: Params, batch: np.Array) => model.apply(p, batch), { name: `${model.name} predict` });
  const params = putAll(model.specs, weights);
  const out: NetworkPrediction[] = [];
  for (const [i, sample] of x.entries()) {
    const logits = await read(await run(tree.ref(params), put(sample, [1, h, w, c])));
    out.push({ sample: names[i]!, top: topK(logits, top, classNames) });
  }
  tree.dispose(params);
  return out;
}

/** A GPT's most likely next bytes after `prompt`. */
export async function predictNextByte(model: Model, weights: HostParams, prompt: Uint8Array, top: number): Promise<Ranked[]> {
  const lm = model.lm;
  if (!lm) throw new UserError(`--prompt needs a language model; this is a ${model.name}`);
  if (lm.vocab !== 256) throw new UserError(`predict --prompt ranks next bytes, for mcnc's byte-level GPT; this one reads ${lm.vocab} tokens (mcnc generate runs it)`);
  if (prompt.length === 0) throw new UserError("--prompt is empty");
  const decoder = languageDecoder(lm, toDevice(model.specs, weights));
  try {
    const logits = await decoder.prefill(prompt.subarray(Math.max(0, prompt.length - lm.context)));
    const show = (b: number) => (b > 32 && b < 127 ? String.fromCharCode(b) : b === 32 ? "' '" : `0x${b.toString(16).padStart(2, "0")}`);
    return topK(logits, top, Array.from({ length: logits.length }, (_, b) => show(b)));
  } finally {
    decoder.dispose();
  }
}
