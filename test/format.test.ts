import assert from "node:assert/strict";
import { test } from "node:test";
import { initEngine } from "../src/engine/engine.js";
import { UserError } from "../src/errors.js";
import { crc32 } from "../src/format/crc32.js";
import { decodeContainer, encodeContainer, MAGIC } from "../src/format/container.js";
import { decodeModelFile, encodeModelFile, rebuildParams, type ModelFile } from "../src/format/model-file.js";
import { encodeSafetensors } from "../src/format/safetensors.js";
import { findMethod, materializer } from "../src/methods/index.js";
import { buildModel } from "../src/model/models.js";
import { countParams, toDevice, toHost } from "../src/model/params.js";

await initEngine();

const model = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
const mcnc = findMethod("mcnc")!;

async function sampleFile(values: Record<string, unknown> = {}, seed = 42): Promise<{ bytes: Uint8Array; file: ModelFile }> {
  const config = mcnc.configure(values, model.specs);
  const trainable = await mcnc.init(config, model.specs, seed);
  // Perturb, so the file holds numbers no initialisation would regenerate.
  for (const t of Object.values(trainable)) t.forEach((v, i) => (t[i] = v + 1e-3 * Math.sin(i)));
  const file: ModelFile = { model: { name: "mlp", input: [28, 28, 1], classes: 10 }, method: { name: "mcnc", config }, seed, trainable, meta: { note: "test" } };
  return { bytes: encodeModelFile(file, model, mcnc), file };
}

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeModelFile(bytes, "f.mcnc"), (e: Error) => e instanceof UserError && pattern.test(e.message), String(pattern));
}

test("CRC-32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

test("round trip: stored numbers come back bit for bit and rebuild the same weights", async () => {
  const { bytes, file } = await sampleFile({ ratio: 100, residual: true });
  const loaded = decodeModelFile(bytes, "f.mcnc");
  assert.deepEqual(loaded.file.method.config, file.method.config);
  assert.equal(loaded.file.seed, 42);
  assert.deepEqual(loaded.file.meta, { note: "test" });
  for (const [name, data] of Object.entries(file.trainable)) {
    const back = loaded.file.trainable[name]!;
    assert.ok(back.length === data.length && back.every((v, i) => Object.is(v, data[i])), name);
  }
  const names = model.specs.map((s) => s.name);
  const config = file.method.config;
  const direct = await toHost(
    names,
    materializer(mcnc, config, model.specs)(toDevice(mcnc.trainableShapes(config, model.specs), file.trainable), await mcnc.frozen(config, model.specs, 42)),
  );
  const rebuilt = await toHost(names, await rebuildParams(loaded));
  for (const n of names) assert.ok(rebuilt[n]!.every((v, i) => Object.is(v, direct[n]![i])), n);
});

test("the payload starts 8-aligned and the size is what the header says", async () => {
  const { bytes } = await sampleFile();
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const headerBytes = view.getUint32(12, true);
  assert.equal((16 + headerBytes) % 8, 0);
  const floats = (1 * 128 * 16 + 128 + 256 + 10) * 4;
  assert.equal(bytes.length, 16 + headerBytes + floats + 4);
});

test("every single-byte corruption of a file is rejected", async () => {
  const { bytes } = await sampleFile({ ratio: 300 });
  assert.ok(bytes.length < 6000, `${bytes.length} bytes`);
  for (let i = 0; i < bytes.length; i++) {
    const bad = Uint8Array.from(bytes);
    bad[i]! ^= 1 << i % 8;
    assert.throws(() => decodeModelFile(bad, "f"), UserError, `flip at byte ${i}`);
    bad[i] = (bytes[i]! + 128) & 0xff;
    assert.throws(() => decodeModelFile(bad, "f"), UserError, `change at byte ${i}`);
  }
});

test("truncated files are rejected at every length", async () => {
  const { bytes } = await sampleFile({ ratio: 300 });
  for (let n = 0; n < bytes.length; n += n < 64 ? 1 : 97) assert.throws(() => decodeModelFile(bytes.subarray(0, n), "f"), UserError, `length ${n}`);
  rejects(new Uint8Array([...bytes, 0]), /checksum/);
});

/** A container with a valid checksum around whatever header a hostile writer chose. */
function forged(fields: Record<string, unknown>, tensors: Array<{ name: string; data: Float32Array; shape: number[] }> = []): Uint8Array {
  return encodeContainer(fields, tensors);
}

test("headers are validated before anything is allocated", async () => {
  const { file } = await sampleFile();
  const good = { format: "mcnc", rng: "threefry2x32", seed: 1, method: { name: "mcnc", config: file.method.config } };
  const params = model.specs.map((s) => ({ name: s.name, shape: s.shape }));
  const m = { name: "mlp", input: [28, 28, 1], classes: 10, params };
  rejects(forged({ ...good, model: { ...m, params: [{ name: "w1", shape: [1_000_000, 1_000_000] }] } }), /exceeds the limit of 268435456 elements/);
  rejects(
    forged({ ...good, model: { ...m, params: Array.from({ length: 2000 }, (_, i) => ({ name: `p${i}`, shape: [1 << 18] })) } }),
    /more than 268435456 parameters/,
  );
  rejects(forged({ ...good, model: { ...m, input: [1_000_000, 1_000_000, 1] } }), /model.input\[0\] must be an integer from 1 to 4096/);
  rejects(forged({ ...good, model: { ...m, name: "resnet" } }), /unknown model 'resnet'/);
  rejects(forged({ ...good, model: { ...m, params: params.slice(1) } }), /parameter list does not match/);
  rejects(forged({ ...good, model: m, method: { name: "zip", config: {} } }), /unknown method 'zip'/);
  rejects(forged({ ...good, model: m, method: { name: "mcnc", config: { ...file.method.config, k: -4 } } }), /--k must be/);
  rejects(forged({ ...good, model: m, rng: "mt19937" }), /RNG "mt19937" is not supported/);
  rejects(forged({ ...good, model: m, seed: -3 }), /seed/);
  rejects(forged({ ...good, model: m }), /stored tensors do not match/);
  rejects(forged({ ...good, model: m }, [{ name: "alpha", data: new Float32Array(4), shape: [2, 2] }]), /stored tensors do not match/);
});

test("the container refuses malformed structure", () => {
  const one = encodeContainer({ a: 1 }, [{ name: "x", data: new Float32Array([1, 2]), shape: [2] }]);
  assert.deepEqual(Array.from(decodeContainer(one).tensor("x")), [1, 2]);
  const bad = (fields: Record<string, unknown>, payload: number[], pattern: RegExp) => {
    // Hand-built: header JSON as given, then payload floats, then a valid CRC.
    const json = new TextEncoder().encode(JSON.stringify(fields));
    const out = new Uint8Array(16 + json.length + 4 * payload.length + 4);
    const v = new DataView(out.buffer);
    out.set(MAGIC);
    v.setUint32(8, 1, true);
    v.setUint32(12, json.length, true);
    out.set(json, 16);
    payload.forEach((p, i) => v.setFloat32(16 + json.length + 4 * i, p, true));
    v.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
    assert.throws(() => decodeContainer(out), (e: Error) => e instanceof UserError && pattern.test(e.message), String(pattern));
  };
  bad({ tensors: [{ name: "x", dtype: "f32", shape: [2], offset: 4 }] }, [1, 2, 3], /starts at 4, expected 0/);
  bad({ tensors: [{ name: "x", dtype: "f32", shape: [3], offset: 0 }] }, [1, 2], /runs past the end/);
  bad({ tensors: [{ name: "x", dtype: "f32", shape: [1], offset: 0 }] }, [1, 2], /payload holds 8 bytes but the tensors need 4/);
  bad({ tensors: [{ name: "x", dtype: "f64", shape: [1], offset: 0 }] }, [1, 2], /unsupported dtype/);
  bad({ tensors: [{ name: "x", dtype: "f32", shape: [-1], offset: 0 }] }, [], /bad dimension/);
  bad({ tensors: [{ name: "x", dtype: "f32", shape: [1], offset: 0 }, { name: "x", dtype: "f32", shape: [1], offset: 4 }] }, [1, 2], /listed twice/);
  bad({ nothing: true }, [], /no tensor list/);
  const future = Uint8Array.from(one);
  new DataView(future.buffer).setUint32(8, 2, true);
  assert.throws(() => decodeContainer(future), /version 2 is not supported/);
});

test("8-bit storage: codes within half a step, exact dequantisation rule, f32 for kept leaves", async () => {
  const config = mcnc.configure({ ratio: 100 }, model.specs);
  const trainable = await mcnc.init(config, model.specs, 3);
  const file: ModelFile = { model: { name: "mlp", input: [28, 28, 1], classes: 10 }, method: { name: "mcnc", config }, seed: 3, trainable };
  const full = encodeModelFile(file, model, mcnc);
  const small = encodeModelFile(file, model, mcnc, { storeBits: 8 });
  const loaded = decodeModelFile(small);
  assert.deepEqual(loaded.storage, { alpha: "q8", beta: "q8", "keep/b1": "f32", "keep/b2": "f32" });
  // Each 8-bit element saves 3 payload bytes; the header grows only by the codes' min and step.
  const quantised = countParams(mcnc.trainableShapes(config, model.specs).filter((t) => !t.name.startsWith("keep/")));
  const saved = full.length - small.length;
  assert.ok(saved <= 3 * quantised && saved > 3 * quantised - 200, `saved ${saved} of ${3 * quantised}`);
  for (const name of ["alpha", "beta"]) {
    const original = trainable[name]!;
    const back = loaded.file.trainable[name]!;
    const lo = Math.min(...original);
    const step = (Math.max(...original) - lo) / 255;
    for (let i = 0; i < original.length; i++) assert.ok(Math.abs(back[i]! - original[i]!) <= step / 2 + 1e-6, `${name}[${i}]`);
  }
  assert.deepEqual(Array.from(loaded.file.trainable["keep/b1"]!), Array.from(trainable["keep/b1"]!));
  // Constant tensors survive exactly (step 0).
  const flat = encodeContainer({}, [{ name: "c", shape: [3], data: new Float32Array([0.5, 0.5, 0.5]), q8: true }]);
  assert.deepEqual(Array.from(decodeContainer(flat).tensor("c")), [0.5, 0.5, 0.5]);
});

test("safetensors export: 8-byte length, JSON header with offsets, little-endian data", () => {
  const bytes = encodeSafetensors([
    { name: "a", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: "b", shape: [1], data: new Float32Array([-0.5]) },
  ]);
  const v = new DataView(bytes.buffer);
  const n = Number(v.getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(header.a, { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] });
  assert.deepEqual(header.b, { dtype: "F32", shape: [1], data_offsets: [16, 20] });
  assert.equal(bytes.length, 8 + n + 20);
  assert.equal(v.getFloat32(8 + n + 16, true), -0.5);
});
