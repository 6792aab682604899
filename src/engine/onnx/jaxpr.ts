/**
 * jax-js's traced programs as the lowering reads them. jax-js 0.1.25 exports Jaxpr and ClosedJaxpr but
 * not their variables and equations, so these are the shapes it relies on (pinned by the parity tests:
 * an upgrade that renames a primitive or a parameter fails them).
 */
import type { Jaxpr } from "@jax-js/jax";
import type { ElementType } from "./proto.js";

export interface Aval {
  shape: number[];
  dtype: string;
}
export interface Var {
  id: number;
  aval: Aval;
}
export interface Lit {
  value: number;
  aval: Aval;
}
export type Atom = Var | Lit;

export interface Eqn {
  primitive: string;
  inputs: Atom[];
  params: Record<string, any>;
  outBinders: Var[];
  source?: Eqn;
}

export interface Program {
  inBinders: Var[];
  eqns: Eqn[];
  outs: Atom[];
}

export const isLit = (a: Atom): a is Lit => "value" in a;

/** The ONNX element type of a jax-js dtype, or null where the engine has none (float16, uint32...). */
export function elementType(dtype: string): ElementType | null {
  return dtype === "float32" || dtype === "int32" || dtype === "bool" ? dtype : null;
}

/**
 * The program with every nested `jit` inlined but those `keep` holds: jax-js jits internally (its
 * GELU, SiLU, rounding), and differentiating a jitted function leaves `<name>_jvp_peval` and
 * `<name>_jvp_resid_t` jits behind; the engine's fused operations are kept whole. jax-js caches a
 * jit's program by its input shapes, so one program can be inlined at several places (SiLU in every
 * block): each inlining gets variables of its own, or the lowering, which keys values and
 * cotangents by variable, would merge them.
 */
export function inline(jaxpr: Jaxpr, keep: (e: Eqn) => boolean): Program {
  const subst = new Map<Var, Atom>();
  const resolve = (a: Atom): Atom => (isLit(a) ? a : (subst.get(a) ?? a));
  let fresh = 0;
  const renamed = (v: Var): Var => {
    const own: Var = { id: -++fresh, aval: v.aval };
    subst.set(v, own);
    return own;
  };
  const eqns: Eqn[] = [];
  const visit = (j: Program, nested: boolean) => {
    for (const e of j.eqns) {
      const inputs = e.inputs.map(resolve);
      if (e.primitive === "jit" && !keep(e)) {
        const inner = e.params.jaxpr as Program;
        inner.inBinders.forEach((v, i) => subst.set(v, inputs[i]!));
        visit(inner, true);
        inner.outs.forEach((o, k) => subst.set(e.outBinders[k]!, resolve(o)));
      } else {
        // `source`: the equation as traced, which the lowering names when it asks for one to be inlined.
        eqns.push({ primitive: e.primitive, inputs, params: e.params, outBinders: nested ? e.outBinders.map(renamed) : e.outBinders, source: e });
      }
    }
  };
  const top = jaxpr as unknown as Program;
  visit(top, false);
  return { inBinders: top.inBinders, eqns, outs: top.outs.map(resolve) };
}

/** Raised for a primitive (or dtype) with no ONNX form: the program then runs on Wasm. */
export class Unlowerable extends Error {
  constructor(
    readonly primitive: string,
    detail = "",
    message = `${primitive}${detail ? ` (${detail})` : ""} has no ONNX lowering`,
  ) {
    super(message);
  }
}

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
