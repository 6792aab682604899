/**
 * One optimisation step of the training loop: the method's stages forward, the model's loss and
 * gradient, the stages backward, Adam. Compiled through the engine's seam; each engine gets the
 * form it runs fastest.
 */
import { numpy as np, tree, valueAndGrad, vjp } from "@jax-js/jax";
import { compile, compileGrad, currentEngine, NativeTensor, put, scalar, type Loss, type Tensor } from "../engine/program.js";
import { composeStages, type Method, type Stage } from "../methods/method.js";
import type { Model } from "../model/model.js";
import { sizeOf, type ParamSpec, type Params } from "../model/params.js";
import { adamScalars, adamUpdate, type AdamState } from "./adam.js";
import { AdamArena } from "./adam-kernel.js";
import { crossEntropy, type HostBatch } from "./tasks.js";

export type Tensors = Record<string, Tensor>;
export type EngineAdam = { m: Tensors; v: Tensors };

/** Consumes trainable, state, x, y and noise (the dropout layers', Model.noise); not frozen or fixed. */
export type Step = (trainable: Tensors, frozen: Tensors, fixed: Tensors, state: EngineAdam, x: Tensor, y: Tensor, noise: Tensors, lr: number, t: number) => Promise<[Tensor, Tensors, EngineAdam]>;

export function stepFunction<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[]): Step {
  return currentEngine() === "native" ? wholeStep(model, method, config, specs) : stagedStep(model, method, config, specs);
}

/**
 * The native engine's step: the loss and its gradient as one program from the stored numbers, then
 * Adam in place (adamStep). Only the trainable tensors are differentiated.
 */
function wholeStep<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[]): Step {
  const produce = composeStages(method.stages(config, specs));
  const lossOf = (trainable: Params, frozen: Params, fixed: Params, x: np.Array, y: np.Array, noise: Params) => crossEntropy(model.apply({ ...produce(trainable, frozen), ...fixed }, x, undefined, { noise }), y);
  const step = adamStep(lossOf, `${model.name} ${method.name} training step`);
  return (trainable, frozen, fixed, state, x, y, noise, lr, t) => step(trainable, state, [frozen, fixed, x, y, noise], lr, t);
}

/**
 * One Adam step on `loss`'s first argument, the rest given as they are: on native the gradient program
 * writing into an AdamArena and the arena's kernel updating the trainable tensors and moments where
 * they lie (what it returns are views of the arena, valid until the next step); on Wasm one jitted
 * program of both. Consumes trainable and state on Wasm.
 */
export function adamStep(loss: Loss, name: string): (trainable: Tensors, state: EngineAdam, rest: unknown[], lr: number, t: number) => Promise<[Tensor, Tensors, EngineAdam]> {
  if (currentEngine() === "native") {
    // Made at the first step, when the tensors' sizes are known: the gradient program writes into it.
    let arena: AdamArena | null = null;
    let views: { trainable: Tensors; state: EngineAdam } | null = null;
    const grad = compileGrad(loss, { name, outputs: () => [new Float32Array(1), ...Object.values(arena!.grads)] });
    return async (trainable, state, rest, lr, t) => {
      if (!arena) {
        arena = new AdamArena(Object.entries(trainable).map(([leaf, x]) => [leaf, sizeOf(x.shape)] as const));
        const wrap = (block: Record<string, Float32Array>, like: Tensors) => Object.fromEntries(Object.entries(like).map(([leaf, x]) => [leaf, new NativeTensor([...x.shape], "float32", block[leaf]!)]));
        views = { trainable: wrap(arena.params, trainable), state: { m: wrap(arena.m, state.m), v: wrap(arena.v, state.v) } };
      }
      // What the caller passes in lands in the arena, unless it is the arena's own (every step but a first).
      for (const [into, from] of [
        [views!.trainable, trainable],
        [views!.state.m, state.m],
        [views!.state.v, state.v],
      ] as const) {
        for (const [leaf, x] of Object.entries(from)) if (x !== into[leaf]) (into[leaf] as NativeTensor).values.set((x as NativeTensor).values);
      }
      const [value] = await grad(views!.trainable, ...(rest as []));
      const { stepSize, bias2 } = adamScalars(lr, t);
      arena.update(stepSize, bias2);
      return [value, views!.trainable, views!.state];
    };
  }
  const program = compile(
    (trainable: Params, state: AdamState, rest: unknown[], stepSize: np.Array, bias2: np.Array) => {
      const [value, grads] = valueAndGrad(loss)(tree.ref(trainable), ...(rest as []));
      const [next, nextState] = adamUpdate(trainable, grads as Params, state, stepSize, bias2);
      return [value, next, nextState] as [np.Array, Params, AdamState];
    },
    { name },
  );
  return async (trainable, state, rest, lr, t) => {
    const { stepSize, bias2 } = adamScalars(lr, t);
    return program(trainable, state, rest as never, scalar(stepSize), scalar(bias2));
  };
}

type StageBack = (carry: Params, trainable: Params, frozen: Params, cotangent: Params) => [Params, Params];

/**
 * Wasm's step. The method's stages run as separate programs, forward and then backward (each stage's
 * VJP recomputes its own small forward), because a single fused program let jax-js inline generated
 * weights into matmul loads and recompute them per use (docs/results.md).
 */
function stagedStep<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[]): Step {
  const stages = method.stages(config, specs);
  const name = `${model.name} ${method.name}`;
  const forward = stages.map((stage, i) => compile(stage as Stage, { name: `${name} stage ${i}` }));
  const backward = stages.map((stage, i) =>
    compile(
      ((carry: Params, trainable: Params, frozen: Params, cotangent: Params) => {
        const [, back] = vjp((c: Params, t: Params) => stage(c, t, frozen), [carry, trainable]);
        return back(cotangent);
      }) as StageBack,
      { name: `${name} stage ${i} backward` },
    ),
  );
  // An adapter's fixed base leaves get gradients too, dropped after the call: without their weight
  // gradients each activation cotangent has one use, and jax-js 0.1.25 fuses it into the next matmul's
  // loads and recomputes it per use, which made adapter steps 3x slower than full fine-tuning
  // (docs/results.md, "Engine notes").
  const lossOf = (all: Params, x: np.Array, y: np.Array, noise: Params): np.Array => crossEntropy(model.apply(all, x, undefined, { noise }), y);
  const modelGrad = compile((params: Params, fixed: Params, x: np.Array, y: np.Array, noise: Params) => valueAndGrad(lossOf)({ ...params, ...fixed }, x, y, noise), { name: `${model.name} gradient` });
  const update = compile(
    (trainable: Params, grads: Params[], state: AdamState, stepSize: np.Array, bias2: np.Array) => {
      const total = grads.length === 1 ? grads[0]! : grads.reduce((a, g) => tree.map((u: np.Array, v: np.Array) => u.add(v), a, g) as Params);
      return adamUpdate(trainable, total, state, stepSize, bias2);
    },
    { name: "adam" },
  );

  return async (trainable, frozen, fixed, state, x, y, noise, lr, t) => {
    const carries: Tensors[] = [{}];
    for (let i = 0; i < stages.length; i++) carries.push(await forward[i]!(tree.ref(carries[i]!), tree.ref(trainable), tree.ref(frozen)));
    const [loss, allGrads] = await modelGrad(carries.pop()!, tree.ref(fixed), x, y, noise);
    const paramGrads: Tensors = {};
    for (const [name, g] of Object.entries(allGrads)) {
      if (name in fixed) g.dispose();
      else paramGrads[name] = g;
    }
    const grads: Tensors[] = [];
    let cotangent = paramGrads;
    for (let i = stages.length - 1; i >= 0; i--) {
      const [carryGrad, trainableGrad] = await backward[i]!(carries[i]!, tree.ref(trainable), tree.ref(frozen), cotangent);
      grads.push(trainableGrad);
      cotangent = carryGrad;
    }
    tree.dispose(cotangent);
    const { stepSize, bias2 } = adamScalars(lr, t);
    const [next, nextState] = await update(trainable, grads, state, scalar(stepSize), scalar(bias2));
    return [loss, next, nextState];
  };
}

/** A host batch on the engine: inputs (floats or int32 tokens) and int32 targets. */
export function engineBatch(b: HostBatch): [Tensor, Tensor] {
  return [put(b.x, b.xShape), put(b.y, b.yShape)];
}
