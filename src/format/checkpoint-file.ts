/**
 * A training run's whole state between two steps, in the .mcnc container (docs/format.md): the
 * trainable tensors, Adam's moments, the step, the schedule's state and the history, with the run's
 * identity (model, method, configuration, seed, data, budget) so that a checkpoint is never resumed
 * into another run.
 */
import { UserError } from "../errors.js";
import { sizeOf, type HostParams, type NamedShape } from "../model/params.js";
import type { Checkpoint } from "../train/trainer.js";
import { decodeContainer, encodeContainer, type TensorIn } from "./container.js";
import { LIBRARY } from "./model-file.js";

const FORMAT = "mcnc-checkpoint";

/** JSON cannot hold Infinity (the plateau's first best loss); such numbers travel as strings. */
const replacer = (_: string, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);
const revive = (v: unknown) => (v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v === "NaN" ? NaN : v);

function tensors(prefix: string, host: HostParams, shapes?: Array<{ name: string; shape: number[] }>): TensorIn[] {
  return Object.entries(host).map(([name, data]) => ({ name: prefix + name, shape: shapes?.find((s) => s.name === name)?.shape ?? [data.length], data }));
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
        history: c.history,
        train_seconds: c.trainSeconds,
        round: c.round,
        frozen_shapes: c.frozen?.shapes ?? null,
      },
      replacer,
    ),
  ) as Record<string, unknown>;
  return encodeContainer(fields, [
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
  if (!Number.isInteger(step) || (step as number) < 1) throw new UserError(`${name}: bad step ${String(step)}`);
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
  const frozenShapes = h.frozen_shapes as Array<{ name: string; shape: number[] }> | null;
  return {
    step: step as number,
    trainable: state.trainable,
    adam: { m: state.m, v: state.v },
    schedule: revived(h.schedule ?? {}),
    history: revived(h.history ?? []),
    trainSeconds: Number(h.train_seconds) || 0,
    round: revived(h.round ?? { lossSum: 0, steps: 0, seconds: 0 }),
    frozen: frozenShapes ? { shapes: frozenShapes, data: group("frozen/") } : undefined,
  };
}
