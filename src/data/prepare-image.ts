/**
 * One image prepared as a model that someone else trained expects it: resized (bilinear) to the
 * input's size, scaled to [0, 1], then (x - mean) / std per channel, in RGB or BGR order, laid out
 * channels first or last.
 */
import { UserError } from "../errors.js";
import { checkMemory } from "../limits.js";
import { decodeImage, imageSize, readBytes } from "./image-folder.js";
import { MAX_IMAGE_SIDE } from "./raw.js";

export interface ImagePrep {
  /** Height and width the model takes; its own fixed size where it has one. */
  size?: [number, number];
  /** Per channel (one value for all), in the model's channel order; 0 and 1 by default. */
  mean?: number[];
  std?: number[];
  /** Channels in blue, green, red order (OpenCV's, PaddleOCR's). */
  bgr?: boolean;
}

export function prepareImage(file: string, [h, w]: [number, number], channels: number, channelsLast: boolean, prep: ImagePrep): Float32Array {
  const bytes = readBytes(file);
  const { width, height } = imageSize(bytes, file);
  if (width < 1 || height < 1 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) throw new UserError(`${file}: ${width}x${height} is outside 1 to ${MAX_IMAGE_SIDE} pixels a side`);
  checkMemory(width * height * 4, `${file} (${width}x${height})`);
  const rgba = decodeImage(bytes, file, width * height);
  const at = (x: number, y: number, c: number) => rgba[4 * (y * width + x) + c]!;
  const out = new Float32Array(channels * h * w);
  const mean = (c: number) => prep.mean?.[prep.mean.length === 1 ? 0 : c] ?? 0;
  const std = (c: number) => prep.std?.[prep.std.length === 1 ? 0 : c] ?? 1;
  for (let y = 0; y < h; y++) {
    // Pixel centres mapped onto the source, as OpenCV's INTER_LINEAR does.
    const sy = Math.min(Math.max(((y + 0.5) * height) / h - 0.5, 0), height - 1);
    const [y0, fy] = [Math.floor(sy), sy - Math.floor(sy)];
    const y1 = Math.min(y0 + 1, height - 1);
    for (let x = 0; x < w; x++) {
      const sx = Math.min(Math.max(((x + 0.5) * width) / w - 0.5, 0), width - 1);
      const [x0, fx] = [Math.floor(sx), sx - Math.floor(sx)];
      const x1 = Math.min(x0 + 1, width - 1);
      const sample = (c: number) => (1 - fy) * ((1 - fx) * at(x0, y0, c) + fx * at(x1, y0, c)) + fy * ((1 - fx) * at(x0, y1, c) + fx * at(x1, y1, c));
      const rgb = [sample(0), sample(1), sample(2)];
      for (let c = 0; c < channels; c++) {
        const v = channels === 1 ? 0.299 * rgb[0]! + 0.587 * rgb[1]! + 0.114 * rgb[2]! : rgb[prep.bgr ? 2 - c : c]!;
        out[channelsLast ? (y * w + x) * channels + c : (c * h + y) * w + x] = (v / 255 - mean(c)) / std(c);
      }
    }
  }
  return out;
}
