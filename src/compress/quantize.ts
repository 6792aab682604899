/** The quantisation family's shared part: bits and groups, written as a `quant` file. */
import { UserError } from "../errors.js";
import type { MethodOption, OptionValues } from "../methods/index.js";
import { QUANT_DEFAULTS, type QuantConfig } from "../methods/quant/index.js";

export type QuantizeConfig = Pick<QuantConfig, "bits" | "group">;

export const QUANTIZE_OPTIONS: MethodOption[] = [
  { name: "bits", type: "int", help: `bits per weight: 8, 4, 3 or 2 (default ${QUANT_DEFAULTS.bits})` },
  { name: "group", type: "int", help: "inputs sharing one (min, step) pair per output, e.g. 128; 0 (default): per output channel" },
];

export function configureQuantize(values: OptionValues): QuantizeConfig {
  const bits = values.bits ?? QUANT_DEFAULTS.bits;
  if (![8, 4, 3, 2].includes(bits as number)) throw new UserError(`--bits must be 8, 4, 3 or 2, got ${String(bits)}`);
  const group = values.group ?? QUANT_DEFAULTS.group;
  if (!(typeof group === "number" && Number.isInteger(group) && group >= 0)) throw new UserError(`--group must be 0 (per channel) or a positive number of inputs, got ${String(group)}`);
  return { bits: bits as QuantConfig["bits"], group };
}

export function quantizeStorage(config: QuantizeConfig, compress: string[]): { method: string; config: object } {
  return { method: "quant", config: { bits: config.bits, group: config.group, compress } };
}
