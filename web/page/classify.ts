/** An image classifier in the page: which models are one, their class names, and class probabilities. */
import { numpy as np, tree } from "@jax-js/jax";
import type { LoadedModel, Params } from "mcnc/browser";

const FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
/** Fashion-MNIST's training-set pixel statistics, for files that predate recording them. */
const FASHION_NORMALISATION = { mean: 0.286, std: 0.353 };

export interface Current {
  loaded: LoadedModel;
  params: Params;
}

/** An image classifier's description (the page shows the vision panel only for those). */
export function imageModel(loaded: LoadedModel): { input: [number, number, number]; classes: number } {
  const d = loaded.file.model;
  if (d.name !== "mlp" && d.name !== "lenet" && d.name !== "sequential") throw new Error(`${loaded.model.name} does not classify images`);
  // A table's model is scaled per column: it reads rows, not pictures.
  if (Array.isArray((loaded.file.meta?.normalisation as { mean?: unknown } | undefined)?.mean)) throw new Error(`${loaded.model.name} classifies table rows, not images`);
  if (d.input[2] !== 1) throw new Error(`the drawing pad and the samples are grey; this model reads ${d.input[2]} channels`);
  return { input: [...d.input], classes: d.classes };
}

export function classNames(loaded: LoadedModel, classes: number): string[] {
  const named = loaded.file.meta?.classes;
  if (Array.isArray(named) && named.length === classes) return named.map(String);
  return loaded.file.meta?.dataset === "fashion-mnist" ? FASHION : Array.from({ length: classes }, (_, i) => `class ${i}`);
}

/** Class probabilities for n images of raw pixels (0..255, one channel), normalised as in training. */
export async function classify(c: Current, pixels: Float32Array, n: number): Promise<Float32Array[]> {
  const d = imageModel(c.loaded);
  const norm = (c.loaded.file.meta?.normalisation as { mean: number; std: number } | undefined) ?? FASHION_NORMALISATION;
  const x = np.array(pixels.map((p) => (p / 255 - norm.mean) / norm.std)).reshape([n, ...d.input]);
  const logits = (await c.loaded.model.apply(tree.ref(c.params), x).data()) as Float32Array;
  return Array.from({ length: n }, (_, i) => {
    const row = logits.subarray(i * d.classes, (i + 1) * d.classes);
    const max = Math.max(...row);
    const e = row.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  });
}
