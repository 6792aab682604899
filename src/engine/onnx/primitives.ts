/**
 * Each jax-js primitive as ONNX nodes, written into a Lowering: elementwise operations on possibly
 * lazy broadcasts, reductions, the moves of data (reshape, transpose, slices, pads, concatenations),
 * gathers and scatters along one axis, convolutions, sorts.
 */
import { broadcastShape, elementType, isLit, shapeOf, Unlowerable, type Atom, type Eqn } from "./jaxpr.js";
import type { Lowering } from "./lowering.js";
import type { Operand } from "./fused-rule.js";
import { f32 } from "./graph.js";
import { ONNX_TYPE } from "./proto.js";

const UNARY: Record<string, string> = {
  neg: "Neg",
  reciprocal: "Reciprocal",
  floor: "Floor",
  ceil: "Ceil",
  sin: "Sin",
  cos: "Cos",
  asin: "Asin",
  atan: "Atan",
  exp: "Exp",
  log: "Log",
  erf: "Erf",
  sqrt: "Sqrt",
};
const BINARY: Record<string, string> = { add: "Add", mul: "Mul", min: "Min", max: "Max" };
const COMPARE: Record<string, string> = { less: "Less", less_equal: "LessOrEqual", equal: "Equal" };
const REDUCE: Record<string, string> = { Add: "ReduceSum", Max: "ReduceMax", Min: "ReduceMin", Mul: "ReduceProd" };

/** Writes equation `e` (not a dot or a fused call: the Lowering writes those). */
export function emitPrimitive(L: Lowering, e: Eqn): void {
  const { g } = L;
  const out = e.outBinders[0]!;
  const P = e.params;
  const prim = e.primitive;
  if (prim === "dot") {
    // A dot no plan matched: sum(x * y, -1) as it is written.
    const [x, y] = e.inputs as [Atom, Atom];
    const m = g.op("Mul", [L.need(x, "float32"), L.need(y, "float32")], { shape: broadcastShape([shapeOf(x), shapeOf(y)]), dtype: "float32" });
    return L.setOut(out, g.op("ReduceSum", [m, g.ints([-1])], L.info(out), { keepdims: 0 }));
  }
  if (prim === "stop_gradient") {
    const a = L.ew(e.inputs[0]!);
    return L.setOut(out, a.name, a.shape);
  }
  if (UNARY[prim]) {
    const a = L.ew(e.inputs[0]!, L.dtypeOf(out));
    return L.setOut(out, g.op(UNARY[prim]!, [a.name], L.info(out, a.shape)), a.shape);
  }
  if (BINARY[prim] || prim === "compare" || prim === "idiv" || prim === "mod") {
    const dt = L.dtypeOf(e.inputs.find((a) => !isLit(a)) ?? out);
    const [a, b] = e.inputs.map((x) => L.ew(x, dt)) as [Operand, Operand];
    const shape = broadcastShape([a.shape, b.shape]);
    const o = L.info(out, shape);
    let n: string;
    if (BINARY[prim] && dt === "bool") n = g.op(prim === "add" || prim === "max" ? "Or" : "And", [a.name, b.name], o);
    else if (prim === "max" && isLit(e.inputs[1]!) && e.inputs[1].value === 0 && !isLit(e.inputs[0]!)) n = g.op("Relu", [a.name], o);
    else if (BINARY[prim]) n = g.op(BINARY[prim]!, [a.name, b.name], o);
    else if (prim === "idiv") n = dt === "float32" ? g.op("Floor", [g.op("Div", [a.name, b.name], o)], o) : g.op("Div", [a.name, b.name], o);
    else if (prim === "mod") n = g.op("Mod", [a.name, b.name], o, { fmod: 1 });
    else if (P.op === "not_equal") n = g.op("Not", [g.op("Equal", [a.name, b.name], o)], o);
    else if (COMPARE[P.op as string]) n = g.op(COMPARE[P.op as string]!, [a.name, b.name], o);
    else throw new Unlowerable(`compare ${String(P.op)}`);
    return L.setOut(out, n, shape);
  }
  switch (prim) {
    case "where": {
      const dt = L.dtypeOf(out);
      const [c, a, b] = [L.ew(e.inputs[0]!, "bool"), L.ew(e.inputs[1]!, dt), L.ew(e.inputs[2]!, dt)];
      const shape = broadcastShape([c.shape, a.shape, b.shape]);
      return L.setOut(out, g.op("Where", [c.name, a.name, b.name], L.info(out, shape)), shape);
    }
    case "erfc": {
      const a = L.ew(e.inputs[0]!, "float32");
      const o = L.info(out, a.shape);
      return L.setOut(out, g.op("Sub", [g.scalar("float32", 1), g.op("Erf", [a.name], o)], o), a.shape);
    }
    case "cast": {
      const a = L.ew(e.inputs[0]!);
      const to = elementType(P.dtype as string);
      if (!to) throw new Unlowerable("cast", `to ${String(P.dtype)}`);
      return L.setOut(out, g.op("Cast", [a.name], L.info(out, a.shape), { to: ONNX_TYPE[to] }), a.shape);
    }
    case "reduce": {
      const x = L.need(e.inputs[0]!);
      const axes = P.axis as number[];
      if (axes.length === 0) return L.setOut(out, x);
      if (!REDUCE[P.op as string]) throw new Unlowerable(`reduce ${String(P.op)}`);
      return L.setOut(out, g.op(REDUCE[P.op as string]!, [x, g.ints(axes)], L.info(out), { keepdims: 0 }));
    }
    case "transpose": {
      const a = L.ew(e.inputs[0]!);
      const perm = P.perm as number[];
      return L.setOut(out, L.transposeTo(a.name, a.shape, perm), perm.map((p) => a.shape[p]!));
    }
    case "reshape":
      return L.setOut(out, L.reshapeTo(L.need(e.inputs[0]!), shapeOf(e.inputs[0]!), P.shape as number[]));
    case "broadcast": {
      const a = L.ew(e.inputs[0]!, L.dtypeOf(out));
      const axes = P.axis as number[];
      if (!axes.length) return L.setOut(out, a.name, a.shape);
      let j = 0;
      const shape = (P.shape as number[]).map((_, i) => (axes.includes(i) ? 1 : a.shape[j++]!));
      return L.setOut(out, g.op("Unsqueeze", [a.name, g.ints(axes)], L.info(out, shape)), shape);
    }
    case "shrink": {
      const from = shapeOf(e.inputs[0]!);
      const axes: number[] = [];
      const starts: number[] = [];
      const ends: number[] = [];
      (P.slice as Array<[number, number]>).forEach(([s, t], i) => {
        if (s !== 0 || t !== from[i]) axes.push(i), starts.push(s), ends.push(t);
      });
      const x = L.need(e.inputs[0]!);
      return L.setOut(out, axes.length ? g.op("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes)], L.info(out)) : x);
    }
    case "pad": {
      const width = P.width as Array<[number, number]>;
      return L.setOut(out, L.pad(L.need(e.inputs[0]!), [...width.map(([l]) => l), ...width.map(([, h]) => h)], L.info(out)));
    }
    case "concatenate":
      return L.setOut(out, g.op("Concat", e.inputs.map((x) => L.need(x)), L.info(out), { axis: P.axis as number }));
    case "split": {
      const names = g.ops("Split", [L.need(e.inputs[0]!), g.ints(P.sizes as number[])], e.outBinders.map((o) => L.info(o)), { axis: P.axis as number });
      return e.outBinders.forEach((o, k) => L.full.set(o, names[k]!));
    }
    case "flip":
      return L.setOut(out, L.flip(L.need(e.inputs[0]!), P.axis as number[], L.info(out)));
    case "gather":
      return L.setOut(out, gather(L, e));
    case "scatter": {
      if ((P.axis as number[]).length !== 1 || P.axis[0] !== 0 || P.outDim !== 0 || P.op !== "add") throw new Unlowerable("scatter", "only adds over the first axis");
      const [updates, idx] = e.inputs as [Atom, Atom];
      return L.setOut(out, L.scatterAdd(L.need(updates), L.need(idx), shapeOf(idx), L.info(out)));
    }
    case "conv":
      return L.setOut(out, conv(L, e));
    case "sort":
    case "argsort": {
      const x = e.inputs[0]!;
      const n = shapeOf(x).at(-1)!;
      const [values, indices] = g.ops("TopK", [L.need(x), g.ints([n])], [L.info(out), { shape: shapeOf(x), dtype: "int64" }], { axis: -1, largest: 0, sorted: 1 });
      L.setOut(out, values!);
      if (prim === "argsort") L.setOut(e.outBinders[1]!, g.op("Cast", [indices!], L.info(e.outBinders[1]!), { to: ONNX_TYPE.int32 }));
      return;
    }
    default:
      throw new Unlowerable(prim);
  }
}


function gather(L: Lowering, e: Eqn): string {
  const P = e.params;
  if ((P.axis as number[]).length !== 1 || e.inputs.length !== 2) throw new Unlowerable("gather", "over several axes");
  const [x, idx] = e.inputs as [Atom, Atom];
  const a = P.axis[0] as number;
  const xs = shapeOf(x);
  const ni = shapeOf(idx).length;
  const rest = xs.map((_, i) => i).filter((i) => i !== a);
  const onnxShape = [...rest.slice(0, a).map((i) => xs[i]!), ...shapeOf(idx), ...rest.slice(a).map((i) => xs[i]!)];
  const n = L.g.op("Gather", [L.need(x), L.need(idx)], { shape: onnxShape, dtype: L.dtypeOf(e.outBinders[0]!) }, { axis: a });
  if (P.outDim === a) return n;
  // ONNX puts the index axes at `axis`; jax-js at `outDim` of the shape without `axis`.
  const roles = [...rest.slice(0, a).map((i) => `x${i}`), ...Array.from({ length: ni }, (_, k) => `i${k}`), ...rest.slice(a).map((i) => `x${i}`)];
  const want = [...rest.slice(0, P.outDim).map((i) => `x${i}`), ...Array.from({ length: ni }, (_, k) => `i${k}`), ...rest.slice(P.outDim).map((i) => `x${i}`)];
  return L.transposeTo(n, onnxShape, want.map((w) => roles.indexOf(w)));
}

/** jax-js's conv is lax.conv_general_dilated in NC<spatial> / OI<spatial> layouts. */
function conv(L: Lowering, e: Eqn): string {
  const { g } = L;
  const P = e.params;
  if (P.vmapDims !== 0) throw new Unlowerable("conv", "batched over a vmap axis");
  const [x, w] = e.inputs as [Atom, Atom];
  let xn = L.need(x);
  const xs = [...shapeOf(x)];
  const spatial = xs.length - 2;
  // Input dilation: d - 1 zeros between elements along each spatial axis.
  for (let i = 0; i < spatial; i++) {
    const d = (P.lhsDilation as number[])[i]!;
    if (d === 1) continue;
    const ax = 2 + i;
    const n = xs[ax]!;
    const unsq = [...xs.slice(0, ax + 1), 1, ...xs.slice(ax + 1)];
    const u = g.op("Unsqueeze", [xn, g.ints([ax + 1])], f32(unsq));
    const pads = Array<number>(2 * (xs.length + 1)).fill(0);
    pads[xs.length + 1 + ax + 1] = d - 1;
    const padded = L.pad(u, pads, f32(unsq.map((v, k) => (k === ax + 1 ? d : v))));
    const merged = [...xs];
    merged[ax] = n * d;
    const r = g.op("Reshape", [padded, g.ints(merged)], f32(merged));
    xs[ax] = (n - 1) * d + 1;
    xn = g.op("Slice", [r, g.ints([0]), g.ints([xs[ax]!]), g.ints([ax])], f32([...xs]));
  }
  // ONNX Conv takes only non-negative pads: negative padding crops first.
  const padding = P.padding as Array<[number, number]>;
  const lo = padding.map(([l]) => l);
  const hi = padding.map(([, h]) => h);
  if (lo.some((v) => v < 0) || hi.some((v) => v < 0)) {
    const axes: number[] = [];
    const st: number[] = [];
    const en: number[] = [];
    for (let i = 0; i < spatial; i++) {
      if (lo[i]! >= 0 && hi[i]! >= 0) continue;
      axes.push(2 + i), st.push(Math.max(0, -lo[i]!)), en.push(xs[2 + i]! - Math.max(0, -hi[i]!));
      xs[2 + i] = en.at(-1)! - st.at(-1)!;
    }
    xn = g.op("Slice", [xn, g.ints(st), g.ints(en), g.ints(axes)], f32([...xs]));
  }
  const pads = [...lo.map((v) => Math.max(0, v)), ...hi.map((v) => Math.max(0, v))];
  return g.op("Conv", [xn, L.need(w)], f32(shapeOf(e.outBinders[0]!)), { strides: P.strides as number[], pads, dilations: P.rhsDilation as number[] });
}
