/**
 * ONNX tensors whose bytes lie in a file beside the model (external data, how models over protobuf's
 * 2 GiB are saved, and many smaller ones too): where each lies, checked against the model's folder and
 * the file's size before anything is read, and read one tensor at a time. mcnc writes self-contained
 * models, so what it writes back carries these bytes inline.
 */
import { UserError } from "../errors.js";
import type { Graph, Tensor } from "./onnx.js";
import { fileSource, insideFolder, regularFileSize } from "../files.js";

/** Bytes per element of TensorProto.DataType (strings have none: they cannot lie outside). */
const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2 };

export interface ExternalData {
  path: string;
  offset: number;
  length: number;
}

export const isExternal = (t: Tensor): boolean => t.dataLocation === 1;

/** Every tensor in a graph and its subgraphs: initializers, and those in node attributes. */
export function* allTensors(graph: Graph): Generator<Tensor> {
  yield* graph.initializer;
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.t) yield a.t;
      yield* a.tensors;
      if (a.g) yield* allTensors(a.g);
      for (const g of a.graphs) yield* allTensors(g);
    }
  }
}

/**
 * Where `tensor`'s bytes lie: a regular file inside `dir` (the model's folder; a location that leads
 * out of it, through `..` or a link, is refused), the range within the file, as many bytes as its dims
 * and type make.
 */
export function externalData(tensor: Tensor, dir: string | undefined, file: string, name: string, count: number): ExternalData {
  const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? "", e.value ?? ""]));
  const location = entries.get("location");
  const what = `${file}: tensor ${name.slice(0, 120)} keeps its data in an external file`;
  if (dir === undefined) throw new UserError(`${what}; give the model as a path so its folder can be read`);
  if (!location) throw new UserError(`${what} but names none`);
  const elementBytes = ELEMENT_BYTES[tensor.dataType ?? 0];
  if (elementBytes === undefined) throw new UserError(`${what}, of a type that cannot be stored there (${tensor.dataType ?? 0})`);
  const whole = (key: string, fallback: number) => {
    const v = entries.get(key);
    if (v === undefined) return fallback;
    if (!/^\d{1,15}$/.test(v)) throw new UserError(`${what}, at ${key} '${v.slice(0, 40)}', not a byte count`);
    return Number(v);
  };
  const offset = whole("offset", 0);
  const length = whole("length", count * elementBytes);
  if (length !== count * elementBytes) throw new UserError(`${what}: ${length} bytes, where its shape needs ${count * elementBytes}`);
  const path = insideFolder(dir, location, what);
  const size = regularFileSize(path);
  if (offset + length > size) throw new UserError(`${what}, bytes ${offset} to ${offset + length} of ${location.slice(0, 120)}, which holds ${size}`);
  return { path, offset, length };
}

export function readExternal(data: ExternalData): Uint8Array {
  const source = fileSource(data.path);
  try {
    return source.read(data.offset, data.length);
  } finally {
    source.close?.();
  }
}

/** `tensor` holds `bytes` itself from now on. */
export function inline(tensor: Tensor, bytes: Uint8Array): void {
  tensor.rawData = bytes;
  tensor.floatData = [];
  tensor.int32Data = [];
  tensor.dataLocation = 0;
  tensor.externalData = [];
}
