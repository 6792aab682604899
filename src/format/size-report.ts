/** Every stored number counted, from the real file: what a compressed model costs against dense. */
import { countParams, type NamedShape } from "../model/params.js";

export interface SizeReport {
  /** Parameters of the network the file rebuilds. */
  params: number;
  /** Numbers stored in the file (latents, amplitudes, codes and kept-dense leaves alike). */
  stored_params: number;
  /** Of those, the ones stored as codes of 2 to 8 bits (quantised weights, 8-bit stored floats). */
  coded_params: number;
  /** Bits of 1-bit streams (masks, Rice-coded positions): index data, not numbers; their bytes are in file_bytes. */
  index_bits: number;
  file_bytes: number;
  /** File bits per network parameter (32 for an uncompressed float32 model, before headers). */
  bits_per_param: number;
  /** params / stored_params. */
  param_ratio: number;
  /** Bytes of the float32 network / bytes of the file. */
  byte_ratio: number;
}

/** `stored` with `dtype` as the container writes it: f32 floats, q8 and u8/u4/u3/u2 codes, u1 bit streams. */
export function sizeReport(params: number, stored: ReadonlyArray<NamedShape & { dtype?: string }>, fileBytes: number): SizeReport {
  const bits = stored.filter((t) => t.dtype === "u1");
  const storedParams = countParams(stored) - countParams(bits);
  return {
    params,
    stored_params: storedParams,
    coded_params: countParams(stored.filter((t) => t.dtype !== undefined && /^(u[2348]|q8)$/.test(t.dtype))),
    index_bits: countParams(bits),
    file_bytes: fileBytes,
    bits_per_param: (8 * fileBytes) / params,
    param_ratio: params / storedParams,
    byte_ratio: (4 * params) / fileBytes,
  };
}
