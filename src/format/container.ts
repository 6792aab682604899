/**
 * The .mcnc container, version 1 (docs/format.md):
 *
 *   magic "\x89MCNC\r\n\x1a\n" | u32 version | u32 header length H | H bytes JSON header (space-padded
 *   so the payload starts 8-aligned) | payload: the header's tensors, back to back | u32 CRC-32 of
 *   every byte before it.  All integers little-endian.
 *
 * Like safetensors, the reader trusts nothing: sizes are checked against the file, the checksum
 * against the bytes, and the header's tensors against each other and against limits, all before any
 * tensor is allocated.
 */
import { UserError } from "../errors.js";
import { dequantize8, packCodes, quantize8, unpackCodes, type CodeBits } from "./codes.js";
import { crc32 } from "./crc32.js";

export const MAGIC = new Uint8Array([0x89, 0x4d, 0x43, 0x4e, 0x43, 0x0d, 0x0a, 0x1a]);
export const VERSION = 1;
const PREFIX = MAGIC.length + 8;
const CHECKSUM = 4;
const ALIGN = 8;

export const LIMITS = {
  headerBytes: 1 << 20,
  /** Per tensor and in all: 2^28 float32 numbers (1 GiB). */
  tensorElements: 2 ** 28,
  tensors: 4096,
  rank: 8,
} as const;

/**
 * f32: IEEE float32. q8: unsigned 8-bit codes, value = fround(min + code * step) computed in float64.
 * u8, u4, u3, u2, u1: unsigned integer codes of that many bits, packed as one little-endian bit stream
 * (code i occupies bits i*b .. i*b + b - 1, bit j being bit j % 8 of byte j / 8: code i of a u4 tensor is
 * the low nibble of byte i/2 when i is even); what they mean is the method's business.
 */
export type Dtype = "f32" | "q8" | CodeDtype;
export type CodeDtype = "u8" | "u4" | "u3" | "u2" | "u1";
const DTYPE_BITS: Record<Dtype, number> = { f32: 32, q8: 8, u8: 8, u4: 4, u3: 3, u2: 2, u1: 1 };

function tensorBytes(dtype: Dtype, count: number): number {
  return Math.ceil((count * DTYPE_BITS[dtype]) / 8);
}

export function codeDtype(bits: CodeBits): CodeDtype {
  return `u${bits}`;
}

export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte offset into the payload. */
  offset: number;
  /** q8 only: the value of code 0 and the distance between codes. */
  min?: number;
  step?: number;
}

/** A tensor to write: floats (f32, or q8 when asked) or integer codes. */
export type TensorIn =
  | {
      name: string;
      shape: number[];
      data: Float32Array;
      /** Store at 8 bits (per-tensor affine, min-max) instead of 32. */
      q8?: boolean;
    }
  | { name: string; shape: number[]; codes: Uint8Array; bits: CodeBits };

/** The header's own fields; `tensors` is filled in by the writer. */
export type Header = Record<string, unknown> & { tensors: TensorEntry[] };

export function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function checkShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape) || shape.length > LIMITS.rank) throw new UserError(`${what}: shape must be a list of at most ${LIMITS.rank} sizes`);
  let n = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) throw new UserError(`${what}: bad dimension ${String(dim)}`);
    n *= dim;
    if (n > LIMITS.tensorElements) throw new UserError(`${what}: ${shape.join("x")} exceeds the limit of ${LIMITS.tensorElements} elements`);
  }
  return shape as number[];
}

export function encodeContainer(fields: Record<string, unknown>, tensors: TensorIn[]): Uint8Array {
  const entries: TensorEntry[] = [];
  const bytesOf = new Map<string, Uint8Array>();
  let offset = 0;
  for (const t of tensors) {
    const count = "codes" in t ? t.codes.length : t.data.length;
    if (elements(t.shape) !== count) throw new Error(`tensor ${t.name}: shape ${t.shape} does not hold ${count} values`);
    if ("codes" in t) {
      if (t.codes.some((c) => c >>> t.bits !== 0)) throw new Error(`tensor ${t.name}: a code does not fit in ${t.bits} bits`);
      const packed = packCodes(t.codes, t.bits);
      bytesOf.set(t.name, packed);
      entries.push({ name: t.name, dtype: codeDtype(t.bits), shape: t.shape, offset });
      offset += packed.length;
    } else if (t.q8) {
      const q = quantize8(t.data);
      bytesOf.set(t.name, q.codes);
      entries.push({ name: t.name, dtype: "q8", shape: t.shape, offset, min: q.min, step: q.step });
      offset += t.data.length;
    } else {
      entries.push({ name: t.name, dtype: "f32", shape: t.shape, offset });
      offset += t.data.byteLength;
    }
  }
  let json = new TextEncoder().encode(JSON.stringify({ ...fields, tensors: entries }));
  const padded = Math.ceil((PREFIX + json.length) / ALIGN) * ALIGN - PREFIX;
  if (padded > LIMITS.headerBytes) throw new Error(`header of ${padded} bytes exceeds ${LIMITS.headerBytes}`);
  const header = new Uint8Array(padded).fill(0x20);
  header.set(json);
  json = header;

  const total = PREFIX + json.length + offset + CHECKSUM;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(MAGIC.length, VERSION, true);
  view.setUint32(MAGIC.length + 4, json.length, true);
  out.set(json, PREFIX);
  let at = PREFIX + json.length;
  for (const t of tensors) {
    const raw = bytesOf.get(t.name);
    if (raw) {
      out.set(raw, at);
      at += raw.length;
      continue;
    }
    if ("codes" in t) throw new Error("unreachable: codes are always packed");
    // Little-endian on every platform, whatever the host's byte order.
    for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i]!, true);
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

export interface Container {
  header: Header;
  /** Read one f32 or q8 tensor as float32 (allocates); names come from header.tensors. */
  tensor(name: string): Float32Array;
  /** Read one u8/u4/u3/u2/u1 tensor, a byte per code (allocates); with `bits`, refused unless stored at that width. */
  codes(name: string, bits?: number): Uint8Array;
}

export function decodeContainer(bytes: Uint8Array, file = "file"): Container {
  if (bytes.length < PREFIX + CHECKSUM) throw new UserError(`${file}: too short to be an .mcnc file (${bytes.length} bytes)`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw new UserError(`${file}: not an .mcnc file (bad magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(MAGIC.length, true);
  if (version !== VERSION) throw new UserError(`${file}: .mcnc version ${version} is not supported (this mcnc reads version ${VERSION})`);
  const headerBytes = view.getUint32(MAGIC.length + 4, true);
  if (headerBytes > LIMITS.headerBytes) throw new UserError(`${file}: header of ${headerBytes} bytes exceeds the limit of ${LIMITS.headerBytes}`);
  if (PREFIX + headerBytes + CHECKSUM > bytes.length) throw new UserError(`${file}: truncated (header runs past the end)`);
  const body = bytes.length - CHECKSUM;
  if (crc32(bytes.subarray(0, body)) !== view.getUint32(body, true)) throw new UserError(`${file}: checksum mismatch (corrupted or truncated)`);

  let header: Header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(PREFIX, PREFIX + headerBytes))) as Header;
  } catch {
    throw new UserError(`${file}: header is not valid UTF-8 JSON`);
  }
  if (typeof header !== "object" || header === null || !Array.isArray(header.tensors)) throw new UserError(`${file}: header has no tensor list`);
  if (header.tensors.length > LIMITS.tensors) throw new UserError(`${file}: ${header.tensors.length} tensors exceed the limit of ${LIMITS.tensors}`);

  const payloadStart = PREFIX + headerBytes;
  const payloadBytes = body - payloadStart;
  const byName = new Map<string, TensorEntry>();
  let expected = 0;
  for (const t of header.tensors) {
    if (typeof t !== "object" || t === null || typeof t.name !== "string") throw new UserError(`${file}: malformed tensor entry`);
    if (byName.has(t.name)) throw new UserError(`${file}: tensor ${t.name} listed twice`);
    if (!Object.hasOwn(DTYPE_BITS, t.dtype)) throw new UserError(`${file}: tensor ${t.name} has unsupported dtype ${String(t.dtype)}`);
    if (t.dtype === "q8" && !(Number.isFinite(t.min) && Number.isFinite(t.step) && (t.step as number) >= 0)) {
      throw new UserError(`${file}: q8 tensor ${t.name} needs a finite min and a non-negative step`);
    }
    const shape = checkShape(t.shape, `${file}: tensor ${t.name}`);
    // Tensors lie back to back in header order: no gap, no overlap, nothing past the end.
    if (t.offset !== expected) throw new UserError(`${file}: tensor ${t.name} starts at ${String(t.offset)}, expected ${expected}`);
    expected += tensorBytes(t.dtype, elements(shape));
    if (expected > payloadBytes) throw new UserError(`${file}: tensor ${t.name} runs past the end of the payload`);
    byName.set(t.name, t);
  }
  if (expected !== payloadBytes) throw new UserError(`${file}: payload holds ${payloadBytes} bytes but the tensors need ${expected}`);

  const entry = (name: string, want: "floats" | "codes"): TensorEntry => {
    const t = byName.get(name);
    if (!t) throw new UserError(`${file}: no tensor ${name}`);
    const isFloat = t.dtype === "f32" || t.dtype === "q8";
    if (isFloat !== (want === "floats")) throw new UserError(`${file}: tensor ${name} is ${t.dtype}, expected ${want === "floats" ? "f32 or q8" : "integer codes"}`);
    return t;
  };
  return {
    header,
    codes(name, bits) {
      const t = entry(name, "codes");
      if (bits !== undefined && DTYPE_BITS[t.dtype] !== bits) throw new UserError(`${name} is stored as ${t.dtype} codes where ${bits}-bit codes belong`);
      const at = payloadStart + t.offset;
      const n = elements(t.shape);
      return unpackCodes(bytes.subarray(at, at + tensorBytes(t.dtype, n)), DTYPE_BITS[t.dtype] as CodeBits, n);
    },
    tensor(name) {
      const t = entry(name, "floats");
      const n = elements(t.shape);
      const at = payloadStart + t.offset;
      if (t.dtype === "q8") return dequantize8(bytes.subarray(at, at + n), t.min!, t.step!);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(at + 4 * i, true);
      return out;
    },
  };
}
