/**
 * The one training loop, for every model and method: Adam on the method's trainable tensors, the
 * task's loss differentiated through the reparameterisation, a learning-rate schedule, and an
 * evaluation after each round (an epoch, or `evalEvery` steps). Deterministic for a seed; a run
 * resumed from a checkpoint continues exactly as if it had never stopped.
 */
import { tree } from "@jax-js/jax";
import { compile, currentEngine, onEngine, putAll, type EngineName, type Tensor } from "../engine/program.js";
import { UserError } from "../errors.js";
import { producedSpecs } from "../methods/adapter.js";
import { composeStages, materializer, roundTrip, type Method } from "../methods/method.js";
import type { Model } from "../model/model.js";
import { toDevice, toHost, type HostParams, type NamedShape, type Params } from "../model/params.js";
import { adamInit } from "./adam.js";
import { checkTrainingMemory, runLength, type RunShape } from "./budget.js";
import type { PlateauOptions } from "./plateau.js";
import { makeSchedule, type ScheduleOptions } from "./schedule.js";
import { engineBatch, stepFunction, type EngineAdam, type Tensors } from "./step.js";
import type { Checkpoint, EpochStats } from "./run-state.js";
import type { Metrics, Task } from "./tasks.js";
import { batchStatistics, stepNoise } from "./train-mode.js";

/**
 * An adapter: the method produces only `leaves` (its specs are those of the model), starting from
 * and added to the base's weights; every other leaf is the base's, frozen.
 */
export interface Adapter {
  base: HostParams;
  leaves: string[];
}

export interface TrainOptions extends RunShape {
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
  /** The engine the steps ran on. */
  engine: EngineName;
}

/** The base leaves an adapter leaves as they are, on the engine. */
export function fixedLeaves(model: Model, adapter?: Adapter): Tensors {
  if (!adapter) return {};
  return putAll(
    model.specs.filter((s) => !adapter.leaves.includes(s.name)),
    adapter.base,
  );
}

export async function train<C extends object>(model: Model, method: Method<C>, config: C, task: Task, options: TrainOptions): Promise<TrainResult> {
  const { batch, seed, adapter } = options;
  const specs = producedSpecs(model, adapter);
  const { total, evalEvery } = runLength(model, task, options);
  const rounds = Math.ceil(total / evalEvery);

  const step = stepFunction(model, method, config, specs);
  // Rounds are scored on the engine's own rebuild; the file's weights come from Wasm's, at the end.
  const rebuild = compile(composeStages(method.stages(config, specs)), { name: `${method.name} rebuild` });
  const fixed = fixedLeaves(model, adapter);
  const full = (produced: Tensors): Tensors => ({ ...produced, ...tree.ref(fixed) });
  const statistics = batchStatistics(model, specs, task, batch, seed);

  if (options.start && !method.startsFromWeights) throw new UserError(`--method ${method.name} cannot start from trained weights`);
  checkTrainingMemory(model, method, config, specs, batch);
  const shapes = method.trainableShapes(config, specs);
  const names = shapes.map((s) => s.name);
  const resume = options.resume;
  const initial = resume ? resume.trainable : await method.init(config, specs, seed, options.start);
  // The native engine updates the trainable tensors and moments in place: never the caller's arrays.
  const own = (host: HostParams): HostParams => Object.fromEntries(Object.entries(host).map(([k, v]) => [k, v.slice()]));
  let trainable = putAll(shapes, own(initial));
  let frozen: Tensors = await onEngine(await method.frozen(config, specs, seed, adapter?.base));
  if (resume && (resume.frozen || method.refresh)) {
    // What a checkpoint restores (a pruning mask) has the shapes this run's method makes, or is refused.
    const want = Object.entries(frozen).map(([name, a]) => `${name}:${a.shape.join("x")}`).join(",");
    const got = (resume.frozen?.shapes ?? []).map((s) => `${s.name}:${s.shape.join("x")}`).join(",");
    if (got !== want) throw new UserError(`the checkpoint's frozen tensors (${got.slice(0, 120) || "none"}) are not the ones --method ${method.name} makes (${want.slice(0, 120)})`);
    if (resume.frozen) {
      tree.dispose(frozen);
      frozen = putAll(resume.frozen.shapes, resume.frozen.data);
    }
  }
  let state: EngineAdam = resume ? { m: putAll(flatShapes(resume.adam.m), own(resume.adam.m)), v: putAll(flatShapes(resume.adam.v), own(resume.adam.v)) } : adamInit(initial);
  const schedule = makeSchedule(options.lr ?? (adapter ? method.adapterLearningRate : undefined) ?? method.defaultLearningRate, options.schedule ?? { kind: "plateau", ...options.plateau }, resume?.schedule);

  const history: EpochStats[] = resume ? [...resume.history] : [];
  let trainSeconds = resume?.trainSeconds ?? 0;
  let roundLoss = resume?.round.lossSum ?? 0;
  let roundSteps = resume?.round.steps ?? 0;
  let roundSeconds = resume?.round.seconds ?? 0;
  for (let t = resume?.step ?? 0; t < total; t++) {
    const round = Math.floor(t / evalEvery);
    const lr = schedule.at(t, total);
    const started = performance.now();
    const [x, y] = engineBatch(await task.batch(seed, t, batch, true));
    let loss: Tensor;
    [loss, trainable, state] = await step(trainable, frozen, fixed, state, x, y, await stepNoise(model, seed, t, batch), lr, t + 1);
    if (method.refresh?.due(config, t + 1, total)) {
      const host = await toHost(names, tree.ref(trainable));
      tree.dispose(frozen);
      frozen = await onEngine(method.refresh.frozenAt(config, specs, t + 1, total, host));
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
      let params = full(await rebuild(tree.ref(trainable), tree.ref(frozen)));
      if (statistics) params = await statistics.measured(params);
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

  // The file's weights: Wasm's rebuild, as every reader of the file makes it.
  const hostTrainable = await toHost(names, trainable);
  const wasmFrozen = currentEngine() === "wasm" ? frozen : await onEngine(frozen, "wasm");
  const produced = await toHost(
    specs.map((s) => s.name),
    materializer(method, config, specs)(toDevice(shapes, hostTrainable), wasmFrozen as Params),
  );
  // The file's statistics are those of the file's weights.
  await statistics?.store(produced, adapter?.base, hostTrainable, method);
  const finalTrainable = method.codec ? produced : hostTrainable;
  tree.dispose(state);
  // A codec stores an encoding of the weights: what counts is what the file gives back.
  const decoded = roundTrip(method, config, specs, produced);
  const params: HostParams = {};
  for (const s of model.specs) params[s.name] = decoded[s.name] ?? adapter!.base[s.name]!;
  let metrics = history.at(-1)?.metrics;
  // Rounds on the native engine were scored on its own rebuild: the result is the file's score.
  if (method.codec || !metrics || currentEngine() === "native") {
    const stored = putAll(model.specs, params);
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
    engine: currentEngine(),
  };
}

function flatShapes(host: HostParams): NamedShape[] {
  return Object.entries(host).map(([name, data]) => ({ name, shape: [data.length] }));
}
