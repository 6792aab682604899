/**
 * Post-training compression of a whole model, leaf by leaf in the order the forward pass meets them.
 * A calibrated compressor sees each leaf's input moments measured through the layers below it as
 * they are after compression (the ROM and GPTQ papers' sequential scheme), so each layer corrects
 * for the error of the ones before.
 */
import { numpy as np, tree } from "@jax-js/jax";
import { compile, compileGrad, putAll, read, settle, type Tensor } from "../engine/program.js";
import { UserError } from "../errors.js";
import { KEPT } from "../methods/leaves.js";
import { matrixShape } from "../methods/lora/index.js";
import type { StoredTensor } from "../methods/index.js";
import type { LeafTap, Model, Piece } from "../model/model.js";
import { buildModel } from "../model/models.js";
import { sizeOf, toDevice, type HostParams, type ParamSpec, type Params } from "../model/params.js";
import { crossEntropy } from "../train/tasks.js";
import type { Compressor, InputMoments } from "./compressor.js";

/** Widest input a calibrated leaf may have: its moment matrix is in x in float64 (512 MiB at 8192). */
export const MAX_CALIBRATED_INPUTS = 8192;

export interface CompressRun {
  /** The file method and configuration the stored tensors belong to. */
  method: { name: string; config: object };
  /** Every stored tensor in model order: each compressed leaf's, and `keep/<leaf>` for the rest. */
  stored: StoredTensor[];
  /** The weights as a reader rebuilds them. */
  weights: HostParams;
  seconds: number;
}

export interface LeafProgress {
  leaf: string;
  index: number;
  of: number;
  seconds: number;
}

/** The smallest input the network takes: enough to see which leaves it multiplies. */
export function probeInput(model: Model): np.Array {
  const d = model.description;
  if (d.name === "tensors") throw new UserError(`${model.name} cannot be run`);
  return d.name === "gpt" || d.name === "llama" || d.name === "sequential-lm" ? np.zeros([1, 2], { dtype: np.int32 }) : np.zeros([1, ...d.input]);
}

/** Leaves the model multiplies as matrices (what the tap sees), in forward order. */
export function matrixLeaves(model: Model, probe: np.Array): string[] {
  const seen: string[] = [];
  const params = toDevice(model.specs, Object.fromEntries(model.specs.map((s) => [s.name, new Float32Array(sizeOf(s.shape))])));
  model
    .apply(params, probe, (leaf, rows) => {
      rows.dispose();
      if (!seen.includes(leaf)) seen.push(leaf);
    })
    .dispose();
  return seen;
}

type Forward = (params: Params, x: np.Array, tap?: LeafTap) => np.Array;

/**
 * X^T X of the rows `leaf` multiplies, summed over the calibration batches, in float64: `forward`
 * (the whole network, or the one piece holding the leaf) run on each batch with `specs`' weights.
 */
async function inputMoments(forward: Forward, specs: readonly ParamSpec[], weights: HostParams, leaf: string, batches: readonly Tensor[]): Promise<InputMoments> {
  const program = compile((p: Params, x: np.Array) => {
    let sum: np.Array | undefined;
    forward(p, x, (name, rows) => {
      if (name !== leaf) return rows.dispose();
      const m = np.matmul(rows.ref.transpose(), rows);
      sum = sum ? sum.add(m) : m;
    }).dispose();
    if (!sum) throw new Error(`the model never multiplies ${leaf}`);
    return sum;
  }, { name: `calibration of ${leaf}` });
  const params = putAll(specs, weights);
  let hessian: Float64Array | undefined;
  for (const x of batches) {
    const m = await read(await program(tree.ref(params), x.ref));
    hessian ??= new Float64Array(m.length);
    for (let i = 0; i < m.length; i++) hessian[i]! += m[i]!;
  }
  tree.dispose(params);
  return { hessian: hessian! };
}

/**
 * Where the calibration activations stand while leaves are compressed in forward order. A network cut
 * into pieces (the GPT) keeps each batch's activations at the current piece's input and runs only that
 * piece per matrix, moving on through the compressed piece when its leaves are done: one pass of the
 * network in all. Another runs whole per matrix.
 */
function calibrationCursor(model: Model, batches: readonly Tensor[]) {
  const pieces = model.pieces;
  let at = 0;
  let acts = batches.map((x) => x.ref);
  const specsOf = (piece: Piece) => model.specs.filter((s) => piece.leaves.includes(s.name));
  return {
    /** The moments of `leaf`'s inputs through the weights as they are now. */
    async moments(leaf: string, weights: HostParams): Promise<InputMoments> {
      if (!pieces) return inputMoments((p, x, tap) => model.apply(p, x, tap), model.specs, weights, leaf, acts);
      for (;;) {
        const piece = pieces[at];
        if (!piece) throw new Error(`no piece of ${model.name} holds ${leaf}`);
        if (piece.leaves.includes(leaf)) return inputMoments(piece.run, specsOf(piece), weights, leaf, acts);
        // The leaf lies further on: move every batch through this piece as it now is (compressed).
        const run = compile((p: Params, x: np.Array) => piece.run(p, x), { name: `${model.name} piece ${at}` });
        const params = putAll(specsOf(piece), weights);
        const next: Tensor[] = [];
        // One batch at a time, each made real before the next: a pending result would keep its whole
        // computation (attention scores, the MLP's hidden layer) alive for every batch at once.
        for (const x of acts) next.push(await settle(await run(tree.ref(params), x)));
        acts = next;
        tree.dispose(params);
        at++;
      }
    },
    dispose(): void {
      for (const x of acts) x.dispose();
    },
  };
}

/** A calibration batch on the engine: inputs, and the targets a gradient-calibrated method needs. */
export type CalibrationBatch = [x: Tensor, y: Tensor];

/** Squared loss gradients of the leaves, summed over the calibration batches (the empirical Fisher). */
async function fisherOf(model: Model, weights: HostParams, leaves: readonly string[], batches: readonly CalibrationBatch[]): Promise<HostParams> {
  const grad = compileGrad((p: Params, x: np.Array, y: np.Array) => crossEntropy(model.apply(p, x), y), { name: `${model.name} gradient` });
  const params = putAll(model.specs, weights);
  const out: HostParams = Object.fromEntries(leaves.map((l) => [l, new Float32Array(weights[l]!.length)]));
  for (const [x, y] of batches) {
    const [loss, grads] = await grad(tree.ref(params), x.ref, y.ref);
    loss.dispose();
    for (const [name, g] of Object.entries(grads)) {
      if (!(name in out)) {
        g.dispose();
        continue;
      }
      const data = await read(g);
      const acc = out[name]!;
      for (let i = 0; i < data.length; i++) acc[i]! += data[i]! * data[i]!;
    }
  }
  tree.dispose(params);
  return out;
}

export async function compressModel(
  model: Model,
  weights: HostParams,
  compressor: Compressor,
  config: object,
  compress: readonly string[],
  calibration: readonly CalibrationBatch[],
  seed: number,
  onLeaf?: (p: LeafProgress) => void,
): Promise<CompressRun> {
  const started = performance.now();
  const current: HostParams = { ...weights };
  const byLeaf = new Map<string, StoredTensor[]>();
  const specs = model.specs.filter((s) => compress.includes(s.name));
  if (compressor.calibrated && calibration.length === 0) throw new UserError(`${compressor.name} needs calibration data`);
  // Gradients are taken once, on the trained model, as FWSVD does.
  const fisher = compressor.calibrated === "gradients" ? await fisherOf(model, weights, compress, calibration) : undefined;
  const cursor = compressor.calibrated === "inputs" ? calibrationCursor(model, calibration.map(([x]) => x)) : undefined;
  for (const [index, spec] of specs.entries()) {
    const t = performance.now();
    const [rows, cols] = matrixShape(spec.shape);
    if (cursor && rows > MAX_CALIBRATED_INPUTS) throw new UserError(`${spec.name} has ${rows} inputs; ${compressor.name} calibrates at most ${MAX_CALIBRATED_INPUTS}`);
    const moments = cursor ? await cursor.moments(spec.name, current) : undefined;
    const leaf = { spec, rows, cols, weight: current[spec.name]!, seed, index, ...(moments ? { moments } : {}), ...(fisher ? { fisher: fisher[spec.name]! } : {}) };
    const out = await compressor.compressLeaf(config, leaf);
    current[spec.name] = out.weight;
    byLeaf.set(spec.name, out.stored);
    onLeaf?.({ leaf: spec.name, index, of: specs.length, seconds: (performance.now() - t) / 1000 });
  }
  cursor?.dispose();
  const compressed = specs.map((spec) => ({ spec, stored: byLeaf.get(spec.name)! }));
  const storage = compressor.storage(config, compressed, [...compress]);
  const kept = (s: ParamSpec): StoredTensor[] => [{ name: KEPT + s.name, shape: [...s.shape], data: weights[s.name]! }];
  const stored = storage.tensors ? [...storage.tensors, ...model.specs.filter((s) => !byLeaf.has(s.name)).flatMap(kept)] : model.specs.flatMap((s) => byLeaf.get(s.name) ?? kept(s));
  return { method: { name: storage.method, config: storage.config }, stored, weights: current, seconds: (performance.now() - started) / 1000 };
}

/** Fine-tunes a network from `weights` for `steps` steps on its training data: the weights after. */
export type Heal = (model: Model, weights: HostParams, steps: number) => Promise<HostParams>;

/**
 * A compressor that changes the network's shape (structured pruning, block removal): the smaller network,
 * stored dense (`model` is the new one), healed by `heal` where the compressor asks for it.
 */
export async function restructureModel(model: Model, weights: HostParams, compressor: Compressor, config: object, calibration: readonly CalibrationBatch[], heal?: Heal): Promise<CompressRun & { model: Model }> {
  const started = performance.now();
  const smaller = await compressor.restructure!(config, model, weights, calibration);
  const pruned = buildModel(smaller.description);
  const healed = smaller.heal && heal ? await heal(pruned, smaller.weights, smaller.heal) : smaller.weights;
  const stored = pruned.specs.map((s) => ({ name: s.name, shape: [...s.shape], data: healed[s.name]! }));
  return { model: pruned, method: { name: "dense", config: {} }, stored, weights: healed, seconds: (performance.now() - started) / 1000 };
}
