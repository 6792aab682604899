/**
 * Writes data/fashion-mnist-small: the first 400 training and 100 test images of each Fashion-MNIST class,
 * in their original order, as gzipped IDX files. The npm package ships this set (2 MB) instead of the
 * 30 MB full one, so that a default run works from an installed package.
 *
 *   npm run build && node dist/examples/make-fashion-mnist-small.js
 */
import { readFileSync, writeFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { bundledPath } from "../src/data/bundled.js";

const PER_CLASS = { train: 400, t10k: 100 };
const source = bundledPath("fashion-mnist");
const target = bundledPath("fashion-mnist-small");

/** An IDX file's header with its first dimension replaced by `count`. */
function header(idx: Uint8Array, count: number): Uint8Array {
  const dims = idx[3]!;
  const out = idx.slice(0, 4 + 4 * dims);
  new DataView(out.buffer).setUint32(4, count);
  return out;
}

for (const [split, perClass] of Object.entries(PER_CLASS)) {
  const images = gunzipSync(readFileSync(`${source}/${split}-images-idx3-ubyte.gz`));
  const labels = gunzipSync(readFileSync(`${source}/${split}-labels-idx1-ubyte.gz`));
  const pixels = 28 * 28;
  const taken = new Map<number, number>();
  const keep: number[] = [];
  for (let i = 0; i < labels.length - 8; i++) {
    const label = labels[8 + i]!;
    if ((taken.get(label) ?? 0) < perClass) {
      taken.set(label, (taken.get(label) ?? 0) + 1);
      keep.push(i);
    }
  }
  const x = new Uint8Array(keep.length * pixels);
  keep.forEach((i, j) => x.set(images.subarray(16 + i * pixels, 16 + (i + 1) * pixels), j * pixels));
  const y = Uint8Array.from(keep, (i) => labels[8 + i]!);
  // Level 9 and no file name or time in the gzip header: the same bytes on every run.
  writeFileSync(`${target}/${split}-images-idx3-ubyte.gz`, gzipSync(Buffer.concat([header(images, keep.length), x]), { level: 9 }));
  writeFileSync(`${target}/${split}-labels-idx1-ubyte.gz`, gzipSync(Buffer.concat([header(labels, keep.length), y]), { level: 9 }));
  process.stdout.write(`${split}: ${keep.length} images\n`);
}
