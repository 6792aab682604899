/**
 * A LoRA adapter in PEFT's format: `adapter_config.json` and `adapter_model.safetensors`, keyed as PEFT
 * saves an adapter on transformers' GPT2LMHeadModel (`base_model.model.transformer.h.0.attn.c_attn.
 * lora_A.weight`). GPT-2's layers are Conv1D ([in, out], PEFT's `fan_in_fan_out`), so with mcnc's
 * W + down @ up, lora_A.weight is down transposed ([r, in]) and lora_B.weight is up transposed ([out, r]),
 * at lora_alpha = r (a scale of one).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { transpose } from "../linalg.js";
import { DOWN, leafRank, matrixShape, UP, type LoraConfig } from "../methods/lora/index.js";
import type { LoadedModel } from "./model-file.js";
import { writeFolderAtomic } from "./atomic-write.js";
import { writeSafetensors } from "./write-safetensors.js";

/** PEFT's module path of an mcnc GPT leaf (`h.0.attn.c_attn.weight`), in GPT2LMHeadModel. */
const modulePath = (leaf: string) => `base_model.model.transformer.${leaf.replace(/\.weight$/, "")}`;

/** `adapter`, a LoRA adapter on a GPT, written at the new folder `out` in PEFT's format. */
export function writePeftAdapter(out: string, adapter: LoadedModel, baseName: string): void {
  if (!adapter.file.adapter || adapter.method.name !== "lora" || adapter.model.description.name !== "gpt") {
    throw new UserError(`PEFT's format holds LoRA adapters on a GPT; this file holds ${adapter.file.adapter ? `a ${adapter.method.name} adapter` : "no adapter"} on a ${adapter.model.name} (mcnc-lora and NOLA adapters cannot be expanded to PEFT's LoRA yet)`);
  }
  const config = adapter.config as LoraConfig;
  const specs = adapter.model.specs.filter((s) => config.compress.includes(s.name));
  const ranks = new Set(specs.map((s) => leafRank(config, s.name)));
  if (ranks.size !== 1) throw new UserError("PEFT's format holds one rank for all layers; this adapter's ranks differ");
  const r = [...ranks][0]!;
  const tensors = specs.flatMap((s) => {
    const [rows, cols] = matrixShape(s.shape);
    const down = adapter.file.trainable[s.name + DOWN]!;
    const up = adapter.file.trainable[s.name + UP]!;
    return [
      { name: `${modulePath(s.name)}.lora_A.weight`, shape: [r, rows], data: Float32Array.from(transpose(down, rows, r)) },
      { name: `${modulePath(s.name)}.lora_B.weight`, shape: [cols, r], data: Float32Array.from(transpose(up, r, cols)) },
    ];
  });
  const targets = [...new Set(specs.map((s) => s.name.split(".").at(-2)!))];
  const peftConfig = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r,
    lora_alpha: r,
    lora_dropout: 0,
    target_modules: targets,
    fan_in_fan_out: true,
    bias: "none",
    inference_mode: true,
    base_model_name_or_path: baseName,
  };
  writeFolderAtomic(out, (dir) => {
    writeFileSync(join(dir, "adapter_config.json"), `${JSON.stringify(peftConfig, null, 2)}\n`);
    writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  });
}
