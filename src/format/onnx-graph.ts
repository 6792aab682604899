/**
 * An ONNX model's main graph as calibration and the compact writers see it: its inputs, the nodes
 * that multiply by each weight, the order in which compressed layers feed one another, and copies of
 * the graph with nodes and outputs added. Subgraphs (If, Loop) are opaque here: what they compute
 * cannot be captured as a main-graph output.
 */
import { UserError } from "../errors.js";
import { num, type Attribute, type Graph, type ModelMessage, type Node, type Tensor } from "./onnx.js";

/** TensorProto.DataType codes used here. */
export const ONNX_TYPE = { float: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, double: 11 } as const;

export interface GraphInput {
  name: string;
  elemType: number;
  /** A number where fixed, the symbol (or undefined) where the model leaves it free. */
  dims: Array<number | string | undefined>;
}

/** The inputs a caller feeds: graph inputs that no initializer supplies. */
export function graphInputs(m: ModelMessage): GraphInput[] {
  const given = new Set(m.graph.initializer.map((t) => t.name));
  return m.graph.input
    .filter((v) => v.name && !given.has(v.name))
    .map((v) => ({
      name: v.name!,
      elemType: v.type?.tensorType?.elemType ?? 0,
      dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && num(d.dimValue) > 0 ? num(d.dimValue) : d.dimParam || undefined)),
    }));
}

export const attribute = (node: Node, name: string): Attribute | undefined => node.attribute.find((a) => a.name === name);
export const intAttribute = (node: Node, name: string, fallback: number): number => {
  const a = attribute(node, name);
  return a?.i === undefined ? fallback : num(a.i);
};

/** Where a node multiplies by a weight: the op, and the value it multiplies (its activation). */
export interface WeightUse {
  node: Node;
  op: "MatMul" | "Gemm" | "Conv";
  activation: string;
}

const nodeLabel = (node: Node, i: number) => `${node.opType ?? "?"} node ${node.name || `#${i}`}`;
const subgraphsOf = (node: Node): Graph[] => node.attribute.flatMap((a) => [...(a.g ? [a.g] : []), ...a.graphs]);

/** Every name a graph and its subgraphs read. */
function namesRead(graph: Graph, into = new Set<string>()): Set<string> {
  for (const node of graph.node) {
    for (const i of node.input) into.add(i);
    subgraphsOf(node).forEach((g) => namesRead(g, into));
  }
  return into;
}

const readsCache = new WeakMap<ModelMessage, Map<Node, Set<string>>>();
/** What each main-graph node's subgraphs read, for the nodes that have subgraphs. */
function subgraphReads(m: ModelMessage): Map<Node, Set<string>> {
  let hit = readsCache.get(m);
  if (!hit) {
    hit = new Map();
    for (const node of m.graph.node) {
      const graphs = subgraphsOf(node);
      if (graphs.length > 0) hit.set(node, graphs.reduce((s, g) => namesRead(g, s), new Set<string>()));
    }
    readsCache.set(m, hit);
  }
  return hit;
}

/**
 * How calibration reaches `value`, a weight: each main-graph node that multiplies an activation by it,
 * or why it cannot (a use inside a subgraph, an op whose inputs calibration does not model).
 */
export function weightUses(m: ModelMessage, value: string): { uses: WeightUse[] } | { why: string } {
  const uses: WeightUse[] = [];
  const inside = subgraphReads(m);
  for (const [i, node] of m.graph.node.entries()) {
    if (inside.get(node)?.has(value)) return { why: `it is used inside a subgraph of ${nodeLabel(node, i)} (calibration reaches a main-graph If's branch only where all its samples take it)` };
    const at = node.input.indexOf(value);
    if (at < 0) continue;
    const op = node.opType ?? "";
    if (at === 1 && (op === "MatMul" || op === "Conv" || op === "Gemm") && (node.domain ?? "") === "") uses.push({ node, op, activation: node.input[0]! });
    else return { why: `${nodeLabel(node, i)} uses it as input ${at}, where calibration cannot capture what it multiplies` };
  }
  return uses.length > 0 ? { uses } : { why: "no node of the main graph multiplies by it" };
}

/**
 * The wave of each weight in `values`: 0 for those fed by no other of them, then one more than the
 * deepest of them upstream. Weights of one wave are calibrated together, on activations that have
 * passed through every compressed layer of the waves before (GPTQ's layer-by-layer order).
 */
export function waves(m: ModelMessage, values: readonly string[]): Map<string, number> {
  const wanted = new Set(values);
  const level = new Map<string, number>();
  const wave = new Map<string, number>();
  const inside = subgraphReads(m);
  for (const node of m.graph.node) {
    const read = [...node.input, ...(inside.get(node) ?? [])];
    let out = Math.max(0, ...read.map((n) => level.get(n) ?? 0));
    const weight = node.input[1];
    if (weight !== undefined && wanted.has(weight) && ["MatMul", "Gemm", "Conv"].includes(node.opType ?? "")) {
      const w = Math.max(wave.get(weight) ?? 0, level.get(node.input[0]!) ?? 0);
      wave.set(weight, w);
      out = Math.max(out, w + 1);
    }
    for (const o of node.output) level.set(o, out);
  }
  return wave;
}

/** Nodes, initializers and outputs to add to a copy of the main graph. */
export interface GraphAddition {
  nodes: Node[];
  initializers: Tensor[];
  outputs: string[];
}

export const makeNode = (opType: string, input: string[], output: string[], attribute: Array<Partial<Attribute>> = [], domain = ""): Node => ({
  opType,
  input,
  output,
  name: output[0],
  domain,
  attribute: attribute.map((a) => ({ tensors: [], graphs: [], ints: [], ...a })),
});

export const makeTensor = (name: string, dims: readonly number[], dataType: number, rawData: Uint8Array): Tensor => ({ name, dims: [...dims], dataType, rawData, floatData: [], int32Data: [] });

/**
 * The model with `add` appended to its main graph, encoded: `encode` sees the graph changed and it is
 * restored before this returns, so the model itself is left as it was.
 */
export function encodeWith(m: ModelMessage, add: GraphAddition, encode: () => Uint8Array): Uint8Array {
  const g = m.graph;
  const saved = { node: g.node, initializer: g.initializer, output: g.output };
  const taken = new Set([...g.node.flatMap((n) => n.output), ...g.initializer.map((t) => t.name), ...g.input.map((v) => v.name)]);
  for (const n of add.nodes) for (const o of n.output) if (taken.has(o)) throw new UserError(`the model already has a value named ${o}`);
  g.node = [...g.node, ...add.nodes];
  g.initializer = [...g.initializer, ...add.initializers];
  g.output = [...g.output, ...add.outputs.map((name) => ({ name }))];
  try {
    return encode();
  } finally {
    Object.assign(g, saved);
  }
}

/** The model's opset for a domain ("" is ONNX's own), 0 when it imports none. */
export function opsetOf(m: ModelMessage, domain = ""): number {
  const hit = m.opsetImport.find((o) => (o.domain ?? "") === domain || (domain === "" && o.domain === "ai.onnx"));
  return hit ? num(hit.version) : 0;
}
