/**
 * The content hash of a model's weights, by which an adapter names its base: SHA-256 over each leaf
 * in model order as its name, a NUL, its shape as JSON, a NUL, and its float32 values little-endian.
 * The same weights hash alike whatever file they came from (a dense .mcnc, a compressed one).
 */
import type { HostParams, NamedShape } from "../model/params.js";
import { Sha256 } from "./sha256.js";

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function weightsHash(specs: readonly NamedShape[], weights: HostParams): string {
  const hash = new Sha256();
  const text = new TextEncoder();
  for (const s of specs) {
    const w = weights[s.name];
    if (!w) throw new Error(`weightsHash: no leaf ${s.name}`);
    hash.update(text.encode(`${s.name}\0${JSON.stringify(s.shape)}\0`));
    if (littleEndian) hash.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    else {
      const le = new Uint8Array(w.length * 4);
      const view = new DataView(le.buffer);
      w.forEach((v, i) => view.setFloat32(4 * i, v, true));
      hash.update(le);
    }
  }
  return hash.hex();
}
