/** Tables and image folders: read, normalised, split and checked as the other data layouts are. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { loadDataset } from "../src/data/dataset.js";
import { fixedOrder, heldOutSplit } from "../src/data/raw.js";
import { setMemoryLimit, DEFAULT_MEMORY_LIMIT } from "../src/limits.js";
import { assertCleanError, lastJson, mcnc } from "./cli-helpers.js";
import { jpg, png } from "./data-files.js";

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `mcnc-${name}-`));

/** Rows of two features whose sign pattern gives the class: a problem an MLP learns in a few epochs. */
function blobs(n: number, names: string[]): string[] {
  return Array.from({ length: n }, (_, i) => {
    const c = i % names.length;
    const jitter = ((i * 37) % 11) / 11 - 0.5;
    return `${(c - 1) * 3 + jitter},${10 + c * 5 - jitter},${names[c]}`;
  });
}

test("a fixed order is a permutation, the same on every run", () => {
  const order = fixedOrder(1000);
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  // Pinned: changing it would change which rows a file's test split holds.
  assert.deepEqual(Array.from(fixedOrder(8)), [6, 5, 0, 3, 7, 2, 4, 1]);
  assert.deepEqual(heldOutSplit(10), { train: [6, 7, 4, 0, 1, 8, 2, 9], test: [5, 3] });
});

test("a CSV with a header, quotes and named labels: split 4 to 1, normalised per column, classes by name", () => {
  const dir = tmp("csv");
  const file = join(dir, "blobs.csv");
  writeFileSync(file, ["x,y,species", ...blobs(100, ["setosa", "versicolor", "virginica"]), '"1.5",  "2" ,"setosa"', ""].join("\r\n"));
  const d = loadDataset(file);
  assert.deepEqual(d.imageShape, [1, 1, 2]);
  assert.deepEqual(d.classNames, ["setosa", "versicolor", "virginica"]);
  assert.equal(d.labelColumn, "species");
  assert.equal(d.train.count + d.test.count, 101);
  assert.equal(d.test.count, 20);
  assert.equal(d.unit, "rows");
  // Standardised training columns: mean 0, spread 1.
  for (const j of [0, 1]) {
    const col = Array.from({ length: d.train.count }, (_, i) => d.train.x[2 * i + j]!);
    const mean = col.reduce((a, b) => a + b, 0) / col.length;
    const sd = Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length);
    assert.ok(Math.abs(mean) < 1e-5 && Math.abs(sd - 1) < 1e-4, `${mean} ${sd}`);
  }
  // A model's own classes map labels to its indices, and a label it never learnt is refused.
  const known = loadDataset(file, { classNames: ["virginica", "versicolor", "setosa"] });
  assert.deepEqual(Array.from(known.train.y.slice(0, 12), (c) => 2 - c), Array.from(d.train.y.slice(0, 12)));
  assert.throws(() => loadDataset(file, { classNames: ["setosa", "virginica"] }), /label "versicolor" is not one of the model's classes/);
});

test("tables: the label column by flag, TSV train/test directories, gzip; bad cells and shapes refused by line", () => {
  const dir = tmp("tsv");
  const rows = blobs(30, ["0", "1", "2"]).map((r) => r.split(",").reverse().join("\t"));
  writeFileSync(join(dir, "train.tsv"), rows.join("\n"));
  assert.throws(() => loadDataset(dir), /has a train table but no test table/);
  writeFileSync(join(dir, "test.tsv.gz"), gzipSync(rows.slice(0, 6).join("\n")));
  // No header: the last column would be the label; the flag names the first.
  assert.throws(() => loadDataset(dir), /the labels are numbers but "-?[\d.]+" is not a class index 0\.\.255 \(is it the label column\?\)/);
  const d = loadDataset(dir, { labelColumn: "0" });
  assert.deepEqual([d.train.count, d.test.count, d.numClasses], [30, 6, 3]);
  assert.equal(d.classNames, undefined);
  assert.throws(() => loadDataset(dir, { labelColumn: "9" }), /no column "9" to take labels from \(no header; give an index from 0 to 2\)/);
  assert.throws(() => loadDataset(undefined, { labelColumn: "0" }), /a label column \('0'\) is given, but .*fashion-mnist is not a table/);

  const bad = join(dir, "bad.csv");
  writeFileSync(bad, "a,b,label\n1,2,0\n3,NA,1\n");
  assert.throws(() => loadDataset(bad), /bad\.csv: line 3, column b: "NA" is not a number/);
  writeFileSync(bad, "a,b,label\n1,2,0\n3,1\n");
  assert.throws(() => loadDataset(bad), /line 3 has 2 cells, the table 3/);
  writeFileSync(bad, 'a,b,label\n1,"2,0\n');
  assert.throws(() => loadDataset(bad), /quote opened on line 2 is never closed/);
  writeFileSync(bad, "a;b;label\n1;2;0\n");
  assert.throws(() => loadDataset(bad), /at least one feature column and a label column \(is it comma-separated\?\)/);
  writeFileSync(bad, "a,b,label\n");
  assert.throws(() => loadDataset(bad), /has no rows/);
  // A small gzip that would inflate past the limit is stopped while inflating.
  const bomb = join(dir, "bomb.csv.gz");
  writeFileSync(bomb, gzipSync(Buffer.alloc(8 << 20, "1,")));
  setMemoryLimit(16 << 20);
  try {
    assert.throws(() => loadDataset(bomb), /inflates beyond the memory limit/);
  } finally {
    setMemoryLimit(DEFAULT_MEMORY_LIMIT);
  }
});

test("image folders: PNG and JPEG by class, grey kept as one channel, colour as three; mixed sizes and strays refused", async () => {
  const dir = tmp("img");
  const shade = (v: number) => (): [number, number, number] => [v, v, v];
  const stripes = (x: number, y: number): [number, number, number] => (x % 2 ? [200, 200, 200] : [20, 20, 20]);
  for (const [split, n] of [["train", 6], ["test", 2]] as const) {
    for (const [name, pixel] of [["dark", shade(30)], ["striped", stripes]] as const) {
      mkdirSync(join(dir, split, name), { recursive: true });
      for (let i = 0; i < n; i++) writeFileSync(join(dir, split, name, `${i}.${i % 2 ? "png" : "jpg"}`), i % 2 ? await png(8, 6, pixel) : await jpg(8, 6, pixel));
    }
  }
  const d = loadDataset(dir);
  assert.deepEqual(d.imageShape, [6, 8, 1]);
  assert.deepEqual(d.classNames, ["dark", "striped"]);
  assert.deepEqual([d.train.count, d.test.count], [12, 4]);
  assert.equal(d.unit, "images");
  // Decoded pixels: a dark image is flat (JPEG within a few levels), a striped one alternates.
  const sample = 48;
  for (let i = 0; i < d.train.count; i++) {
    const x = d.train.x.subarray(i * sample, (i + 1) * sample);
    const spread = Math.max(...x) - Math.min(...x);
    if (d.train.y[i] === 0) assert.ok(spread < 0.2, `dark ${spread}`);
    else assert.ok(spread > 1.5, `striped ${spread}`);
  }
  // One colour image makes the set three-channel.
  writeFileSync(join(dir, "train", "dark", "red.png"), await png(8, 6, () => [200, 10, 10]));
  assert.deepEqual(loadDataset(dir).imageShape, [6, 8, 3]);
  writeFileSync(join(dir, "train", "dark", "big.png"), await png(9, 6, shade(30)));
  assert.throws(() => loadDataset(dir), /big\.png is 9x6, but .* is 8x6 \(resize the images to one size\)/);
  // A header that claims a huge image is refused before anything is decoded.
  const huge = await png(8, 6, shade(30));
  new DataView(huge.buffer, huge.byteOffset).setUint32(16, 100_000);
  writeFileSync(join(dir, "train", "dark", "big.png"), huge);
  assert.throws(() => loadDataset(dir), /is 100000x6/);
  writeFileSync(join(dir, "train", "dark", "big.png"), "not an image");
  assert.throws(() => loadDataset(dir), /big\.png: not a PNG or JPEG image/);
  writeFileSync(join(dir, "train", "dark", "big.png"), await png(8, 6, shade(30)));
  writeFileSync(join(dir, "train", "dark", "notes.txt"), "hello");
  assert.throws(() => loadDataset(dir), /notes\.txt is not a \.png or \.jpg image/);
});

test("the CLI trains on a table and on an image folder, records the classes and scaling, and eval reuses them", async () => {
  const dir = tmp("cli-data");
  const table = join(dir, "blobs.csv");
  writeFileSync(table, ["x,y,species", ...blobs(300, ["a", "b", "c"])].join("\n"));
  const out = join(dir, "blobs.mcnc");
  const trained = lastJson(mcnc("train", "--data", table, "--method", "mcnc", "--d", "32", "--epochs", "20", "--batch", "16", "--out", out, "--json", "--quiet").stdout);
  assert.ok((trained.accuracy as number) >= 0.95, JSON.stringify(trained).slice(0, 300));
  // Other rows, with the classes in another order and a subset of them: the same indices, the same scaling.
  const other = join(dir, "other.csv");
  writeFileSync(other, ["x,y,species", ...blobs(300, ["a", "b", "c"]).filter((r) => !r.endsWith(",b")).reverse()].join("\n"));
  const evaluated = lastJson(mcnc("eval", out, "--data", other, "--json").stdout);
  assert.ok((evaluated.accuracy as number) >= 0.95, JSON.stringify(evaluated));
  assertCleanError(mcnc("eval", out, "--data", join(dir, "nope.csv")), /data .*nope\.csv does not exist/);
  writeFileSync(other, "x,y,species\n1,2,d\n3,4,a\n");
  assertCleanError(mcnc("eval", out, "--data", other), /label "d" is not one of the model's classes \(a, b, c\)/);

  const images = join(dir, "images");
  for (const [name, v] of [["dark", 40], ["light", 210]] as const) {
    mkdirSync(join(images, name), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(images, name, `${i}.png`), await png(4, 4, (x, y) => [v + ((x * 7 + y * 3 + i) % 20), v, v]));
  }
  const model = join(dir, "shades.mcnc");
  const shades = lastJson(mcnc("train", "--data", images, "--method", "dense", "--epochs", "10", "--batch", "8", "--out", model, "--json", "--quiet").stdout);
  assert.deepEqual((shades.model_config as { input: number[] }).input, [4, 4, 3]);
  assert.equal(shades.accuracy, 1);
  assert.equal(lastJson(mcnc("eval", model, "--data", images, "--json").stdout).accuracy, 1);
});
