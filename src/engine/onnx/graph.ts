/**
 * An ONNX graph being written: nodes in execution order, each output's shape and type known, small
 * constants shared. Knowing every tensor's size is what lets the engine count a program's memory
 * before onnxruntime allocates any of it.
 */
import { encodeModel, tensorProto, type AttributeValue, type ElementType, type NodeSpec, type TensorProto, type ValueSpec } from "./proto.js";

export interface TensorInfo {
  shape: readonly number[];
  dtype: ElementType;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A float32 tensor's type, for a node's output. */
export const f32 = (shape: readonly number[]): TensorInfo => ({ shape: [...shape], dtype: "float32" });
const BYTES: Record<ElementType, number> = { float32: 4, int32: 4, int64: 8, bool: 1 };
export const byteSize = (t: TensorInfo): number => size(t.shape) * BYTES[t.dtype];

function typedArray(dtype: ElementType, values: readonly number[]): ArrayBufferView {
  switch (dtype) {
    case "float32":
      return Float32Array.from(values);
    case "int32":
      return Int32Array.from(values);
    case "int64":
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case "bool":
      return Uint8Array.from(values.map((v) => (v ? 1 : 0)));
  }
}

export class Graph {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueSpec[] = [];
  readonly outputs: ValueSpec[] = [];
  /** Shape and type of every named tensor: inputs, initializers and node outputs. */
  readonly info = new Map<string, TensorInfo>();
  private uid = 0;
  private readonly shared = new Map<string, string>();
  private readonly producers = new Map<string, NodeSpec>();
  /** Tensors renamed to the graph outputs they became. */
  private readonly renamed = new Map<string, string>();

  private fresh(prefix: string): string {
    return `${prefix}${this.uid++}`;
  }

  input(name: string, t: TensorInfo): string {
    this.inputs.push({ name, dtype: t.dtype, shape: [...t.shape] });
    this.info.set(name, t);
    return name;
  }

  /** One node with one output of the given shape and type; returns the output's name. */
  op(op: string, inputs: string[], out: TensorInfo, attrs?: Record<string, AttributeValue>, domain?: string): string {
    return this.ops(op, inputs, [out], attrs, domain)[0]!;
  }

  /** One node with several outputs. */
  ops(op: string, inputs: string[], outs: TensorInfo[], attrs?: Record<string, AttributeValue>, domain?: string): string[] {
    const names = outs.map((o) => {
      const n = this.fresh(op.toLowerCase().slice(0, 4));
      this.info.set(n, { shape: [...o.shape], dtype: o.dtype });
      return n;
    });
    const node: NodeSpec = { op, inputs, outputs: names, ...(attrs ? { attrs } : {}), ...(domain ? { domain } : {}) };
    this.nodes.push(node);
    for (const n of names) this.producers.set(n, node);
    return names;
  }

  /** The input of the Reshape node that made `name`, if one did. */
  reshapeSource(name: string): string | undefined {
    const producer = this.producers.get(name);
    return producer?.op === "Reshape" ? producer.inputs[0] : undefined;
  }

  /** A constant tensor; small ones are shared between uses. */
  constant(dtype: ElementType, shape: readonly number[], values: readonly number[] | ArrayBufferView): string {
    const small = !ArrayBuffer.isView(values) && values.length <= 16;
    const key = small ? `${dtype}|${shape.join(",")}|${(values as number[]).join(",")}` : "";
    if (small && this.shared.has(key)) return this.shared.get(key)!;
    const name = this.fresh("c");
    this.initializers.push(tensorProto(name, dtype, shape, ArrayBuffer.isView(values) ? values : typedArray(dtype, values)));
    this.info.set(name, { shape: [...shape], dtype });
    if (small) this.shared.set(key, name);
    return name;
  }

  scalar(dtype: ElementType, value: number): string {
    return this.constant(dtype, [], [value]);
  }

  /** An int64 vector: the shapes, axes and pads ONNX takes as inputs. */
  ints(values: readonly number[]): string {
    return this.constant("int64", [values.length], values);
  }

  /**
   * Marks `name` as the graph output `as`. The node that makes it is renamed (onnxruntime keeps an
   * Identity in front of a graph output, a copy); an input, a constant or a tensor already given out
   * goes through an Identity.
   */
  output(as: string, name: string): void {
    const source = this.renamed.get(name) ?? name;
    const t = this.info.get(source)!;
    const producer = this.producers.get(source);
    if (producer && !this.outputs.some((o) => o.name === source)) {
      producer.outputs = producer.outputs.map((o) => (o === source ? as : o));
      for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === source ? as : i));
      this.renamed.set(name, as);
    } else {
      this.nodes.push({ op: "Identity", inputs: [source], outputs: [as] });
    }
    this.info.set(as, t);
    this.outputs.push({ name: as, dtype: t.dtype, shape: [...t.shape] });
  }

  /** Drops the nodes nothing reads (a rule may write more than its caller takes), last first. */
  prune(): void {
    const read = new Set(this.outputs.map((o) => o.name));
    const kept: NodeSpec[] = [];
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const n = this.nodes[k]!;
      if (!n.outputs.some((o) => read.has(o))) continue;
      kept.push(n);
      for (const i of n.inputs) read.add(i);
    }
    this.nodes.splice(0, this.nodes.length, ...kept.reverse());
    const used = new Set(this.nodes.flatMap((n) => n.inputs));
    this.initializers.splice(0, this.initializers.length, ...this.initializers.filter((t) => used.has(t.name)));
  }

  encode(): Uint8Array {
    return encodeModel(this);
  }

  /**
   * Bytes the graph holds at its peak when its nodes run in order, each tensor alive from the node
   * that makes it to the last node that reads it, besides its inputs, outputs and initializers.
   * onnxruntime plans its memory from the same lifetimes; its optimiser fuses nodes, so it holds no more.
   */
  peakBytes(): number {
    const lastUse = new Map<string, number>();
    this.nodes.forEach((n, k) => n.inputs.forEach((i) => lastUse.set(i, k)));
    const fixed = [...this.inputs, ...this.initializers.map((t) => ({ name: t.name }))].reduce((s, t) => s + byteSize(this.info.get(t.name)!), 0);
    const outputs = new Set(this.outputs.map((o) => o.name));
    let live = 0;
    let peak = 0;
    const dying = new Map<number, number>();
    this.nodes.forEach((n, k) => {
      for (const o of n.outputs) {
        const bytes = byteSize(this.info.get(o)!);
        live += bytes;
        const end = outputs.has(o) ? this.nodes.length : (lastUse.get(o) ?? k);
        dying.set(end, (dying.get(end) ?? 0) + bytes);
      }
      peak = Math.max(peak, live);
      live -= dying.get(k) ?? 0;
    });
    return fixed + peak;
  }
}
