/**
 * Cotangents as a differentiation accumulates them: possibly lazy broadcasts (their shape has 1 where
 * the value repeats), summed back where an operand was broadcast, slices of one tensor kept apart until
 * the whole is read; and a matched dot's cotangents, two MatMuls into its operands' sources.
 */
import type { DotPlan } from "./dot.js";
import type { Operand } from "./fused-rule.js";
import { f32, type Graph } from "./graph.js";
import { broadcastShape, isLit, prod, same, shapeOf, type Atom, type Eqn, type Var } from "./jaxpr.js";
import type { Lowering } from "./lowering.js";

export class Cotangents {
  readonly g: Graph;

  /** `live`: the variables that depend on what is differentiated (only they get cotangents). */
  constructor(
    readonly L: Lowering,
    readonly live: ReadonlySet<Var>,
  ) {
    this.g = L.g;
  }

  readonly cts = new Map<Var, Operand>();
  /**
   * Adds `ct` to `v`'s cotangent. `from` is the true shape `ct` stands for (an elementwise result's,
   * which jax-js broadcasts its operands to): where `v` was broadcast, the cotangent is summed back.
   */
  readonly add = (v: Atom | undefined, make: () => Operand | null, from: readonly number[] = v ? shapeOf(v) : []) => {
    if (!v || isLit(v) || !this.live.has(v)) return;
    const given = make();
    if (!given) return;
    let ct = given;
    if (ct.shape.length < from.length) {
      const shape = [...Array<number>(from.length - ct.shape.length).fill(1), ...ct.shape];
      ct = { name: this.L.reshapeTo(ct.name, ct.shape, shape), shape };
    }
    if (!same(from, shapeOf(v))) ct = this.sumToShape(ct, from, shapeOf(v));
    const before = this.settled(v);
    this.cts.set(v, before ? { name: this.g.op("Add", [before.name, ct.name], f32(broadcastShape([before.shape, ct.shape]))), shape: broadcastShape([before.shape, ct.shape]) } : ct);
  };
  /**
   * Cotangents of slices along one axis, kept apart until the whole is read: then one Concat (zeros in
   * the gaps) where a Pad per slice and an Add per pair would each pass over the whole (MCNC cuts
   * every weight matrix out of one flat vector).
   */
  readonly slices = new Map<Var, { axis: number; parts: Array<{ start: number; end: number; name: string }> }>();
  readonly addSlice = (v: Var, axis: number, start: number, end: number, name: string) => {
    const pending = this.slices.get(v);
    if (pending && pending.axis === axis && pending.parts.every((p) => p.end <= start || p.start >= end)) pending.parts.push({ start, end, name });
    else {
      this.settled(v);
      if (this.cts.has(v) || pending) return false;
      this.slices.set(v, { axis, parts: [{ start, end, name }] });
    }
    return true;
  };
  /** `v`'s cotangent with pending slices put together. */
  readonly settled = (v: Var): Operand | undefined => {
    const pending = this.slices.get(v);
    if (!pending) return this.cts.get(v);
    this.slices.delete(v);
    const shape = shapeOf(v);
    const { axis, parts } = pending;
    const pieces: string[] = [];
    let at = 0;
    const gap = (size: number) => {
      const s = shape.map((d, i) => (i === axis ? size : d));
      pieces.push(this.g.op("ConstantOfShape", [this.g.ints(s)], f32(s)));
    };
    for (const p of parts.sort((x, y) => x.start - y.start)) {
      if (p.start > at) gap(p.start - at);
      pieces.push(p.name);
      at = p.end;
    }
    if (at < shape[axis]!) gap(shape[axis]! - at);
    const whole = { name: pieces.length === 1 ? pieces[0]! : this.g.op("Concat", pieces, f32(shape), { axis }), shape };
    const before = this.cts.get(v);
    this.cts.set(v, before ? this.op("Add", [before.name, whole.name], shape) : whole);
    return this.cts.get(v);
  };
  readonly op = (type: string, inputs: string[], shape: readonly number[], attrs?: Parameters<typeof this.g.op>[3]): Operand => ({ name: this.g.op(type, inputs, f32(shape), attrs), shape: [...shape] });
  readonly scalar = (v: number) => this.g.scalar("float32", v);
  readonly full = (ct: Operand, shape: readonly number[]): string => (same(ct.shape, shape) ? ct.name : this.g.op("Expand", [ct.name, this.g.ints(shape)], f32(shape)));

  /**
   * `ct` summed over `axes` of `shape` (its true shape; `ct` may be a lazy broadcast of it), the axes
   * kept as 1 or dropped. Along a lazy axis the value repeats, so its sum is a multiplication.
   */
  readonly sum = (ct: Operand, shape: readonly number[], axes: readonly number[], keep: boolean): Operand => {
    const real = axes.filter((a) => ct.shape[a] !== 1);
    const repeat = prod(axes.filter((a) => ct.shape[a] === 1).map((a) => shape[a]!));
    const kept = ct.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    let out = real.length ? this.op("ReduceSum", [ct.name, this.g.ints(real)], kept, { keepdims: 1 }) : ct;
    if (repeat !== 1) out = this.op("Mul", [out.name, this.scalar(repeat)], out.shape);
    if (keep) return out;
    const dropped = kept.filter((_, i) => !axes.includes(i));
    return { name: this.L.reshapeTo(out.name, out.shape, dropped), shape: dropped };
  };
  /** `ct` with unit axes inserted at `axes` (their positions in the result). */
  readonly unsqueeze = (ct: Operand, axes: readonly number[]): Operand => {
    if (!axes.length) return ct;
    const shape = [...ct.shape];
    for (const a of [...axes].sort((x, y) => x - y)) shape.splice(a, 0, 1);
    return this.op("Unsqueeze", [ct.name, this.g.ints(axes)], shape);
  };

  /** A matched dot's cotangent `c` into its operands' sources, as two MatMuls. */
  readonly dot = (c: Operand, p: DotPlan) => {
    const { X, Y, K, xk, yk, batch, M, N, bcast, zs } = p;
    const needX = this.live.has(X);
    const needY = this.live.has(Y);
    if (!needX && !needY) return;
    // The result is constant along `bcast` axes: sum them, then order the rest batch, M, N.
    const summed = bcast.length ? this.sum(c, zs, bcast, true) : c;
    const zShape = zs.map((d, a) => (bcast.includes(a) ? 1 : d));
    const labelled = [...batch.map((b) => b.a), ...M.map((m) => m.a), ...N.map((n) => n.a)];
    const order = [...labelled, ...zs.map((_, a) => a).filter((a) => !labelled.includes(a))];
    const Bs = batch.map((b) => zs[b.a]!);
    const Bp = batch.length ? [prod(Bs)] : [];
    const Mp = prod(M.map((m) => zs[m.a]!));
    const Np = prod(N.map((n) => zs[n.a]!));
    const dz = this.L.reshapeTo(this.L.transposeTo(this.full(summed, zShape), zShape, order), order.map((a) => zShape[a]!), [...Bp, Mp, Np]);
    // Back to a source's own layout: its `used` axes hold `mat`'s, every other axis has size 1.
    const toSource = (v: Var, mat: string, used: number[]) => {
      const s = shapeOf(v);
      const rest = s.map((_, i) => i).filter((i) => !used.includes(i));
      const perm = [...used, ...rest];
      const inv = perm.map((_, i) => perm.indexOf(i));
      return this.L.transposeTo(this.L.reshapeTo(mat, this.g.info.get(mat)!.shape, perm.map((i) => s[i]!)), perm.map((i) => s[i]!), inv);
    };
    const [bx, by] = [batch.map((b) => b.xa), batch.map((b) => b.ya)];
    const [mx, ny] = [M.map((m) => m.xa), N.map((n) => n.ya)];
    const ux = [...bx, ...mx, xk];
    if (needX) {
      const y = this.L.operand(Y, [by, ny, [yk]], [...Bp, Np, K]);
      this.add(X, () => ({ name: toSource(X, this.g.op("MatMul", [dz, y], f32([...Bp, Mp, K])), ux), shape: shapeOf(X) }));
    }
    if (needY) {
      const x = this.L.operand(X, [bx, mx, [xk]], [...Bp, Mp, K]);
      const xt = this.L.transposeTo(x, [...Bp, Mp, K], batch.length ? [0, 2, 1] : [1, 0]);
      const uyKN = [...by, yk, ...ny];
      this.add(Y, () => ({ name: toSource(Y, this.g.op("MatMul", [xt, dz], f32([...Bp, K, Np])), uyKN), shape: shapeOf(Y) }));
    }
  };

  /** sum(x * y, -1) with NumPy broadcasting, where no plan was found: each side's product, summed back to its shape. */
  readonly genericDot = (e: Eqn, c: Operand) => {
    const [x, y] = e.inputs as [Var, Var];
    const zc = this.unsqueeze({ name: this.full(c, shapeOf(e.outBinders[0]!)), shape: shapeOf(e.outBinders[0]!) }, [shapeOf(e.outBinders[0]!).length]);
    for (const [v, other] of [
      [x, y],
      [y, x],
    ] as const) {
      if (!this.live.has(v)) continue;
      const prodShape = broadcastShape([zc.shape, shapeOf(other)]);
      this.add(v, () => this.op("Mul", [zc.name, this.L.need(other)], prodShape), prodShape);
    }
  };
  /** `ct`, standing for a tensor of shape `from`, summed back to `target` (NumPy's broadcasting undone). */
  readonly sumToShape = (ct: Operand, from: readonly number[], target: readonly number[]): Operand => {
    const lead = from.length - target.length;
    const out = lead > 0 ? this.sum(ct, from, Array.from({ length: lead }, (_, i) => i), false) : ct;
    const rest = from.slice(lead);
    const axes = target.flatMap((d, i) => (d === 1 && rest[i] !== 1 ? [i] : []));
    return axes.length ? this.sum(out, rest, axes, true) : out;
  };
}
