/**
 * The one training loop, for every method: Adam on the method's trainable tensors, the task loss
 * differentiated through its reparameterisation, reduce-on-plateau on the epoch's training loss,
 * test accuracy after each epoch. Deterministic for a seed.
 */
import { jit, nn, numpy as np, tree, valueAndGrad, vjp } from "@jax-js/jax";
import type { Dataset } from "../data/dataset.js";
import { UserError } from "../errors.js";
import { materializer, roundTrip, type Method, type Stage } from "../methods/method.js";
import type { Model } from "../model/models.js";
import { toDevice, toHost, type HostParams, type Params } from "../model/params.js";
import { adamInit, adamScalars, adamUpdate, type AdamState } from "./adam.js";
import { batches, epochOrder } from "./batches.js";
import { accuracy, predictor } from "./evaluate.js";
import { Plateau, PLATEAU_DEFAULTS, type PlateauOptions } from "./plateau.js";

export interface TrainOptions {
  epochs: number;
  batch: number;
  /** Adam step size; the method's default when absent. */
  lr?: number;
  seed: number;
  plateau?: Partial<PlateauOptions>;
  /** Trained weights to start from (methods with `startsFromWeights`). */
  start?: HostParams;
  onStep?: (p: StepProgress) => void;
  onEpoch?: (e: EpochStats) => void;
}

export interface StepProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  /** Training samples per second so far in this epoch. */
  samplesPerS: number;
  /** Seconds of training left in the run at this epoch's pace (evaluation not counted). */
  etaSeconds: number;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number;
  lr: number;
  trainSeconds: number;
  samplesPerS: number;
}

export interface TrainResult {
  /** What a file stores (for a method with a codec, the weights it encodes). */
  trainable: HostParams;
  /** The weights the file rebuilds to. */
  params: HostParams;
  history: EpochStats[];
  accuracy: number;
  /** Samples per second over all training steps (evaluation excluded). */
  trainSamplesPerS: number;
  trainSeconds: number;
}

type StageBack = (carry: Params, trainable: Params, frozen: Params, cotangent: Params) => [Params, Params];
type Update = (trainable: Params, grads: Params[], state: AdamState, stepSize: np.Array, bias2: np.Array) => [Params, AdamState];

/**
 * One optimisation step. The method's stages run as separate jitted programs, forward and then
 * backward (each stage's VJP recomputes its own small forward), because a single fused program let
 * jax-js inline generated weights into matmul loads and recompute them per use (docs/results.md).
 */
function stepFunction<C extends object>(model: Model, method: Method<C>, config: C, batch: number) {
  const stages = method.stages(config, model.specs);
  const forward = stages.map((stage) => jit(stage) as unknown as Stage);
  const backward = stages.map(
    (stage) =>
      jit((carry: Params, trainable: Params, frozen: Params, cotangent: Params) => {
        const [, back] = vjp((c: Params, t: Params) => stage(c, t, frozen), [carry, trainable]);
        return back(cotangent);
      }) as unknown as StageBack,
  );
  const lossOf = (params: Params, x: np.Array, y: np.Array): np.Array => nn.logSoftmax(model.apply(params, x), -1).mul(y).sum().mul(-1 / batch);
  const modelGrad = jit((params: Params, x: np.Array, y: np.Array) => valueAndGrad(lossOf)(params, x, y)) as unknown as (
    params: Params,
    x: np.Array,
    y: np.Array,
  ) => [np.Array, Params];
  const update = jit((trainable: Params, grads: Params[], state: AdamState, stepSize: np.Array, bias2: np.Array) => {
    const total = grads.length === 1 ? grads[0]! : grads.reduce((a, g) => tree.map((u: np.Array, v: np.Array) => u.add(v), a, g) as Params);
    return adamUpdate(trainable, total, state, stepSize, bias2);
  }) as unknown as Update;

  /** Consumes trainable, state, x and y; not frozen. */
  return (trainable: Params, frozen: Params, state: AdamState, x: np.Array, y: np.Array, lr: number, t: number): [np.Array, Params, AdamState] => {
    const carries: Params[] = [{}];
    for (let i = 0; i < stages.length; i++) carries.push(forward[i]!(tree.ref(carries[i]!), tree.ref(trainable), tree.ref(frozen)));
    const [loss, paramGrads] = modelGrad(carries.pop()!, x, y);
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

export async function train<C extends object>(model: Model, method: Method<C>, config: C, data: Dataset, options: TrainOptions): Promise<TrainResult> {
  const { specs } = model;
  const { epochs, batch, seed } = options;
  if (data.train.count < batch) throw new RangeError(`batch ${batch} is larger than the ${data.train.count} training samples`);
  const steps = Math.floor(data.train.count / batch);
  const classes = data.numClasses;

  const step = stepFunction(model, method, config, batch);
  const rebuild = materializer(method, config, specs);
  const predict = predictor(model);

  if (options.start && !method.startsFromWeights) throw new UserError(`--method ${method.name} cannot start from trained weights`);
  const initial = await method.init(config, specs, seed, options.start);
  const shapes = method.trainableShapes(config, specs);
  let trainable = toDevice(shapes, initial);
  let frozen = await method.frozen(config, specs, seed);
  let state = adamInit(initial);
  const plateau = new Plateau(options.lr ?? method.defaultLearningRate, { ...PLATEAU_DEFAULTS, ...options.plateau });

  const history: EpochStats[] = [];
  let t = 0;
  let trainSeconds = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = await epochOrder(seed, epoch, data.train.count);
    const lr = plateau.lr;
    const started = performance.now();
    let lossSum = 0;
    let s = 0;
    for (const b of batches(data.train, order, batch, classes)) {
      const x = np.array(b.x).reshape([batch, ...data.imageShape]);
      const y = np.array(b.y).reshape([batch, classes]);
      let loss: np.Array;
      [loss, trainable, state] = step(trainable, frozen, state, x, y, lr, ++t);
      if (method.refresh?.due(config, t, steps * epochs)) {
        const host = await toHost(
          shapes.map((s) => s.name),
          tree.ref(trainable),
        );
        tree.dispose(frozen);
        frozen = method.refresh.frozenAt(config, specs, t, steps * epochs, host);
      }
      const value = ((await loss.data()) as Float32Array)[0]!;
      if (!Number.isFinite(value)) throw new UserError(`training diverged at epoch ${epoch + 1}, step ${s + 1} (loss ${value}); lower --lr`);
      lossSum += value;
      s++;
      const elapsed = (performance.now() - started) / 1000;
      const left = (epochs - epoch - 1) * steps + (steps - s);
      options.onStep?.({ epoch: epoch + 1, epochs, step: s, steps, loss: value, samplesPerS: (s * batch) / elapsed, etaSeconds: (elapsed / s) * left });
    }
    const seconds = (performance.now() - started) / 1000;
    trainSeconds += seconds;
    const params = rebuild(tree.ref(trainable), tree.ref(frozen));
    const acc = await accuracy(predict, params, data.test, data.imageShape);
    tree.dispose(params);
    const stats: EpochStats = { epoch: epoch + 1, loss: lossSum / steps, accuracy: acc, lr, trainSeconds: seconds, samplesPerS: (steps * batch) / seconds };
    history.push(stats);
    options.onEpoch?.(stats);
    plateau.step(stats.loss);
  }

  const trained = await toHost(
    specs.map((s) => s.name),
    rebuild(tree.ref(trainable), frozen),
  );
  const finalTrainable = method.codec ? trained : await toHost(Object.keys(initial), trainable);
  if (method.codec) tree.dispose(trainable);
  tree.dispose(state);
  // A codec stores an encoding of the weights: what counts is what the file gives back.
  const finalParams = roundTrip(method, config, specs, trained);
  let finalAccuracy = history.at(-1)?.accuracy ?? NaN;
  if (method.codec || history.length === 0) {
    const stored = toDevice(specs, finalParams);
    finalAccuracy = await accuracy(predict, stored, data.test, data.imageShape);
    tree.dispose(stored);
  }
  return {
    trainable: finalTrainable,
    params: finalParams,
    history,
    accuracy: finalAccuracy,
    trainSamplesPerS: epochs === 0 ? 0 : (steps * batch * epochs) / trainSeconds,
    trainSeconds,
  };
}
