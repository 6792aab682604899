/**
 * Fuzz targets for the readers added with resumable training and models users bring: checkpoints
 * (header fields rewritten and resealed, bytes flipped), ONNX models (bytes flipped, cut, initializer
 * dims, types and external-data entries rewritten) and TF.js manifests (any field set to a hostile
 * value), each opened and every tensor read. Accepted or refused with a UserError; never a crash.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { f32, Graph } from "../../src/engine/onnx/graph.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/format/checkpoint-file.js";
import { openForeign } from "../../src/format/foreign-model.js";
import { encodeOnnx, readOnnx } from "../../src/format/onnx.js";
import { HOSTILE, headerOf, paths, reseal, run, setAt, type FuzzReport } from "./fuzz-kit.js";

const SHAPES = [{ name: "w", shape: [4, 3] }];

export function fuzzCheckpoints(cases: number, seed: number): Promise<FuzzReport> {
  const run_ = { total: 50, model: "mlp", seed: 1 };
  const w = () => ({ w: new Float32Array(12).map((_, i) => i / 7) });
  const history = [{ step: 10, loss: 0.5, metrics: { accuracy: 0.5 }, trainSeconds: 1, rate: 10 }];
  const state = { step: 10, trainable: w(), adam: { m: w(), v: w() }, schedule: { lr: 0.01, best: Infinity, bad: 0 }, history, trainSeconds: 1, round: { lossSum: 0, steps: 0, seconds: 0 }, frozen: { shapes: [{ name: "mask", shape: [2, 2] }], data: { mask: new Float32Array(4).fill(1) } } };
  const file = encodeCheckpoint(run_, state as never);
  return run("checkpoint", cases, seed, (r) => {
    let bytes: Uint8Array;
    if (r.int(3) > 0) {
      const header = JSON.parse(headerOf(file)) as unknown;
      bytes = reseal(file, JSON.stringify(setAt(header, r.pick(paths(header)), r.pick(HOSTILE))));
    } else {
      bytes = Uint8Array.from(file);
      bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
      bytes = reseal(bytes, headerOf(bytes));
    }
    decodeCheckpoint(bytes, "fuzzed", run_, SHAPES);
  });
}

function smallOnnx(): Uint8Array {
  const g = new Graph();
  const x = g.input("x", f32([1, 4]));
  const h = g.op("MatMul", [x, g.constant("float32", [4, 3], new Float32Array(12).fill(0.5))], f32([1, 3]));
  g.output("y", g.op("Add", [h, g.constant("float32", [3], [1, 2, 3])], f32([1, 3])));
  return g.encode();
}

const DIMS = [0, 1, 3, -1, 2 ** 31, 2 ** 53, 1e308];
const TYPES = [0, 1, 2, 6, 7, 10, 11, 16, 99];
const EXTERNAL = [[{ key: "location", value: "../x.bin" }], [{ key: "location", value: "weights.bin" }, { key: "offset", value: "99999999999" }], [{ key: "location", value: "weights.bin" }, { key: "length", value: "-4" }], [{ key: "offset", value: "0" }], [{ key: "location", value: "/dev/zero" }]];

/** ONNX models and TF.js manifests, opened from a folder (external data and shards lie beside them) and read whole. */
export function fuzzForeignModels(cases: number, seed: number): Promise<FuzzReport> {
  const dir = mkdtempSync(join(tmpdir(), "mcnc-fuzz-models-"));
  writeFileSync(join(dir, "weights.bin"), new Uint8Array(48).fill(0x3f));
  const onnx = smallOnnx();
  const manifest = { format: "graph-model", modelTopology: { node: [] }, weightsManifest: [{ paths: ["weights.bin"], weights: [{ name: "w", shape: [4, 3], dtype: "float32" }] }] };
  return run("onnx-tfjs", cases, seed, (r, i) => {
    const folder = join(dir, String(i % 64));
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "weights.bin"), new Uint8Array(48).fill(0x3f));
    let path: string;
    if (r.int(2) === 0) {
      let bytes: Uint8Array = Uint8Array.from(onnx);
      const kind = r.int(3);
      if (kind === 0) for (let n = 1 + r.int(3); n > 0; n--) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
      if (kind === 1) bytes = bytes.subarray(0, r.int(bytes.length));
      if (kind === 2) {
        const m = readOnnx(bytes).message;
        const t = r.pick(m.graph.initializer);
        const field = r.int(3);
        if (field === 0) t.dims[r.int(t.dims.length)] = r.pick(DIMS);
        if (field === 1) t.dataType = r.pick(TYPES);
        if (field === 2) Object.assign(t, { externalData: r.pick(EXTERNAL), dataLocation: 1, rawData: new Uint8Array() });
        bytes = encodeOnnx(m);
      }
      path = join(folder, "model.onnx");
      writeFileSync(path, bytes);
    } else {
      path = join(folder, "model.json");
      writeFileSync(path, JSON.stringify(setAt(manifest, r.pick(paths(manifest)), r.pick(HOSTILE))));
    }
    const model = openForeign(path);
    try {
      for (const t of model.tensors) model.read(t.name);
    } finally {
      model.close();
    }
  });
}
