/** The data sets that ship with mcnc (data/, each with its licence): nothing is fetched at run time. */
import { fileURLToPath } from "node:url";

/** `kind`: images and tables train classifiers, text trains the GPT. */
export const BUNDLED = {
  "fashion-mnist": { kind: "images", path: "fashion-mnist" },
  wine: { kind: "table", path: "wine/wine.csv" },
  digits: { kind: "table", path: "digits/digits.csv.gz" },
  sotu: { kind: "text", path: "sotu" },
  "moby-dick": { kind: "text", path: "moby-dick" },
} as const;

export type BundledName = keyof typeof BUNDLED;
export const BUNDLED_NAMES = Object.keys(BUNDLED) as BundledName[];

export function bundledPath(name: BundledName): string {
  return fileURLToPath(new URL(`../../../data/${BUNDLED[name].path}`, import.meta.url));
}
