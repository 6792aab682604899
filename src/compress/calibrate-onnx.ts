/**
 * Calibrated compression of an ONNX model mcnc did not write, run by onnxruntime. A copy of the graph
 * gets, for each compressed weight, a few nodes that turn what its MatMul, Gemm or Conv multiplies into
 * X^T X (a Conv's patches made by a one-hot Conv: im2col inside onnxruntime), added as outputs; only
 * those [inputs, inputs] moments leave onnxruntime, summed in float64 batch by batch. Weights go in
 * waves: each wave is calibrated on activations that passed through every compressed layer of the
 * waves before (GPTQ's layer-by-layer order), one onnxruntime session per wave.
 */
import { openModelSession } from "../engine/model-session.js";
import { UserError } from "../errors.js";
import { checkMemory, memoryLimit } from "../limits.js";
import type { ModelInputs } from "../data/model-inputs.js";
import { encodeWith, intAttribute, makeNode, makeTensor, ONNX_TYPE, waves, weightUses, type GraphAddition, type WeightUse } from "../format/onnx-graph.js";
import { encodeOnnx, type ModelMessage, type OnnxModel } from "../format/onnx.js";
import { ifNodes, inlineBranches } from "../format/onnx-inline.js";
import { asMatrix, type MatrixLayout } from "../model/tensors.js";
import type { StoredTensor } from "../methods/index.js";
import type { CompressedLeaf, InputMoments } from "./compressor.js";
import { addInto, calibrateInWaves, type CalibrationProgress } from "./calibrate-waves.js";
import { MAX_CALIBRATED_INPUTS } from "./compress-model.js";

export interface OnnxLeaf {
  name: string;
  shape: number[];
  layout: MatrixLayout;
  value: string;
}

/**
 * The graph calibration runs: the model's, with each main-graph If that the calibration data always
 * decides the same way replaced by the branch it takes (Silero VAD's sample rates), so what that branch
 * multiplies can be captured. One pass over the data finds the decisions.
 */
export async function calibrationGraph(model: OnnxModel, inputs: ModelInputs): Promise<ModelMessage> {
  const ifs = ifNodes(model.message);
  if (ifs.length === 0) return model.message;
  const conditions = [...new Set(ifs.map((i) => i.condition))];
  const session = await openModelSession(encodeWith(model.message, { nodes: [], initializers: [], outputs: conditions }, () => model.encode()), "the model with its branch conditions");
  const seen = new Map<string, Set<boolean>>(conditions.map((c) => [c, new Set()]));
  try {
    for (let from = 0; from < inputs.samples; from += inputs.batchSize) {
      const out = await session.run(inputs.batch(from, Math.min(inputs.samples, from + inputs.batchSize)), conditions);
      for (const c of conditions) for (const v of out[c]!.data) seen.get(c)!.add(Boolean(v));
    }
  } finally {
    await session.close();
  }
  const taken = new Map(ifs.filter((i) => seen.get(i.condition)!.size === 1).map((i) => [i.node, [...seen.get(i.condition)!][0]!]));
  return inlineBranches(model.message, taken);
}

/** Why calibration cannot reach `leaf`'s inputs in `graph` (calibrationGraph's copy of `model`'s), if it cannot. */
export function uncalibratable(model: OnnxModel, graph: ModelMessage, leaf: OnnxLeaf, columnwise = false): string | undefined {
  const found = weightUses(graph, leaf.value);
  if ("why" in found) return graph !== model.message && "why" in weightUses(model.message, leaf.value) && !found.why.includes("subgraph") ? "it lies in an If branch that no calibration sample takes" : found.why;
  const rows = asMatrix(leaf.shape, leaf.layout).rows;
  if (rows > MAX_CALIBRATED_INPUTS) return `its ${rows} inputs are more than calibration takes (${MAX_CALIBRATED_INPUTS})`;
  for (const use of found.uses) {
    const expected: MatrixLayout = use.op === "Conv" ? "out-first" : use.op === "Gemm" && intAttribute(use.node, "transB", 0) === 1 ? "out-in" : "in-out";
    if (expected !== leaf.layout) return `${use.op} node ${use.node.name ?? ""} multiplies it as ${expected}, and it is read as ${leaf.layout}`;
    const groups = use.op === "Conv" ? intAttribute(use.node, "group", 1) : 1;
    if (groups > 1 && !columnwise) return `Conv node ${use.node.name ?? ""} has ${groups} groups, whose outputs see different inputs: a method that mixes outputs cannot be calibrated on one moment`;
  }
  return undefined;
}

const int64s = (values: readonly number[]) => new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
const floats = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

/**
 * Nodes that make X^T X of what `use` multiplies by a weight of `shape`: [groups, rows, rows] (float32),
 * one moment per group of a grouped Conv (one for anything else).
 */
function momentNodes(use: WeightUse, shape: readonly number[], rows: number, id: string, add: GraphAddition): { name: string; groups: number } {
  const v = (s: string) => `mcnc_${id}_${s}`;
  add.nodes.push(makeNode("Cast", [use.activation], [v("x")], [{ name: "to", i: ONNX_TYPE.float, type: 2 }]));
  let x = v("x");
  if (use.op === "Gemm" && intAttribute(use.node, "transA", 0) === 1) {
    add.nodes.push(makeNode("Transpose", [x], [v("xt")]));
    x = v("xt");
  }
  if (use.op === "Conv") {
    // A Conv whose output channel c * k + p copies input channel c at kernel position p: its output,
    // channels last, is the patches the Conv multiplies by its kernel, group by group.
    const [, perGroup, ...kernel] = shape as number[];
    const k = kernel.reduce((a, b) => a * b, 1);
    const channels = perGroup! * intAttribute(use.node, "group", 1);
    checkMemory(channels * k * k * 4, `the patches kernel for ${use.node.name ?? "a Conv"}`);
    const onehot = new Float32Array(channels * k * k);
    for (let c = 0; c < channels; c++) for (let p = 0; p < k; p++) onehot[(c * k + p) * k + p] = 1;
    add.initializers.push(makeTensor(v("onehot"), [channels * k, 1, ...kernel], ONNX_TYPE.float, floats(onehot)));
    const copied = use.node.attribute.filter((a) => ["strides", "pads", "dilations", "auto_pad"].includes(a.name ?? ""));
    add.nodes.push(makeNode("Conv", [x, v("onehot")], [v("patches")], [...copied, { name: "group", i: channels, type: 2 }, { name: "kernel_shape", ints: kernel, type: 7 }]));
    const axes = kernel.length + 2;
    add.nodes.push(makeNode("Transpose", [v("patches")], [v("last")], [{ name: "perm", ints: [0, ...Array.from({ length: axes - 2 }, (_, i) => i + 2), 1], type: 7 }]));
    x = v("last");
  }
  // Rows [samples, groups, rows]: group g's patches are its own block of the last axis.
  const groups = use.op === "Conv" ? intAttribute(use.node, "group", 1) : 1;
  add.initializers.push(makeTensor(v("shape"), [3], ONNX_TYPE.int64, int64s([-1, groups, rows])));
  add.nodes.push(makeNode("Reshape", [x, v("shape")], [v("rows3")]));
  add.nodes.push(makeNode("Transpose", [v("rows3")], [v("rows")], [{ name: "perm", ints: [1, 0, 2], type: 7 }]));
  add.nodes.push(makeNode("Transpose", [v("rows3")], [v("cols")], [{ name: "perm", ints: [1, 2, 0], type: 7 }]));
  add.nodes.push(makeNode("MatMul", [v("cols"), v("rows")], [v("moment")]));
  add.outputs.push(v("moment"));
  return { name: v("moment"), groups };
}

/**
 * A leaf's moments from each of its uses': their sum over uses and groups, and, where every use is a
 * Conv of the same G > 1 groups, each group's own (summed over uses).
 */
function leafMoments(sums: Float64Array[], uses: Array<{ groups: number }>, rows: number): InputMoments {
  const n = rows * rows;
  const hessian = new Float64Array(n);
  for (const s of sums) for (let k = 0; k < s.length; k++) hessian[k % n]! += s[k]!;
  const G = uses[0]!.groups;
  if (G === 1 || uses.some((u) => u.groups !== G)) return { hessian };
  const columnGroups = Array.from({ length: G }, (_, g) => {
    const own = new Float64Array(n);
    for (const s of sums) for (let k = 0; k < n; k++) own[k]! += s[g * n + k]!;
    return own;
  });
  return { hessian, columnGroups };
}

/**
 * Each leaf compressed by `compressLeaf` on its input moments, wave by wave, the model's weights
 * replaced by what the compressed ones rebuild as it goes. Returns what each leaf stores, by name (the
 * weights rebuilt are in the model). `held`: the bytes the caller holds (the model's copies), which
 * onnxruntime's activations must fit beside under the memory limit.
 */
export async function calibrateOnnx(
  model: OnnxModel,
  graph: ModelMessage,
  leaves: readonly OnnxLeaf[],
  inputs: ModelInputs,
  compressLeaf: (leaf: OnnxLeaf, index: number, moments: InputMoments) => Promise<CompressedLeaf>,
  onWave?: (p: CalibrationProgress) => void,
  held = 0,
): Promise<Map<string, StoredTensor[]>> {
  const waveOf = waves(graph, leaves.map((l) => l.value));
  let perSample = 0;
  const measure = async (group: OnnxLeaf[], wave: number): Promise<InputMoments[]> => {
    const add: GraphAddition = { nodes: [], initializers: [], outputs: [] };
    const outputsOf = group.map((leaf, i) => {
      const { rows } = asMatrix(leaf.shape, leaf.layout);
      const found = weightUses(graph, leaf.value);
      if ("why" in found) throw new UserError(`${leaf.name}: ${found.why}`);
      return { rows, names: found.uses.map((use, j) => momentNodes(use, leaf.shape, rows, `${wave}_${i}_${j}`, add)) };
    });
    checkMemory(outputsOf.reduce((n, o) => n + o.names.reduce((g, u) => g + u.groups, 0) * o.rows * o.rows * 12, 0), `the input moments of wave ${wave + 1}`);
    const session = await openModelSession(encodeWith(graph, add, () => encodeOnnx(graph)), "the model with its calibration outputs");
    // Per use, each group's moment summed over batches.
    const sums = outputsOf.map((o) => o.names.map((u) => new Float64Array(u.groups * o.rows * o.rows)));
    const run = async (from: number, to: number) => {
      const out = await session.run(inputs.batch(from, to), add.outputs);
      outputsOf.forEach((o, i) => o.names.forEach((u, j) => addInto(sums[i]![j]!, out[u.name]!.data as Float32Array)));
    };
    try {
      // The first sample alone, to measure what onnxruntime holds for one (its arena keeps what it took):
      // the batches after it are as large as the memory limit leaves room for. The largest measure so
      // far counts, since a later wave's session may reuse memory an earlier one gave back.
      const before = process.memoryUsage().rss;
      await run(0, 1);
      perSample = Math.max(perSample, process.memoryUsage().rss - before);
      checkMemory(held + perSample, `calibrating in onnxruntime (one sample's activations measured at ${Math.ceil(perSample / 2 ** 20)} MiB, beside the model's copies)`);
      const batch = Math.max(1, Math.min(inputs.batchSize, Math.floor((memoryLimit() - held) / Math.max(perSample, 1))));
      for (let from = 1; from < inputs.samples; from += batch) await run(from, Math.min(inputs.samples, from + batch));
    } finally {
      await session.close();
    }
    return outputsOf.map((o, i) => leafMoments(sums[i]!, o.names, o.rows));
  };
  return calibrateInWaves(leaves, { waveOf: (l) => waveOf.get(l.value) ?? 0, measure, write: (l, w) => model.write(l.name, w) }, compressLeaf, onWave);
}
