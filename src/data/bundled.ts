/** The data sets that ship with mcnc (data/, each with its licence): nothing is fetched at run time. */
import { fileURLToPath } from "node:url";

export const BUNDLED = {
  "fashion-mnist": { kind: "images", dir: "fashion-mnist" },
  sotu: { kind: "text", dir: "sotu" },
  "moby-dick": { kind: "text", dir: "moby-dick" },
} as const;

export type BundledName = keyof typeof BUNDLED;
export const BUNDLED_NAMES = Object.keys(BUNDLED) as BundledName[];

export function bundledPath(name: BundledName): string {
  return fileURLToPath(new URL(`../../../data/${BUNDLED[name].dir}`, import.meta.url));
}
