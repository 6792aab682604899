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
import type { FusedRule } from "./fused-rule.js";
import { inline, isLit, same, shapeOf, type Atom, type Eqn, type Program, type Var } from "./jaxpr.js";
import { Lowering, type FusedCall, type LoweringStats } from "./lowering.js";
import type { ValueSpec } from "./proto.js";

export { Unlowerable } from "./jaxpr.js";

export interface Lowered {
  bytes: Uint8Array;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  /** Bytes the graph's tensors hold at the peak (Graph.peakBytes). */
  peakBytes: number;
  stats: LoweringStats;
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
