/**
 * A PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) read as an mcnc LoRA
 * adapter on the base it is given: lora_A [r, in] becomes `down` transposed and lora_B [out, r] `up`
 * transposed, with PEFT's scale (lora_alpha / r, or / sqrt(r) with use_rslora) folded into `up`. PEFT
 * records no hash of its base, so the adapter is bound to the base given here; what PEFT computes
 * otherwise than W + B A * scale (DoRA, per-module ranks or alphas, trained biases, modules saved
 * whole) is refused in one line.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { fileSource, readJsonObject } from "../files.js";
import { transpose } from "../linalg.js";
import { findMethod } from "../methods/index.js";
import { DOWN, matrixShape, UP } from "../methods/lora/index.js";
import type { HostParams } from "../model/params.js";
import type { LoadedModel } from "./model-file.js";
import { TRANSFORMERS_LAYOUTS } from "./hf-config.js";
import { readSafetensors } from "./safetensors.js";
import { weightsHash } from "./weights-hash.js";

export const isPeftFolder = (path: string): boolean => existsSync(join(path, "adapter_config.json"));

/** The adapter's scale and rank, from its config; anything else PEFT would compute is refused. */
function peftConfig(dir: string): { rank: number; scale: number; fanInFanOut: boolean } {
  const c = readJsonObject(join(dir, "adapter_config.json"), "adapter_config.json", 1 << 20);
  const bad = (what: string) => new UserError(`${dir}/adapter_config.json: ${what}`);
  if (c.peft_type !== "LORA") throw bad(`peft_type ${JSON.stringify(c.peft_type)?.slice(0, 40)}: mcnc reads LoRA adapters`);
  const r = c.r;
  const alpha = c.lora_alpha ?? 8;
  if (!Number.isInteger(r) || (r as number) < 1 || (r as number) > 1 << 16) throw bad(`r must be a positive integer, got ${JSON.stringify(r)?.slice(0, 40)}`);
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw bad(`lora_alpha must be a number`);
  if (c.use_dora === true) throw bad("use_dora: DoRA rescales each column, which a LoRA product does not");
  if (c.bias !== undefined && c.bias !== "none") throw bad(`bias ${String(c.bias)}: the adapter trains biases, which mcnc's LoRA does not`);
  const filled = (v: unknown) => v !== undefined && v !== null && !(typeof v === "object" && Object.keys(v).length === 0);
  for (const name of ["rank_pattern", "alpha_pattern", "modules_to_save"]) if (filled(c[name])) throw bad(`${name}: per-module ranks, alphas and modules saved whole are not read`);
  const rank = r as number;
  return { rank, scale: c.use_rslora === true ? alpha / Math.sqrt(rank) : alpha / rank, fanInFanOut: c.fan_in_fan_out === true };
}

/** Tensor names as PEFT saves them: `base_model.model.<body><module>.lora_A[.default].weight`. */
const KEY = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/;

/** The PEFT adapter at `dir` as an mcnc LoRA adapter on `base` (whose weights are `baseWeights`). */
export function readPeftAdapter(dir: string, base: LoadedModel, baseWeights: HostParams): LoadedModel {
  const layout = TRANSFORMERS_LAYOUTS[base.model.description.name];
  if (!layout) throw new UserError(`a PEFT adapter applies to a GPT or LLaMA; the base is a ${base.model.name}`);
  const { rank, scale, fanInFanOut } = peftConfig(dir);
  if (fanInFanOut !== layout.conv1d) throw new UserError(`${dir}/adapter_config.json: fan_in_fan_out ${fanInFanOut}, but a ${base.model.name}'s layers are ${layout.conv1d ? "Conv1D" : "Linear"}`);
  const file = join(dir, "adapter_model.safetensors");
  if (!existsSync(file)) throw new UserError(`${dir} has no adapter_model.safetensors (PyTorch .bin adapters: save with safe_serialization)`);
  const source = fileSource(file);
  try {
    const reader = readSafetensors(source, file);
    const factors = new Map<string, { A?: string; B?: string }>();
    for (const e of reader.entries) {
      const m = KEY.exec(e.name);
      if (!m) throw new UserError(`${file}: ${e.name.slice(0, 100)} is not a LoRA factor as PEFT names them`);
      const leaf = `${m[1]!.startsWith(layout.body) ? m[1]!.slice(layout.body.length) : m[1]!}.weight`;
      factors.set(leaf, { ...factors.get(leaf), [m[2]!]: e.name });
    }
    const specs = base.model.specs.filter((s) => factors.has(s.name));
    const unknown = [...factors.keys()].find((leaf) => !specs.some((s) => s.name === leaf));
    if (unknown) throw new UserError(`${file}: adapts ${unknown}, which the base (${base.model.name}) does not have`);
    const trainable: HostParams = {};
    for (const s of specs) {
      const [rows, cols] = matrixShape(s.shape);
      const names = factors.get(s.name)!;
      if (!names.A || !names.B) throw new UserError(`${file}: ${s.name} has lora_${names.A ? "B" : "A"} missing`);
      const shape = (name: string) => reader.entries.find((e) => e.name === name)!.shape.join("x");
      if (shape(names.A) !== `${rank}x${rows}` || shape(names.B) !== `${cols}x${rank}`) {
        throw new UserError(`${file}: ${s.name}'s factors are [${shape(names.A)}] and [${shape(names.B)}]; rank ${rank} on [${rows}, ${cols}] makes them [${rank}x${rows}] and [${cols}x${rank}]`);
      }
      trainable[s.name + DOWN] = transpose(reader.read(names.A), rank, rows, new Float32Array(rows * rank));
      trainable[s.name + UP] = transpose(reader.read(names.B), cols, rank, new Float32Array(rank * cols)).map((v) => v * scale);
    }
    const lora = findMethod("lora")!;
    const leaves = specs.map((s) => s.name);
    const config = lora.configure({ rank, residual: true, compress: leaves }, specs);
    const stored = lora.trainableShapes(config, specs);
    return {
      file: { model: base.model.description, method: { name: "lora", config }, seed: 0, trainable, adapter: { base_sha256: weightsHash(base.model.specs, baseWeights), leaves }, meta: { peft: dir } },
      model: base.model,
      method: lora,
      config,
      specs,
      bytes: statSync(file).size,
      storage: Object.fromEntries(stored.map((t) => [t.name, "f32"])),
      stored,
    };
  } finally {
    source.close?.();
  }
}
