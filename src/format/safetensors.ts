/**
 * safetensors (https://github.com/huggingface/safetensors): u64 header size N, N bytes of JSON header
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then the data,
 * little-endian, tensors back to back with no holes.
 *
 * The reader trusts nothing: the header's size, every tensor's dtype, shape and offsets are checked
 * against each other and against the file's real size before any tensor is read, and tensors are read
 * one at a time from a byte source, so a model larger than memory can be streamed.
 */
import { UserError } from "../errors.js";
import { checkShape, elements } from "./container.js";

/** Metadata key under which mcnc records the network a file's tensors belong to (its description as JSON). */
export const MODEL_METADATA = "mcnc_model";

export type SafetensorsDtype = "F32" | "F16" | "BF16";
const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Limits a header is held to before anything it claims is allocated. */
export const SAFETENSORS_LIMITS = {
  /** The reference implementation's own limit. */
  headerBytes: 100 * 2 ** 20,
  tensors: 1 << 16,
} as const;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range in the data section. */
  begin: number;
  end: number;
}

/** Random access to a file's bytes (a file descriptor in Node, an array in memory or a page). */
export interface ByteSource {
  size: number;
  read(offset: number, length: number): Uint8Array;
  close?(): void;
}

export function memorySource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
}

export interface SafetensorsReader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** One tensor as float32 (F16 and BF16 widened exactly). */
  read(name: string): Float32Array;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function readSafetensors(source: ByteSource, file = "file"): SafetensorsReader {
  const bad = (msg: string) => new UserError(`${file}: ${msg}`);
  if (source.size < 8) throw bad(`too short to be a safetensors file (${source.size} bytes)`);
  // Copied into its own buffer: a Node Buffer's slice() is a view into a shared pool, not a copy.
  const n = new DataView(Uint8Array.from(source.read(0, 8)).buffer).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_LIMITS.headerBytes)) throw bad(`header of ${n} bytes exceeds the limit of ${SAFETENSORS_LIMITS.headerBytes}`);
  const headerBytes = Number(n);
  if (8 + headerBytes > source.size) throw bad(`truncated: the header claims ${headerBytes} bytes, the file has ${source.size - 8} after the size`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(source.read(8, headerBytes)));
  } catch {
    throw bad("header is not valid UTF-8 JSON");
  }
  if (!isRecord(header)) throw bad("header is not a JSON object");
  const dataStart = 8 + headerBytes;
  const dataBytes = source.size - dataStart;

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isRecord(raw) || Object.values(raw).some((v) => typeof v !== "string")) throw bad("__metadata__ must map strings to strings");
      metadata = raw as Record<string, string>;
      continue;
    }
    if (entries.length >= SAFETENSORS_LIMITS.tensors) throw bad(`more than ${SAFETENSORS_LIMITS.tensors} tensors`);
    if (!isRecord(raw)) throw bad(`tensor ${name}: entry is not an object`);
    const dtype = raw.dtype;
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw bad(`tensor ${name}: dtype ${JSON.stringify(dtype)} is not supported (F32, F16 or BF16)`);
    }
    const shape = checkShape(raw.shape, `${file}: tensor ${name}`);
    const offsets = raw.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) throw bad(`tensor ${name}: data_offsets must be two byte offsets`);
    const [begin, end] = offsets as [number, number];
    const want = elements(shape) * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== want) throw bad(`tensor ${name}: ${shape.join("x")} ${dtype} needs ${want} bytes, its offsets span ${end - begin}`);
    if (end > dataBytes) throw bad(`tensor ${name} runs past the end of the file (truncated?)`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape, begin, end });
  }
  // The format's own rule: the tensors tile the data section, no gap and no overlap.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin);
  let at = 0;
  for (const e of byOffset) {
    if (e.begin !== at) throw bad(`tensor ${e.name} starts at byte ${e.begin}, expected ${at} (gap or overlap)`);
    at = e.end;
  }
  if (at !== dataBytes) throw bad(`the data section holds ${dataBytes} bytes, the tensors ${at}`);

  const byName = new Map(entries.map((e) => [e.name, e]));
  return {
    entries,
    metadata,
    read(name) {
      const e = byName.get(name);
      if (!e) throw bad(`no tensor ${name}`);
      return widen(source.read(dataStart + e.begin, e.end - e.begin), e.dtype);
    },
  };
}

/** Little-endian bytes of one dtype to float32. */
export function widen(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / DTYPE_BYTES[dtype]);
  if (dtype === "F32") for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === "BF16") {
    const word = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) word[i] = view.getUint16(2 * i, true) << 16;
  } else for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 to IEEE half, rounding to nearest even (overflow to infinity, as every framework does). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const m = frac | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let v = m >> shift;
    if (rest > half || (rest === half && v & 1)) v++;
    return sign | v;
  }
  let v = (e << 10) | (frac >> 13);
  const rest = frac & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && v & 1)) v++; // a carry into the exponent is still right
  return sign | v;
}

/** float32 to bfloat16, rounding to nearest even. */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** float32 data in one dtype, little-endian. */
export function narrow(data: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  const out = new Uint8Array(data.length * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  if (dtype === "F32") for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
  else {
    const to = dtype === "F16" ? floatToHalf : floatToBf16;
    for (let i = 0; i < data.length; i++) view.setUint16(2 * i, to(data[i]!), true);
  }
  return out;
}

export interface TensorLayout {
  name: string;
  shape: number[];
  dtype?: SafetensorsDtype;
}

/** The size prefix and padded header for these tensors, in this order; and the data's length. */
export function safetensorsHeader(tensors: readonly TensorLayout[], metadata: Record<string, string> = {}): { prefix: Uint8Array; dataBytes: number } {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? "F32";
    const bytes = elements(t.shape) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  // Padded with spaces so the data starts 8-aligned (as the reference writer does).
  const headerLength = Math.ceil(raw.length / 8) * 8;
  const prefix = new Uint8Array(8 + headerLength).fill(0x20, 8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerLength), true);
  prefix.set(raw, 8);
  return { prefix, dataBytes: offset };
}

export function encodeSafetensors(tensors: Array<TensorLayout & { data: Float32Array }>, metadata: Record<string, string> = {}): Uint8Array {
  for (const t of tensors) if (elements(t.shape) !== t.data.length) throw new Error(`tensor ${t.name}: shape does not match data`);
  const { prefix, dataBytes } = safetensorsHeader(tensors, metadata);
  const out = new Uint8Array(prefix.length + dataBytes);
  out.set(prefix);
  let at = prefix.length;
  for (const t of tensors) {
    const raw = narrow(t.data, t.dtype ?? "F32");
    out.set(raw, at);
    at += raw.length;
  }
  return out;
}
