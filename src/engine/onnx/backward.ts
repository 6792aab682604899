/**
 * Reverse-mode differentiation of a lowered program, written straight into the ONNX graph.
 *
 * jax-js's own autodiff could be traced too, but what it leaves is shaped for jax-js: every matmul's
 * cotangent broadcast along a new axis, fused operations split by partial evaluation into pieces whose
 * inputs depend on what happened to be known. Differentiating the forward program here instead keeps
 * each matmul's gradient two MatMuls, each fused operation's backward its own rule, and cotangents
 * lazy where they are broadcasts. Each rule gives what jax-js's JVP rule for the primitive gives
 * (ties in max go to the first operand; a reduced max shares its cotangent among equal elements), and
 * the parity tests hold the two engines' gradients together.
 */
import type { DotPlan } from "./dot.js";
import type { Operand } from "./fused-rule.js";
import { isLit, type Atom, type Eqn, type Var } from "./jaxpr.js";
import { broadcastShape, prod, same, shapeOf, Unlowerable, type Lowering } from "./lower.js";
import { ONNX_TYPE } from "./proto.js";

/** Primitives whose outputs carry no derivative. */
const CONSTANT = new Set(["stop_gradient", "compare", "floor", "ceil", "idiv", "random_bits", "bit_combine", "bit_shift", "bit_count", "argsort"]);

const f32 = (shape: readonly number[]) => ({ shape: [...shape], dtype: "float32" as const });

/** Cotangents of `wrt` for the scalar `loss`, as full-shaped tensors (zeros where the loss does not depend on one). */
export function differentiate(L: Lowering, wrt: readonly Var[], loss: Atom): string[] {
  const { g, program } = L;
  const live = new Set<Var>(wrt);
  for (const e of program.eqns) {
    if (CONSTANT.has(e.primitive) || !e.inputs.some((a) => !isLit(a) && live.has(a))) continue;
    for (const o of e.outBinders) if (o.aval.dtype === "float32") live.add(o);
  }

  const cts = new Map<Var, Operand>();
  /**
   * Adds `ct` to `v`'s cotangent. `from` is the true shape `ct` stands for (an elementwise result's,
   * which jax-js broadcasts its operands to): where `v` was broadcast, the cotangent is summed back.
   */
  const add = (v: Atom | undefined, make: () => Operand | null, from: readonly number[] = v ? shapeOf(v) : []) => {
    if (!v || isLit(v) || !live.has(v)) return;
    const given = make();
    if (!given) return;
    let ct = given;
    if (ct.shape.length < from.length) {
      const shape = [...Array<number>(from.length - ct.shape.length).fill(1), ...ct.shape];
      ct = { name: L.reshapeTo(ct.name, ct.shape, shape), shape };
    }
    if (!same(from, shapeOf(v))) ct = sumToShape(ct, from, shapeOf(v));
    const before = settled(v);
    cts.set(v, before ? { name: g.op("Add", [before.name, ct.name], f32(broadcastShape([before.shape, ct.shape]))), shape: broadcastShape([before.shape, ct.shape]) } : ct);
  };
  /**
   * Cotangents of slices along one axis, kept apart until the whole is read: then one Concat (zeros in
   * the gaps) where a Pad per slice and an Add per pair would each pass over the whole (MCNC cuts
   * every weight matrix out of one flat vector).
   */
  const slices = new Map<Var, { axis: number; parts: Array<{ start: number; end: number; name: string }> }>();
  const addSlice = (v: Var, axis: number, start: number, end: number, name: string) => {
    const pending = slices.get(v);
    if (pending && pending.axis === axis && pending.parts.every((p) => p.end <= start || p.start >= end)) pending.parts.push({ start, end, name });
    else {
      settled(v);
      if (cts.has(v) || pending) return false;
      slices.set(v, { axis, parts: [{ start, end, name }] });
    }
    return true;
  };
  /** `v`'s cotangent with pending slices put together. */
  const settled = (v: Var): Operand | undefined => {
    const pending = slices.get(v);
    if (!pending) return cts.get(v);
    slices.delete(v);
    const shape = shapeOf(v);
    const { axis, parts } = pending;
    const pieces: string[] = [];
    let at = 0;
    const gap = (size: number) => {
      const s = shape.map((d, i) => (i === axis ? size : d));
      pieces.push(g.op("ConstantOfShape", [g.ints(s)], f32(s)));
    };
    for (const p of parts.sort((x, y) => x.start - y.start)) {
      if (p.start > at) gap(p.start - at);
      pieces.push(p.name);
      at = p.end;
    }
    if (at < shape[axis]!) gap(shape[axis]! - at);
    const whole = { name: pieces.length === 1 ? pieces[0]! : g.op("Concat", pieces, f32(shape), { axis }), shape };
    const before = cts.get(v);
    cts.set(v, before ? op("Add", [before.name, whole.name], shape) : whole);
    return cts.get(v);
  };
  const op = (type: string, inputs: string[], shape: readonly number[], attrs?: Parameters<typeof g.op>[3]): Operand => ({ name: g.op(type, inputs, f32(shape), attrs), shape: [...shape] });
  const scalar = (v: number) => g.scalar("float32", v);
  const full = (ct: Operand, shape: readonly number[]): string => (same(ct.shape, shape) ? ct.name : g.op("Expand", [ct.name, g.ints(shape)], f32(shape)));

  /**
   * `ct` summed over `axes` of `shape` (its true shape; `ct` may be a lazy broadcast of it), the axes
   * kept as 1 or dropped. Along a lazy axis the value repeats, so its sum is a multiplication.
   */
  const sum = (ct: Operand, shape: readonly number[], axes: readonly number[], keep: boolean): Operand => {
    const real = axes.filter((a) => ct.shape[a] !== 1);
    const repeat = prod(axes.filter((a) => ct.shape[a] === 1).map((a) => shape[a]!));
    const kept = ct.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    let out = real.length ? op("ReduceSum", [ct.name, g.ints(real)], kept, { keepdims: 1 }) : ct;
    if (repeat !== 1) out = op("Mul", [out.name, scalar(repeat)], out.shape);
    if (keep) return out;
    const dropped = kept.filter((_, i) => !axes.includes(i));
    return { name: L.reshapeTo(out.name, out.shape, dropped), shape: dropped };
  };
  /** `ct` with unit axes inserted at `axes` (their positions in the result). */
  const unsqueeze = (ct: Operand, axes: readonly number[]): Operand => {
    if (!axes.length) return ct;
    const shape = [...ct.shape];
    for (const a of [...axes].sort((x, y) => x - y)) shape.splice(a, 0, 1);
    return op("Unsqueeze", [ct.name, g.ints(axes)], shape);
  };

  const dot = (e: Eqn, c: Operand, p: DotPlan) => {
    const { X, Y, K, xk, yk, batch, M, N, bcast, zs } = p;
    const needX = live.has(X);
    const needY = live.has(Y);
    if (!needX && !needY) return;
    // The result is constant along `bcast` axes: sum them, then order the rest batch, M, N.
    const summed = bcast.length ? sum(c, zs, bcast, true) : c;
    const zShape = zs.map((d, a) => (bcast.includes(a) ? 1 : d));
    const labelled = [...batch.map((b) => b.a), ...M.map((m) => m.a), ...N.map((n) => n.a)];
    const order = [...labelled, ...zs.map((_, a) => a).filter((a) => !labelled.includes(a))];
    const Bs = batch.map((b) => zs[b.a]!);
    const Bp = batch.length ? [prod(Bs)] : [];
    const Mp = prod(M.map((m) => zs[m.a]!));
    const Np = prod(N.map((n) => zs[n.a]!));
    const dz = L.reshapeTo(L.transposeTo(full(summed, zShape), zShape, order), order.map((a) => zShape[a]!), [...Bp, Mp, Np]);
    // Back to a source's own layout: its `used` axes hold `mat`'s, every other axis has size 1.
    const toSource = (v: Var, mat: string, used: number[]) => {
      const s = shapeOf(v);
      const rest = s.map((_, i) => i).filter((i) => !used.includes(i));
      const perm = [...used, ...rest];
      const inv = perm.map((_, i) => perm.indexOf(i));
      return L.transposeTo(L.reshapeTo(mat, g.info.get(mat)!.shape, perm.map((i) => s[i]!)), perm.map((i) => s[i]!), inv);
    };
    const [bx, by] = [batch.map((b) => b.xa), batch.map((b) => b.ya)];
    const [mx, ny] = [M.map((m) => m.xa), N.map((n) => n.ya)];
    const ux = [...bx, ...mx, xk];
    if (needX) {
      const y = L.operand(Y, [by, ny, [yk]], [...Bp, Np, K]);
      add(X, () => ({ name: toSource(X, g.op("MatMul", [dz, y], f32([...Bp, Mp, K])), ux), shape: shapeOf(X) }));
    }
    if (needY) {
      const x = L.operand(X, [bx, mx, [xk]], [...Bp, Mp, K]);
      const xt = L.transposeTo(x, [...Bp, Mp, K], batch.length ? [0, 2, 1] : [1, 0]);
      const uyKN = [...batch.map((b) => b.ya), yk, ...N.map((n) => n.ya)];
      add(Y, () => ({ name: toSource(Y, g.op("MatMul", [xt, dz], f32([...Bp, K, Np])), uyKN), shape: shapeOf(Y) }));
    }
    void e;
  };

  /** sum(x * y, -1) with NumPy broadcasting, where no plan was found: each side's product, summed back to its shape. */
  const genericDot = (e: Eqn, c: Operand) => {
    const [x, y] = e.inputs as [Var, Var];
    const zc = unsqueeze({ name: full(c, shapeOf(e.outBinders[0]!)), shape: shapeOf(e.outBinders[0]!) }, [shapeOf(e.outBinders[0]!).length]);
    for (const [v, other] of [
      [x, y],
      [y, x],
    ] as const) {
      if (!live.has(v)) continue;
      const prodShape = broadcastShape([zc.shape, shapeOf(other)]);
      add(v, () => op("Mul", [zc.name, L.need(other)], prodShape), prodShape);
    }
  };
  /** `ct`, standing for a tensor of shape `from`, summed back to `target` (NumPy's broadcasting undone). */
  const sumToShape = (ct: Operand, from: readonly number[], target: readonly number[]): Operand => {
    const lead = from.length - target.length;
    const out = lead > 0 ? sum(ct, from, Array.from({ length: lead }, (_, i) => i), false) : ct;
    const rest = from.slice(lead);
    const axes = target.flatMap((d, i) => (d === 1 && rest[i] !== 1 ? [i] : []));
    return axes.length ? sum(out, rest, axes, true) : out;
  };

  const vjp = (e: Eqn, outCts: Array<Operand | undefined>) => {
    const prim = e.primitive;
    const P = e.params;
    const c = outCts[0]!;
    const [a, b] = e.inputs as [Atom, Atom];
    const o = e.outBinders[0]!;
    const out = shapeOf(o);
    const ew = (x: Atom) => L.ew(x, "float32");
    const where = (cond: string, shape: readonly number[], onTrue: boolean) =>
      op("Where", onTrue ? [cond, c.name, scalar(0)] : [cond, scalar(0), c.name], broadcastShape([shape, c.shape]));
    const call = L.calls.get(e);
    if (call) {
      const fwd = L.forwards.get(e)!;
      const args = call.args.map((x) => ({ name: L.need(x), shape: shapeOf(x) }));
      const grads = call.rule.backward(
        g,
        args,
        fwd,
        e.outBinders.map((v, i) => (outCts[i] ? full(outCts[i]!, shapeOf(v)) : g.op("ConstantOfShape", [g.ints(shapeOf(v))], f32(shapeOf(v))))),
        call.args.map((x) => !isLit(x) && live.has(x)),
      );
      call.args.forEach((x, i) => add(x, () => grads[i] ? { name: grads[i]!, shape: shapeOf(x) } : null));
      return;
    }
    switch (prim) {
      case "add":
        return e.inputs.forEach((x) => add(x, () => c, out));
      case "mul": {
        const [ea, eb] = [ew(a), ew(b)];
        if (a === b) return add(a, () => op("Mul", [c.name, op("Mul", [ea.name, scalar(2)], ea.shape).name], broadcastShape([c.shape, ea.shape])), out);
        add(a, () => op("Mul", [c.name, eb.name], broadcastShape([c.shape, eb.shape])), out);
        return add(b, () => op("Mul", [c.name, ea.name], broadcastShape([c.shape, ea.shape])), out);
      }
      case "neg":
        return add(a, () => op("Neg", [c.name], c.shape), out);
      case "reciprocal": {
        const y = ew(o);
        const yy = op("Mul", [y.name, y.name], y.shape);
        return add(a, () => op("Neg", [op("Mul", [c.name, yy.name], broadcastShape([c.shape, y.shape])).name], broadcastShape([c.shape, y.shape])), out);
      }
      case "exp": {
        const y = ew(o);
        return add(a, () => op("Mul", [c.name, y.name], broadcastShape([c.shape, y.shape])), out);
      }
      case "log": {
        const x = ew(a);
        return add(a, () => op("Div", [c.name, x.name], broadcastShape([c.shape, x.shape])), out);
      }
      case "sin":
      case "cos": {
        const x = ew(a);
        const s = broadcastShape([c.shape, x.shape]);
        const d = op(prim === "sin" ? "Cos" : "Sin", [x.name], x.shape);
        const t = op("Mul", [c.name, d.name], s);
        return add(a, () => prim === "sin" ? t : op("Neg", [t.name], s), out);
      }
      case "sqrt": {
        const y = ew(o);
        return add(a, () => op("Div", [c.name, op("Mul", [y.name, scalar(2)], y.shape).name], broadcastShape([c.shape, y.shape])), out);
      }
      case "asin":
      case "atan": {
        const x = ew(a);
        const xx = op("Mul", [x.name, x.name], x.shape);
        const s = broadcastShape([c.shape, x.shape]);
        if (prim === "atan") return add(a, () => op("Div", [c.name, op("Add", [xx.name, scalar(1)], x.shape).name], s), out);
        const d = op("Sqrt", [op("Reciprocal", [op("Sub", [scalar(1), xx.name], x.shape).name], x.shape).name], x.shape);
        return add(a, () => op("Mul", [c.name, d.name], s), out);
      }
      case "erf":
      case "erfc": {
        const x = ew(a);
        const gauss = op("Exp", [op("Neg", [op("Mul", [x.name, x.name], x.shape).name], x.shape).name], x.shape);
        const k = (prim === "erf" ? 2 : -2) / Math.sqrt(Math.PI);
        return add(a, () => op("Mul", [c.name, op("Mul", [gauss.name, scalar(k)], x.shape).name], broadcastShape([c.shape, x.shape])), out);
      }
      case "max":
      case "min": {
        // jax-js: max's tangent is where(x < y, dy, dx); min's where(y < x, dy, dx).
        const [ea, eb] = [ew(a), ew(b)];
        const s = broadcastShape([ea.shape, eb.shape]);
        const other = g.op("Less", prim === "max" ? [ea.name, eb.name] : [eb.name, ea.name], { shape: s, dtype: "bool" });
        add(a, () => where(other, s, false), out);
        return add(b, () => where(other, s, true), out);
      }
      case "mod": {
        add(a, () => c, out);
        const [ea, eb] = [ew(a), ew(b)];
        const s = broadcastShape([ea.shape, eb.shape]);
        const q = op("Floor", [op("Div", [ea.name, eb.name], s).name], s);
        return add(b, () => op("Neg", [op("Mul", [c.name, q.name], broadcastShape([c.shape, s])).name], broadcastShape([c.shape, s])), out);
      }
      case "where": {
        const cond = L.ew(a, "bool");
        add(e.inputs[1], () => where(cond.name, cond.shape, true), out);
        return add(e.inputs[2], () => where(cond.name, cond.shape, false), out);
      }
      case "cast":
        return add(a, () => c, out);
      case "reduce": {
        const axes = P.axis as number[];
        const xs = shapeOf(a);
        if (!axes.length) return add(a, () => c);
        if (P.op === "Add") return add(a, () => unsqueeze(c, axes));
        const m = unsqueeze(ew(o), axes);
        if (P.op === "Mul") {
          const t = op("Mul", [unsqueeze(c, axes).name, m.name], m.shape);
          return add(a, () => op("Div", [t.name, L.need(a)], xs));
        }
        // Max and Min share the cotangent among the elements equal to the result.
        const hit = op("Cast", [g.op("Equal", [L.need(a), m.name], { shape: xs, dtype: "bool" })], xs, { to: ONNX_TYPE.float32 });
        const count = op("ReduceSum", [hit.name, g.ints(axes)], m.shape, { keepdims: 1 });
        const share = op("Div", [unsqueeze(c, axes).name, count.name], m.shape);
        return add(a, () => op("Mul", [hit.name, share.name], xs));
      }
      case "dot": {
        const plan = L.plans.get(e);
        return plan ? dot(e, c, plan) : genericDot(e, c);
      }
      case "broadcast": {
        const added = P.axis as number[];
        const target = P.shape as number[];
        let ct = added.length ? sum(c, target, added, false) : c;
        const kept = target.filter((_, i) => !added.includes(i));
        const widened = shapeOf(a).flatMap((d, i) => (d === 1 && kept[i] !== 1 ? [i] : []));
        if (widened.length) ct = sum(ct, kept, widened, true);
        return add(a, () => ct);
      }
      case "reshape":
        return add(a, () => ({ name: L.reshapeTo(full(c, shapeOf(o)), shapeOf(o), shapeOf(a)), shape: shapeOf(a) }));
      case "transpose": {
        const perm = P.perm as number[];
        const inv = perm.map((_, i) => perm.indexOf(i));
        return add(a, () => ({ name: L.transposeTo(c.name, c.shape, inv), shape: inv.map((p) => c.shape[p]!) }));
      }
      case "shrink": {
        const xs = shapeOf(a);
        const slice = P.slice as Array<[number, number]>;
        const cut = slice.flatMap(([s, t], i) => (s !== 0 || t !== xs[i] ? [i] : []));
        if (cut.length === 1 && !isLit(a) && live.has(a) && addSlice(a, cut[0]!, slice[cut[0]!]![0], slice[cut[0]!]![1], full(c, shapeOf(o)))) return;
        const pads = [...slice.map(([s]) => s), ...slice.map(([, t], i) => xs[i]! - t)];
        return add(a, () => ({ name: L.pad(full(c, shapeOf(o)), pads, f32(xs)), shape: xs }));
      }
      case "pad": {
        const width = P.width as Array<[number, number]>;
        const pads = [...width.map(([l]) => -l), ...width.map(([, h]) => -h)];
        return add(a, () => ({ name: L.pad(full(c, shapeOf(o)), pads, f32(shapeOf(a))), shape: shapeOf(a) }));
      }
      case "concatenate": {
        const axis = P.axis as number;
        const whole = full(c, shapeOf(o));
        let at = 0;
        for (const x of e.inputs) {
          const size = shapeOf(x)[axis]!;
          if (!isLit(x) && live.has(x)) add(x, () => ({ name: g.op("Slice", [whole, g.ints([at]), g.ints([at + size]), g.ints([axis])], f32(shapeOf(x))), shape: shapeOf(x) }));
          at += size;
        }
        return;
      }
      case "split": {
        const parts = e.outBinders.map((v, i) => (outCts[i] ? full(outCts[i]!, shapeOf(v)) : g.op("ConstantOfShape", [g.ints(shapeOf(v))], f32(shapeOf(v)))));
        return add(a, () => op("Concat", parts, shapeOf(a), { axis: P.axis as number }));
      }
      case "flip":
        return add(a, () => ({ name: L.flip(full(c, shapeOf(o)), P.axis as number[], f32(shapeOf(a))), shape: shapeOf(a) }));
      case "gather": {
        if ((P.axis as number[]).length !== 1 || P.axis[0] !== 0 || P.outDim !== 0 || e.inputs.length !== 2) throw new Unlowerable("gather gradient", "only along the first axis");
        return add(a, () => ({ name: L.scatterAdd(full(c, shapeOf(o)), L.need(b), shapeOf(b), f32(shapeOf(a))), shape: shapeOf(a) }));
      }
      default:
        throw new Unlowerable(`${prim} gradient`);
    }
  };

  cts.set(loss as Var, { name: scalar(1), shape: [] });
  for (let k = program.eqns.length - 1; k >= 0; k--) {
    const e = program.eqns[k]!;
    const outCts = e.outBinders.map((o) => settled(o));
    if (outCts.every((c) => !c) || !e.inputs.some((x) => !isLit(x) && live.has(x))) continue;
    vjp(e, outCts);
  }
  return wrt.map((v) => {
    const ct = settled(v);
    return ct ? full(ct, shapeOf(v)) : g.op("ConstantOfShape", [g.ints(shapeOf(v))], f32(shapeOf(v)));
  });
}
