/** safetensors export (https://github.com/huggingface/safetensors): u64 header size, JSON header, raw LE data. */
import { elements } from "./container.js";

export function encodeSafetensors(tensors: Array<{ name: string; shape: number[]; data: Float32Array }>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    if (elements(t.shape) !== t.data.length) throw new Error(`tensor ${t.name}: shape does not match data`);
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(raw.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.fill(0x20, 8, 8 + headerLength);
  out.set(raw, 8);
  let at = 8 + headerLength;
  for (const t of tensors) for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i]!, true);
  return out;
}
