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
  encode(text: string): number[];
  /** A decoder for a stream of tokens: `next` gives the text a token completes (a character may span tokens), `end` what is left. */
  streamDecoder(): StreamDecoder;
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
