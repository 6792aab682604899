/**
 * The one training loop, for every model and method: Adam on the method's trainable tensors, the
 * task's loss differentiated through the reparameterisation, a learning-rate schedule, and an
 * evaluation after each round (an epoch, or `evalEvery` steps). Deterministic for a seed; a run
 * resumed from a checkpoint continues exactly as if it had never stopped.
 */
import { jit, numpy as np, tree, valueAndGrad, vjp } from "@jax-js/jax";
import { UserError } from "../errors.js";
import { producedSpecs } from "../methods/adapter.js";
import { materializer, roundTrip, type Method, type Stage } from "../methods/method.js";
import type { Model } from "../model/model.js";
import { toDevice, toHost, type HostParams, type NamedShape, type ParamSpec, type Params } from "../model/params.js";
import { adamInit, adamScalars, adamUpdate, type AdamState } from "./adam.js";
import type { PlateauOptions } from "./plateau.js";
import { makeSchedule, type ScheduleOptions } from "./schedule.js";
import { crossEntropy, type Metrics, type Task } from "./tasks.js";

/**
 * An adapter: the method produces only `leaves` (its specs are those of the model), starting from
 * and added to the base's weights; every other leaf is the base's, frozen.
 */
export interface Adapter {
  base: HostParams;
  leaves: string[];
}

export interface TrainOptions {
  /** Passes over the training data (default 1 when `steps` is not given). */
  epochs?: number;
  /** Total optimisation steps, instead of epochs. */
  steps?: number;
  /** Steps between evaluations (default: one epoch, or the whole run if shorter). */
  evalEvery?: number;
  batch: number;
  /** Peak Adam step size; the method's default when absent. */
  lr?: number;
  seed: number;
  schedule?: ScheduleOptions;
  /** Reduce-on-plateau settings (the default schedule). */
  plateau?: Partial<PlateauOptions>;
  /** Trained weights to start from (methods with `startsFromWeights`). */
  start?: HostParams;
  adapter?: Adapter;
  /** Called every `every` steps (not after the last) with the whole training state. */
  checkpoint?: { every: number; save(state: Checkpoint): void };
  /** Continue from a saved state (the caller checks that it belongs to this run). */
  resume?: Checkpoint;
  onStep?: (p: StepProgress) => void;
  onEpoch?: (e: EpochStats) => void;
}

export interface StepProgress {
  /** Evaluation rounds (epochs, or `evalEvery` steps). */
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  /** Training samples (or tokens) per second so far in this round. */
  rate: number;
  unit: "samples" | "tokens";
  /** Seconds of training left in the run at this round's pace (evaluation not counted). */
  etaSeconds: number;
}

export interface EpochStats {
  epoch: number;
  /** Optimisation steps done by the end of this round. */
  step: number;
  /** Mean training loss over the round. */
  loss: number;
  metrics: Metrics;
  lr: number;
  trainSeconds: number;
  /** Samples (or tokens) per second over the round. */
  rate: number;
}

export interface TrainResult {
  /** What a file stores (for a method with a codec, the weights it encodes). */
  trainable: HostParams;
  /** The weights the file rebuilds to (the model's whole tree, adapters included). */
  params: HostParams;
  history: EpochStats[];
  /** The final weights' evaluation. */
  metrics: Metrics;
  /** Samples (or tokens) per second over all training steps (evaluation excluded). */
  rate: number;
  trainSeconds: number;
  steps: number;
}

/** The whole state of a run between two steps. */
export interface Checkpoint {
  step: number;
  trainable: HostParams;
  adam: { m: HostParams; v: HostParams };
  schedule: Record<string, number>;
  history: EpochStats[];
  trainSeconds: number;
  /** Frozen tensors that training changes (pruning masks), for methods that refresh them. */
  frozen?: { shapes: NamedShape[]; data: HostParams };
  /** The unfinished round so far: its loss sum, steps and seconds. */
  round: { lossSum: number; steps: number; seconds: number };
}

/** The base leaves an adapter leaves as they are, on the device. */
export function fixedLeaves(model: Model, adapter?: Adapter): Params {
  if (!adapter) return {};
  return toDevice(
    model.specs.filter((s) => !adapter.leaves.includes(s.name)),
    adapter.base,
  );
}

type StageBack = (carry: Params, trainable: Params, frozen: Params, cotangent: Params) => [Params, Params];
type Update = (trainable: Params, grads: Params[], state: AdamState, stepSize: np.Array, bias2: np.Array) => [Params, AdamState];

/**
 * One optimisation step. The method's stages run as separate jitted programs, forward and then
 * backward (each stage's VJP recomputes its own small forward), because a single fused program let
 * jax-js inline generated weights into matmul loads and recompute them per use (docs/results.md).
 */
function stepFunction<C extends object>(model: Model, method: Method<C>, config: C, specs: readonly ParamSpec[]) {
  const stages = method.stages(config, specs);
  const forward = stages.map((stage) => jit(stage) as unknown as Stage);
  const backward = stages.map(
    (stage) =>
      jit((carry: Params, trainable: Params, frozen: Params, cotangent: Params) => {
        const [, back] = vjp((c: Params, t: Params) => stage(c, t, frozen), [carry, trainable]);
        return back(cotangent);
      }) as unknown as StageBack,
  );
  // Gradients flow to the method's leaves only; an adapter's fixed base leaves ride along.
  const lossOf = (params: Params, fixed: Params, x: np.Array, y: np.Array): np.Array => crossEntropy(model.apply({ ...params, ...fixed }, x), y);
  const modelGrad = jit((params: Params, fixed: Params, x: np.Array, y: np.Array) => valueAndGrad(lossOf)(params, fixed, x, y)) as unknown as (
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
    const [loss, paramGrads] = modelGrad(carries.pop()!, tree.ref(fixed), x, y);
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

function deviceBatch(b: { x: Float32Array | Int32Array; xShape: number[]; y: Int32Array; yShape: number[] }): [np.Array, np.Array] {
  const x = b.x instanceof Int32Array ? np.array(b.x, { dtype: np.int32 }) : np.array(b.x);
  return [x.reshape(b.xShape), np.array(b.y, { dtype: np.int32 }).reshape(b.yShape)];
}

/** Total steps and steps per round for these options. */
export function runLength(task: Task, options: Pick<TrainOptions, "epochs" | "steps" | "evalEvery" | "batch">): { total: number; evalEvery: number } {
  const perEpoch = task.stepsPerEpoch(options.batch);
  if (perEpoch < 1) throw new UserError(`--batch ${options.batch} is larger than the training data (${task.size})`);
  const total = options.steps ?? (options.epochs ?? 1) * perEpoch;
  const evalEvery = options.evalEvery ?? Math.min(perEpoch, Math.max(total, 1));
  if (!Number.isInteger(evalEvery) || evalEvery < 1) throw new UserError(`--eval-every must be a positive integer, got ${evalEvery}`);
  return { total, evalEvery };
}

export async function train<C extends object>(model: Model, method: Method<C>, config: C, task: Task, options: TrainOptions): Promise<TrainResult> {
  const { batch, seed, adapter } = options;
  const specs = producedSpecs(model, adapter);
  const { total, evalEvery } = runLength(task, options);
  const rounds = Math.ceil(total / evalEvery);

  const step = stepFunction(model, method, config, specs);
  const rebuild = materializer(method, config, specs);
  const fixed = fixedLeaves(model, adapter);
  const full = (produced: Params): Params => ({ ...produced, ...tree.ref(fixed) });

  if (options.start && !method.startsFromWeights) throw new UserError(`--method ${method.name} cannot start from trained weights`);
  const shapes = method.trainableShapes(config, specs);
  const names = shapes.map((s) => s.name);
  const resume = options.resume;
  const initial = resume ? resume.trainable : await method.init(config, specs, seed, options.start);
  let trainable = toDevice(shapes, initial);
  let frozen = resume?.frozen ? toDevice(resume.frozen.shapes, resume.frozen.data) : await method.frozen(config, specs, seed, adapter?.base);
  let state: AdamState = resume
    ? { m: toDevice(flatShapes(resume.adam.m), resume.adam.m), v: toDevice(flatShapes(resume.adam.v), resume.adam.v) }
    : adamInit(initial);
  const schedule = makeSchedule(options.lr ?? method.defaultLearningRate, options.schedule ?? { kind: "plateau", ...options.plateau }, resume?.schedule);

  const history: EpochStats[] = resume ? [...resume.history] : [];
  let trainSeconds = resume?.trainSeconds ?? 0;
  let roundLoss = resume?.round.lossSum ?? 0;
  let roundSteps = resume?.round.steps ?? 0;
  let roundSeconds = resume?.round.seconds ?? 0;
  for (let t = resume?.step ?? 0; t < total; t++) {
    const round = Math.floor(t / evalEvery);
    const lr = schedule.at(t, total);
    const started = performance.now();
    const [x, y] = deviceBatch(await task.batch(seed, t, batch));
    let loss: np.Array;
    [loss, trainable, state] = step(trainable, frozen, fixed, state, x, y, lr, t + 1);
    if (method.refresh?.due(config, t + 1, total)) {
      const host = await toHost(names, tree.ref(trainable));
      tree.dispose(frozen);
      frozen = method.refresh.frozenAt(config, specs, t + 1, total, host);
    }
    const value = ((await loss.data()) as Float32Array)[0]!;
    if (!Number.isFinite(value)) throw new UserError(`training diverged at step ${t + 1} (loss ${value}); lower --lr`);
    roundSeconds += (performance.now() - started) / 1000;
    roundLoss += value;
    roundSteps++;
    const inRound = t - round * evalEvery + 1;
    const roundLength = Math.min(evalEvery, total - round * evalEvery);
    const rate = (roundSteps * batch * task.unitsPerRow) / Math.max(roundSeconds, 1e-9);
    options.onStep?.({
      epoch: round + 1,
      epochs: rounds,
      step: inRound,
      steps: roundLength,
      loss: value,
      rate,
      unit: task.unit,
      etaSeconds: (roundSeconds / roundSteps) * (total - t - 1),
    });

    if (inRound === roundLength) {
      trainSeconds += roundSeconds;
      const params = full(rebuild(tree.ref(trainable), tree.ref(frozen)));
      const metrics = await task.evaluate(params);
      tree.dispose(params);
      const stats: EpochStats = { epoch: round + 1, step: t + 1, loss: roundLoss / roundSteps, metrics, lr, trainSeconds: roundSeconds, rate };
      history.push(stats);
      options.onEpoch?.(stats);
      schedule.endRound(stats.loss);
      roundLoss = 0;
      roundSteps = 0;
      roundSeconds = 0;
    }
    const every = options.checkpoint?.every ?? 0;
    if (every > 0 && (t + 1) % every === 0 && t + 1 < total) {
      options.checkpoint!.save({
        step: t + 1,
        trainable: await toHost(names, tree.ref(trainable)),
        adam: { m: await toHost(names, tree.ref(state.m)), v: await toHost(names, tree.ref(state.v)) },
        schedule: schedule.state(),
        history: [...history],
        trainSeconds,
        frozen: method.refresh ? { shapes: Object.entries(frozen).map(([name, a]) => ({ name, shape: a.shape })), data: await toHost(Object.keys(frozen), tree.ref(frozen)) } : undefined,
        round: { lossSum: roundLoss, steps: roundSteps, seconds: roundSeconds },
      });
    }
  }

  const produced = await toHost(
    specs.map((s) => s.name),
    rebuild(tree.ref(trainable), frozen),
  );
  const finalTrainable = method.codec ? produced : await toHost(names, trainable);
  if (method.codec) tree.dispose(trainable);
  tree.dispose(state);
  // A codec stores an encoding of the weights: what counts is what the file gives back.
  const decoded = roundTrip(method, config, specs, produced);
  const params: HostParams = {};
  for (const s of model.specs) params[s.name] = decoded[s.name] ?? adapter!.base[s.name]!;
  let metrics = history.at(-1)?.metrics;
  if (method.codec || !metrics) {
    const stored = toDevice(model.specs, params);
    metrics = await task.evaluate(stored);
    tree.dispose(stored);
  }
  tree.dispose(fixed);
  const steps = total - (resume?.step ?? 0);
  return {
    trainable: finalTrainable,
    params,
    history,
    metrics,
    rate: trainSeconds > 0 ? (total * batch * task.unitsPerRow) / trainSeconds : 0,
    trainSeconds,
    steps,
  };
}

function flatShapes(host: HostParams): NamedShape[] {
  return Object.entries(host).map(([name, data]) => ({ name, shape: [data.length] }));
}
