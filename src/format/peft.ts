/**
 * A LoRA adapter in PEFT's format: `adapter_config.json` and `adapter_model.safetensors`, keyed as PEFT
 * saves an adapter on transformers' GPT2LMHeadModel or LlamaForCausalLM (`base_model.model.transformer.
 * h.0.attn.c_attn.lora_A.weight`, `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
 * With mcnc's W + down @ up (W [in, out]), lora_A.weight is down transposed ([r, in]) and lora_B.weight
 * is up transposed ([out, r]) for either layout, at lora_alpha = r (a scale of one): GPT-2's Conv1D
 * layers are [in, out] (PEFT's `fan_in_fan_out`), LLaMA's Linear layers [out, in].
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { transpose } from "../linalg.js";
import { matrixShape } from "../methods/lora/index.js";
import type { LoadedModel } from "./model-file.js";
import { writeFolderAtomic } from "./atomic-write.js";
import { TRANSFORMERS_LAYOUTS } from "./hf-config.js";
import { writeSafetensors } from "./write-safetensors.js";


/**
 * `adapter`, an adapter on a GPT or LLaMA whose update is LoRA factors (lora; mcnc-lora and NOLA, their
 * factors expanded from the seed), written at the new folder `out` in PEFT's format.
 */
export async function writePeftAdapter(out: string, adapter: LoadedModel, baseName: string): Promise<void> {
  const layout = TRANSFORMERS_LAYOUTS[adapter.model.description.name];
  const { method } = adapter;
  if (!adapter.file.adapter || !method.loraFactors || !layout) {
    throw new UserError(`PEFT's format holds LoRA adapters on a GPT or LLaMA; this file holds ${adapter.file.adapter ? `a ${method.name} adapter` : "no adapter"} on a ${adapter.model.name} (lora, mcnc-lora and nola adapters expand to LoRA)`);
  }
  const factors = await method.loraFactors(adapter.config, adapter.specs, adapter.file.trainable, adapter.file.seed);
  const ranks = new Set(factors.map((f) => f.rank));
  if (ranks.size !== 1) throw new UserError("PEFT's format holds one rank for all layers; this adapter's ranks differ");
  const r = [...ranks][0]!;
  // PEFT's module path of a leaf (`h.0.attn.c_attn.weight`) in the model transformers builds.
  const modulePath = (leaf: string) => (leaf.startsWith("lm_head.") ? "base_model.model." : `base_model.model.${layout.body}`) + leaf.replace(/\.weight$/, "");
  const tensors = factors.flatMap(({ leaf, down, up }) => {
    const [rows, cols] = matrixShape(adapter.model.specs.find((s) => s.name === leaf)!.shape);
    return [
      { name: `${modulePath(leaf)}.lora_A.weight`, shape: [r, rows], data: transpose(down, rows, r, new Float32Array(rows * r)) },
      { name: `${modulePath(leaf)}.lora_B.weight`, shape: [cols, r], data: transpose(up, r, cols, new Float32Array(r * cols)) },
    ];
  });
  const targets = [...new Set(factors.map((f) => f.leaf.split(".").at(-2)!))];
  const peftConfig = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r,
    lora_alpha: r,
    lora_dropout: 0,
    target_modules: targets,
    fan_in_fan_out: layout.conv1d,
    bias: "none",
    inference_mode: true,
    base_model_name_or_path: baseName,
  };
  writeFolderAtomic(out, (dir) => {
    writeFileSync(join(dir, "adapter_config.json"), `${JSON.stringify(peftConfig, null, 2)}\n`);
    writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  });
}
