/** mcnc generate --model BASE [--adapter A] --prompt TEXT: stream text from a language model as it is produced. */
import { once } from "node:events";
import { readWholeFile } from "../../files.js";
import { UserError } from "../../errors.js";
import { timedRebuild } from "../../format/model-file.js";
import { BYTES } from "../../data/tokenizer.js";
import { languageDecoder } from "../../generate/decoder.js";
import { generate } from "../../generate/sample.js";
import { toDevice } from "../../model/params.js";
import type { FlagValues } from "../args.js";
import { ADAPTER_FLAG, command, ENGINE_FLAGS, JSON_FLAG, print, round, SEED_FLAG, TOKENIZER_FLAG, WINDOW_FLAG } from "../command.js";
import { openModel, startEngine } from "./shared.js";

/** Tokens one command may ask for: streamed, so memory stays bounded (a JSON answer holds them all: fewer). */
export const MAX_TOKENS = 1e9;
const MAX_JSON_TOKENS = 1 << 20;

const FLAGS = [
  { name: "model", type: "string", help: "a language model: an .mcnc file, or a Hugging Face GPT-2 or LLaMA-family folder with its tokenizer (the base, when --adapter is given)", required: true },
  ADAPTER_FLAG,
  { name: "prompt", type: "string", help: "text to continue (UTF-8; its last context bytes are used)", defaultText: "''" },
  { name: "prompt-file", type: "string", help: "read the prompt's bytes from a file" },
  { name: "tokens", type: "int", help: "tokens to generate (bytes for mcnc's own GPT; streamed)", min: 1, max: MAX_TOKENS, default: 200 },
  { name: "temperature", type: "float", help: "sampling temperature (0: always the most likely token)", min: 0, max: 100, default: 0.8 },
  { name: "top-k", type: "int", help: "sample among the k most likely tokens (0: all; 1: greedy)", min: 0, max: 1 << 16, default: 0 },
  { ...SEED_FLAG, help: "seed of the sampling" },
  WINDOW_FLAG,
  TOKENIZER_FLAG,
  ...ENGINE_FLAGS,
  JSON_FLAG,
] as const;
type Flags = FlagValues<typeof FLAGS>;

function promptBytes(f: Flags): Uint8Array {
  if (f.prompt !== undefined && f["prompt-file"] !== undefined) throw new UserError("give --prompt or --prompt-file, not both");
  // Bytes as they are: the model reads bytes, valid UTF-8 or not.
  if (f["prompt-file"] !== undefined) return readWholeFile(f["prompt-file"], "prompt file");
  return new TextEncoder().encode(f.prompt ?? "");
}

async function run(f: Flags): Promise<void> {
  const { tokens, temperature, "top-k": topK, seed } = f;
  if (f.json && tokens > MAX_JSON_TOKENS) throw new UserError(`--json holds the text in one object: at most ${MAX_JSON_TOKENS} tokens (stream more without --json)`);
  const prompt = promptBytes(f);

  await startEngine(f);
  const { loaded, base } = await openModel(f.model, f.adapter, { context: f.context, tokenizer: f.tokenizer });
  const lm = loaded.model.lm;
  if (!lm) throw new UserError(`generate needs a language model; ${f.model} holds a ${loaded.model.name}`);
  const rebuilt = await timedRebuild(loaded, 0, base);
  const decoder = languageDecoder(lm, toDevice(loaded.model.specs, rebuilt.params));
  // A Hugging Face folder brings its tokenizer; mcnc's own GPT reads the prompt's bytes as they are.
  const tokenizer = loaded.model.tokenizer?.() ?? BYTES;
  const promptTokens = tokenizer === BYTES ? prompt : tokenizer.encode(new TextDecoder().decode(prompt), true);

  const text = tokenizer.streamDecoder(promptTokens);
  let all = "";
  let pending = "";
  const started = performance.now();
  let produced = 0;
  for await (const token of generate(decoder, promptTokens, { tokens, temperature, topK, seed, start: tokenizer.start })) {
    produced++;
    const piece = text.next(token);
    if (f.json) {
      all += piece;
      continue;
    }
    pending += piece;
    // Flush at line ends and every few characters: text appears as it is made, without a write per token.
    if (pending.length >= 64 || piece.includes("\n")) {
      if (!process.stdout.write(pending)) await once(process.stdout, "drain");
      pending = "";
    }
  }
  pending += text.end();
  all += pending;
  const seconds = (performance.now() - started) / 1000;
  decoder.dispose();
  if (f.json) {
    print(
      JSON.stringify({
        command: "generate",
        model: f.model,
        ...(f.adapter ? { adapter: f.adapter } : {}),
        prompt_tokens: promptTokens.length,
        tokens: produced,
        text: all,
        tokens_per_s: round(produced / seconds, 1),
        seed,
        temperature,
        top_k: topK,
      }),
    );
  } else {
    process.stdout.write(`${pending}\n`);
    process.stderr.write(`mcnc: ${produced} tokens in ${seconds.toFixed(2)} s (${(produced / seconds).toFixed(0)} tokens/s)\n`);
  }
}

export const generateCommand = command({
  name: "generate",
  summary: "generate text from a language model (with an adapter, if given), streamed as it is produced",
  usage: 'mcnc generate --model BASE.mcnc [--adapter A.mcnc] --prompt "..." [--tokens N] [--temperature T] [--top-k K] [--seed S]',
  examples: [
    "npx mcnc generate --model data/models/gpt-sotu.mcnc --prompt \"The state of the Union\" --tokens 200",
    "npx mcnc generate --model data/models/gpt-sotu.mcnc --adapter adapter.mcnc --prompt \"Call me\" --temperature 0",
  ],
  flags: FLAGS,
  maxPositionals: 0,
  run,
});
