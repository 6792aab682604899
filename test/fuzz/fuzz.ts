/**
 * Seeded fuzzing of what users hand mcnc: .mcnc files (bytes flipped, headers rewritten with hostile
 * values and resealed with a valid checksum, so the mutations reach the parser), IDX files (plain and
 * gzipped), checkpoints, ONNX and TF.js models (fuzz-models.ts) and command-line flags (through each command's parser and each method's configure). Every
 * input must be accepted or refused with a UserError; anything else is a bug, reported with the
 * target, seed and case number that reproduce it. Accepted files small enough are also rebuilt.
 *
 *   node dist/test/fuzz/fuzz.js [CASES per target, default 20000] [SEED, default: the day's number]   (npm run fuzz)
 *
 * test/fuzz.test.ts runs a few thousand per target in the suite.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { parseArgs } from "../../src/cli/args.js";
import { COMMANDS, flagsOf } from "../../src/cli/cli.js";
import { initEngine } from "../../src/engine/engine.js";
import { decodeIdx } from "../../src/data/idx.js";
import { parseNpy } from "../../src/data/npy.js";
import { decodeImage, imageSize } from "../../src/data/image-folder.js";
import { classIndices, heldOutSplit } from "../../src/data/raw.js";
import { parseTable } from "../../src/data/table.js";
import { decodeModelFile, timedRebuild } from "../../src/format/model-file.js";
import { checkMemory } from "../../src/limits.js";
import { findMethod, methodNames, rebuildBytes } from "../../src/methods/index.js";
import { buildModel } from "../../src/model/models.js";
import { idx, jpg, npy, png } from "../data-files.js";
import { FIXTURES, readManifest } from "../fixtures/make-fixtures.js";
import { fuzzCheckpoints, fuzzForeignModels } from "./fuzz-models.js";
import { HOSTILE, headerOf, paths, reseal, run, setAt, type FuzzReport, type Rng } from "./fuzz-kit.js";

/** .mcnc files: the golden fixtures mutated; accepted ones that rebuild cheaply are rebuilt. */
export function fuzzModelFiles(cases: number, seed: number): Promise<FuzzReport> {
  const manifest = readManifest();
  const files = Object.keys(manifest)
    .filter((f) => !manifest[f]!.base)
    .map((f) => readFileSync(FIXTURES + f));
  return run("mcnc-file", cases, seed, async (r) => {
    const file = r.pick(files);
    let bytes: Uint8Array;
    const kind = r.int(10);
    if (kind < 6) {
      const header = JSON.parse(headerOf(file)) as unknown;
      const places = paths(header);
      bytes = reseal(file, JSON.stringify(setAt(header, r.pick(places), r.pick(HOSTILE))));
    } else if (kind < 9) {
      bytes = Uint8Array.from(file);
      bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
      if (kind < 8) bytes = reseal(bytes, headerOf(bytes));
    } else bytes = file.subarray(0, r.int(file.length));
    const loaded = decodeModelFile(bytes, "fuzzed");
    // Rebuilding is where a lying header would cost memory: the file was checked, so this must be cheap.
    if (rebuildBytes(loaded.method, loaded.config, loaded.specs) < 32 * 2 ** 20 && !loaded.file.adapter) await timedRebuild(loaded, 0);
  });
}

/** A shape's worth of patterned bytes: the data of the files mutated below. */
const filled = (shape: number[], fill: number) => Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i * fill) & 255);

/** .npy files: bytes flipped (header text included), truncated, dims and dtypes rewritten in the header. */
function fuzzNpyCase(r: Rng): void {
  const shape = r.pick([[20, 8, 8], [20], [3, 4, 5, 2]]);
  let bytes = npy("|u1", shape, filled(shape, 7));
  const kind = r.int(3);
  if (kind === 0) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
  if (kind === 1) bytes = bytes.subarray(0, r.int(bytes.length));
  if (kind === 2) {
    const text = new TextDecoder("latin1").decode(bytes);
    const swapped = text.replace(r.pick(["|u1", "(20", "False", "8, 8", "'shape'"]), r.pick(["<f8", "(99999999999", "True", "-1, 8", "'shap'", "<i4"]));
    bytes = Uint8Array.from(swapped, (ch) => ch.charCodeAt(0) & 255);
  }
  parseNpy(bytes, "fuzzed");
}

/** IDX files, plain and gzipped: bytes flipped, dimensions rewritten, truncated, bombs; and .npy files. */
export function fuzzIdx(cases: number, seed: number): Promise<FuzzReport> {
  const plain = ([[[20, 8, 8], 7], [[20], 3], [[3, 4, 5, 2], 11]] as const).map(([shape, fill]) => idx([...shape], filled([...shape], fill)));
  const DIMS = [0, 1, 255, 2 ** 16, 2 ** 24, 2 ** 31, 2 ** 32 - 1];
  return run("idx-npy", cases, seed, (r) => {
    if (r.int(4) === 0) return fuzzNpyCase(r);
    let bytes = Uint8Array.from(r.pick(plain));
    const kind = r.int(4);
    if (kind === 0) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
    if (kind === 1) new DataView(bytes.buffer).setUint32(4 + 4 * r.int(bytes[3]!), r.pick(DIMS), false);
    if (kind === 2) bytes = bytes.subarray(0, r.int(bytes.length));
    if (kind === 3) {
      // The header kept, the data replaced by any length of zeros (a bomb once gzipped).
      const longer = new Uint8Array(16 + r.int(1 << 18));
      longer.set(bytes.subarray(0, 16));
      bytes = longer;
    }
    if (r.int(2) === 0) {
      bytes = gzipSync(bytes);
      if (r.int(3) === 0) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
    }
    decodeIdx(bytes, "fuzzed");
  });
}

const TABLE = ["a,b,label", "1.5,2,cat", '"3",-4e2,dog', "0,.5,cat", "7,8,\"d\"\"og\""].join("\n");
const TABLE_PIECES = [",", "\n", "\r\n", '"', '""', "\t", "NA", "-", "1e999", "x".repeat(300), "\u0000", ",,,,", "label"];

/** Tables (cells, quotes, delimiters and lines mangled) and PNG/JPEG images (bytes flipped, cut, sizes rewritten). */
export async function fuzzTablesImages(cases: number, seed: number): Promise<FuzzReport> {
  const images = [await png(6, 5, (x, y) => [x * 40, y * 50, 90]), await jpg(6, 5, (x, y) => [x * 40, y * 50, 90])];
  return run("tables-images", cases, seed, (r) => {
    if (r.int(2) === 0) {
      let text = TABLE;
      for (let n = 1 + r.int(4); n > 0; n--) {
        const at = r.int(text.length + 1);
        const cut = r.int(3);
        text = text.slice(0, at) + r.pick(TABLE_PIECES) + text.slice(at + cut);
      }
      const table = parseTable(text, r.pick(["t.csv", "t.tsv"]), r.pick([undefined, "label", "0", "9"]));
      const order = heldOutSplit(table.labels.length);
      classIndices(order.train.map((i) => table.labels[i]!), order.test.map((i) => table.labels[i]!));
      return;
    }
    let bytes = Uint8Array.from(r.pick(images));
    const kind = r.int(3);
    if (kind === 0) for (let n = 1 + r.int(4); n > 0; n--) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
    if (kind === 1) bytes = bytes.subarray(0, r.int(bytes.length));
    if (kind === 2) {
      // A size field rewritten: PNG's IHDR width, or any two bytes after a JPEG marker.
      const at = bytes[0] === 0x89 ? 16 + 4 * r.int(2) : r.int(bytes.length - 2);
      new DataView(bytes.buffer).setUint16(at, r.pick([0, 1, 7, 4096, 65535]));
    }
    const { width, height } = imageSize(bytes, "fuzzed");
    if (width * height <= 4096 * 4096) decodeImage(bytes, "fuzzed", width * height);
  });
}

/** Command lines: each command's parser, then each method's configure on what it parsed, then the memory check. */
export function fuzzFlags(cases: number, seed: number): Promise<FuzzReport> {
  const mlp = buildModel({ name: "mlp", input: [28, 28, 1], classes: 10 });
  const VALUES = ["0", "1", "-1", "3", "16", "1e9", "1e400", "0x10", " 5", "", "nan", "2:4", "0:0", "all", "weights", "w1", "w1,w1", "1,2,3", "none", "true", "--d", "__proto__", "9".repeat(40)];
  return run("flags", cases, seed, (r) => {
    const command = r.pick(COMMANDS);
    const flags = flagsOf(command);
    const argv: string[] = [];
    for (let n = r.int(6); n > 0; n--) {
      const f = r.pick(flags);
      argv.push(r.int(10) === 0 ? `--${f.name}x` : `--${f.name}`);
      if (f.type !== "bool" || r.int(2) === 0) argv.push(r.pick(VALUES));
    }
    const parsed = parseArgs(argv, flags, command.name, command.maxPositionals);
    const method = findMethod(typeof parsed.flags.method === "string" ? parsed.flags.method : r.pick(methodNames()))!;
    const values = Object.fromEntries(method.options.filter((o) => o.name in parsed.flags).map((o) => [o.name, parsed.flags[o.name]]));
    const config = method.configure(values, mlp.specs);
    checkMemory(rebuildBytes(method, config, mlp.specs), "fuzzed");
  });
}

export async function fuzzAll(cases: number, seed: number): Promise<FuzzReport[]> {
  return [await fuzzModelFiles(cases, seed), await fuzzIdx(cases, seed), await fuzzTablesImages(cases, seed), await fuzzFlags(cases, seed), await fuzzCheckpoints(cases, seed), await fuzzForeignModels(cases, seed)];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await initEngine();
  const cases = Number(process.argv[2] ?? 20000);
  // A new seed each day unless one is given: a failure names the seed and case that reproduce it.
  const seed = Number(process.argv[3] ?? Math.floor(Date.now() / 86_400_000));
  const started = performance.now();
  const started_rss = process.memoryUsage().rss;
  for (const report of await fuzzAll(cases, seed)) process.stdout.write(`${JSON.stringify({ ...report, seed })}\n`);
  process.stdout.write(`${JSON.stringify({ seconds: Math.round((performance.now() - started) / 100) / 10, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024), start_rss_mib: Math.round(started_rss / 2 ** 20) })}\n`);
}
