import { jit, numpy as np, vjp } from "@jax-js/jax";
import { initEngine } from "../src/engine/engine.js";
await initEngine();
function time(name: string, f: () => void, n = 3) {
  f();
  const t = performance.now();
  for (let i = 0; i < n; i++) f();
  console.log(name, ((performance.now() - t) / n).toFixed(1), "ms");
}
const [B, H, W, C, O] = [128, 14, 14, 32, 64];
const x = np.ones([B, H, W, C]); const w = np.ones([3, 3, C, O]).mul(0.01); const ct = np.ones([B, H, W, O]);
const pad = (x: np.Array) => np.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
const im2col = jit((x: np.Array) => { const p = pad(x); const taps = []; for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) taps.push(p.ref.slice([], [dy, dy + H], [dx, dx + W], [])); p.dispose(); return np.concatenate(taps, 3); });
time("im2col concat only", () => (im2col(x.ref) as np.Array).dataSync());
const stackT = jit((x: np.Array) => { const p = pad(x); const taps = []; for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) taps.push(p.ref.slice([], [dy, dy + H], [dx, dx + W], [])); p.dispose(); return np.stack(taps, 0); });
time("taps stacked tap-major", () => (stackT(x.ref) as np.Array).dataSync());
const sum9 = (x: np.Array, w: np.Array) => { const p = pad(x); let out: np.Array | null = null; for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) { const t = np.matmul(p.ref.slice([], [dy, dy + H], [dx, dx + W], []).reshape([B * H * W, C]), w.ref.slice(dy, dx)); out = out ? out.add(t) : t; } p.dispose(); w.dispose(); return out!.reshape([B, H, W, O]); };
const s9 = jit(sum9);
time("sum of 9 matmuls fwd", () => (s9(x.ref, w.ref) as np.Array).dataSync());
const s9b = jit((x: np.Array, w: np.Array, ct: np.Array) => { const [, back] = vjp(sum9, [x, w]); return back(ct); });
time("sum of 9 matmuls vjp", () => { const r = s9b(x.ref, w.ref, ct.ref) as any; r[0].dataSync(); r[1].dataSync(); });
const colsJ = jit((x: np.Array) => { const p = pad(x); const taps = []; for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) taps.push(p.ref.slice([], [dy, dy + H], [dx, dx + W], [])); p.dispose(); return np.concatenate(taps, 3).reshape([B * H * W, 9 * C]); });
const mm = jit((c: np.Array, w: np.Array) => np.matmul(c, w.reshape([9 * C, O])));
time("im2col jit + matmul jit", () => { const c = colsJ(x.ref) as np.Array; (mm(c, w.ref) as np.Array).dataSync(); });
const idx = new Int32Array(H * W * 9);
for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) idx[((i * W + j) * 3 + dy) * 3 + dx] = (i + dy) * (W + 2) + (j + dx);
const idxA = np.array(idx);
const gat = jit((x: np.Array, ix: np.Array) => pad(x).reshape([B, (H + 2) * (W + 2), C]).slice([], ix, []).reshape([B * H * W, 9 * C]));
time("gather im2col", () => (gat(x.ref, idxA.ref) as np.Array).dataSync());
const gmm = (x: np.Array, w: np.Array, ix: np.Array) => np.matmul(pad(x).reshape([B, (H + 2) * (W + 2), C]).slice([], ix, []).reshape([B * H * W, 9 * C]), w.reshape([9 * C, O]));
const gmmJ = jit(gmm);
time("gather im2col + matmul fwd", () => (gmmJ(x.ref, w.ref, idxA.ref) as np.Array).dataSync());
const gb = jit((x: np.Array, w: np.Array, ix: np.Array, ct: np.Array) => { const [, back] = vjp((xx: np.Array, ww: np.Array) => gmm(xx, ww, ix), [x, w]); return back(ct.reshape([B * H * W, O])); });
// time("gather conv vjp", () => { const r = gb(x.ref, w.ref, idxA.ref, ct.ref) as any; r[0].dataSync(); r[1].dataSync(); });
const gbe = (x: np.Array, w: np.Array, ix: np.Array, ct: np.Array) => { const [, back] = vjp((xx: np.Array, ww: np.Array) => gmm(xx, ww, ix), [x, w]); return back(ct.reshape([B * H * W, O])); };
time("gather conv vjp eager", () => { const r = gbe(x.ref, w.ref, idxA.ref, ct.ref) as any; r[0].dataSync(); r[1].dataSync(); });
const shiftConv = (x: np.Array, w: np.Array) => {
  // w [3,3,C,O] -> [C, 9*O]
  const wc = w.transpose([2, 0, 1, 3]).reshape([C, 9 * O]);
  const y = np.matmul(x.reshape([B * H * W, C]), wc).reshape([B, H, W, 9, O]);
  const yp = np.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]]);
  let out: np.Array | null = null;
  for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) {
    // out[i,j] += y[i+dy-1, j+dx-1, tap]
    const t = yp.ref.slice([], [dy, dy + H], [dx, dx + W], dy * 3 + dx, []);
    out = out ? out.add(t) : t;
  }
  yp.dispose();
  return out!;
};
const scJ = jit(shiftConv);
time("shift conv fwd", () => (scJ(x.ref, w.ref) as np.Array).dataSync());
const scB = jit((x: np.Array, w: np.Array, ct: np.Array) => { const [, back] = vjp(shiftConv, [x, w]); return back(ct); });
time("shift conv vjp", () => { const r = scB(x.ref, w.ref, ct.ref) as any; r[0].dataSync(); r[1].dataSync(); });
const st1 = (x: np.Array, w: np.Array) => np.matmul(x.reshape([B * H * W, C]), w.transpose([2, 0, 1, 3]).reshape([C, 9 * O])).reshape([B, H, W, 9, O]);
const st2 = (y: np.Array) => { const yp = np.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]]); let out: np.Array | null = null; for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) { const t = yp.ref.slice([], [dy, dy + H], [dx, dx + W], dy * 3 + dx, []); out = out ? out.add(t) : t; } yp.dispose(); return out!; };
const f1 = jit(st1), f2 = jit(st2);
const b1 = jit((x: np.Array, w: np.Array, c: np.Array) => { const [, back] = vjp(st1, [x, w]); return back(c); });
const b2 = jit((y: np.Array, c: np.Array) => { const [, back] = vjp(st2, [y]); return back(c)[0]; });
time("staged shift conv fwd", () => { const y = f1(x.ref, w.ref) as np.Array; (f2(y) as np.Array).dataSync(); });
time("staged shift conv fwd+bwd", () => { const y = f1(x.ref, w.ref) as np.Array; const o = f2(y.ref) as np.Array; o.dispose(); const dy = b2(y, ct.ref) as np.Array; const r = b1(x.ref, w.ref, dy) as any; r[0].dataSync(); r[1].dataSync(); });
time("stage2 bwd only", () => { const y = f1(x.ref, w.ref) as np.Array; (b2(y, ct.ref) as np.Array).dataSync(); });
