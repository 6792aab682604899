/**
 * Bit-identical arithmetic on every Wasm runtime. jax-js uses relaxed SIMD's fused multiply-add in
 * float32 matmuls where the runtime has it (Chromium does, Node 20 does not), and relaxed FMA may even
 * round differently from one CPU to another; the same .mcnc file then rebuilds to weights that differ
 * in the last bits (measured: bench/browser-check.ts). jax-js decides by validating one probe module,
 * so answering "invalid" for that probe, before any kernel is compiled, keeps every kernel on plain,
 * IEEE-exact SIMD.
 */

/** The relaxed SIMD opcode prefix jax-js's probe uses: f32x4.relaxed_madd (0xfd 0x85 0x02). */
const RELAXED_MADD = [0xfd, 0x85, 0x02];

type Bytes = ArrayBuffer | ArrayBufferView;
type WasmApi = { validate(bytes: Bytes): boolean };

function usesRelaxedMadd(bytes: Bytes): boolean {
  const b = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  // The probe is tiny; real kernels are never probed through validate().
  if (b.length > 256) return false;
  for (let i = 0; i + 2 < b.length; i++) if (b[i] === RELAXED_MADD[0] && b[i + 1] === RELAXED_MADD[1] && b[i + 2] === RELAXED_MADD[2]) return true;
  return false;
}

/** `validate` answering "invalid" for the relaxed-SIMD probe, whatever the runtime supports. */
export function withoutRelaxedSimd(validate: (bytes: Bytes) => boolean): (bytes: Bytes) => boolean {
  return (bytes) => !usesRelaxedMadd(bytes) && validate(bytes);
}

let installed = false;

export function forbidRelaxedSimd(): void {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (installed || !wasm) return;
  installed = true;
  wasm.validate = withoutRelaxedSimd(wasm.validate.bind(wasm));
}
