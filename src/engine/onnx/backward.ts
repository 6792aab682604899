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
import { Cotangents } from "./cotangents.js";
import { f32 } from "./graph.js";
import type { Operand } from "./fused-rule.js";
import { broadcastShape, isLit, shapeOf, Unlowerable, type Atom, type Eqn, type Var } from "./jaxpr.js";
import type { Lowering } from "./lowering.js";
import { ONNX_TYPE } from "./proto.js";

/** Primitives whose outputs carry no derivative. */
const CONSTANT = new Set(["stop_gradient", "compare", "floor", "ceil", "idiv", "random_bits", "bit_combine", "bit_shift", "bit_count", "argsort"]);

/** Cotangents of `wrt` for the scalar `loss`, as full-shaped tensors (zeros where the loss does not depend on one). */
export function differentiate(L: Lowering, wrt: readonly Var[], loss: Atom): string[] {
  const { g, program } = L;
  const live = new Set<Var>(wrt);
  for (const e of program.eqns) {
    if (CONSTANT.has(e.primitive) || !e.inputs.some((a) => !isLit(a) && live.has(a))) continue;
    for (const o of e.outBinders) if (o.aval.dtype === "float32") live.add(o);
  }

  const C = new Cotangents(L, live);
  const { add, addSlice, settled, op, scalar, full, sum, unsqueeze, cts } = C;

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
        return plan ? C.dot(c, plan) : C.genericDot(e, c);
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
