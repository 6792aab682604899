/**
 * What the trainer learns from and how it is scored, for each kind of model: image classification
 * (accuracy on the test split) and next-byte prediction (bits per byte on held-out text). A batch is
 * a pure function of (seed, step), so a run repeats exactly and a resumed run continues exactly.
 */
import { nn, numpy as np, tree } from "@jax-js/jax";
import { fused } from "../engine/fused.js";
import { compile, onEngine, put, read, type Tensor } from "../engine/program.js";
import { dataRecord, type Dataset } from "../data/dataset.js";
import type { TextCorpus } from "../data/text.js";
import { BYTES } from "../data/tokenizer.js";
import { UserError } from "../errors.js";
import { oneHot } from "../model/layers.js";
import type { Model } from "../model/model.js";
import type { Params } from "../model/params.js";
import { seededBits, seededPermutation, STREAM } from "../rng/seeded.js";
import { accuracy, predictor, type Predictor } from "./evaluate.js";

/** What an evaluation measured: `accuracy`, or `bits_per_byte`, `perplexity` and `loss` (nats). */
export type Metrics = Record<string, number>;

export interface HostBatch {
  x: Float32Array | Int32Array;
  xShape: number[];
  /** Integer targets: a class per image, or the next byte at each position. */
  y: Int32Array;
  yShape: number[];
}

export interface Task {
  /** The data's name, as files record it. */
  data: string;
  /** How much training data, for people: "60000 training images". */
  size: string;
  /** The metric a run is judged by, and which way is better. */
  metric: "accuracy" | "bits_per_byte";
  higherIsBetter: boolean;
  /** What throughput counts: images, or tokens. */
  unit: "samples" | "tokens";
  /** What a file records of the data so that a reader prepares other data the same way (data/dataset.ts, dataRecord). */
  recorded?: Record<string, unknown>;
  /** Training samples (images or rows), for a classifier. */
  samples?: number;
  /** Units in one batch row (1 image, or a window of `context` tokens). */
  unitsPerRow: number;
  /** Rows a step reads, summed over an epoch: one pass over the training data. */
  stepsPerEpoch(batch: number): number;
  /**
   * The rows of step `step`. With `reuse`, into the arrays the previous such call returned (a training
   * loop that is done with each batch before it asks for the next: no new array per step).
   */
  batch(seed: number, step: number, size: number, reuse?: boolean): Promise<HostBatch>;
  /** Scores parameters on either engine; does not consume them. `progress` hears the fraction done. */
  evaluate(params: Record<string, Tensor>, progress?: (done: number) => void): Promise<Metrics>;
}

/** Mean cross-entropy of logits [N, V] against target weights [N, V] (one-hot rows). */
const weightedCrossEntropy = fused("cross_entropy", (logits: np.Array, weights: np.Array) => nn.logSoftmax(logits, -1).mul(weights).sum().mul(-1 / logits.shape[0]!));

/** Mean cross-entropy of logits [..., V] against integer targets [...]. Consumes its arguments. */
export function crossEntropy(logits: np.Array, targets: np.Array): np.Array {
  const V = logits.shape.at(-1)!;
  const n = targets.size;
  return weightedCrossEntropy(logits.reshape([n, V]), oneHot(targets.reshape([n]), V));
}

export function imageTask(data: Dataset, model: Model): Task {
  if (model.kind !== "classifier") throw new UserError(`--model ${model.name} reads text, not images (give --data a text file or folder)`);
  const sample = data.imageShape.reduce((a, b) => a * b, 1);
  let predict: Predictor | null = null;
  let cached: { seed: number; epoch: number; order: Uint32Array } | null = null;
  let kept: { x: Float32Array; y: Int32Array } | null = null;
  const stepsPerEpoch = (batch: number) => Math.floor(data.train.count / batch);
  return {
    data: data.name,
    size: `${data.train.count} training ${data.unit}`,
    recorded: dataRecord(data),
    samples: data.train.count,
    metric: "accuracy",
    higherIsBetter: true,
    unit: "samples",
    unitsPerRow: 1,
    stepsPerEpoch,
    async batch(seed, step, size, reuse) {
      // Full batches of the epoch's seeded order; a final partial batch is dropped (one shape, one
      // compiled kernel set), and the order changes each epoch, so no sample is dropped for good.
      const epoch = Math.floor(step / stepsPerEpoch(size));
      if (cached?.epoch !== epoch || cached.seed !== seed) cached = { seed, epoch, order: await seededPermutation(seed, [STREAM.shuffle, epoch], data.train.count) };
      const start = (step % stepsPerEpoch(size)) * size;
      const fresh = () => ({ x: new Float32Array(size * sample), y: new Int32Array(size) });
      if (reuse && kept?.y.length !== size) kept = fresh();
      const { x, y } = reuse ? kept! : fresh();
      for (let i = 0; i < size; i++) {
        const s = cached.order[start + i]!;
        x.set(data.train.x.subarray(s * sample, (s + 1) * sample), i * sample);
        y[i] = data.train.y[s]!;
      }
      return { x, xShape: [size, ...data.imageShape], y, yShape: [size] };
    },
    async evaluate(params, progress) {
      predict ??= predictor(model);
      return { accuracy: await accuracy(predict, params, data.test, data.imageShape, progress) };
    },
  };
}

/** Windows evaluated at once. */
const EVAL_ROWS = 16;
/** Steps whose window offsets are drawn together. */
const OFFSET_BLOCK = 64;
export const DEFAULT_EVAL_TOKENS = 65536;

/** Steps an epoch should have at least, when the batch is the default (docs/results.md, "Few samples"). */
export const MIN_STEPS_PER_EPOCH = 64;

/**
 * Minibatch size when none is given: 32 windows of text; for images or rows, 128, halved (down to 32)
 * until an epoch of `samples` has MIN_STEPS_PER_EPOCH steps. On 2,000 images, 128 leaves 46 steps in
 * three epochs, too few for a compressed model's few numbers to move far (issue 12).
 */
export function defaultBatch(model: Pick<Model, "kind">, samples?: number): number {
  if (model.kind === "language") return 32;
  let batch = 128;
  while (samples !== undefined && batch > 32 && samples / batch < MIN_STEPS_PER_EPOCH) batch /= 2;
  return batch;
}

export interface TextTaskOptions {
  /** Validation tokens scored per evaluation (evenly spaced windows; 0: all of them). */
  evalTokens?: number;
}

export function textTask(corpus: TextCorpus, model: Model, options: TextTaskOptions = {}): Task {
  if (!model.lm) throw new UserError(`--model ${model.name} reads images, not text`);
  const V = model.lm.vocab;
  // Bytes are the tokens of mcnc's own GPT; a model with its own tokenizer reads the text as it splits it.
  const tokenizer = model.tokenizer?.() ?? BYTES;
  if (tokenizer.vocab !== V) throw new UserError(`this ${model.name} reads ${V} tokens, and text here is ${tokenizer.name} (${tokenizer.vocab}): give it its tokenizer (a Hugging Face folder's)`);
  const tokens = (bytes: Uint8Array) => (tokenizer === BYTES ? bytes : Int32Array.from(tokenizer.encode(new TextDecoder().decode(bytes))));
  const train = tokens(corpus.train);
  const valid = tokens(corpus.valid);
  const T = model.lm.context;
  for (const [split, text] of [
    ["training", train],
    ["validation", valid],
  ] as const) {
    if (text.length < T + 1) {
      throw new UserError(`${corpus.name}: ${text.length} ${tokenizer === BYTES ? "bytes" : "tokens"} of ${split} text; one context of ${T} tokens needs at least ${T + 1} (give more text or a smaller --context)`);
    }
  }
  const evalTokens = options.evalTokens ?? DEFAULT_EVAL_TOKENS;
  if (!Number.isInteger(evalTokens) || evalTokens < 0) throw new UserError(`--eval-tokens must be 0 (all) or a positive integer, got ${evalTokens}`);
  const windows = Math.floor((valid.length - 1) / T);
  const picked = evalTokens === 0 ? windows : Math.max(1, Math.min(windows, Math.ceil(evalTokens / T)));
  // Bits per byte from bits per token, at the held-out text's own bytes per token (exactly 1 for bytes).
  const tokensPerByte = valid.length / corpus.valid.length;
  // Scores and one-hot targets are [rows, T, V]: at a large vocabulary, fewer windows at once.
  const evalRows = Math.max(1, Math.min(EVAL_ROWS, Math.floor(2 ** 23 / (T * V))));
  const span = train.length - T;
  let offsets: { seed: number; block: number; bits: Uint32Array } | null = null;
  const nll = compile((params: Params, x: np.Array, y: np.Array) => crossEntropy(model.apply(params, x), y), { name: `${model.name} loss` });

  return {
    data: corpus.name,
    size: `${corpus.train.length} bytes of training text in ${corpus.documents.train} documents (${corpus.valid.length} held out in ${corpus.documents.valid})${tokenizer === BYTES ? "" : `, ${train.length} and ${valid.length} tokens`}`,
    metric: "bits_per_byte",
    higherIsBetter: false,
    unit: "tokens",
    unitsPerRow: T,
    stepsPerEpoch: (batch) => Math.max(1, Math.floor(train.length / (batch * T))),
    async batch(seed, step, size) {
      // Windows of T + 1 tokens at seeded offsets, anywhere in the training text.
      const block = Math.floor(step / OFFSET_BLOCK);
      if (offsets?.block !== block || offsets.seed !== seed || offsets.bits.length !== OFFSET_BLOCK * size) {
        offsets = { seed, block, bits: await seededBits(seed, [STREAM.shuffle, block], OFFSET_BLOCK * size) };
      }
      const x = new Int32Array(size * T);
      const y = new Int32Array(size * T);
      const first = (step % OFFSET_BLOCK) * size;
      for (let r = 0; r < size; r++) {
        const at = Math.floor((offsets.bits[first + r]! / 2 ** 32) * span);
        for (let t = 0; t < T; t++) {
          x[r * T + t] = train[at + t]!;
          y[r * T + t] = train[at + t + 1]!;
        }
      }
      return { x, xShape: [size, T], y, yShape: [size, T] };
    },
    async evaluate(params, progress) {
      // Evenly spaced non-overlapping windows of the validation text, the same ones every time.
      const onIt = await onEngine(tree.ref(params));
      let sum = 0;
      let count = 0;
      for (let first = 0; first < picked; first += evalRows) {
        const rows = Math.min(evalRows, picked - first);
        const x = new Int32Array(rows * T);
        const y = new Int32Array(rows * T);
        for (let r = 0; r < rows; r++) {
          const at = Math.floor(((first + r) * windows) / picked) * T;
          for (let t = 0; t < T; t++) {
            x[r * T + t] = valid[at + t]!;
            y[r * T + t] = valid[at + t + 1]!;
          }
        }
        const mean = await nll(tree.ref(onIt), put(x, [rows, T]), put(y, [rows, T]));
        sum += (await read(mean))[0]! * rows * T;
        count += rows * T;
        progress?.((first + rows) / picked);
      }
      tree.dispose(onIt);
      const loss = sum / count;
      return { bits_per_byte: (loss / Math.LN2) * tokensPerByte, perplexity: Math.exp(loss), loss };
    },
  };
}
