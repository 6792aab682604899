/** A safetensors file written tensor by tensor (each narrowed to its dtype as it goes), whole or not at all. */
import { writeFileAtomicBy } from "./atomic-write.js";
import { narrow, safetensorsHeader, type TensorLayout } from "./safetensors.js";

export function writeSafetensors(path: string, tensors: ReadonlyArray<TensorLayout & { data: Float32Array }>, metadata: Record<string, string> = {}): void {
  writeFileAtomicBy(path, (write) => {
    write(safetensorsHeader(tensors, metadata).prefix);
    for (const t of tensors) write(narrow(t.data, t.dtype ?? "F32"));
  });
}
