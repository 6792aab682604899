/**
 * Text corpora for the language models: a UTF-8 file, or a folder of documents (`.txt` or `.txt.gz`),
 * read as bytes (the GPT's tokens). The validation split is fixed for a corpus, whatever the training
 * seed: whole documents, drawn by a seeded permutation, for a folder; the tail, cut at a line, for a
 * single file. So validation text is never seen in training, not even as part of a window.
 */
import { readdirSync, statSync } from "node:fs";
import { readWholeFile } from "../files.js";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { systemReason, UserError } from "../errors.js";
import { seededPermutation, STREAM } from "../rng/seeded.js";

export interface TextCorpus {
  /** The file or folder, or the bundled corpus's name. */
  name: string;
  train: Uint8Array;
  valid: Uint8Array;
  documents: { train: number; valid: number };
}

export interface TextOptions {
  /** Fraction of the bytes held out for validation (whole documents, so approximately). */
  validFraction?: number;
  /** Name recorded for a bundled corpus. */
  name?: string;
}

/** Bytes of text read at most (compressed files count what they inflate to). */
export const MAX_TEXT_BYTES = 2 ** 30;
const MAX_DOCUMENTS = 100_000;
export const DEFAULT_VALID_FRACTION = 0.1;
/** The split's own seed: one validation set per corpus, shared by every run on it. */
const SPLIT_SEED = 0;
/** Between documents, as a paragraph break: the model sees where one ends. */
const SEPARATOR = new TextEncoder().encode("\n\n");

const isDocument = (name: string) => /\.txt(\.gz)?$/i.test(name);

function readDocument(path: string, budget: number): Uint8Array {
  const raw = readWholeFile(path, "document");
  let bytes = raw;
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw, { maxOutputLength: Math.max(1, budget) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ERR_BUFFER_TOO_LARGE") throw new UserError(`${path}: inflates past the limit of ${MAX_TEXT_BYTES} bytes of text`);
      throw new UserError(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length > budget) throw new UserError(`${path}: the corpus exceeds the limit of ${MAX_TEXT_BYTES} bytes of text`);
  checkText(bytes, path);
  return bytes;
}

/** Refuse what is not text: a NUL byte (binary data) or invalid UTF-8. */
export function checkText(bytes: Uint8Array, name: string): void {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new UserError(`${name}: not text (a NUL byte at offset ${nul}; binary file?)`);
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${name}: not valid UTF-8 text`);
  }
}

function join2(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0) + SEPARATOR.length * Math.max(0, parts.length - 1);
  const out = new Uint8Array(total);
  let at = 0;
  parts.forEach((p, i) => {
    if (i > 0) {
      out.set(SEPARATOR, at);
      at += SEPARATOR.length;
    }
    out.set(p, at);
    at += p.length;
  });
  return out;
}

/** The tail of one text as validation, starting after the first newline past the cut (if any). */
function splitTail(bytes: Uint8Array, fraction: number): [Uint8Array, Uint8Array] {
  let cut = Math.floor(bytes.length * (1 - fraction));
  const newline = bytes.indexOf(0x0a, cut);
  if (newline >= 0 && newline < bytes.length - 1 && newline - cut < bytes.length * fraction * 0.5) cut = newline + 1;
  return [bytes.subarray(0, cut), bytes.subarray(cut)];
}

export async function loadText(path: string, options: TextOptions = {}): Promise<TextCorpus> {
  const fraction = options.validFraction ?? DEFAULT_VALID_FRACTION;
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`validation fraction must be in (0, 1), got ${fraction}`);
  let stat;
  try {
    stat = statSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${systemReason(e)}`);
  }
  const name = options.name ?? path;
  if (stat.isFile()) {
    const bytes = readDocument(path, MAX_TEXT_BYTES);
    const [train, valid] = splitTail(bytes, fraction);
    return { name, train, valid, documents: { train: 1, valid: 1 } };
  }
  if (!stat.isDirectory()) throw new UserError(`${path} is neither a file nor a folder`);
  // Code-unit order, so every platform lists the documents alike (the split depends on the order).
  const files = readdirSync(path)
    .filter(isDocument)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (files.length === 0) throw new UserError(`${path} holds no text documents (*.txt or *.txt.gz)`);
  if (files.length > MAX_DOCUMENTS) throw new UserError(`${path} holds ${files.length} documents; the limit is ${MAX_DOCUMENTS}`);
  let budget = MAX_TEXT_BYTES;
  const docs = files.map((f) => {
    const doc = readDocument(join(path, f), budget);
    budget -= doc.length;
    return doc;
  });
  if (docs.length === 1) {
    const [train, valid] = splitTail(docs[0]!, fraction);
    return { name, train, valid, documents: { train: 1, valid: 1 } };
  }
  const total = docs.reduce((n, d) => n + d.length, 0);
  const order = await seededPermutation(SPLIT_SEED, [STREAM.split], docs.length);
  const held = new Set<number>();
  let heldBytes = 0;
  for (const i of order) {
    if (heldBytes >= fraction * total || held.size === docs.length - 1) break;
    held.add(i);
    heldBytes += docs[i]!.length;
  }
  const train = join2(docs.filter((_, i) => !held.has(i)));
  const valid = join2(docs.filter((_, i) => held.has(i)));
  return { name, train, valid, documents: { train: docs.length - held.size, valid: held.size } };
}
