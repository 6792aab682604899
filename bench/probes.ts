/**
 * The measurements behind design decisions in docs/results.md, kept runnable so they can be repeated
 * after an engine upgrade. JSON lines on stdout.
 *
 *   node dist/bench/probes.js fusion       one MLP-MCNC step, fused into one jit against staged
 *   node dist/bench/probes.js conv         the second LeNet convolution, its formulations
 *   node dist/bench/probes.js conv-first   a first convolution (1-4 input channels): im2col against per-tap products
 *   node dist/bench/probes.js chunk-sizes  MLP-MCNC training speed against the chunk size d
 *   node dist/bench/probes.js first-layer  where the initial latents put the generator's first sine layer (radians)
 */
import { buildModel, findMethod, imageTask, initEngine, loadDataset, toDevice, train, type Params } from "../src/index.js";
import { jit, nn, numpy as np, tree, valueAndGrad, vjp } from "@jax-js/jax";
import { generatorDims, generatorWeights } from "../src/methods/mcnc/generator.js";

await initEngine();
const emit = (row: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(row)}\n`);

function timeMs(f: () => void, repeats = 5): number {
  f();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    f();
    times.push(performance.now() - t);
  }
  return +times.sort((a, b) => a - b)[Math.floor(repeats / 2)]!.toFixed(2);
}

async function fusion(): Promise<void> {
  const model = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const mcnc = findMethod("mcnc")!;
  const config = mcnc.configure({}, model.specs);
  const trainable = toDevice(mcnc.trainableShapes(config, model.specs), await mcnc.init(config, model.specs, 0));
  const frozen = await mcnc.frozen(config, model.specs, 0);
  const stages = mcnc.stages(config, model.specs);
  const materialize = (t: Params, f: Params) => {
    let c: Params = {};
    stages.forEach((s, i) => (c = s(c, i === stages.length - 1 ? t : tree.ref(t), i === stages.length - 1 ? f : tree.ref(f))));
    return c;
  };
  const x = np.zeros([128, 28, 28, 1]);
  const y = np.zeros([128, 10]);
  const loss = (p: Params, x: np.Array, y: np.Array) => nn.logSoftmax(model.apply(p, x), -1).mul(y).sum().mul(-1 / 128);
  const fused = jit((t: Params, f: Params, x: np.Array, y: np.Array) => valueAndGrad((tt: Params) => loss(materialize(tt, f), x, y))(t));
  emit({
    probe: "fusion",
    what: "loss and gradient wrt (alpha, beta), one jitted program",
    ms: timeMs(() => {
      const [l, g] = fused(tree.ref(trainable), tree.ref(frozen), x.ref, y.ref) as [np.Array, Params];
      l.dataSync();
      tree.dispose(g);
    }),
  });
  const forward = stages.map((s) => jit(s) as unknown as (c: Params, t: Params, f: Params) => Params);
  const backward = stages.map((s) =>
    jit((c: Params, t: Params, f: Params, ct: Params) => {
      const [, back] = vjp((cc: Params, tt: Params) => s(cc, tt, f), [c, t]);
      return back(ct);
    }) as unknown as (c: Params, t: Params, f: Params, ct: Params) => [Params, Params],
  );
  const modelGrad = jit((p: Params, x: np.Array, y: np.Array) => valueAndGrad(loss)(p, x, y)) as unknown as (p: Params, x: np.Array, y: np.Array) => [np.Array, Params];
  emit({
    probe: "fusion",
    what: "the same, staged: each stage's forward and VJP its own jitted program (the trainer's way)",
    ms: timeMs(() => {
      const carries: Params[] = [{}];
      forward.forEach((f, i) => carries.push(f(tree.ref(carries[i]!), tree.ref(trainable), tree.ref(frozen))));
      const [l, gp] = modelGrad(carries.pop()!, x.ref, y.ref);
      let ct = gp;
      for (let i = stages.length - 1; i >= 0; i--) {
        const [gc, gt] = backward[i]!(carries[i]!, tree.ref(trainable), tree.ref(frozen), ct);
        tree.dispose(gt);
        ct = gc;
      }
      tree.dispose(ct);
      l.dataSync();
    }),
  });
}

function conv(): void {
  const [B, H, W, C, O] = [128, 14, 14, 32, 64];
  const x = np.ones([B, H, W, C]);
  const w = np.ones([3, 3, C, O]).mul(0.01);
  const ct = np.ones([B, H, W, O]);
  const pad = (a: np.Array) => np.pad(a, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  const taps = (p: np.Array) => {
    const out: np.Array[] = [];
    for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) out.push(p.ref.slice([], [dy, dy + H], [dx, dx + W], []));
    p.dispose();
    return out;
  };
  const variants: Record<string, (x: np.Array, w: np.Array) => np.Array> = {
    "im2col by concatenation (used)": (x, w) => np.matmul(np.concatenate(taps(pad(x)), 3).reshape([B * H * W, 9 * C]), w.reshape([9 * C, O])),
    "im2col in two stages (three dx taps, then three dy rows)": (x, w) => {
      const p = pad(x);
      const row = np.concatenate([0, 1, 2].map((dx) => p.ref.slice([], [], [dx, dx + W], [])), 3);
      p.dispose();
      const cols = np.concatenate([0, 1, 2].map((dy) => row.ref.slice([], [dy, dy + H], [], [])), 3);
      row.dispose();
      return np.matmul(cols.reshape([B * H * W, 9 * C]), w.reshape([9 * C, O]));
    },
    "three dx taps (K = 3C), one matmul to the three rows' outputs, row-shifted slices summed": (x, w) => {
      const p = pad(x);
      const row = np.concatenate([0, 1, 2].map((dx) => p.ref.slice([], [], [dx, dx + W], [])), 3);
      p.dispose();
      // [3(dy), 3(dx), C, O] -> [3C, 3O]: output column block dy holds kernel row dy.
      const wr = w.transpose([1, 2, 0, 3]).reshape([3 * C, 3 * O]);
      const y = np.matmul(row.reshape([B * (H + 2) * W, 3 * C]), wr).reshape([B, H + 2, W, 3, O]);
      let out: np.Array | null = null;
      for (let dy = 0; dy < 3; dy++) {
        const s = y.ref.slice([], [dy, dy + H], [], dy, []);
        out = out ? out.add(s) : s;
      }
      y.dispose();
      return out!.reshape([B * H * W, O]);
    },
    "three row matmuls (three dx taps each, K = 3C), summed": (x, w) => {
      const p = pad(x);
      const row = np.concatenate([0, 1, 2].map((dx) => p.ref.slice([], [], [dx, dx + W], [])), 3);
      p.dispose();
      let out: np.Array | null = null;
      for (let dy = 0; dy < 3; dy++) {
        const m = np.matmul(row.ref.slice([], [dy, dy + H], [], []).reshape([B * H * W, 3 * C]), w.ref.slice(dy).reshape([3 * C, O]));
        out = out ? out.add(m) : m;
      }
      row.dispose();
      w.dispose();
      return out!;
    },
    "one [BHW,C]x[C,9O] matmul, nine shifted slices summed": (x, w) => {
      const y = np.matmul(x.reshape([B * H * W, C]), w.transpose([2, 0, 1, 3]).reshape([C, 9 * O])).reshape([B, H, W, 9, O]);
      const yp = np.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]]);
      let out: np.Array | null = null;
      for (let t = 0; t < 9; t++) {
        const s = yp.ref.slice([], [Math.floor(t / 3), Math.floor(t / 3) + H], [t % 3, (t % 3) + W], t, []);
        out = out ? out.add(s) : s;
      }
      yp.dispose();
      return out!;
    },
    "nine per-tap matmuls summed": (x, w) => {
      const ts = taps(pad(x));
      let out: np.Array | null = null;
      ts.forEach((t, i) => {
        const m = np.matmul(t.reshape([B * H * W, C]), w.ref.slice(Math.floor(i / 3), i % 3));
        out = out ? out.add(m) : m;
      });
      w.dispose();
      return out!;
    },
  };
  // im2col by gather: fast forward, but its transpose (scatter) cannot run inside jit in jax-js 0.1.25.
  const index = new Int32Array(H * W * 9);
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let t = 0; t < 9; t++) index[(i * W + j) * 9 + t] = (i + Math.floor(t / 3)) * (W + 2) + (j + (t % 3));
  const idx = np.array(index);
  const gathered = (x: np.Array, w: np.Array, ix: np.Array) =>
    np.matmul(pad(x).reshape([B, (H + 2) * (W + 2), C]).slice([], ix, []).reshape([B * H * W, 9 * C]), w.reshape([9 * C, O]));
  const gatherFwd = jit(gathered);
  const gatherRow: Record<string, unknown> = { probe: "conv", what: "im2col by gather", forward_ms: timeMs(() => (gatherFwd(x.ref, w.ref, idx.ref) as np.Array).dataSync(), 3) };
  try {
    const gatherBack = jit((x: np.Array, w: np.Array, ix: np.Array, c: np.Array) => vjp((xx: np.Array, ww: np.Array) => gathered(xx, ww, ix), [x, w])[1](c.reshape([B * H * W, O])));
    gatherRow.backward_ms = timeMs(() => ((gatherBack(x.ref, w.ref, idx.ref, ct.ref) as np.Array[])[0]!).dataSync(), 3);
  } catch (e) {
    gatherRow.backward_error = (e as Error).message;
  }
  emit(gatherRow);
  const matmulOnly = jit((a: np.Array, b: np.Array) => np.matmul(a, b));
  const cols = np.ones([B * H * W, 9 * C]);
  const wm = np.ones([9 * C, O]);
  emit({ probe: "conv", what: "the matmul alone, [25088,288]x[288,64]", ms: timeMs(() => (matmulOnly(cols.ref, wm.ref) as np.Array).dataSync(), 3) });
  for (const [name, f] of Object.entries(variants)) {
    const fwd = jit(f);
    const both = jit((x: np.Array, w: np.Array, c: np.Array) => {
      const [, back] = vjp(f, [x, w]);
      return back(c.reshape(name.startsWith("one") ? [B, H, W, O] : [B * H * W, O]));
    });
    emit({
      probe: "conv",
      what: name,
      forward_ms: timeMs(() => (fwd(x.ref, w.ref) as np.Array).dataSync(), 3),
      backward_ms: timeMs(() => {
        const [gx, gw] = both(x.ref, w.ref, ct.ref) as [np.Array, np.Array];
        gx.dataSync();
        gw.dataSync();
      }, 3),
    });
  }
}

/** LeNet's first layer shape with 1-4 input channels: the kernel's gradient (the input's is not needed) decides. */
function convFirst(): void {
  const [B, H, W, O] = [128, 28, 28, 32];
  const im2col = (x: np.Array, w: np.Array, b: np.Array) => {
    const C = x.shape[3]!;
    const p = np.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
    const rows = np.concatenate([0, 1, 2].map((dx) => p.ref.slice([], [], [dx, dx + W], [])), 3);
    p.dispose();
    const cols = np.concatenate([0, 1, 2].map((dy) => rows.ref.slice([], [dy, dy + H], [], [])), 3).reshape([B * H * W, 9 * C]);
    rows.dispose();
    return np.matmul(cols, w.reshape([9 * C, O])).add(b);
  };
  const taps = (x: np.Array, w: np.Array, b: np.Array) => {
    const C = x.shape[3]!;
    const p = np.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
    let y: np.Array | null = null;
    for (let t = 0; t < 9; t++) {
      for (let c = 0; c < C; c++) {
        const term = p.ref.slice([], [Math.floor(t / 3), Math.floor(t / 3) + H], [t % 3, (t % 3) + W], [c, c + 1]).mul(w.ref.slice(Math.floor(t / 3), t % 3, c).reshape([1, 1, 1, O]));
        y = y ? y.add(term) : term;
      }
    }
    p.dispose();
    w.dispose();
    return y!.reshape([B * H * W, O]).add(b);
  };
  for (const C of [1, 2, 3, 4]) {
    const x = np.ones([B, H, W, C]).mul(0.5);
    const w = np.ones([3, 3, C, O]).mul(0.1);
    const b = np.zeros([O]);
    const ct = np.ones([B * H * W, O]);
    for (const [what, f] of [["im2col", im2col], ["per-tap products", taps]] as const) {
      const fwd = jit(f);
      const back = jit((x: np.Array, w: np.Array, b: np.Array, c: np.Array) => vjp((ww: np.Array, bb: np.Array) => f(x, ww, bb), [w, b])[1](c));
      emit({
        probe: "conv-first",
        channels: C,
        what,
        forward_ms: timeMs(() => (fwd(x.ref, w.ref, b.ref) as np.Array).dataSync(), 3),
        kernel_gradient_ms: timeMs(() => (back(x.ref, w.ref, b.ref, ct.ref) as np.Array[]).forEach((g) => g.dataSync()), 3),
      });
    }
  }
}

async function chunkSizes(): Promise<void> {
  const data = loadDataset(undefined, { trainLimit: 6400, testLimit: 1000 });
  const model = buildModel({ name: "mlp", input: data.imageShape, classes: data.numClasses });
  const mcnc = findMethod("mcnc")!;
  for (const d of [1600, 1955, 1956, 1960, 2048]) {
    const r = await train(model, mcnc, mcnc.configure({ d }, model.specs), imageTask(data, model), { epochs: 2, batch: 128, seed: 0 });
    emit({ probe: "chunk-sizes", d, train_samples_per_s: +r.history[1]!.rate.toFixed(0) });
  }
}

/** The spread of L * alpha W0 at initialisation, for the MLP at 100x, at L = 5 (default), 10 and 20. */
async function firstLayer(): Promise<void> {
  const model = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const mcnc = findMethod("mcnc")!;
  for (const L of [5, 10, 20]) {
    const c = mcnc.configure({ ratio: 100, L }, model.specs) as { k: number; d: number; hidden: number[]; L: number };
    const alpha = (await mcnc.init(c, model.specs, 0)).alpha!;
    const dims = generatorDims(c.k, c.hidden, c.d);
    const w0 = (await generatorWeights(0, dims))[0]!;
    const [rows, h] = [alpha.length / c.k, dims[1]!];
    let sq = 0;
    let max = 0;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < h; j++) {
        let z = 0;
        for (let i = 0; i < c.k; i++) z += alpha[r * c.k + i]! * w0[i * h + j]!;
        sq += (L * z) ** 2;
        max = Math.max(max, Math.abs(L * z));
      }
    }
    emit({ probe: "first-layer", L, k: c.k, rms_rad: +Math.sqrt(sq / (rows * h)).toFixed(3), max_rad: +max.toFixed(3), half_period_rad: +(Math.PI / 2).toFixed(3) });
  }
}

const which = process.argv[2] ?? "all";
if (which === "first-layer" || which === "all") await firstLayer();
if (which === "fusion" || which === "all") await fusion();
if (which === "conv" || which === "all") conv();
if (which === "conv-first" || which === "all") convFirst();
if (which === "chunk-sizes" || which === "all") await chunkSizes();
