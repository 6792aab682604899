/**
 * One optimisation step of the training loop, jitted: the method's stages forward, the model's loss
 * and gradient, the stages backward, Adam.
 */
import { jit, numpy as np, tree, valueAndGrad, vjp } from "@jax-js/jax";
import type { Method, Stage } from "../methods/method.js";
import type { Model } from "../model/model.js";
import type { ParamSpec, Params } from "../model/params.js";
import { adamScalars, adamUpdate, type AdamState } from "./adam.js";
import { crossEntropy, type HostBatch } from "./tasks.js";

type StageBack = (carry: Params, trainable: Params, frozen: Params, cotangent: Params) => [Params, Params];
type Update = (trainable: Params, grads: Params[], state: AdamState, stepSize: np.Array, bias2: np.Array) => [Params, AdamState];

/**
 * One optimisation step. The method's stages run as separate jitted programs, forward and then
 * backward (each stage's VJP recomputes its own small forward), because a single fused program let
 * jax-js inline generated weights into matmul loads and recompute them per use (docs/results.md).
 */
export function stepFunction<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[]) {
  const stages = method.stages(config, specs);
  const forward = stages.map((stage) => jit(stage) as unknown as Stage);
  const backward = stages.map(
    (stage) =>
      jit((carry: Params, trainable: Params, frozen: Params, cotangent: Params) => {
        const [, back] = vjp((c: Params, t: Params) => stage(c, t, frozen), [carry, trainable]);
        return back(cotangent);
      }) as unknown as StageBack,
  );
  // An adapter's fixed base leaves get gradients too, dropped after the call: without their weight
  // gradients each activation cotangent has one use, and jax-js 0.1.25 fuses it into the next matmul's
  // loads and recomputes it per use, which made adapter steps 3x slower than full fine-tuning
  // (docs/results.md, "Engine notes").
  const lossOf = (all: Params, x: np.Array, y: np.Array): np.Array => crossEntropy(model.apply(all, x), y);
  const modelGrad = jit((params: Params, fixed: Params, x: np.Array, y: np.Array) => valueAndGrad(lossOf)({ ...params, ...fixed }, x, y)) as unknown as (
    params: Params,
    fixed: Params,
    x: np.Array,
    y: np.Array,
  ) => [np.Array, Params];
  const update = jit((trainable: Params, grads: Params[], state: AdamState, stepSize: np.Array, bias2: np.Array) => {
    const total = grads.length === 1 ? grads[0]! : grads.reduce((a, g) => tree.map((u: np.Array, v: np.Array) => u.add(v), a, g) as Params);
    return adamUpdate(trainable, total, state, stepSize, bias2);
  }) as unknown as Update;

  /** Consumes trainable, state, x and y; not frozen or fixed. */
  return (trainable: Params, frozen: Params, fixed: Params, state: AdamState, x: np.Array, y: np.Array, lr: number, t: number): [np.Array, Params, AdamState] => {
    const carries: Params[] = [{}];
    for (let i = 0; i < stages.length; i++) carries.push(forward[i]!(tree.ref(carries[i]!), tree.ref(trainable), tree.ref(frozen)));
    const [loss, allGrads] = modelGrad(carries.pop()!, tree.ref(fixed), x, y);
    const paramGrads: Params = {};
    for (const [name, g] of Object.entries(allGrads)) {
      if (name in fixed) g.dispose();
      else paramGrads[name] = g;
    }
    const grads: Params[] = [];
    let cotangent = paramGrads;
    for (let i = stages.length - 1; i >= 0; i--) {
      const [carryGrad, trainableGrad] = backward[i]!(carries[i]!, tree.ref(trainable), tree.ref(frozen), cotangent);
      grads.push(trainableGrad);
      cotangent = carryGrad;
    }
    tree.dispose(cotangent);
    const { stepSize, bias2 } = adamScalars(lr, t);
    const [next, nextState] = update(trainable, grads, state, np.array(stepSize), np.array(bias2));
    return [loss, next, nextState];
  };
}

/** A host batch on the device: inputs (floats or int32 tokens) and int32 targets. */
export function deviceBatch(b: HostBatch): [np.Array, np.Array] {
  const x = b.x instanceof Int32Array ? np.array(b.x, { dtype: np.int32 }) : np.array(b.x);
  return [x.reshape(b.xShape), np.array(b.y, { dtype: np.int32 }).reshape(b.yShape)];
}
