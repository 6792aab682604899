/**
 * node dist/examples/digit-images.js DIR: writes the bundled digits table as a folder of 8x8 grey PNG
 * images by class (DIR/0/*.png ... DIR/9/*.png), the layout `--data` reads for images of one's own.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PNG } from "pngjs";
import { bundledPath, loadDataset } from "../src/index.js";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: node dist/examples/digit-images.js DIR\n");
  process.exit(2);
}
// Scaled by the file's own statistics, then mapped back to pixels: the counts 0-16 become 0-255.
const data = loadDataset(bundledPath("digits"), { normalisation: { mean: Array(64).fill(0), std: Array(64).fill(1) } });
let written = 0;
for (const split of [data.train, data.test]) {
  for (let i = 0; i < split.count; i++) {
    const image = new PNG({ width: 8, height: 8, colorType: 0 });
    for (let p = 0; p < 64; p++) {
      const v = Math.round((split.x[i * 64 + p]! * 255) / 16);
      image.data.set([v, v, v, 255], 4 * p);
    }
    const folder = join(dir, String(split.y[i]));
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `${String(written++).padStart(4, "0")}.png`), PNG.sync.write(image, { colorType: 0 }));
  }
}
process.stdout.write(`wrote ${written} images of 8x8 to ${dir}\n`);
