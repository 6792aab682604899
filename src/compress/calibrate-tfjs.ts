/**
 * Calibrated compression of a TensorFlow.js graph model, run by TF.js: each batch is run with the
 * values each compressed MatMul or Conv2D multiplies fetched as outputs, and X^T X of them (a Conv's
 * patches cut by strided slices: im2col inside TF.js) is made in TF.js; only the [inputs, inputs]
 * moments leave it, summed in float64 batch by batch. Weights go in waves, as for ONNX.
 */
import type { ModelInputs } from "../data/model-inputs.js";
import { openTfjsSession, type TfjsSession, type TfTensor } from "../engine/tfjs-session.js";
import { UserError } from "../errors.js";
import { checkMemory } from "../limits.js";
import { intsAttr, stringAttr, tfjsWaves, tfjsWeightUses, useLayout, type TfjsUse } from "../format/tfjs-graph.js";
import type { TfjsGraph } from "../format/tfjs.js";
import type { StoredTensor } from "../methods/index.js";
import { convPadding } from "../model/layers.js";
import { asMatrix } from "../model/tensors.js";
import { addInto, calibrateInWaves, type CalibrationProgress, type WaveLeaf } from "./calibrate-waves.js";
import { MAX_CALIBRATED_INPUTS } from "./compress-model.js";
import type { CompressedLeaf, InputMoments } from "./compressor.js";

/** Why calibration cannot reach `leaf`'s inputs in `graph`, if it cannot. */
export function uncalibratableTfjs(graph: TfjsGraph, leaf: WaveLeaf): string | undefined {
  const found = tfjsWeightUses(graph.topology, leaf.name);
  if ("why" in found) return found.why;
  const rows = asMatrix(leaf.shape, leaf.layout).rows;
  if (rows > MAX_CALIBRATED_INPUTS) return `its ${rows} inputs are more than calibration takes (${MAX_CALIBRATED_INPUTS})`;
  for (const use of found.uses) {
    const expected = useLayout(use.node);
    if (expected !== leaf.layout) return `${use.op} node ${use.node.name ?? ""} multiplies it as ${expected}, and it is read as ${leaf.layout}`;
  }
  return undefined;
}

/** The rows `use` multiplies by a weight of `shape`: [samples, rows] (a Conv2D's patches, (kh, kw, c) order). */
function rowsOf(session: TfjsSession, x: TfTensor, use: TfjsUse, shape: readonly number[], rows: number): TfTensor {
  const { tf } = session;
  if (!use.op.includes("Conv")) return tf.reshape(x, [-1, rows]);
  const [kh, kw] = shape as [number, number];
  const [, sh, sw] = intsAttr(use.node, "strides") ?? [1, 1, 1];
  const [, dh, dw] = intsAttr(use.node, "dilations") ?? [1, 1, 1];
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1) return tf.reshape(x, [-1, rows]);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const same = stringAttr(use.node, "padding") === "SAME";
  const [y, z] = [convPadding(h, kh, sh!, same, dh), convPadding(w, kw, sw!, same, dw)];
  const padded = tf.pad(x, [[0, 0], [y.before, y.after], [z.before, z.after], [0, 0]]);
  const slices: TfTensor[] = [];
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) slices.push(tf.stridedSlice(padded, [0, i * dh!, j * dw!, 0], [n, i * dh! + (y.out - 1) * sh! + 1, j * dw! + (z.out - 1) * sw! + 1, c], [1, sh!, sw!, 1]));
  return tf.reshape(tf.concat(slices, 3), [-1, rows]);
}

/**
 * Each leaf compressed by `compressLeaf` on its input moments, wave by wave. Returns what each leaf
 * stores and the weights it rebuilds (in the model's own shape), by name.
 */
export async function calibrateTfjs(
  graph: TfjsGraph,
  leaves: readonly WaveLeaf[],
  inputs: ModelInputs,
  compressLeaf: (leaf: WaveLeaf, index: number, moments: InputMoments) => Promise<CompressedLeaf>,
  onWave?: (p: CalibrationProgress) => void,
): Promise<{ stored: Map<string, StoredTensor[]>; weights: Map<string, Float32Array> }> {
  const waveOf = tfjsWaves(graph.topology, leaves.map((l) => l.name));
  const weights = new Map<string, Float32Array>();
  const measure = async (group: WaveLeaf[], wave: number): Promise<InputMoments[]> => {
    const uses = group.map((leaf) => {
      const found = tfjsWeightUses(graph.topology, leaf.name);
      if ("why" in found) throw new UserError(`${leaf.name}: ${found.why}`);
      return { leaf, rows: asMatrix(leaf.shape, leaf.layout).rows, uses: found.uses };
    });
    checkMemory(uses.reduce((n, u) => n + u.rows * u.rows * 12, 0), `the input moments of wave ${wave + 1}`);
    const fetch = [...new Set(uses.flatMap((u) => u.uses.map((use) => use.activation)))];
    const sums = uses.map((u) => new Float64Array(u.rows * u.rows));
    const session = await openTfjsSession(graph.artifacts(weights), "the model being calibrated");
    try {
      for (let from = 0; from < inputs.samples; from += inputs.batchSize) {
        const values = await session.tensors(inputs.batch(from, Math.min(inputs.samples, from + inputs.batchSize)), fetch);
        try {
          for (const [i, u] of uses.entries()) {
            for (const use of u.uses) {
              const m = session.tf.tidy(() => {
                const x = rowsOf(session, values[fetch.indexOf(use.activation)]!, use, u.leaf.shape, u.rows);
                return session.tf.matMul(x, x, true, false);
              });
              addInto(sums[i]!, await m.data());
              m.dispose();
            }
          }
        } finally {
          for (const v of values) v.dispose();
        }
      }
    } finally {
      await session.close();
    }
    return sums.map((hessian) => ({ hessian }));
  };
  const stored = await calibrateInWaves(leaves, { waveOf: (l) => waveOf.get(l.name) ?? 0, measure, write: (l, w) => weights.set(l.name, w) }, compressLeaf, onWave);
  return { stored, weights };
}
