/**
 * The ONNX protobuf messages the native engine writes (field numbers from onnx/onnx.proto), and
 * nothing more: a model of one graph, its nodes, initializers and typed inputs and outputs.
 */
import protobuf from "protobufjs";

const SCHEMA = {
  nested: {
    ModelProto: {
      fields: {
        irVersion: { type: "int64", id: 1 },
        producerName: { type: "string", id: 2 },
        graph: { type: "GraphProto", id: 7 },
        opsetImport: { rule: "repeated", type: "OperatorSetIdProto", id: 8 },
      },
    },
    OperatorSetIdProto: { fields: { domain: { type: "string", id: 1 }, version: { type: "int64", id: 2 } } },
    GraphProto: {
      fields: {
        node: { rule: "repeated", type: "NodeProto", id: 1 },
        name: { type: "string", id: 2 },
        initializer: { rule: "repeated", type: "TensorProto", id: 5 },
        input: { rule: "repeated", type: "ValueInfoProto", id: 11 },
        output: { rule: "repeated", type: "ValueInfoProto", id: 12 },
      },
    },
    NodeProto: {
      fields: {
        input: { rule: "repeated", type: "string", id: 1 },
        output: { rule: "repeated", type: "string", id: 2 },
        name: { type: "string", id: 3 },
        opType: { type: "string", id: 4 },
        attribute: { rule: "repeated", type: "AttributeProto", id: 5 },
        domain: { type: "string", id: 7 },
      },
    },
    AttributeProto: {
      fields: {
        name: { type: "string", id: 1 },
        f: { type: "float", id: 2 },
        i: { type: "int64", id: 3 },
        s: { type: "bytes", id: 4 },
        t: { type: "TensorProto", id: 5 },
        floats: { rule: "repeated", type: "float", id: 7 },
        ints: { rule: "repeated", type: "int64", id: 8 },
        type: { type: "int32", id: 20 },
      },
    },
    TensorProto: {
      fields: {
        dims: { rule: "repeated", type: "int64", id: 1 },
        dataType: { type: "int32", id: 2 },
        name: { type: "string", id: 8 },
        rawData: { type: "bytes", id: 9 },
      },
    },
    ValueInfoProto: { fields: { name: { type: "string", id: 1 }, type: { type: "TypeProto", id: 2 } } },
    TypeProto: { fields: { tensorType: { type: "TypeProtoTensor", id: 1 } } },
    TypeProtoTensor: { fields: { elemType: { type: "int32", id: 1 }, shape: { type: "TensorShapeProto", id: 2 } } },
    TensorShapeProto: { fields: { dim: { rule: "repeated", type: "Dimension", id: 1 } } },
    Dimension: { fields: { dimValue: { type: "int64", id: 1 } } },
  },
};

const ModelProto = protobuf.Root.fromJSON(SCHEMA).lookupType("ModelProto");

/** The element types the engine's programs carry (jax-js dtype names), and ONNX's codes for them. */
export type ElementType = "float32" | "int32" | "int64" | "bool";
export const ONNX_TYPE: Record<ElementType, number> = { float32: 1, int32: 6, int64: 7, bool: 9 };

export type AttributeValue = number | number[] | string | { float: number } | { floats: number[] } | TensorProto;

export interface TensorProto {
  name: string;
  dataType: number;
  dims: number[];
  rawData: Uint8Array;
}

export interface NodeSpec {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Record<string, AttributeValue>;
  domain?: string;
}

export interface ValueSpec {
  name: string;
  dtype: ElementType;
  shape: readonly number[];
}

/** ONNX attribute type codes. */
const ATTR = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

export function tensorProto(name: string, dtype: ElementType, dims: readonly number[], data: ArrayBufferView): TensorProto {
  return { name, dataType: ONNX_TYPE[dtype], dims: [...dims], rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function attribute(name: string, value: AttributeValue): Record<string, unknown> {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer (use { float })`);
    return { name, type: ATTR.int, i: value };
  }
  if (typeof value === "string") return { name, type: ATTR.string, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: ATTR.ints, ints: value };
  if ("float" in value) return { name, type: ATTR.float, f: value.float };
  if ("floats" in value) return { name, type: ATTR.floats, floats: value.floats };
  return { name, type: ATTR.tensor, t: value };
}

const valueInfo = (v: ValueSpec) => ({ name: v.name, type: { tensorType: { elemType: ONNX_TYPE[v.dtype], shape: { dim: v.shape.map((d) => ({ dimValue: d })) } } } });

/** Opset 20: LayerNormalization (17) and Gelu with approximate="tanh" (20) are standard ops there. */
export const OPSET = 20;

export function encodeModel(graph: { nodes: readonly NodeSpec[]; initializers: readonly TensorProto[]; inputs: readonly ValueSpec[]; outputs: readonly ValueSpec[] }): Uint8Array {
  const message = ModelProto.create({
    irVersion: 9,
    producerName: "mcnc",
    opsetImport: [
      { domain: "", version: OPSET },
      { domain: "com.microsoft", version: 1 },
    ],
    graph: {
      name: "program",
      node: graph.nodes.map((n, k) => ({
        input: n.inputs,
        output: n.outputs,
        name: `${n.op}_${k}`,
        opType: n.op,
        domain: n.domain ?? "",
        attribute: Object.entries(n.attrs ?? {}).map(([a, v]) => attribute(a, v)),
      })),
      initializer: graph.initializers,
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
    },
  });
  return ModelProto.encode(message).finish();
}
