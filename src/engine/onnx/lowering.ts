/** The state of one lowering: the graph, and the ONNX tensor each jaxpr variable has become. */
import { absorbedBy, planDots, type DotPlan } from "./dot.js";
import type { Forward, FusedRule, Operand } from "./fused-rule.js";
import { Graph, type TensorInfo } from "./graph.js";
import { elementType, isLit, prod, same, shapeOf, Unlowerable, type Atom, type Eqn, type Lit, type Program, type Var } from "./jaxpr.js";
import { emitPrimitive } from "./primitives.js";
import { ONNX_TYPE, type ElementType } from "./proto.js";

/** A fused call: its rule and its primal inputs (a jit's inputs are its constants, then its arguments). */
export interface FusedCall {
  name: string;
  rule: FusedRule;
  args: Atom[];
}

export interface LoweringStats {
  equations: number;
  nodes: number;
  matmuls: number;
  fused: Record<string, number>;
  expands: number;
}

export class Lowering {
  readonly g = new Graph();
  /** Variables written in their own shape. */
  readonly full = new Map<Var, string>();
  /** Broadcasts not yet expanded: the shape has 1 where the variable is constant along an axis. */
  readonly lazy = new Map<Var, Operand>();
  /** What each fused call's forward saved for its backward. */
  readonly forwards = new Map<Eqn, Forward>();
  readonly stats: LoweringStats;
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
  /** Writes equation `e`. */
  emit(e: Eqn): void {
    const call = this.calls.get(e);
    if (call) return this.emitFused(e, call);
    const plan = e.primitive === "dot" ? this.plans.get(e) : undefined;
    if (plan) return this.emitDot(e, plan);
    emitPrimitive(this, e);
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

}
