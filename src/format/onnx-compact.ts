/**
 * Compressed weights written into an ONNX model in forms onnxruntime runs as they are, so the file is
 * smaller where the model runs: quantised codes with per-channel scales (DequantizeLinear, then the
 * per-channel minimum added back, which is exactly how mcnc rebuilds them), 4-bit groups as
 * com.microsoft's MatMulNBits, and low-rank factors as two MatMuls. A weight with no such form here
 * (one inside a subgraph or a Constant node, grouped codes outside a MatMul) is written as float.
 */
import { asMatrix, type MatrixLayout } from "../model/tensors.js";
import { intAttribute, makeNode, makeTensor, ONNX_TYPE, opsetOf } from "./onnx-graph.js";
import { type ModelMessage, type Node, type OnnxModel, type OnnxWeight } from "./onnx.js";

export type CompactForm =
  | { kind: "quant"; bits: number; group: number; codes: Uint8Array; mins: Float32Array; steps: Float32Array }
  | { kind: "low-rank"; rank: number; down: Float32Array; up: Float32Array };

const bytesOf = (a: Float32Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

type Users = Array<{ node: Node; at: number }>;

/**
 * About what a compact form adds to the file: its numbers, and its nodes and tensors, each named after
 * the weight. A small matrix stays dense where that is smaller (a 4x4 weight's codes cost more in names).
 */
function compactBytes(w: OnnxWeight, form: CompactForm): number {
  const { rows, cols } = asMatrix(w.shape, w.layout);
  // Bytes for each tensor or node that names the weight: about a dozen for codes, four for factors.
  const named = (count: number) => count * (w.value.length + 24) + 80;
  if (form.kind === "low-rank") return 4 * form.rank * (rows + cols) + named(4);
  return Math.ceil((rows * cols * form.bits) / 8) + 4 * (form.mins.length + form.steps.length) + named(12);
}

/**
 * The graph's changes, gathered and then made at once: each weight's users found in one index, not by
 * scanning every node per weight (100,000 weights took minutes). Places are those of the graph as read.
 */
interface Plan {
  users: Map<string, Users>;
  /** Nodes that replace the node at a place. */
  replace: Map<number, Node[]>;
  /** Nodes that make weights from their compact form: they read initializers only, so they go first. */
  prefix: Node[];
  dropped: Set<string>;
}

function planFor(m: ModelMessage): Plan {
  const users = new Map<string, Users>();
  m.graph.node.forEach((node, at) => {
    for (const value of new Set(node.input)) {
      const list = users.get(value);
      if (list) list.push({ node, at });
      else users.set(value, [{ node, at }]);
    }
  });
  return { users, replace: new Map(), prefix: [], dropped: new Set() };
}

/** The plan made; where each weight came from (its initializer, the graph-input entry IR 3 models keep, or its Constant node) taken out. */
function apply(m: ModelMessage, plan: Plan): void {
  const g = m.graph;
  g.initializer = g.initializer.filter((t) => !plan.dropped.has(t.name ?? ""));
  g.input = g.input.filter((v) => !plan.dropped.has(v.name ?? ""));
  const kept = g.node.flatMap((n, at) => plan.replace.get(at) ?? (n.opType === "Constant" && plan.dropped.has(n.output[0] ?? "") ? [] : [n]));
  g.node = [...plan.prefix, ...kept];
}

/**
 * Each weight `w` replaced by its `form` in the model's graph; what each became (a line for the
 * report), or undefined where its form has no place here and the caller writes the dense weights instead.
 */
export function writeCompactAll(model: OnnxModel, items: ReadonlyArray<{ w: OnnxWeight; form: CompactForm }>, qdq = false): Array<string | undefined> {
  const m = model.message;
  const plan = planFor(m);
  const written = items.map(({ w, form }) => writeOne(m, plan, w, form, qdq));
  apply(m, plan);
  return written;
}

export const writeCompact = (model: OnnxModel, w: OnnxWeight, form: CompactForm, qdq = false): string | undefined => writeCompactAll(model, [{ w, form }], qdq)[0];

function writeOne(m: ModelMessage, plan: Plan, w: OnnxWeight, form: CompactForm, qdq: boolean): string | undefined {
  // A float16 model's weights feed float16 nodes: left dense rather than cast back at every use.
  if (w.scope === "subgraph" || w.dtype !== "F32") return undefined;
  const users = plan.users.get(w.value) ?? [];
  const matmuls = users.length > 0 && users.every(({ node }) => node.opType === "MatMul" && (node.domain ?? "") === "" && node.input[1] === w.value) && w.shape.length === 2;
  // Convs of one group whose weight is their kernel: a low-rank kernel splits into a narrow Conv and a 1x1 Conv.
  const convs = users.length > 0 && users.every(({ node }) => node.opType === "Conv" && (node.domain ?? "") === "" && node.input[1] === w.value && intAttribute(node, "group", 1) === 1) && w.layout === "out-first";
  const write =
    form.kind === "low-rank"
      ? matmuls ? () => lowRank(m, plan, w, form, users) : convs && (() => lowRankConv(m, plan, w, form, users))
      : matmuls && form.bits === 4 && form.group >= 16 && (form.group & (form.group - 1)) === 0
          ? () => matMulNBits(m, plan, w, form, users)
          : grouping(w.shape, w.layout, form.group) !== undefined && (() => scaledCodes(m, plan, w, form, qdq));
  if (!write || compactBytes(w, form) >= 4 * w.shape.reduce((a, b) => a * b, 1)) return undefined;
  plan.dropped.add(w.value);
  return write();
}

/**
 * How a weight's codes line up with their (min, step) pairs: the weight viewed as `view`, where the
 * pairs, shaped `pairs`, broadcast. Outputs first (out-first, out-in): [outputs, groups, rows per
 * group]; inputs first (in-out): [groups, rows per group, outputs]. Undefined where the groups do not
 * tile the rows evenly, or the outputs span several axes.
 */
function grouping(shape: readonly number[], layout: MatrixLayout, group: number): { view: number[]; pairs: number[]; transposed: boolean } | undefined {
  const { rows, cols } = asMatrix(shape, layout);
  const size = group === 0 || group >= rows ? rows : group;
  if (rows % size !== 0 || (layout === "out-in" && shape.length !== 2)) return undefined;
  const groups = rows / size;
  return layout === "in-out" ? { view: [groups, size, cols], pairs: [groups, 1, cols], transposed: false } : { view: [cols, groups, size], pairs: [cols, groups, 1], transposed: true };
}

const int64s = (xs: readonly number[]) => new Uint8Array(BigInt64Array.from(xs.map(BigInt)).buffer);

/**
 * Codes in the weight's own layout (two a byte at 4 bits and below, split again by integer Div, Mul
 * and Sub: opset 7, unlike BitShift), cast, times their steps, plus their minimums: onnxruntime folds
 * all of it into the weight when it loads the model. With `qdq`, 8-bit codes per channel (opset 13 on)
 * take the standard DequantizeLinear instead, for tools that fuse QDQ pairs; onnxruntime's constant
 * folding leaves DequantizeLinear alone, so without such a fusion it runs on every call (docs/results.md).
 */
function scaledCodes(m: ModelMessage, plan: Plan, w: OnnxWeight, q: Extract<CompactForm, { kind: "quant" }>, qdq: boolean): string {
  const view = asMatrix(w.shape, w.layout);
  const codes = Uint8Array.from(view.fromMatrix(Float32Array.from(q.codes)));
  const g = grouping(w.shape, w.layout, q.group)!;
  const v = (s: string) => `${w.value}_mcnc_${s}`;
  // The pairs are stored [groups, outputs]: laid out as `g.pairs` says.
  const pairsOf = (x: Float32Array) => {
    if (!g.transposed) return x;
    const [cols, groups] = g.pairs as [number, number];
    const out = new Float32Array(x.length);
    for (let c = 0; c < cols; c++) for (let k = 0; k < groups; k++) out[c * groups + k] = x[k * cols + c]!;
    return out;
  };
  const cast = (x: string, out: string, to: number) => makeNode("Cast", [x], [out], [{ name: "to", i: to, type: 2 }]);
  const inits = [makeTensor(v("min"), g.pairs, ONNX_TYPE.float, bytesOf(pairsOf(q.mins)))];
  const nodes: Node[] = [];
  const packed = q.bits <= 4 && codes.length % 2 === 0;
  const axis = w.layout === "in-out" ? w.shape.length - 1 : 0;
  const dequantize = qdq && !packed && q.bits === 8 && q.group === 0 && opsetOf(m) >= 13;
  if (dequantize) {
    inits.push(makeTensor(v("codes"), w.shape, ONNX_TYPE.uint8, codes), makeTensor(v("step"), [view.cols], ONNX_TYPE.float, bytesOf(q.steps)), makeTensor(v("zero"), [view.cols], ONNX_TYPE.uint8, new Uint8Array(view.cols)));
    nodes.push(makeNode("DequantizeLinear", [v("codes"), v("step"), v("zero")], [v("scaled")], [{ name: "axis", i: axis, type: 2 }]), makeNode("Add", [v("scaled"), v("min")], [w.value]));
    // The minimum broadcasts along the weight's own axes here.
    inits[0] = makeTensor(v("min"), w.shape.map((d, i) => (i === axis ? d : 1)), ONNX_TYPE.float, bytesOf(q.mins));
  } else {
    inits.push(makeTensor(v("step"), g.pairs, ONNX_TYPE.float, bytesOf(pairsOf(q.steps))), makeTensor(v("view"), [3], ONNX_TYPE.int64, int64s(g.view)), makeTensor(v("shape"), [w.shape.length], ONNX_TYPE.int64, int64s(w.shape)));
    if (packed) {
      const pairs = new Uint8Array(codes.length / 2);
      for (let i = 0; i < pairs.length; i++) pairs[i] = codes[2 * i]! | (codes[2 * i + 1]! << 4);
      inits.push(makeTensor(v("pairs"), [pairs.length, 1], ONNX_TYPE.uint8, pairs), makeTensor(v("sixteen"), [1], ONNX_TYPE.int32, new Uint8Array(Int32Array.of(16).buffer)));
      nodes.push(
        cast(v("pairs"), v("wide"), ONNX_TYPE.int32),
        makeNode("Div", [v("wide"), v("sixteen")], [v("high")]),
        makeNode("Mul", [v("high"), v("sixteen")], [v("high16")]),
        makeNode("Sub", [v("wide"), v("high16")], [v("low")]),
        makeNode("Concat", [v("low"), v("high")], [v("codes")], [{ name: "axis", i: 1, type: 2 }]),
      );
    } else inits.push(makeTensor(v("codes"), w.shape, ONNX_TYPE.uint8, codes));
    nodes.push(
      cast(v("codes"), v("float"), ONNX_TYPE.float),
      makeNode("Reshape", [v("float"), v("view")], [v("grouped")]),
      makeNode("Mul", [v("grouped"), v("step")], [v("scaled")]),
      makeNode("Add", [v("scaled"), v("min")], [v("dense")]),
      makeNode("Reshape", [v("dense"), v("shape")], [w.value]),
    );
  }
  m.graph.initializer.push(...inits);
  plan.prefix.push(...nodes);
  const per = q.group === 0 ? "per channel" : `in groups of ${q.group}`;
  return dequantize ? "8-bit codes, per-channel DequantizeLinear" : `${q.bits}-bit codes, ${packed ? "two a byte" : "one a byte"}, scaled ${per}`;
}

/** Each MatMul by `w` as com.microsoft's MatMulNBits: codes packed two to a byte in blocks of the group. */
function matMulNBits(m: ModelMessage, plan: Plan, w: OnnxWeight, q: Extract<CompactForm, { kind: "quant" }>, users: Users): string {
  const [K, N] = w.shape as [number, number];
  const block = q.group;
  const blocks = Math.ceil(K / block);
  const packed = new Uint8Array(N * blocks * (block / 2));
  const scales = new Float32Array(N * blocks);
  const zeros = new Float32Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      // mcnc's groups are rows [b * group, ...) per column: the same blocks MatMulNBits takes along K.
      const step = q.steps[b * N + n]!;
      const min = q.mins[b * N + n]!;
      // (code - zero) * scale = code * step + min; a flat group (step 0) holds only its minimum.
      scales[n * blocks + b] = step > 0 ? step : 1;
      zeros[n * blocks + b] = step > 0 ? -min / step : -min;
      for (let i = 0; i < block && b * block + i < K; i++) {
        const code = q.codes[(b * block + i) * N + n]!;
        packed[(n * blocks + b) * (block / 2) + (i >> 1)]! |= (i & 1 ? code << 4 : code);
      }
    }
  }
  const v = (s: string) => `${w.value}_mcnc_${s}`;
  m.graph.initializer.push(makeTensor(v("packed"), [N, blocks, block / 2], ONNX_TYPE.uint8, packed), makeTensor(v("scales"), [N * blocks], ONNX_TYPE.float, bytesOf(scales)), makeTensor(v("zeros"), [N * blocks], ONNX_TYPE.float, bytesOf(zeros)));
  const attrs = [
    { name: "K", i: K, type: 2 },
    { name: "N", i: N, type: 2 },
    { name: "bits", i: 4, type: 2 },
    { name: "block_size", i: block, type: 2 },
  ];
  for (const { node, at } of users) plan.replace.set(at, [makeNode("MatMulNBits", [node.input[0]!, v("packed"), v("scales"), v("zeros")], [...node.output], attrs, "com.microsoft")]);
  if (!m.opsetImport.some((o) => o.domain === "com.microsoft")) m.opsetImport.push({ domain: "com.microsoft", version: 1 });
  return `4-bit MatMulNBits, blocks of ${block}`;
}

/** Each MatMul by `w` as a MatMul by its down factor, then by its up factor. */
function lowRank(m: ModelMessage, plan: Plan, w: OnnxWeight, f: Extract<CompactForm, { kind: "low-rank" }>, users: Users): string {
  const [K, N] = w.shape as [number, number];
  const v = (s: string) => `${w.value}_mcnc_${s}`;
  m.graph.initializer.push(makeTensor(v("down"), [K, f.rank], ONNX_TYPE.float, bytesOf(f.down)), makeTensor(v("up"), [f.rank, N], ONNX_TYPE.float, bytesOf(f.up)));
  for (const { node, at } of users) {
    const mid = `${node.output[0]}_mcnc_low`;
    plan.replace.set(at, [makeNode("MatMul", [node.input[0]!, v("down")], [mid]), makeNode("MatMul", [mid, v("up")], [...node.output])]);
  }
  return `rank ${f.rank} as two MatMuls`;
}

/**
 * Each Conv by `w` ([outputs, inputs, ...kernel]) as a Conv by its down factor (r filters of the same
 * kernel, strides and padding) and a 1x1 Conv by its up factor, which takes the bias.
 */
function lowRankConv(m: ModelMessage, plan: Plan, w: OnnxWeight, f: Extract<CompactForm, { kind: "low-rank" }>, users: Users): string {
  const [outs, ...rest] = w.shape;
  const rows = rest.reduce((a, b) => a * b, 1);
  const r = f.rank;
  const v = (s: string) => `${w.value}_mcnc_${s}`;
  // down is [rows, r] (rows in the kernel's own order), up [r, outs]: each transposed into a kernel.
  const down = new Float32Array(r * rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) down[j * rows + i] = f.down[i * r + j]!;
  const up = new Float32Array(outs! * r);
  for (let j = 0; j < r; j++) for (let o = 0; o < outs!; o++) up[o * r + j] = f.up[j * outs! + o]!;
  const ones = rest.slice(1).map(() => 1);
  m.graph.initializer.push(makeTensor(v("down"), [r, ...rest], ONNX_TYPE.float, bytesOf(down)), makeTensor(v("up"), [outs!, r, ...ones], ONNX_TYPE.float, bytesOf(up)));
  for (const { node, at } of users) {
    const mid = `${node.output[0]}_mcnc_low`;
    const first = makeNode("Conv", [node.input[0]!, v("down")], [mid], node.attribute.filter((a) => a.name !== "group"));
    const second = makeNode("Conv", [mid, v("up"), ...node.input.slice(2)], [...node.output], [{ name: "kernel_shape", ints: ones, type: 7 }]);
    plan.replace.set(at, [first, second]);
  }
  return `rank ${r} as a Conv and a 1x1 Conv`;
}

