/**
 * A TensorFlow.js graph model's topology as calibration sees it: its inputs (Placeholders), the nodes
 * that multiply by each weight, and the order in which compressed layers feed one another. Functions
 * of the graph's library (TF2 control flow) are opaque here, as ONNX subgraphs are.
 */
import { ONNX_TYPE, type GraphInput } from "./onnx-graph.js";
import type { MatrixLayout } from "../model/tensors.js";

export interface TfjsAttr {
  b?: boolean;
  i?: string | number;
  s?: string | number[];
  type?: string | number;
  shape?: { dim?: Array<{ size?: string | number }>; unknownRank?: boolean };
  list?: { i?: Array<string | number> };
}

export interface TfjsNode {
  name?: string;
  op?: string;
  input?: string[];
  attr?: Record<string, TfjsAttr>;
}

export interface TfjsTopology {
  node?: TfjsNode[];
  versions?: object;
  library?: { function?: Array<{ nodeDef?: TfjsNode[] }> };
}

/** Ops that multiply their first input by their second, a weight, as calibration captures them. */
const CAPTURED = new Set(["MatMul", "BatchMatMul", "BatchMatMulV2", "_FusedMatMul", "Conv2D", "_FusedConv2D"]);
/** Ops that multiply by a weight in ways calibration does not capture (yet): named in its reason. */
export const MULTIPLIES = new Set([...CAPTURED, "Conv1D", "Conv3D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative", "Conv2DBackpropInput"]);

/** A node's input as the name of the value it reads: "x:0" and "x" are one value; "^x" is control only. */
export const valueName = (input: string) => input.replace(/:0$/, "");
export const producerOf = (input: string) => input.replace(/^\^/, "").replace(/:\d+$/, "");

export const boolAttr = (node: TfjsNode, name: string) => node.attr?.[name]?.b === true;
export const stringAttr = (node: TfjsNode, name: string): string | undefined => {
  const s = node.attr?.[name]?.s;
  if (s === undefined) return undefined;
  return Array.isArray(s) ? String.fromCharCode(...s) : Buffer.from(s, "base64").toString("latin1");
};
export const intsAttr = (node: TfjsNode, name: string): number[] | undefined => node.attr?.[name]?.list?.i?.map(Number);

/** TF's DataType codes and names, as the graph input types mcnc feeds (TF.js runs int64 as int32). */
const TF_TYPES: Record<string, number> = { "1": ONNX_TYPE.float, DT_FLOAT: ONNX_TYPE.float, "3": ONNX_TYPE.int32, DT_INT32: ONNX_TYPE.int32, "9": ONNX_TYPE.int32, DT_INT64: ONNX_TYPE.int32, "10": ONNX_TYPE.bool, DT_BOOL: ONNX_TYPE.bool };

/** The Placeholders a caller feeds, as graph inputs (an unknown type is 0, which nothing feeds). */
export function tfjsInputs(topology: TfjsTopology): GraphInput[] {
  return (topology.node ?? [])
    .filter((n) => n.op === "Placeholder" && typeof n.name === "string")
    .map((n) => ({
      name: n.name!,
      elemType: TF_TYPES[String(n.attr?.dtype?.type)] ?? 0,
      dims: (n.attr?.shape?.shape?.dim ?? []).map((d) => (Number(d.size) > 0 ? Number(d.size) : undefined)),
    }));
}

export interface TfjsUse {
  node: TfjsNode;
  op: string;
  /** The value it multiplies, as a fetchable name. */
  activation: string;
}

/** The layout a capturing op multiplies a weight in: [inputs, outputs] unless MatMul transposes it. */
export function useLayout(node: TfjsNode): MatrixLayout {
  return boolAttr(node, "transpose_b") || boolAttr(node, "adj_y") ? "out-in" : "in-out";
}

/**
 * How calibration reaches `weight`: each node that multiplies an activation by it, or why it cannot (a
 * use by another op or inside a library function, a Conv laid out channels first or padded explicitly).
 */
export function tfjsWeightUses(topology: TfjsTopology, weight: string): { uses: TfjsUse[] } | { why: string } {
  for (const f of topology.library?.function ?? []) if (f.nodeDef?.some((n) => n.input?.some((i) => producerOf(i) === weight))) return { why: "it is used inside a function of the graph's library (control flow), which calibration does not enter" };
  const uses: TfjsUse[] = [];
  for (const node of topology.node ?? []) {
    const at = (node.input ?? []).findIndex((i) => producerOf(i) === weight);
    if (at < 0) continue;
    const label = `${node.op ?? "?"} node ${node.name ?? ""}`;
    if (at !== 1 || !CAPTURED.has(node.op ?? "")) return { why: `${label} uses it as input ${at}, where calibration cannot capture what it multiplies` };
    if (boolAttr(node, "transpose_a") || boolAttr(node, "adj_x")) return { why: `${label} transposes what it multiplies` };
    if (node.op!.includes("Conv")) {
      if ((stringAttr(node, "data_format") ?? "NHWC") !== "NHWC") return { why: `${label} is laid out ${stringAttr(node, "data_format")}; calibration captures NHWC convolutions` };
      if (!["SAME", "VALID"].includes(stringAttr(node, "padding") ?? "")) return { why: `${label} pads ${stringAttr(node, "padding") ?? "?"}; calibration captures SAME and VALID padding` };
    }
    uses.push({ node, op: node.op!, activation: valueName(node.input![0]!) });
  }
  return uses.length > 0 ? { uses } : { why: "no node of the graph multiplies by it" };
}

/**
 * The wave of each weight in `weights` (as in onnx-graph's `waves`): 0 for those fed by no other of
 * them, then one more than the deepest of them upstream. TF.js lists nodes in no particular order, so
 * they are visited in dependency order.
 */
export function tfjsWaves(topology: TfjsTopology, weights: readonly string[]): Map<string, number> {
  const wanted = new Set(weights);
  const nodes = (topology.node ?? []).filter((n) => typeof n.name === "string");
  const byName = new Map(nodes.map((n) => [n.name!, n]));
  const reads = (n: TfjsNode) => (n.input ?? []).map(producerOf).filter((p) => byName.has(p));
  // Kahn's order: a node after everything it reads.
  const waiting = new Map(nodes.map((n) => [n, reads(n).length]));
  const readers = new Map<string, TfjsNode[]>();
  for (const n of nodes) for (const p of reads(n)) readers.set(p, [...(readers.get(p) ?? []), n]);
  const ready = nodes.filter((n) => waiting.get(n) === 0);
  const level = new Map<string, number>();
  const wave = new Map<string, number>();
  while (ready.length > 0) {
    const node = ready.pop()!;
    const inputs = node.input ?? [];
    let out = Math.max(0, ...inputs.map((i) => level.get(producerOf(i)) ?? 0));
    const weight = inputs[1] === undefined ? undefined : producerOf(inputs[1]);
    if (weight !== undefined && wanted.has(weight) && MULTIPLIES.has(node.op ?? "")) {
      const w = Math.max(wave.get(weight) ?? 0, level.get(producerOf(inputs[0]!)) ?? 0);
      wave.set(weight, w);
      out = Math.max(out, w + 1);
    }
    level.set(node.name!, out);
    for (const r of readers.get(node.name!) ?? []) {
      const left = waiting.get(r)! - 1;
      waiting.set(r, left);
      if (left === 0) ready.push(r);
    }
  }
  return wave;
}
