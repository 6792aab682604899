/**
 * ONNX models in and out, through protobufjs: the weights an ONNX file holds (graph initializers,
 * Constant nodes' tensors, and the same inside subgraphs of If and Loop nodes) read as float32 and
 * written back in place, in their own dtype. The schema (onnx-schema.ts) names only the fields mcnc
 * reads or edits; every other field is carried through decode and encode as unknown bytes, so what
 * mcnc does not touch comes out as it went in.
 */
import protobuf from "protobufjs";
import { UserError } from "../errors.js";
import { checkShape, elements } from "./container.js";
import type { MatrixLayout } from "../model/tensors.js";
import { narrow, widen, type SafetensorsDtype } from "./safetensors.js";
import { ONNX_SCHEMA } from "./onnx-schema.js";
import { allTensors, externalData, inline, isExternal, readExternal, type ExternalData } from "./onnx-external.js";

const root = protobuf.Root.fromJSON(ONNX_SCHEMA);
const ModelProto = root.lookupType("ModelProto");

/** TensorProto.DataType values of the float types mcnc reads. */
const DATA_TYPES: Record<number, SafetensorsDtype> = { 1: "F32", 10: "F16", 16: "BF16" };
const CODE_OF: Record<SafetensorsDtype, number> = { F32: 1, F16: 10, BF16: 16 };

type Int64 = number | { toNumber(): number };
/** The decoded messages, as far as the schema names their fields (onnx-graph.ts edits them). */
export interface Tensor {
  dims: Int64[];
  dataType?: number;
  floatData: number[];
  int32Data: number[];
  name?: string;
  rawData?: Uint8Array;
  externalData?: Array<{ key?: string; value?: string }>;
  dataLocation?: number;
}
export interface ValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim: Array<{ dimValue?: Int64; dimParam?: string }> } } };
}
export interface Graph {
  node: Node[];
  name?: string;
  initializer: Tensor[];
  input: ValueInfo[];
  output: ValueInfo[];
}
export interface Attribute {
  name?: string;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: Tensor;
  g?: Graph;
  tensors: Tensor[];
  graphs: Graph[];
  ints: Int64[];
  type?: number;
}
export interface Node {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute: Attribute[];
}
export interface ModelMessage {
  graph: Graph;
  opsetImport: Array<{ domain?: string; version?: Int64 }>;
}

export interface OnnxWeight {
  /** A unique name: the initializer's, or where a Constant sits. */
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** How the first node that uses it multiplies it (MatMul's B is in-out, Gemm transB out-in, Conv out-first). */
  layout: MatrixLayout;
  /** A Conv, Gemm, MatMul or recurrent node multiplies its input by it. */
  multiplied: boolean;
  /** The name nodes use for it (an initializer's own, a Constant's output). */
  value: string;
  /** Where it lies: a main-graph initializer, a main-graph Constant node, or inside a subgraph. */
  scope: "initializer" | "constant" | "subgraph";
}

export interface OnnxModel {
  weights: OnnxWeight[];
  read(name: string): Float32Array;
  /** Replace a weight's values (same count), kept in its dtype. */
  write(name: string, data: Float32Array): void;
  encode(): Uint8Array;
  /** The decoded model, for edits beyond replacing values (onnx-graph.ts). */
  message: ModelMessage;
  /** Bytes its tensors keep in files beside it (external data), and those files. */
  externalBytes: number;
  externalFiles: string[];
  /** Read every tensor's external bytes into the model (encode does it too): `message` is then self-contained. */
  inlineExternal(): void;
}

export const num = (v: Int64 | undefined) => (v === undefined ? 0 : typeof v === "number" ? v : v.toNumber());

export interface OnnxReadOptions {
  /** The model's folder, where external data is looked for (a model read from bytes alone has none). */
  dir?: string;
  /** Weights written overwrite their values in `bytes` where they fit, so that a large model is not held twice. */
  inPlace?: boolean;
}

export function readOnnx(bytes: Uint8Array, file = "model", { dir, inPlace = false }: OnnxReadOptions = {}): OnnxModel {
  const reader = protobuf.Reader.create(bytes);
  reader.discardUnknown = false;
  let model: Partial<ModelMessage>;
  try {
    model = ModelProto.decode(reader) as unknown as Partial<ModelMessage>;
  } catch (e) {
    throw new UserError(`${file}: not an ONNX model (${(e as Error).message.slice(0, 120)})`);
  }
  if (!model.graph) throw new UserError(`${file}: the ONNX model has no graph`);
  const found = new Map<string, { tensor: Tensor; weight: OnnxWeight }>();
  const external = new Map<Tensor, ExternalData>();
  let total = 0;

  // Subgraphs (If, Loop) use their outer graphs' weights: how a weight is used is looked up model-wide.
  const layoutOf = new Map<string, MatrixLayout>();
  const subgraphs = (node: Node) => node.attribute.flatMap((a) => [...(a.g ? [a.g] : []), ...a.graphs]);
  const uses = (graph: Graph): void => {
    for (const node of graph.node) {
      const transB = num(node.attribute.find((a) => a.name === "transB")?.i) === 1;
      const used: Array<[string | undefined, MatrixLayout]> =
        node.opType === "Conv"
          ? [[node.input[1], "out-first"]]
          : node.opType === "Gemm"
            ? [[node.input[1], transB ? "out-in" : "in-out"]]
            : ["LSTM", "GRU", "RNN"].includes(node.opType ?? "")
              ? [
                  [node.input[1], "out-in"],
                  [node.input[2], "out-in"],
                ]
              : node.opType === "MatMul"
                ? [[node.input[1], "in-out"]]
                : [];
      for (const [name, layout] of used) if (name && !layoutOf.has(name)) layoutOf.set(name, layout);
      subgraphs(node).forEach(uses);
    }
  };
  uses(model.graph);

  const visit = (graph: Graph, path: string) => {
    const inside = path !== "";
    /** `key`: the name nodes use for it (an initializer's own, a Constant's output). */
    const add = (tensor: Tensor, name: string, key = tensor.name ?? "", constant = false) => {
      const dtype = DATA_TYPES[tensor.dataType ?? 0];
      if (!dtype) return; // integers, strings: not weights mcnc compresses
      const shape = checkShape(tensor.dims.map(num), `${file}: tensor ${name}`);
      const count = elements(shape);
      total += count;
      if (total > 2 ** 28) throw new UserError(`${file}: more than ${2 ** 28} weights`);
      if (isExternal(tensor)) external.set(tensor, externalData(tensor, dir, file, name, count));
      const stored = external.has(tensor)
        ? count
        : tensor.rawData?.length ? tensor.rawData.length / (dtype === "F32" ? 4 : 2) : dtype === "F32" ? tensor.floatData.length : tensor.int32Data.length;
      if (stored !== count) throw new UserError(`${file}: tensor ${name} claims ${shape.join("x")} (${count} values) but holds ${stored}`);
      if (found.has(name)) throw new UserError(`${file}: two weights named ${name}`);
      found.set(name, { tensor, weight: { name, dtype, shape, layout: layoutOf.get(key) ?? "in-out", multiplied: layoutOf.has(key), value: key, scope: inside ? "subgraph" : constant ? "constant" : "initializer" } });
    };
    for (const t of graph.initializer) add(t, `${path}${t.name ?? ""}`);
    graph.node.forEach((node, i) => {
      const where = `${path}${node.name || `node${i}`}`;
      for (const a of node.attribute) {
        if (a.t) add(a.t, `${where}.${a.name ?? "t"}`, node.opType === "Constant" ? node.output[0] : undefined, true);
        a.tensors.forEach((t, j) => add(t, `${where}.${a.name ?? "tensors"}.${j}`));
        if (a.g) visit(a.g, `${where}.${a.name ?? "g"}/`);
        a.graphs.forEach((g, j) => visit(g, `${where}.${a.name ?? "graphs"}.${j}/`));
      }
    });
  };
  visit(model.graph, "");
  // Integer tensors (shapes, indices) may lie outside too: checked now, read when the model is encoded.
  for (const t of allTensors(model.graph)) {
    if (isExternal(t) && !external.has(t)) external.set(t, externalData(t, dir, file, t.name ?? "(unnamed)", elements(checkShape(t.dims.map(num), `${file}: tensor ${t.name ?? ""}`))));
  }
  const inlineExternal = () => {
    for (const [t, data] of external) if (isExternal(t)) inline(t, readExternal(data));
  };

  const get = (name: string) => {
    const hit = found.get(name);
    if (!hit) throw new UserError(`${file}: no weight ${name}`);
    return hit;
  };
  return {
    weights: [...found.values()].map((f) => f.weight),
    read(name) {
      const { tensor, weight } = get(name);
      if (isExternal(tensor)) return widen(readExternal(external.get(tensor)!), weight.dtype);
      if (tensor.rawData?.length) return widen(tensor.rawData, weight.dtype);
      if (weight.dtype === "F32") return Float32Array.from(tensor.floatData);
      // Half and bfloat16 sit in int32_data, one 16-bit pattern each.
      const raw = new Uint8Array(2 * tensor.int32Data.length);
      const view = new DataView(raw.buffer);
      tensor.int32Data.forEach((v, i) => view.setUint16(2 * i, v, true));
      return widen(raw, weight.dtype);
    },
    write(name, data) {
      const { tensor, weight } = get(name);
      if (data.length !== elements(weight.shape)) throw new Error(`${name}: ${data.length} values for ${weight.shape.join("x")}`);
      const values = narrow(data, weight.dtype);
      const raw = tensor.rawData;
      const within = raw !== undefined && raw.buffer === bytes.buffer && raw.byteOffset >= bytes.byteOffset && raw.byteOffset + raw.length <= bytes.byteOffset + bytes.length;
      if (inPlace && within && !isExternal(tensor) && raw.length === values.length) raw.set(values);
      else inline(tensor, values);
      tensor.dataType = CODE_OF[weight.dtype];
    },
    encode() {
      inlineExternal();
      return encodeOnnx(model as ModelMessage);
    },
    message: model as ModelMessage,
    externalBytes: [...external.values()].reduce((n, e) => n + e.length, 0),
    externalFiles: [...new Set([...external.values()].map((e) => e.path))],
    inlineExternal,
  };
}

export const encodeOnnx = (model: ModelMessage): Uint8Array => ModelProto.encode(model as unknown as protobuf.Message).finish();
