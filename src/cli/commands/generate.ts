/** mcnc generate --model BASE [--adapter A] --prompt TEXT: stream text from a GPT as it is produced. */
import { once } from "node:events";
import { readWholeFile } from "../../files.js";
import { UserError } from "../../errors.js";
import { timedRebuild } from "../../format/model-file.js";
import { gptDecoder } from "../../generate/decoder.js";
import { generate } from "../../generate/sample.js";
import { toDevice } from "../../model/params.js";
import { JSON_FLAG, print, round, ENGINE_FLAGS, type Command } from "../command.js";
import { ADAPTER_FLAG } from "./eval.js";
import { openModel, startEngine } from "./shared.js";

/** Tokens one command may ask for: streamed, so memory stays bounded (a JSON answer holds them all: fewer). */
export const MAX_TOKENS = 1e9;
const MAX_JSON_TOKENS = 1 << 20;

function promptBytes(f: Record<string, unknown>): Uint8Array {
  if (f.prompt !== undefined && f["prompt-file"] !== undefined) throw new UserError("give --prompt or --prompt-file, not both");
  if (typeof f["prompt-file"] === "string") {
    // Bytes as they are: the model reads bytes, valid UTF-8 or not.
    return readWholeFile(f["prompt-file"], "prompt file");
  }
  return new TextEncoder().encode((f.prompt as string | undefined) ?? "");
}

async function run(f: Record<string, unknown>): Promise<void> {
  if (typeof f.model !== "string") throw new UserError("mcnc generate needs --model FILE (a GPT trained with mcnc train --model gpt)");
  const tokens = (f.tokens as number | undefined) ?? 200;
  if (!(tokens >= 1 && tokens <= MAX_TOKENS)) throw new UserError(`--tokens must be from 1 to ${MAX_TOKENS}, got ${tokens}`);
  if (f.json && tokens > MAX_JSON_TOKENS) throw new UserError(`--json holds the text in one object: at most ${MAX_JSON_TOKENS} tokens (stream more without --json)`);
  const temperature = (f.temperature as number | undefined) ?? 0.8;
  if (!(temperature >= 0 && temperature <= 100)) throw new UserError(`--temperature must be from 0 to 100, got ${temperature}`);
  const topK = (f["top-k"] as number | undefined) ?? 0;
  if (!(topK >= 0 && topK <= 1 << 16)) throw new UserError(`--top-k must be 0 (all) or a positive count, got ${topK}`);
  const seed = (f.seed as number | undefined) ?? 0;
  if (!(seed >= 0 && seed <= 2 ** 31 - 1)) throw new UserError(`--seed must be from 0 to ${2 ** 31 - 1}, got ${seed}`);
  const prompt = promptBytes(f);

  await startEngine(f);
  const { loaded, base } = await openModel(f.model, f.adapter as string | undefined);
  const d = loaded.model.description;
  if (d.name !== "gpt") throw new UserError(`generate needs a language model; ${f.model} holds a ${d.name}`);
  const rebuilt = await timedRebuild(loaded, 0, base);
  const decoder = gptDecoder(d, toDevice(loaded.model.specs, rebuilt.params));

  const decoder8 = new TextDecoder("utf-8");
  const out: number[] = [];
  let pending = "";
  const started = performance.now();
  let produced = 0;
  for await (const byte of generate(decoder, prompt, { tokens, temperature, topK, seed })) {
    produced++;
    const text = decoder8.decode(Uint8Array.of(byte), { stream: true });
    if (f.json) {
      out.push(byte);
      continue;
    }
    pending += text;
    // Flush at line ends and every few bytes: text appears as it is made, without a write per byte.
    if (pending.length >= 64 || text.includes("\n")) {
      if (!process.stdout.write(pending)) await once(process.stdout, "drain");
      pending = "";
    }
  }
  pending += decoder8.decode();
  const seconds = (performance.now() - started) / 1000;
  decoder.dispose();
  if (f.json) {
    print(
      JSON.stringify({
        command: "generate",
        model: f.model,
        ...(f.adapter ? { adapter: f.adapter } : {}),
        prompt_tokens: prompt.length,
        tokens: produced,
        text: new TextDecoder("utf-8").decode(Uint8Array.from(out)),
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

export const generateCommand: Command = {
  name: "generate",
  summary: "generate text from a GPT (with an adapter, if given), streamed as it is produced",
  usage: 'mcnc generate --model BASE.mcnc [--adapter A.mcnc] --prompt "..." [--tokens N] [--temperature T] [--top-k K] [--seed S]',
  examples: [
    "npx mcnc generate --model data/models/gpt-sotu.mcnc --prompt \"The state of the Union\" --tokens 200",
    "npx mcnc generate --model data/models/gpt-sotu.mcnc --adapter adapter.mcnc --prompt \"Call me\" --temperature 0",
  ],
  flags: () => [
    { name: "model", type: "string", help: "a GPT file (the base, when --adapter is given)" },
    ADAPTER_FLAG,
    { name: "prompt", type: "string", help: "text to continue (UTF-8; its last context bytes are used)", default: "''" },
    { name: "prompt-file", type: "string", help: "read the prompt's bytes from a file" },
    { name: "tokens", type: "int", help: `bytes to generate (up to ${MAX_TOKENS}, streamed)`, default: "200" },
    { name: "temperature", type: "float", help: "sampling temperature (0: always the most likely byte)", default: "0.8" },
    { name: "top-k", type: "int", help: "sample among the k most likely bytes (0: all)", default: "0" },
    { name: "seed", type: "int", help: "seed of the sampling", default: "0" },
    ...ENGINE_FLAGS,
    JSON_FLAG,
  ],
  maxPositionals: 0,
  run,
};
