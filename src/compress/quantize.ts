/** The quantisation family's shared part: bits and groups, written as a `quant` file. */
import type { MethodOption } from "../methods/index.js";
import { QUANT_DEFAULTS, type QuantConfig } from "../methods/quant/index.js";

export type QuantizeConfig = Pick<QuantConfig, "bits" | "group">;

export const QUANTIZE_OPTIONS: MethodOption[] = [
  { name: "bits", type: "int", help: `bits per weight: 8, 4, 3 or 2 (default ${QUANT_DEFAULTS.bits})` },
  { name: "group", type: "int", help: "inputs sharing one (min, step) pair per output, e.g. 128; 0 (default): per output channel" },
];

export function quantizeStorage(config: QuantizeConfig, compress: string[]): { method: string; config: object } {
  return { method: "quant", config: { bits: config.bits, group: config.group, compress } };
}
