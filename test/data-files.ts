/** Data files as the tools that make them write them, for tests and the fuzzer: IDX arrays and numpy.save's .npy. */

/** An IDX array of unsigned bytes: the header `shape` declares, then `data` (which may lie about it). */
export function idx(shape: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const v = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

/** An .npy file (format 1.0) as numpy.save writes it, `values` stored as `descr`. */
export function npy(descr: "|u1" | "|b1" | "<f4" | "<i8", shape: number[], values: ArrayLike<number>, fortran = false): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const size = { "|u1": 1, "|b1": 1, "<f4": 4, "<i8": 8 }[descr];
  const out = new Uint8Array(10 + header.length + size * values.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  for (let i = 0; i < values.length; i++) {
    const at = 10 + header.length + size * i;
    if (size === 1) view.setUint8(at, values[i]!);
    else if (size === 4) view.setFloat32(at, values[i]!, true);
    else view.setBigInt64(at, BigInt(values[i]!), true);
  }
  return out;
}

/** A width x height PNG (8-bit RGBA, as most tools write it) filled by `pixel(x, y)` -> [r, g, b]. */
export async function png(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Promise<Uint8Array> {
  const { PNG } = await import("pngjs");
  const image = new PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) image.data.set([...pixel(x, y), 255], 4 * (y * width + x));
  return PNG.sync.write(image);
}

/** The same as a baseline JPEG at quality 95. */
export async function jpg(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Promise<Uint8Array> {
  const { default: jpeg } = await import("jpeg-js");
  const data = new Uint8Array(4 * width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([...pixel(x, y), 255], 4 * (y * width + x));
  return jpeg.encode({ width, height, data }, 95).data;
}
