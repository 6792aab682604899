/**
 * The ceiling a Wasm matmul can reach on this CPU: f32x4 multiplies and adds (no relaxed SIMD, so no
 * fused multiply-add, as mcnc runs for bit-identical results) into eight independent accumulators, no
 * memory traffic. The module is assembled here, byte by byte, so nothing but Node is needed. Eight
 * accumulators measured fastest (sixteen spill registers).
 */
import { f32, get, HEADER, leb, section, set, simd } from "../src/engine/wasm-bytes.js";

const ACCUMULATORS = 8;
const [F32X4_SPLAT, F32X4_EXTRACT_LANE, F32X4_ADD, F32X4_MUL, F32X4_RELAXED_MADD] = [19, 31, 228, 230, 0x105];

/**
 * `peak(n)`: n rounds of acc[i] += a[i] * b over the accumulators; returns a lane so nothing is dead.
 * `fused`: relaxed SIMD's multiply-add instead (what mcnc forbids for bit-identical weights; Node 20 has
 * it only behind --experimental-wasm-relaxed-simd).
 */
function module(fused: boolean): Uint8Array {
  const acc = (i: number) => 1 + i;
  const a = (i: number) => 1 + ACCUMULATORS + i;
  const b = 1 + 2 * ACCUMULATORS;
  const body: number[] = [];
  for (let i = 0; i < ACCUMULATORS; i++) body.push(0x43, ...f32(0), ...simd(F32X4_SPLAT), ...set(acc(i)), 0x43, ...f32(1 + i / 1000), ...simd(F32X4_SPLAT), ...set(a(i)));
  body.push(0x43, ...f32(0.999), ...simd(F32X4_SPLAT), ...set(b));
  body.push(0x03, 0x40); // loop
  for (let i = 0; i < ACCUMULATORS; i++) {
    body.push(...(fused ? [...get(a(i)), ...get(b), ...get(acc(i)), ...simd(F32X4_RELAXED_MADD)] : [...get(acc(i)), ...get(a(i)), ...get(b), ...simd(F32X4_MUL), ...simd(F32X4_ADD)]), ...set(acc(i)));
  }
  body.push(...get(0), 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b); // n -= 1; br_if n; end
  body.push(...get(acc(0)));
  for (let i = 1; i < ACCUMULATORS; i++) body.push(...get(acc(i)), ...simd(F32X4_ADD));
  body.push(...simd(F32X4_EXTRACT_LANE), 0, 0x0b);
  const func = [1, ...leb(2 * ACCUMULATORS + 1), 0x7b, ...body];
  return new Uint8Array([
    ...HEADER,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]), // (i32) -> f32
    ...section(3, [1, 0]),
    ...section(7, [1, 4, ...[..."peak"].map((c) => c.charCodeAt(0)), 0, 0]),
    ...section(10, [1, ...leb(func.length), ...func]),
  ]);
}

/** GFLOP/s of one thread at the Wasm SIMD ceiling (median of five runs), and each run's; undefined where the runtime lacks relaxed SIMD. */
export async function wasmSimdCeiling(fused = false, rounds = 20_000_000): Promise<{ gflops: number; runs: number[] } | undefined> {
  // (Node's types leave WebAssembly out without the DOM library.)
  const wasm = (globalThis as unknown as { WebAssembly: { instantiate(bytes: Uint8Array): Promise<{ instance: { exports: Record<string, unknown> } }> } }).WebAssembly;
  let instance: { exports: Record<string, unknown> };
  try {
    ({ instance } = await wasm.instantiate(module(fused)));
  } catch (e) {
    if (fused) return undefined;
    throw e;
  }
  const peak = instance.exports.peak as (n: number) => number;
  peak(1000);
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    peak(rounds);
    runs.push((rounds * ACCUMULATORS * 4 * 2) / (performance.now() - t) / 1e6);
  }
  const sorted = [...runs].sort((x, y) => x - y);
  return { gflops: sorted[2]!, runs };
}

if (process.argv[1] === (await import("node:url")).fileURLToPath(import.meta.url) && process.argv.includes("--fused")) {
  const c = await wasmSimdCeiling(true);
  process.stdout.write(`${JSON.stringify(c ? { gflops: +c.gflops.toFixed(1), runs: c.runs.map((g) => +g.toFixed(1)) } : null)}\n`);
}
