/**
 * mcnc inspect on a model mcnc did not write (ONNX, TF.js, safetensors): its inputs, and every tensor
 * a --compress or --keep pattern can name, with what compress does with it by default.
 */
import { foreignFormat, openForeign } from "../../format/foreign-model.js";
import { graphInputs, weightUses } from "../../format/onnx-graph.js";
import { print } from "../command.js";
import { tensorsToCompress } from "./compress-tensors.js";

export function isForeign(file: string): boolean {
  return foreignFormat(file) !== undefined;
}

export function inspectForeign(file: string, json: boolean): void {
  const model = openForeign(file);
  try {
    const byDefault = new Set(tensorsToCompress(model, undefined));
    const onnx = model.onnx;
    const inputs = onnx ? graphInputs(onnx.message).map((i) => ({ name: i.name, elem_type: i.elemType, dims: i.dims.map((d) => d ?? "?") })) : undefined;
    const tensors = model.tensors.map((t) => {
      const w = onnx?.weights.find((e) => e.name === t.name);
      const reach = w && byDefault.has(t.name) ? weightUses(onnx!.message, w.value) : undefined;
      return { name: t.name, shape: t.shape, dtype: t.dtype, layout: t.layout, compressed_by_default: byDefault.has(t.name), ...(reach && "why" in reach ? { calibration: reach.why } : {}) };
    });
    if (json) {
      print(JSON.stringify({ command: "inspect", file, format: model.format, ...(inputs ? { inputs } : {}), tensors }));
      return;
    }
    print(`${file}: ${model.format} model, ${tensors.length} float tensors, ${byDefault.size} compressed by default`);
    for (const i of inputs ?? []) print(`input            ${i.name} [${i.dims.join(", ")}] (ONNX type ${i.elem_type})`);
    for (const t of tensors) print(`${t.compressed_by_default ? "compress" : "keep    "}  ${t.name} [${t.shape.join(", ")}] ${t.dtype} ${t.layout}${t.calibration ? ` (calibration: ${t.calibration})` : ""}`);
  } finally {
    model.close();
  }
}
