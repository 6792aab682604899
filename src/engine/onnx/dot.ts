/**
 * jax-js has no matmul primitive: `x @ w` is traced as reshapes and transposes feeding `dot`, which
 * is sum(x * y, -1) with NumPy broadcasting of the other axes, and the backward pass broadcasts each
 * cotangent along a new axis before its dot. Lowered literally, the MLP's weight gradient would
 * materialise 25.7M floats for a 200k-entry result (64 ms a step instead of 1.6: shared/probes/
 * jaxpr-onnx). So each dot operand is followed back through transpose, unit reshape, broadcast and
 * stop_gradient to the tensor it really reads, every output axis is labelled batch, M or N, and one
 * Transpose + Reshape per operand feeds one MatMul, which onnxruntime then fuses into Gemm or FusedMatMul.
 */
import { isLit, type Atom, type Eqn, type Var } from "./jaxpr.js";

/** For each axis of a value, the source tensor's axis it reads (null: broadcast or unit). */
interface Resolved {
  src: Var;
  map: Array<number | null>;
}

export interface DotPlan {
  X: Var;
  Y: Var;
  K: number;
  xk: number;
  yk: number;
  batch: Array<{ a: number; xa: number; ya: number }>;
  M: Array<{ a: number; xa: number }>;
  N: Array<{ a: number; ya: number }>;
  /** Output axes of size > 1 that neither operand reads: the result is constant along them. */
  bcast: number[];
  zs: number[];
  /** The dot's result flows only through transposes and unit reshapes to `target`, which the MatMul writes directly. */
  redirect?: { target: Var; labels: Array<number | null> };
}

const shapeOf = (v: Var) => v.aval.shape;

/** How a unit-only reshape (one that only adds or drops axes of size 1) carries axis labels, or null for a real reshape. */
function unitReshape(ins: readonly number[], outs: readonly number[], labels: ReadonlyArray<number | null>): Array<number | null> | null {
  const a = ins.flatMap((d, i) => (d !== 1 ? [[d, i] as const] : []));
  const b = outs.flatMap((d, i) => (d !== 1 ? [[d, i] as const] : []));
  if (a.length !== b.length || !a.every(([d], k) => d === b[k]![0])) return null;
  const out: Array<number | null> = outs.map(() => null);
  b.forEach(([, i], k) => (out[i] = labels[a[k]![1]]!));
  return out;
}

export function planDots(eqns: readonly Eqn[], outs: readonly Atom[]): Map<Eqn, DotPlan | null> {
  const producer = new Map<Var, Eqn>();
  for (const e of eqns) for (const o of e.outBinders) producer.set(o, e);
  const resolve = (v: Var): Resolved => {
    const ident = (): Resolved => ({ src: v, map: shapeOf(v).map((d, i) => (d === 1 ? null : i)) });
    const e = producer.get(v);
    const inp = e?.inputs[0];
    if (!e || !inp || isLit(inp)) return ident();
    switch (e.primitive) {
      case "stop_gradient":
        return resolve(inp);
      case "transpose": {
        const r = resolve(inp);
        return { src: r.src, map: (e.params.perm as number[]).map((p) => r.map[p]!) };
      }
      case "reshape": {
        const r = resolve(inp);
        const map = unitReshape(shapeOf(inp), e.params.shape as number[], r.map);
        return map ? { src: r.src, map } : ident();
      }
      case "broadcast": {
        const r = resolve(inp);
        const added = new Set(e.params.axis as number[]);
        const map: Array<number | null> = [];
        let j = 0;
        (e.params.shape as number[]).forEach((_, i) => {
          if (added.has(i)) map.push(null);
          else {
            map.push(shapeOf(inp)[j] === 1 ? null : r.map[j]!);
            j++;
          }
        });
        return { src: r.src, map };
      }
      default:
        return ident();
    }
  };

  const plan = (e: Eqn): DotPlan | null => {
    const [X, Y] = e.inputs;
    if (!X || !Y || isLit(X) || isLit(Y)) return null;
    const zs = shapeOf(e.outBinders[0]!);
    const r = zs.length;
    const rx = resolve(X);
    const ry = resolve(Y);
    const xs = shapeOf(X);
    const ys = shapeOf(Y);
    const xk = rx.map.at(-1);
    const yk = ry.map.at(-1);
    if (xk == null || yk == null) return null;
    const offX = r - (xs.length - 1);
    const offY = r - (ys.length - 1);
    const p: DotPlan = { X: rx.src, Y: ry.src, K: xs.at(-1)!, xk, yk, batch: [], M: [], N: [], bcast: [], zs };
    for (let a = 0; a < r; a++) {
      const xa = a >= offX ? rx.map[a - offX]! : null;
      const ya = a >= offY ? ry.map[a - offY]! : null;
      if (xa != null && ya != null) p.batch.push({ a, xa, ya });
      else if (xa != null) p.M.push({ a, xa });
      else if (ya != null) p.N.push({ a, ya });
      else if (zs[a] !== 1) p.bcast.push(a);
    }
    return p;
  };

  const plans = new Map<Eqn, DotPlan | null>();
  for (const e of eqns) if (e.primitive === "dot") plans.set(e, plan(e));

  // The output side: a weight gradient computed as [out, in] and transposed to [in, out] is written in
  // its final layout by swapping the MatMul's operands, so no Transpose of the result remains.
  const uses = new Map<Var, number>();
  const consumer = new Map<Var, Eqn>();
  for (const e of eqns) {
    for (const a of e.inputs) {
      if (isLit(a)) continue;
      uses.set(a, (uses.get(a) ?? 0) + 1);
      consumer.set(a, e);
    }
  }
  for (const a of outs) if (!isLit(a)) uses.set(a, (uses.get(a) ?? 0) + 2);
  const sources = new Set<Var>();
  for (const p of plans.values()) if (p) sources.add(p.X).add(p.Y);
  for (const [e, p] of plans) {
    if (!p || p.bcast.length) continue;
    let cur = e.outBinders[0]!;
    let labels: Array<number | null> = shapeOf(cur).map((d, i) => (d === 1 ? null : i));
    let transposed = false;
    const chain: Eqn[] = [];
    while (uses.get(cur) === 1 && consumer.has(cur) && !sources.has(cur)) {
      const c = consumer.get(cur)!;
      if (c.primitive === "transpose") {
        labels = (c.params.perm as number[]).map((q) => labels[q]!);
        transposed = true;
      } else if (c.primitive === "reshape") {
        const next = unitReshape(shapeOf(cur), c.params.shape as number[], labels);
        if (!next) break;
        labels = next;
      } else break;
      chain.push(c);
      cur = c.outBinders[0]!;
    }
    if (transposed) p.redirect = { target: cur, labels };
  }
  return plans;
}

/** The equations a planned dot's result chain replaces (each dot writes its chain's last value). */
export function absorbedBy(plans: Map<Eqn, DotPlan | null>, eqns: readonly Eqn[]): Set<Eqn> {
  const absorbed = new Set<Eqn>();
  const producer = new Map<Var, Eqn>();
  for (const e of eqns) for (const o of e.outBinders) producer.set(o, e);
  for (const [e, p] of plans) {
    if (!p?.redirect) continue;
    let cur = p.redirect.target;
    while (cur !== e.outBinders[0]) {
      const c = producer.get(cur)!;
      absorbed.add(c);
      cur = c.inputs[0] as Var;
    }
  }
  return absorbed;
}
