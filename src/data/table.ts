/**
 * Tables of numbers with a label column: CSV or TSV (RFC 4180 quoting), plain or gzipped, with or
 * without a header row. One file is split into training and test rows by the fixed rule of data/raw.ts;
 * a directory holding train.csv and test.csv (or .tsv) is split already. Cells must be decimal numbers:
 * a missing or text cell is refused by row and column, not filled in.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { systemReason, UserError } from "../errors.js";
import { MAX_FILE_BYTES, readWholeFile, regularFileSize } from "../files.js";
import { checkMemory, memoryLimit } from "../limits.js";
import { classIndices, fixedOrder, heldOutSplit, MAX_IMAGE_SIDE, type RawData } from "./raw.js";

export const TABLE_HELP = "a table (.csv or .tsv, optionally .gz) or a directory with train and test tables";
const TABLE_FILE = /\.(csv|tsv)(\.gz)?$/i;
/** Names a label column goes by, when no flag names it; else it is the last column. */
const LABEL_NAMES = ["label", "class", "target"];
/** Columns of features at most: a model's input is bounded to this many values a side. */
export const MAX_COLUMNS = MAX_IMAGE_SIDE;
/**
 * Bytes of memory per byte of table: the text (as read and as a string), its numbers as float32 (at
 * most one per two bytes, in an array that grows by doubling), the rows taken in order and the
 * normalised copy. Measured by bench/data-estimates.ts (docs/results.md).
 */
const BYTES_PER_TABLE_BYTE = 8;
/** Bytes of memory per row besides: its label (a shared string) in the lists that order and split the rows. */
const BYTES_PER_ROW = 128;

export interface TableFiles {
  train: string;
  /** Absent: the one table is split into training and test rows. */
  test?: string;
}

/** The table(s) `path` names, or undefined when it is not a table or a directory of tables. */
export function findTables(path: string): TableFiles | undefined {
  if (TABLE_FILE.test(path) && statSync(path).isFile()) return { train: path };
  if (!statSync(path).isDirectory()) return undefined;
  const find = (stem: string) => ["csv", "tsv", "csv.gz", "tsv.gz"].map((e) => join(path, `${stem}.${e}`)).find(existsSync);
  const [train, test] = [find("train"), find("test")];
  if (!train && !test) return undefined;
  if (!train || !test) throw new UserError(`${path} has a ${train ? "train" : "test"} table but no ${train ? "test" : "train"} table (train.csv and test.csv, or .tsv)`);
  return { train, test };
}

function readText(path: string): string {
  checkMemory(BYTES_PER_TABLE_BYTE * regularFileSize(path), `the table ${path}`);
  let bytes: Uint8Array;
  try {
    bytes = readWholeFile(path, "table");
    // Inflated to at most what the limit allows, so a small gzip cannot expand without bound.
    if (path.toLowerCase().endsWith(".gz")) bytes = gunzipSync(bytes, { maxOutputLength: Math.min(Math.floor(memoryLimit() / BYTES_PER_TABLE_BYTE), MAX_FILE_BYTES) });
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (e instanceof RangeError || (e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw new UserError(`the table ${path} inflates beyond the memory limit (raise it with --max-memory MIB)`);
    throw new UserError(`cannot read ${path}: ${systemReason(e)}`);
  }
  let lines = 1;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) lines++;
  checkMemory(BYTES_PER_TABLE_BYTE * bytes.length + BYTES_PER_ROW * lines, `the table ${path} (${lines} lines)`);
  const text = new TextDecoder("utf-8").decode(bytes);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Rows of cells, with RFC 4180 quotes ("a ""b""" is a "b"); blank lines are skipped. */
function* rows(text: string, delimiter: string, path: string): Generator<{ cells: string[]; line: number }> {
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i <= text.length; i++) {
    const ch = i < text.length ? text[i]! : "\n";
    if (quoted) {
      if (i === text.length) throw new UserError(`${path}: a quote opened on line ${start} is never closed`);
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === "\n") line++;
        cell += ch;
      }
    } else if (ch === '"' && cell.trim() === "") {
      quoted = true;
      cell = "";
    } else if (ch === delimiter) {
      cells.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      cells.push(cell);
      if (cells.length > 1 || cells[0]!.trim() !== "") yield { cells, line: start };
      cells = [];
      cell = "";
      start = ++line;
    } else cell += ch;
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export interface Table {
  columns: string[] | undefined;
  label: string;
  features: Float32Array;
  labels: string[];
}

function labelIndex(header: string[] | undefined, width: number, flag: string | undefined, path: string): number {
  if (flag !== undefined) {
    const byName = header?.findIndex((h) => h.trim() === flag) ?? -1;
    if (byName >= 0) return byName;
    if (/^\d+$/.test(flag) && Number(flag) < width) return Number(flag);
    throw new UserError(`${path}: no column ${JSON.stringify(flag.slice(0, 40))} to take labels from (${header ? `columns: ${header.slice(0, 8).join(", ")}${width > 8 ? ", ..." : ""}` : `no header; give an index from 0 to ${width - 1}`})`);
  }
  const named = header?.findIndex((h) => LABEL_NAMES.includes(h.trim().toLowerCase())) ?? -1;
  return named >= 0 ? named : width - 1;
}

function readTable(path: string, labelColumn: string | undefined): Table {
  return parseTable(readText(path), path, labelColumn);
}

/** A table's text, delimited as its name's extension says (`.tsv`: tabs, else commas). */
export function parseTable(text: string, path: string, labelColumn: string | undefined): Table {
  const delimiter = /\.tsv(\.gz)?$/i.test(path) ? "\t" : ",";
  let width = 0;
  let columns: string[] | undefined;
  let label = -1;
  let features = new Float32Array(1024);
  let count = 0;
  const labels: string[] = [];
  // One string per distinct label, not one per row: a million rows name a few classes.
  const names = new Map<string, string>();
  for (const { cells, line } of rows(text, delimiter, path)) {
    if (width === 0) {
      width = cells.length;
      if (width < 2) throw new UserError(`${path}: a table needs at least one feature column and a label column (is it ${delimiter === "," ? "comma" : "tab"}-separated?)`);
      if (width - 1 > MAX_COLUMNS) throw new UserError(`${path}: ${width - 1} feature columns, above the limit of ${MAX_COLUMNS}`);
      // A first row with a cell that is not a number is a header.
      if (cells.some((c) => !NUMBER.test(c.trim()))) columns = cells.map((c) => c.trim());
      label = labelIndex(columns, width, labelColumn, path);
      if (columns) continue;
    }
    if (cells.length !== width) throw new UserError(`${path}: line ${line} has ${cells.length} cells, the table ${width}`);
    if (count + width > features.length) {
      const grown = new Float32Array(features.length * 2);
      grown.set(features);
      features = grown;
    }
    for (let j = 0; j < width; j++) {
      const cell = cells[j]!.trim();
      if (j === label) labels.push(names.get(cell) ?? (names.set(cell, cell), cell));
      else if (NUMBER.test(cell)) {
        features[count] = Number(cell);
        if (!Number.isFinite(features[count++]!)) throw new UserError(`${path}: line ${line}, column ${columns?.[j] ?? j + 1}: ${cell.slice(0, 40)} does not fit in float32 (at most about 3.4e38)`);
      } else throw new UserError(`${path}: line ${line}, column ${columns?.[j] ?? j + 1}: ${JSON.stringify(cell.slice(0, 40))} is not a number (mcnc does not fill in missing values)`);
    }
  }
  if (labels.length === 0) throw new UserError(`${path}: the table has no rows`);
  return { columns, label: columns?.[label] ?? String(label), features: features.subarray(0, count), labels };
}

/** `rows` of a table's feature values, in that order. */
function take(t: Table, order: ArrayLike<number>, width: number): Float32Array {
  const out = new Float32Array(order.length * width);
  for (let i = 0; i < order.length; i++) out.set(t.features.subarray(order[i]! * width, (order[i]! + 1) * width), i * width);
  return out;
}

export function readTables(files: TableFiles, options: { classNames?: string[]; labelColumn?: string }): RawData {
  const train = readTable(files.train, options.labelColumn);
  const width = train.features.length / train.labels.length;
  let test = train;
  let order: { train: ArrayLike<number>; test: ArrayLike<number> };
  if (files.test) {
    test = readTable(files.test, options.labelColumn);
    if (test.features.length / test.labels.length !== width || String(test.columns) !== String(train.columns)) throw new UserError(`${files.test} has other columns than ${files.train}`);
    order = { train: fixedOrder(train.labels.length), test: Array.from(test.labels, (_, i) => i) };
  } else {
    if (train.labels.length < 2) throw new UserError(`${files.train}: one row cannot be split into training and test rows`);
    order = heldOutSplit(train.labels.length);
  }
  const pick = (t: Table, o: ArrayLike<number>) => Array.from(o, (i) => t.labels[i]!);
  const classes = classIndices(pick(train, order.train), pick(test, order.test), options.classNames);
  return {
    shape: [1, 1, width],
    scale: "columns",
    train: { values: take(train, order.train, width), labels: classes.train, count: order.train.length },
    test: { values: take(test, order.test, width), labels: classes.test, count: order.test.length },
    ...(classes.names ? { classNames: classes.names } : {}),
    labelColumn: train.label,
  };
}
