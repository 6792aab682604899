/** What every fuzz target shares: a seeded generator, hostile values, the runner, and container surgery. */
import { UserError } from "../../src/errors.js";
import { crc32 } from "../../src/format/crc32.js";

/** xorshift32: the same cases for a seed on every machine. */
export function rng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
  return { int: (n) => next() % n, pick: (xs) => xs[next() % xs.length]! };
}

export type Rng = ReturnType<typeof rng>;

export const HOSTILE: unknown[] = [0, -1, 1, 2 ** 31, 2 ** 32 + 1, 2 ** 53, -(2 ** 53), 1e308, -1e308, 0.5, null, true, "", "__proto__", "constructor", "x".repeat(3000), [], [0], [2 ** 30, 2 ** 30], {}, { __proto__: { polluted: 1 } }, Array.from({ length: 5000 }, () => 1)];

export interface FuzzReport {
  target: string;
  cases: number;
  accepted: number;
  refused: number;
}

/** Runs `attempt` on each case: a UserError is a refusal, anything else a failure naming the case. */
export function run(target: string, cases: number, seed: number, attempt: (r: Rng, i: number) => Promise<void> | void): Promise<FuzzReport> {
  const report: FuzzReport = { target, cases, accepted: 0, refused: 0 };
  const r = rng(seed);
  return (async () => {
    for (let i = 0; i < cases; i++) {
      try {
        await attempt(r, i);
        report.accepted++;
      } catch (e) {
        if (e instanceof UserError) report.refused++;
        else throw new Error(`fuzz ${target}, seed ${seed}, case ${i}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
    return report;
  })();
}

const PREFIX = 16;

/** A container with `header` (JSON text) in place of its own, the payload kept, the checksum made valid again. */
export function reseal(file: Uint8Array, header: string): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerBytes = view.getUint32(12, true);
  const payload = file.subarray(PREFIX + headerBytes, file.length - 4);
  let json = new TextEncoder().encode(header);
  const padded = Math.ceil((PREFIX + json.length) / 8) * 8 - PREFIX;
  const h = new Uint8Array(padded).fill(0x20);
  h.set(json);
  json = h;
  const out = new Uint8Array(PREFIX + json.length + payload.length + 4);
  out.set(file.subarray(0, PREFIX));
  new DataView(out.buffer).setUint32(12, json.length, true);
  out.set(json, PREFIX);
  out.set(payload, PREFIX + json.length);
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}


/** Every place in a JSON value, as a path of keys. */
export function paths(v: unknown, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(at);
  if (Array.isArray(v)) v.slice(0, 50).forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

export function setAt(root: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[path.at(-1)!] = value;
  return copy;
}

export function headerOf(file: Uint8Array): string {
  const n = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(12, true);
  return new TextDecoder().decode(file.subarray(PREFIX, PREFIX + n)).trimEnd();
}

