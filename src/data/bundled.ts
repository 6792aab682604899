/** The data sets that ship with mcnc (data/, each with its licence): nothing is fetched at run time. */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.js";

/** `kind`: images and tables train classifiers, text trains the GPT. */
export const BUNDLED = {
  "fashion-mnist": { kind: "images", path: "fashion-mnist" },
  // 4,000 training and 1,000 test images of the set above: what the npm package ships in its place.
  "fashion-mnist-small": { kind: "images", path: "fashion-mnist-small" },
  // Converted from npm packages by bench/make-data.ts (see each COPYRIGHT): 28x28 digits, and words drawn as 16x27 one-hot spellings.
  "mnist-10k": { kind: "images", path: "mnist-10k" },
  "cmudict-syllables": { kind: "images", path: "cmudict-syllables" },
  wine: { kind: "table", path: "wine/wine.csv" },
  // From Debian's r-cran-mlbench by bench/make-data.ts: UCI's 20,000 letters as 16 numbers each.
  "letter-recognition": { kind: "table", path: "letter-recognition" },
  digits: { kind: "table", path: "digits/digits.csv.gz" },
  sotu: { kind: "text", path: "sotu" },
  "moby-dick": { kind: "text", path: "moby-dick" },
} as const;

export type BundledName = keyof typeof BUNDLED;
export const BUNDLED_NAMES = Object.keys(BUNDLED) as BundledName[];

export function bundledPath(name: BundledName): string {
  return fileURLToPath(new URL(`../../../data/${BUNDLED[name].path}`, import.meta.url));
}

/**
 * The bundled set that stands for `name` here: the npm package leaves the 30 MB Fashion-MNIST out (a clone
 * carries it) and ships its 4,000-image subset, which then stands in, with a note saying so; the sets made
 * for measuring (mnist-10k, cmudict-syllables, letter-recognition) come with a clone only.
 */
export function availableBundled(name: BundledName): { name: BundledName; note?: string } {
  if (existsSync(bundledPath(name))) return { name };
  if (name !== "fashion-mnist") throw new UserError(`--dataset ${name} ships with the mcnc repository (data/${BUNDLED[name].path}), not the npm package: clone it, or give --data`);
  return { name: "fashion-mnist-small", note: "the full Fashion-MNIST ships with the mcnc repository, not the npm package: using fashion-mnist-small (4,000 training and 1,000 test images); give --data DIR for another set" };
}
