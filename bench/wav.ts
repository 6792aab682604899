/** Recorded speech for the audio benches: Debian alsa-utils' voice prompts (GPL-2), read as 16 kHz floats. */
import { readFileSync } from "node:fs";

export const SOUNDS = "/usr/share/sounds/alsa";
export const RATE = 16000;

/** 16-bit PCM mono WAV to float samples at 16 kHz (48 kHz sources averaged in threes). */
export function readWav(path: string): Float32Array {
  const b = readFileSync(path);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let rate = 0;
  for (let at = 12; at + 8 <= b.length; ) {
    const id = b.toString("ascii", at, at + 4);
    const size = v.getUint32(at + 4, true);
    if (id === "fmt ") {
      if (v.getUint16(at + 8, true) !== 1 || v.getUint16(at + 10, true) !== 1 || v.getUint16(at + 22, true) !== 16) throw new Error(`${path}: not 16-bit mono PCM`);
      rate = v.getUint32(at + 12, true);
    }
    if (id === "data") {
      const n = size / 2;
      const step = rate / RATE;
      if (!Number.isInteger(step)) throw new Error(`${path}: ${rate} Hz is not a multiple of ${RATE}`);
      const out = new Float32Array(Math.floor(n / step));
      for (let i = 0; i < out.length; i++) {
        let s = 0;
        for (let k = 0; k < step; k++) s += v.getInt16(at + 8 + 2 * (i * step + k), true);
        out[i] = s / step / 32768;
      }
      return out;
    }
    at += 8 + size + (size % 2);
  }
  throw new Error(`${path}: no data chunk`);
}

