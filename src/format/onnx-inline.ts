/**
 * The main graph with some If nodes replaced by the branch they take, for calibration: what a branch
 * multiplies then becomes a main-graph value that an added output can capture. Tensors are shared with
 * the model, not copied, so a weight written in the model is the weight the copy runs.
 */
import type { Graph, ModelMessage, Node } from "./onnx.js";
import { makeNode } from "./onnx-graph.js";

const branch = (node: Node, name: string): Graph | undefined => node.attribute.find((a) => a.name === name)?.g;

/** `m` with each If node in `taken` replaced by its then branch (true) or its else branch (false). */
export function inlineBranches(m: ModelMessage, taken: ReadonlyMap<Node, boolean>): ModelMessage {
  const nodes: Node[] = [];
  const initializer = [...m.graph.initializer];
  for (const node of m.graph.node) {
    const b = taken.has(node) ? branch(node, taken.get(node) ? "then_branch" : "else_branch") : undefined;
    if (!b) {
      nodes.push(node);
      continue;
    }
    // The branch's outputs take the If's output names; what the branch only passes through goes by an Identity.
    const rename = new Map(b.output.map((o, k) => [o.name ?? "", node.output[k]!]));
    const produced = new Set(b.node.flatMap((n) => n.output));
    for (const n of b.node) nodes.push({ ...n, input: n.input.map((i) => rename.get(i) ?? i), output: n.output.map((o) => rename.get(o) ?? o) });
    for (const [from, to] of rename) if (!produced.has(from)) nodes.push(makeNode("Identity", [from], [to]));
    initializer.push(...b.initializer);
  }
  return copyWith(m, { graph: copyWith(m.graph, { node: nodes, initializer }) });
}

/** A decoded message with some fields replaced: its prototype and the fields protobufjs keeps unnamed (the IR version) kept. */
const copyWith = <T extends object>(message: T, fields: Partial<T>): T => Object.assign(Object.create(Object.getPrototypeOf(message) as object, Object.getOwnPropertyDescriptors(message)) as T, fields);

/** The main graph's If nodes and the values that decide them. */
export const ifNodes = (m: ModelMessage): Array<{ node: Node; condition: string }> => m.graph.node.filter((n) => n.opType === "If" && (n.domain ?? "") === "").map((node) => ({ node, condition: node.input[0]! }));
