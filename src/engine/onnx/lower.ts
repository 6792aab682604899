/**
 * A jax-js program (a ClosedJaxpr) lowered to an ONNX graph for onnxruntime's CPU provider, and,
 * for a loss, its gradient (onnx/backward.ts).
 *
 * - Emission is demand-driven: an equation is written only if something written needs it, so the
 *   transpose/reshape chains feeding a matched dot (onnx/dot.ts) disappear.
 * - Broadcasts are lazy: an Unsqueeze only, ONNX's own broadcasting in the elementwise consumer doing
 *   the rest; an Expand is written only where a non-elementwise consumer needs the full shape.
 * - Fused operations (engine/fused.ts) arrive as jits named `mcnc_<name>`; each is written with its
 *   own rule. One whose shapes are not its rule's is inlined and lowered primitive by primitive.
 *
 * A primitive with no ONNX form (random bits, pooling windows, linear algebra) throws Unlowerable,
 * naming it; the program then runs on Wasm.
 */
import type { ClosedJaxpr } from "@jax-js/jax";
import { differentiate } from "./backward.js";
import { absorbedBy, planDots, type DotPlan } from "./dot.js";
import type { Forward, FusedRule, Operand } from "./fused-rule.js";
import { Graph, type TensorInfo } from "./graph.js";
import { elementType, inline, isLit, type Atom, type Eqn, type Lit, type Program, type Var } from "./jaxpr.js";
import { ONNX_TYPE, type ElementType, type ValueSpec } from "./proto.js";

export class Unlowerable extends Error {
  constructor(
    readonly primitive: string,
    detail = "",
  ) {
    super(`${primitive}${detail ? ` (${detail})` : ""} has no ONNX lowering`);
  }
}

export interface Lowered {
  bytes: Uint8Array;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  /** Bytes the graph's tensors hold at the peak (Graph.peakBytes). */
  peakBytes: number;
  stats: { equations: number; nodes: number; matmuls: number; fused: Record<string, number>; expands: number };
}

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

export const prod = (a: readonly number[]): number => a.reduce((x, y) => x * y, 1);
export const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
export const shapeOf = (v: Atom): number[] => v.aval.shape;

/** The shape two or more operands broadcast to (NumPy's rule). */
export function broadcastShape(shapes: ReadonlyArray<readonly number[]>): number[] {
  const r = Math.max(...shapes.map((s) => s.length));
  const out = Array<number>(r).fill(1);
  for (const s of shapes) s.forEach((d, i) => d !== 1 && (out[r - s.length + i] = d));
  return out;
}

/** A fused call: its rule and its primal inputs (a jit's inputs are its constants, then its arguments). */
export interface FusedCall {
  name: string;
  rule: FusedRule;
  args: Atom[];
}

function fusedCall(e: Eqn, rules: ReadonlyMap<string, FusedRule>): FusedCall | null {
  if (e.primitive !== "jit") return null;
  const name = e.params.name as string;
  const rule = rules.get(name);
  return rule ? { name, rule, args: e.inputs.slice(e.params.numConsts as number) } : null;
}

/** The program with nested jits inlined but the fused calls whose shapes fit their rules. */
function prepare(closed: ClosedJaxpr, rules: ReadonlyMap<string, FusedRule>): { program: Program; calls: Map<Eqn, FusedCall> } {
  const rejected = new Set<Eqn>();
  for (;;) {
    const program = inline(closed.jaxpr, (e) => !rejected.has(e) && fusedCall(e, rules) !== null);
    const calls = new Map<Eqn, FusedCall>();
    const before = rejected.size;
    for (const e of program.eqns) {
      const call = fusedCall(e, rules);
      if (!call) continue;
      const { args, rule } = call;
      const fits =
        args.length === rule.inputs &&
        args.every((a) => !isLit(a) && a.aval.dtype === "float32") &&
        e.outBinders.length === rule.outputs &&
        rule.outShapes(args.map(shapeOf)).every((s, i) => same(s, shapeOf(e.outBinders[i]!)));
      if (fits) calls.set(e, call);
      else rejected.add(e.source ?? e);
    }
    if (rejected.size === before) return { program, calls };
  }
}

/** The state of one lowering: the graph, and the ONNX tensor each jaxpr variable has become. */
export class Lowering {
  readonly g = new Graph();
  /** Variables written in their own shape. */
  readonly full = new Map<Var, string>();
  /** Broadcasts not yet expanded: the shape has 1 where the variable is constant along an axis. */
  readonly lazy = new Map<Var, Operand>();
  /** What each fused call's forward saved for its backward. */
  readonly forwards = new Map<Eqn, Forward>();
  readonly stats: Lowered["stats"];
  readonly plans: Map<Eqn, DotPlan | null>;
  readonly absorbed: Set<Eqn>;

  constructor(
    readonly program: Program,
    readonly calls: Map<Eqn, FusedCall>,
  ) {
    this.stats = { equations: program.eqns.length, nodes: 0, matmuls: 0, fused: {}, expands: 0 };
    this.plans = planDots(program.eqns, program.outs);
    this.absorbed = absorbedBy(this.plans, program.eqns);
  }

  dtypeOf(a: Atom, fallback?: ElementType): ElementType {
    const t = elementType(a.aval.dtype) ?? fallback;
    if (!t) throw new Unlowerable(`dtype ${a.aval.dtype}`);
    return t;
  }

  info(v: Atom, shape: readonly number[] = shapeOf(v)): TensorInfo {
    return { shape, dtype: this.dtypeOf(v) };
  }

  private lit(a: Lit, dtype?: ElementType): string {
    return this.g.scalar(dtype ?? this.dtypeOf(a), a.value);
  }

  /** The tensor of `a` in its own shape. */
  need(a: Atom, dtype?: ElementType): string {
    if (isLit(a)) return this.lit(a, dtype);
    const f = this.full.get(a);
    if (f) return f;
    const l = this.lazy.get(a);
    if (!l) throw new Error(`variable ${a.id} used before it is written`);
    this.stats.expands++;
    const n = this.g.op("Expand", [l.name, this.g.ints(shapeOf(a))], this.info(a));
    this.full.set(a, n);
    return n;
  }

  /** The tensor of `a` for an elementwise use, possibly still a lazy broadcast. */
  ew(a: Atom, dtype?: ElementType): Operand {
    if (isLit(a)) return { name: this.lit(a, dtype), shape: [] };
    const f = this.full.get(a);
    if (f) return { name: f, shape: shapeOf(a) };
    const l = this.lazy.get(a);
    if (!l) throw new Error(`variable ${a.id} used before it is written`);
    return l;
  }

  setOut(v: Var, name: string, shape?: readonly number[]): void {
    if (!shape || same(shape, shapeOf(v))) this.full.set(v, name);
    else this.lazy.set(v, { name, shape: [...shape] });
  }

  transposeTo(name: string, shape: readonly number[], perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return name;
    const to = perm.map((p) => shape[p]!);
    // Moving only axes of size 1 leaves the data in place: a reshape, which copies nothing.
    const moved = perm.filter((p) => shape[p] !== 1);
    if (moved.every((p, i) => i === 0 || p > moved[i - 1]!)) return this.reshapeTo(name, shape, to);
    return this.g.op("Transpose", [name], { shape: to, dtype: this.g.info.get(name)!.dtype }, { perm: [...perm] });
  }

  /** `name` reshaped; a reshape of a reshape reads the first one's input. */
  reshapeTo(name: string, from: readonly number[], to: readonly number[]): string {
    if (same(from, to)) return name;
    const source = this.g.reshapeSource(name);
    if (source && same(this.g.info.get(source)!.shape, to)) return source;
    return this.g.op("Reshape", [source ?? name, this.g.ints(to)], { shape: to, dtype: this.g.info.get(name)!.dtype });
  }

  /** Writes equation `e`. */
  emit(e: Eqn): void {
    const { g } = this;
    const out = e.outBinders[0]!;
    const P = e.params;
    const prim = e.primitive;
    const call = this.calls.get(e);
    if (call) return this.emitFused(e, call);
    if (prim === "dot") {
      const plan = this.plans.get(e);
      if (plan) return this.emitDot(e, plan);
      const [x, y] = e.inputs as [Atom, Atom];
      const m = g.op("Mul", [this.need(x, "float32"), this.need(y, "float32")], { shape: broadcastShape([shapeOf(x), shapeOf(y)]), dtype: "float32" });
      return this.setOut(out, g.op("ReduceSum", [m, g.ints([-1])], this.info(out), { keepdims: 0 }));
    }
    if (prim === "stop_gradient") {
      const a = this.ew(e.inputs[0]!);
      return this.setOut(out, a.name, a.shape);
    }
    if (UNARY[prim]) {
      const a = this.ew(e.inputs[0]!, this.dtypeOf(out));
      return this.setOut(out, g.op(UNARY[prim]!, [a.name], this.info(out, a.shape)), a.shape);
    }
    if (BINARY[prim] || prim === "compare" || prim === "idiv" || prim === "mod") {
      const dt = this.dtypeOf(e.inputs.find((a) => !isLit(a)) ?? out);
      const [a, b] = e.inputs.map((x) => this.ew(x, dt)) as [Operand, Operand];
      const shape = broadcastShape([a.shape, b.shape]);
      const o = this.info(out, shape);
      let n: string;
      if (BINARY[prim] && dt === "bool") n = g.op(prim === "add" || prim === "max" ? "Or" : "And", [a.name, b.name], o);
      else if (prim === "max" && isLit(e.inputs[1]!) && e.inputs[1].value === 0 && !isLit(e.inputs[0]!)) n = g.op("Relu", [a.name], o);
      else if (BINARY[prim]) n = g.op(BINARY[prim]!, [a.name, b.name], o);
      else if (prim === "idiv") n = dt === "float32" ? g.op("Floor", [g.op("Div", [a.name, b.name], o)], o) : g.op("Div", [a.name, b.name], o);
      else if (prim === "mod") n = g.op("Mod", [a.name, b.name], o, { fmod: 1 });
      else if (P.op === "not_equal") n = g.op("Not", [g.op("Equal", [a.name, b.name], o)], o);
      else if (COMPARE[P.op as string]) n = g.op(COMPARE[P.op as string]!, [a.name, b.name], o);
      else throw new Unlowerable(`compare ${String(P.op)}`);
      return this.setOut(out, n, shape);
    }
    switch (prim) {
      case "where": {
        const dt = this.dtypeOf(out);
        const [c, a, b] = [this.ew(e.inputs[0]!, "bool"), this.ew(e.inputs[1]!, dt), this.ew(e.inputs[2]!, dt)];
        const shape = broadcastShape([c.shape, a.shape, b.shape]);
        return this.setOut(out, g.op("Where", [c.name, a.name, b.name], this.info(out, shape)), shape);
      }
      case "erfc": {
        const a = this.ew(e.inputs[0]!, "float32");
        const o = this.info(out, a.shape);
        return this.setOut(out, g.op("Sub", [g.scalar("float32", 1), g.op("Erf", [a.name], o)], o), a.shape);
      }
      case "cast": {
        const a = this.ew(e.inputs[0]!);
        const to = elementType(P.dtype as string);
        if (!to) throw new Unlowerable("cast", `to ${String(P.dtype)}`);
        return this.setOut(out, g.op("Cast", [a.name], this.info(out, a.shape), { to: ONNX_TYPE[to] }), a.shape);
      }
      case "reduce": {
        const x = this.need(e.inputs[0]!);
        const axes = P.axis as number[];
        if (axes.length === 0) return this.setOut(out, x);
        if (!REDUCE[P.op as string]) throw new Unlowerable(`reduce ${String(P.op)}`);
        return this.setOut(out, g.op(REDUCE[P.op as string]!, [x, g.ints(axes)], this.info(out), { keepdims: 0 }));
      }
      case "transpose": {
        const a = this.ew(e.inputs[0]!);
        const perm = P.perm as number[];
        return this.setOut(out, this.transposeTo(a.name, a.shape, perm), perm.map((p) => a.shape[p]!));
      }
      case "reshape":
        return this.setOut(out, this.reshapeTo(this.need(e.inputs[0]!), shapeOf(e.inputs[0]!), P.shape as number[]));
      case "broadcast": {
        const a = this.ew(e.inputs[0]!, this.dtypeOf(out));
        const axes = P.axis as number[];
        if (!axes.length) return this.setOut(out, a.name, a.shape);
        let j = 0;
        const shape = (P.shape as number[]).map((_, i) => (axes.includes(i) ? 1 : a.shape[j++]!));
        return this.setOut(out, g.op("Unsqueeze", [a.name, g.ints(axes)], this.info(out, shape)), shape);
      }
      case "shrink": {
        const from = shapeOf(e.inputs[0]!);
        const axes: number[] = [];
        const starts: number[] = [];
        const ends: number[] = [];
        (P.slice as Array<[number, number]>).forEach(([s, t], i) => {
          if (s !== 0 || t !== from[i]) axes.push(i), starts.push(s), ends.push(t);
        });
        const x = this.need(e.inputs[0]!);
        return this.setOut(out, axes.length ? g.op("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes)], this.info(out)) : x);
      }
      case "pad": {
        const width = P.width as Array<[number, number]>;
        return this.setOut(out, this.pad(this.need(e.inputs[0]!), [...width.map(([l]) => l), ...width.map(([, h]) => h)], this.info(out)));
      }
      case "concatenate":
        return this.setOut(out, g.op("Concat", e.inputs.map((x) => this.need(x)), this.info(out), { axis: P.axis as number }));
      case "split": {
        const names = g.ops("Split", [this.need(e.inputs[0]!), g.ints(P.sizes as number[])], e.outBinders.map((o) => this.info(o)), { axis: P.axis as number });
        return e.outBinders.forEach((o, k) => this.full.set(o, names[k]!));
      }
      case "flip":
        return this.setOut(out, this.flip(this.need(e.inputs[0]!), P.axis as number[], this.info(out)));
      case "gather":
        return this.setOut(out, this.gather(e));
      case "scatter": {
        if ((P.axis as number[]).length !== 1 || P.axis[0] !== 0 || P.outDim !== 0 || P.op !== "add") throw new Unlowerable("scatter", "only adds over the first axis");
        const [updates, idx] = e.inputs as [Atom, Atom];
        return this.setOut(out, this.scatterAdd(this.need(updates), this.need(idx), shapeOf(idx), this.info(out)));
      }
      case "conv":
        return this.setOut(out, this.conv(e));
      case "sort":
      case "argsort": {
        const x = e.inputs[0]!;
        const n = shapeOf(x).at(-1)!;
        const [values, indices] = g.ops("TopK", [this.need(x), g.ints([n])], [this.info(out), { shape: shapeOf(x), dtype: "int64" }], { axis: -1, largest: 0, sorted: 1 });
        this.setOut(out, values!);
        if (prim === "argsort") this.setOut(e.outBinders[1]!, g.op("Cast", [indices!], this.info(e.outBinders[1]!), { to: ONNX_TYPE.int32 }));
        return;
      }
      default:
        throw new Unlowerable(prim);
    }
  }

  pad(x: string, pads: number[], out: TensorInfo): string {
    return this.g.op("Pad", [x, this.g.ints(pads), this.g.scalar(out.dtype, 0)], out, { mode: "constant" });
  }

  flip(x: string, axes: number[], out: TensorInfo): string {
    const big = -(2 ** 62);
    return this.g.op("Slice", [x, this.g.ints(axes.map(() => -1)), this.g.ints(axes.map(() => big)), this.g.ints(axes), this.g.ints(axes.map(() => -1))], out);
  }

  /** zeros(out.shape) with `updates` added at rows `idx` of the first axis. */
  scatterAdd(updates: string, idx: string, idxShape: readonly number[], out: TensorInfo): string {
    const { g } = this;
    const zeros = g.op("ConstantOfShape", [g.ints(out.shape)], out, { value: { name: "", dataType: ONNX_TYPE.float32, dims: [1], rawData: new Uint8Array(4) } });
    const at = g.op("Cast", [idx], { shape: idxShape, dtype: "int64" }, { to: ONNX_TYPE.int64 });
    const ind = g.op("Unsqueeze", [at, g.ints([-1])], { shape: [...idxShape, 1], dtype: "int64" });
    return g.op("ScatterND", [zeros, ind, updates], out, { reduction: "add" });
  }

  private emitDot(e: Eqn, p: DotPlan): void {
    this.stats.matmuls++;
    const { X, Y, K, xk, yk, batch, M, N, bcast, zs } = p;
    const Bs = batch.map((b) => zs[b.a]!);
    const Ms = M.map((m) => zs[m.a]!);
    const Ns = N.map((n) => zs[n.a]!);
    const normal = [...batch, ...M, ...N].map((x) => x.a);
    const swapped = [...batch, ...N, ...M].map((x) => x.a);
    // The axis order the result must end in: the dot's own, or that of the chain it writes.
    const want = p.redirect ? p.redirect.labels.filter((l): l is number => l != null) : zs.map((_, a) => a).filter((a) => normal.includes(a));
    const swap = !same(normal, want) && same(swapped, want);
    const [bx, by] = [batch.map((b) => b.xa), batch.map((b) => b.ya)];
    const [mx, ny] = [M.map((m) => m.xa), N.map((n) => n.ya)];
    const Bp = batch.length ? [prod(Bs)] : [];
    const xn = swap ? this.operand(X, [bx, [xk], mx], [...Bp, K, prod(Ms)]) : this.operand(X, [bx, mx, [xk]], [...Bp, prod(Ms), K]);
    const yn = swap ? this.operand(Y, [by, ny, [yk]], [...Bp, prod(Ns), K]) : this.operand(Y, [by, [yk], ny], [...Bp, K, prod(Ns)]);
    const mm = swap ? [...Bp, prod(Ns), prod(Ms)] : [...Bp, prod(Ms), prod(Ns)];
    let z = this.g.op("MatMul", swap ? [yn, xn] : [xn, yn], { shape: mm, dtype: "float32" });
    const order = swap ? swapped : normal;
    const mid = swap ? [...Bs, ...Ns, ...Ms] : [...Bs, ...Ms, ...Ns];
    z = this.reshapeTo(z, mm, mid);
    z = this.transposeTo(z, mid, want.map((a) => order.indexOf(a)));
    const wantShape = want.map((a) => zs[a]!);
    if (p.redirect) return this.setOut(p.redirect.target, this.reshapeTo(z, wantShape, shapeOf(p.redirect.target)));
    const lazyShape = zs.map((d, a) => (bcast.includes(a) ? 1 : d));
    this.setOut(e.outBinders[0]!, this.reshapeTo(z, wantShape, lazyShape), lazyShape);
  }

  /**
   * One operand of a MatMul: source tensor `v` as [lead..., a..., b...] (its other axes have size 1),
   * reshaped to `to` ([batch?, |a|, |b|]). Where the source already lies as [lead..., b..., a...], only
   * its last two axes are swapped, which onnxruntime folds into the MatMul (FusedMatMul's transA or
   * transB): a key cache or a weight is then read in place, never copied transposed.
   */
  operand(v: Var, [lead, a, b]: readonly [readonly number[], readonly number[], readonly number[]], to: readonly number[]): string {
    const s = shapeOf(v);
    const used = [...lead, ...a, ...b];
    const rest = s.map((_, i) => i).filter((i) => !used.includes(i));
    if (rest.some((i) => s[i] !== 1)) throw new Error("dot plan left a source axis unread");
    const big = (axes: readonly number[]) => axes.filter((i) => s[i] !== 1);
    const lies = s.map((_, i) => i).filter((i) => s[i] !== 1);
    if (same(lies, [...big(lead), ...big(a), ...big(b)])) return this.reshapeTo(this.need(v), s, to);
    if (same(lies, [...big(lead), ...big(b), ...big(a)])) {
      const swapped = [...to.slice(0, -2), to.at(-1)!, to.at(-2)!];
      return this.transposeTo(this.reshapeTo(this.need(v), s, swapped), swapped, [...to.slice(0, -2).map((_, i) => i), to.length - 1, to.length - 2]);
    }
    const perm = [...used, ...rest];
    return this.reshapeTo(this.transposeTo(this.need(v), s, perm), perm.map((i) => s[i]!), to);
  }

  private emitFused(e: Eqn, call: FusedCall): void {
    const name = call.name.slice("mcnc_".length);
    this.stats.fused[name] = (this.stats.fused[name] ?? 0) + 1;
    const fwd = call.rule.forward(
      this.g,
      call.args.map((a) => ({ name: this.need(a), shape: shapeOf(a) })),
    );
    this.forwards.set(e, fwd);
    fwd.outs.forEach((n, i) => this.setOut(e.outBinders[i]!, n));
  }

  private gather(e: Eqn): string {
    const P = e.params;
    if ((P.axis as number[]).length !== 1 || e.inputs.length !== 2) throw new Unlowerable("gather", "over several axes");
    const [x, idx] = e.inputs as [Atom, Atom];
    const a = P.axis[0] as number;
    const xs = shapeOf(x);
    const ni = shapeOf(idx).length;
    const rest = xs.map((_, i) => i).filter((i) => i !== a);
    const onnxShape = [...rest.slice(0, a).map((i) => xs[i]!), ...shapeOf(idx), ...rest.slice(a).map((i) => xs[i]!)];
    const n = this.g.op("Gather", [this.need(x), this.need(idx)], { shape: onnxShape, dtype: this.dtypeOf(e.outBinders[0]!) }, { axis: a });
    if (P.outDim === a) return n;
    // ONNX puts the index axes at `axis`; jax-js at `outDim` of the shape without `axis`.
    const roles = [...rest.slice(0, a).map((i) => `x${i}`), ...Array.from({ length: ni }, (_, k) => `i${k}`), ...rest.slice(a).map((i) => `x${i}`)];
    const want = [...rest.slice(0, P.outDim).map((i) => `x${i}`), ...Array.from({ length: ni }, (_, k) => `i${k}`), ...rest.slice(P.outDim).map((i) => `x${i}`)];
    return this.transposeTo(n, onnxShape, want.map((w) => roles.indexOf(w)));
  }

  /** jax-js's conv is lax.conv_general_dilated in NC<spatial> / OI<spatial> layouts. */
  private conv(e: Eqn): string {
    const { g } = this;
    const P = e.params;
    if (P.vmapDims !== 0) throw new Unlowerable("conv", "batched over a vmap axis");
    const [x, w] = e.inputs as [Atom, Atom];
    let xn = this.need(x);
    const xs = [...shapeOf(x)];
    const spatial = xs.length - 2;
    const f32 = (shape: number[]) => ({ shape, dtype: "float32" as const });
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
      const padded = this.pad(u, pads, f32(unsq.map((v, k) => (k === ax + 1 ? d : v))));
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
    return g.op("Conv", [xn, this.need(w)], f32(shapeOf(e.outBinders[0]!)), { strides: P.strides as number[], pads, dilations: P.rhsDilation as number[] });
  }
}

type Typed = Float32Array | Int32Array | Uint8Array;

export interface LowerOptions {
  /**
   * Differentiate: the program's one output is a scalar loss, and the graph gives it followed by its
   * gradient with respect to the first `wrt` inputs (after the constants).
   */
  wrt?: number;
}

/** Lower `closed`, whose constants' values are `consts` (read from the engine by the caller). */
export function lower(closed: ClosedJaxpr, consts: readonly Typed[], rules: ReadonlyMap<string, FusedRule>, options: LowerOptions = {}): Lowered {
  const { program, calls } = prepare(closed, rules);
  const L = new Lowering(program, calls);
  const { g } = L;

  // What is needed: what the outputs read, back to the inputs. A dot reads its operands' sources.
  const deps = (e: Eqn): Atom[] => {
    const plan = L.plans.get(e);
    return plan ? [plan.X, plan.Y] : e.inputs;
  };
  const needed = new Set<Var>(program.outs.filter((a): a is Var => !isLit(a)));
  for (let k = program.eqns.length - 1; k >= 0; k--) {
    const e = program.eqns[k]!;
    if (e.outBinders.some((o) => needed.has(o))) for (const d of deps(e)) if (!isLit(d)) needed.add(d);
  }

  const nConsts = closed.consts.length;
  const inputs: ValueSpec[] = [];
  program.inBinders.forEach((v, i) => {
    if (i < nConsts) {
      if (needed.has(v)) L.full.set(v, g.constant(L.dtypeOf(v), shapeOf(v), consts[i]!));
      return;
    }
    const name = `in${i - nConsts}`;
    g.input(name, L.info(v));
    inputs.push({ name, dtype: L.dtypeOf(v), shape: shapeOf(v) });
    L.full.set(v, name);
  });

  for (const e of program.eqns) if (e.outBinders.some((o) => needed.has(o)) && !L.absorbed.has(e)) L.emit(e);

  const results = program.outs.map((a) => L.need(a));
  const specs = program.outs.map((a) => ({ dtype: L.dtypeOf(a), shape: shapeOf(a) }));
  if (options.wrt !== undefined) {
    if (program.outs.length !== 1 || shapeOf(program.outs[0]!).length !== 0) throw new Error("a gradient needs one scalar output");
    const wrt = program.inBinders.slice(nConsts, nConsts + options.wrt);
    results.push(...differentiate(L, wrt, program.outs[0]!));
    specs.push(...wrt.map((v) => ({ dtype: L.dtypeOf(v), shape: shapeOf(v) })));
  }
  const outputs: ValueSpec[] = results.map((name, k) => {
    g.output(`out${k}`, name);
    return { name: `out${k}`, ...specs[k]! };
  });
  g.prune();
  L.stats.nodes = g.nodes.length;
  if (typeof process !== "undefined" && process.env.MCNC_DUMP) for (const n of g.nodes) console.error(`${n.outputs.join(",")} [${n.outputs.map((o) => g.info.get(o)?.shape.join("x")).join(" ")}] = ${n.op}(${n.inputs.join(", ")}) ${n.attrs ? JSON.stringify(n.attrs).slice(0, 60) : ""}`);
  return { bytes: g.encode(), inputs, outputs, peakBytes: g.peakBytes(), stats: L.stats };
}
