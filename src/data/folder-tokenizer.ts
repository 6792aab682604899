/**
 * The tokenizer a Hugging Face model folder holds: `tokenizer.json` (with `tokenizer_config.json`), or
 * GPT-2's `vocab.json` and `merges.txt`. They are run by @huggingface/tokenizers (Hugging Face's
 * JavaScript port), never by a tokenizer written here.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { UserError } from "../errors.js";
import { readJsonObject, readWholeFile } from "../files.js";
import type { Tokenizer } from "./tokenizer.js";

/** Largest tokenizer file read: Llama 3's tokenizer.json is 9 MB. */
const MAX_TOKENIZER_BYTES = 64 << 20;

const json = (path: string, what: string) => readJsonObject(path, what, MAX_TOKENIZER_BYTES);

/** GPT-2's byte-level BPE as tokenizer.json states it, from its vocab.json and merges.txt. */
export function gpt2TokenizerJson(dir: string): Record<string, unknown> {
  const vocab = json(join(dir, "vocab.json"), "vocab.json");
  const lines = new TextDecoder().decode(readWholeFile(join(dir, "merges.txt"), "merges.txt", MAX_TOKENIZER_BYTES)).split("\n");
  const merges = lines.filter((l, i) => l.trim() !== "" && !(i === 0 && l.startsWith("#version")));
  const end = vocab["<|endoftext|>"];
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    added_tokens: typeof end === "number" ? [{ id: end, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }] : [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

/** Text exactly as the tokens spell it: special tokens shown, no spaces tidied away. */
const DECODE = { skip_special_tokens: false, clean_up_tokenization_spaces: false };

/** The tokenizer a model folder holds; `vocab`: the model's vocabulary size, which the tokenizer must fit. */
export function folderTokenizer(dir: string, vocab: number): Tokenizer {
  const hasJson = existsSync(join(dir, "tokenizer.json"));
  if (!hasJson && !(existsSync(join(dir, "vocab.json")) && existsSync(join(dir, "merges.txt")))) {
    throw new UserError(`${dir} has no tokenizer: it needs tokenizer.json, or GPT-2's vocab.json and merges.txt`);
  }
  const spec = hasJson ? json(join(dir, "tokenizer.json"), "tokenizer.json") : gpt2TokenizerJson(dir);
  const config = existsSync(join(dir, "tokenizer_config.json")) ? json(join(dir, "tokenizer_config.json"), "tokenizer_config.json") : {};
  let tokenizer: HfTokenizer;
  try {
    tokenizer = new HfTokenizer(spec, config);
  } catch (e) {
    throw new UserError(`${dir}: the tokenizer cannot be read: ${(e as Error).message}`);
  }
  const ids = Object.values((spec.model as { vocab?: Record<string, number> } | undefined)?.vocab ?? {});
  const largest = Math.max(-1, ...ids.filter((v) => typeof v === "number"), ...(((spec.added_tokens as Array<{ id?: unknown }> | undefined) ?? []).map((t) => Number(t.id)).filter(Number.isFinite)));
  if (largest >= vocab) throw new UserError(`${dir}: the tokenizer has token ${largest}, beyond the model's vocabulary of ${vocab}`);
  const named = (field: string) => (typeof config[field] === "string" ? tokenizer.token_to_id(config[field] as string) : undefined);
  // A document starts after its BOS (a LLaMA's <s>), or after the end of another (GPT-2's <|endoftext|>).
  const start = named("bos_token") ?? named("eos_token") ?? tokenizer.token_to_id("<|endoftext|>") ?? 0;
  const decode = (tokens: number[]) => (tokens.length === 0 ? "" : tokenizer.decode(tokens, DECODE));
  const special = new Set(((spec.added_tokens as Array<{ id?: unknown; special?: unknown }> | undefined) ?? []).filter((t) => t.special === true).map((t) => Number(t.id)));
  // The text tokens last shown: what the next ones are decoded after (a special token starts no text).
  const lastText = (tokens: ArrayLike<number>) => Array.from(tokens).filter((t) => !special.has(t)).slice(-4);
  return {
    name: hasJson ? "tokenizer.json" : "vocab.json + merges.txt",
    vocab,
    encode: (text, prompt = false) => tokenizer.encode(text, { add_special_tokens: prompt }).ids,
    streamDecoder(after = []) {
      // New tokens are decoded after the last few already shown and only the text past those is
      // given: SentencePiece's decoder drops a sequence's leading space, which a token alone would lose.
      // Tokens are held back while they end inside a character (U+FFFD), at most four of them.
      let shown = lastText(after);
      let pending: number[] = [];
      const flush = () => {
        const all = [...shown, ...pending];
        const text = decode(all).slice(decode(shown).length);
        shown = lastText(all);
        pending = [];
        return text;
      };
      return {
        next(token) {
          pending.push(token);
          return pending.length < 4 && decode([...shown, ...pending]).endsWith("\uFFFD") ? "" : flush();
        },
        end: flush,
      };
    },
    start,
  };
}
