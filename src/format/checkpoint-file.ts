/**
 * A training run's whole state between two steps, in the .mcnc container (docs/format.md): the
 * trainable tensors, Adam's moments, the step, the schedule's state and the history, with the run's
 * identity (model, method, configuration, seed, data, budget) so that a checkpoint is never resumed
 * into another run. The history grows with the run (an evaluation every step is allowed), so it is
 * stored as a tensor of UTF-8 JSON bytes, not in the header, whose size is bounded.
 */
import { UserError } from "../errors.js";
import { sizeOf, type HostParams, type NamedShape } from "../model/params.js";
import type { Checkpoint } from "../train/run-state.js";
import { checkShape, decodeContainer, elements, encodeContainer, type TensorIn } from "./container.js";
import { LIBRARY } from "./model-file.js";

const FORMAT = "mcnc-checkpoint";
const HISTORY = "history.json";

/** JSON cannot hold Infinity (the plateau's first best loss); such numbers travel as strings. */
const replacer = (_: string, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);
const revive = (v: unknown) => (v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v === "NaN" ? NaN : v);

function tensors(prefix: string, host: HostParams, shapes?: Array<{ name: string; shape: number[] }>): TensorIn[] {
  const shapeOf = new Map(shapes?.map((s) => [s.name, s.shape]));
  return Object.entries(host).map(([name, data]) => ({ name: prefix + name, shape: shapeOf.get(name) ?? [data.length], data }));
}

export function encodeCheckpoint(run: Record<string, unknown>, c: Checkpoint): Uint8Array {
  const fields = JSON.parse(
    JSON.stringify(
      {
        format: FORMAT,
        library: LIBRARY,
        run,
        step: c.step,
        schedule: c.schedule,
        train_seconds: c.trainSeconds,
        round: c.round,
        frozen_shapes: c.frozen?.shapes ?? null,
      },
      replacer,
    ),
  ) as Record<string, unknown>;
  const history = new TextEncoder().encode(JSON.stringify(c.history, replacer));
  return encodeContainer(fields, [
    { name: HISTORY, shape: [history.length], codes: history, bits: 8 },
    ...tensors("trainable/", c.trainable),
    ...tensors("adam.m/", c.adam.m),
    ...tensors("adam.v/", c.adam.v),
    ...(c.frozen ? tensors("frozen/", c.frozen.data, c.frozen.shapes) : []),
  ]);
}

/** Differences between two run identities, by field. */
function differences(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/**
 * The state to continue `run` from; refused in one line if the file is not a checkpoint of this run
 * or its tensors are not the `trainable` ones this run trains.
 */
export function decodeCheckpoint(bytes: Uint8Array, name: string, run: Record<string, unknown>, trainable: readonly NamedShape[]): Checkpoint {
  const c = decodeContainer(bytes, name);
  const h = c.header;
  if (h.format !== FORMAT) throw new UserError(`${name} is not a training checkpoint`);
  const saved = JSON.parse(JSON.stringify(h.run ?? {})) as Record<string, unknown>;
  const differ = differences(saved, JSON.parse(JSON.stringify(run)) as Record<string, unknown>);
  if (differ.length > 0) throw new UserError(`${name} is a checkpoint of another run (it differs in ${differ.slice(0, 6).join(", ")}): resume with the flags it was started with`);
  const step = h.step;
  const total = typeof run.total === "number" ? run.total : Infinity;
  if (!Number.isInteger(step) || (step as number) < 1 || (step as number) > total) throw new UserError(`${name}: step ${String(step).slice(0, 20)} is not within this run of ${total} steps`);
  const group = (prefix: string): HostParams => {
    const out: HostParams = {};
    for (const t of h.tensors) if (t.name.startsWith(prefix)) out[t.name.slice(prefix.length)] = c.tensor(t.name);
    return out;
  };
  const state = { trainable: group("trainable/"), m: group("adam.m/"), v: group("adam.v/") };
  for (const [what, host] of Object.entries(state)) {
    const ok = Object.keys(host).length === trainable.length && trainable.every((t) => host[t.name]?.length === sizeOf(t.shape));
    if (!ok) throw new UserError(`${name}: its ${what} tensors are not the ones this run trains`);
  }
  const revived = (v: unknown) => JSON.parse(JSON.stringify(v), (_, x: unknown) => revive(x)) as never;
  const schedule = revived(h.schedule ?? {}) as Record<string, unknown>;
  if (typeof schedule !== "object" || schedule === null || Object.values(schedule).some((v) => typeof v !== "number" || Number.isNaN(v))) throw new UserError(`${name}: its schedule state is not a set of numbers`);
  if ("lr" in schedule && !((schedule.lr as number) > 0 && Number.isFinite(schedule.lr))) throw new UserError(`${name}: its learning rate ${String(schedule.lr)} is not a positive number`);
  const round = revived(h.round ?? { lossSum: 0, steps: 0, seconds: 0 }) as Checkpoint["round"];
  if (typeof round !== "object" || round === null || !["lossSum", "steps", "seconds"].every((k) => Number.isFinite(round[k as keyof typeof round]))) throw new UserError(`${name}: its unfinished round is not three numbers`);
  let history: unknown = h.history;
  if (h.tensors.some((t) => t.name === HISTORY)) {
    try {
      history = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(c.codes(HISTORY, 8)));
    } catch {
      throw new UserError(`${name}: its history is not UTF-8 JSON`);
    }
  }
  history = revived(history ?? []);
  if (!Array.isArray(history) || history.some((e) => typeof e !== "object" || e === null)) throw new UserError(`${name}: its history is not a list of evaluations`);
  return {
    step: step as number,
    trainable: state.trainable,
    adam: { m: state.m, v: state.v },
    schedule: schedule as Record<string, number>,
    history: history as Checkpoint["history"],
    trainSeconds: Number(h.train_seconds) || 0,
    round,
    frozen: frozenOf(h.frozen_shapes, group("frozen/"), name),
  };
}

/** The frozen tensors a checkpoint carries: each listed shape held by a tensor of that size, and nothing else. */
function frozenOf(shapes: unknown, data: HostParams, name: string): Checkpoint["frozen"] {
  if (shapes === null || shapes === undefined) {
    if (Object.keys(data).length > 0) throw new UserError(`${name}: frozen tensors without their shapes`);
    return undefined;
  }
  const bad = (why: string) => new UserError(`${name}: frozen_shapes ${why}`);
  if (!Array.isArray(shapes)) throw bad("is not a list");
  const listed = shapes.map((s: unknown) => {
    if (typeof s !== "object" || s === null || typeof (s as { name?: unknown }).name !== "string") throw bad("holds an entry without a name");
    const { name: tensor, shape } = s as { name: string; shape: unknown };
    const checked = checkShape(shape, `${name}: frozen tensor ${tensor.slice(0, 80)}`);
    if (data[tensor]?.length !== elements(checked)) throw bad(`lists ${tensor.slice(0, 80)} [${checked.join(", ")}], which the checkpoint does not hold at that size`);
    return { name: tensor, shape: checked };
  });
  if (listed.length !== Object.keys(data).length || new Set(listed.map((s) => s.name)).size !== listed.length) throw bad("does not list each frozen tensor once");
  return { shapes: listed, data };
}
