/**
 * Text to tokens and back. mcnc's own GPT reads bytes; a Hugging Face model folder brings its own
 * tokenizer (folder-tokenizer.ts).
 */

export interface StreamDecoder {
  next(token: number): string;
  end(): string;
}

export interface Tokenizer {
  /** What it is, for people: "bytes", or the files it came from. */
  name: string;
  /** Token ids run from 0 to vocab - 1. */
  vocab: number;
  /**
   * `prompt`: as a prompt is encoded, with the special tokens the tokenizer puts around a text (a
   * LLaMA's <s> before it), as transformers' tokenizer(text) does; else the text's own tokens.
   */
  encode(text: string, prompt?: boolean): number[];
  /**
   * A decoder for a stream of tokens: `next` gives the text a token completes (a character may span
   * tokens), `end` what is left. `after`: tokens the stream continues (a prompt shown elsewhere).
   */
  streamDecoder(after?: ArrayLike<number>): StreamDecoder;
  /** The token a generation starts from when the prompt is empty. */
  start: number;
}

/** mcnc's byte-level GPT: a token is a byte of UTF-8. */
export const BYTES: Tokenizer = {
  name: "bytes",
  vocab: 256,
  encode: (text) => Array.from(new TextEncoder().encode(text)),
  streamDecoder() {
    const utf8 = new TextDecoder("utf-8");
    return { next: (token) => utf8.decode(Uint8Array.of(token), { stream: true }), end: () => utf8.decode() };
  },
  // A document after a paragraph break.
  start: 0x0a,
};
