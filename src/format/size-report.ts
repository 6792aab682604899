/** Every stored number counted, from the real file: what a compressed model costs against dense. */
import { countParams, type NamedShape } from "../model/params.js";

export interface SizeReport {
  /** Parameters of the network the file rebuilds. */
  params: number;
  /** Numbers stored in the file (latents, amplitudes and kept-dense leaves alike). */
  stored_params: number;
  /** Of those, the ones stored as integer codes of 1 to 8 bits (quantised weights, positions). */
  coded_params: number;
  file_bytes: number;
  /** File bits per network parameter (32 for an uncompressed float32 model, before headers). */
  bits_per_param: number;
  /** params / stored_params. */
  param_ratio: number;
  /** Bytes of the float32 network / bytes of the file. */
  byte_ratio: number;
}

/** `stored` with `dtype` as the container writes it; u8/u4/u3/u2/u1 are integer codes. */
export function sizeReport(params: number, stored: ReadonlyArray<NamedShape & { dtype?: string }>, fileBytes: number): SizeReport {
  const storedParams = countParams(stored);
  return {
    params,
    stored_params: storedParams,
    coded_params: countParams(stored.filter((t) => t.dtype !== undefined && /^u[12348]$/.test(t.dtype))),
    file_bytes: fileBytes,
    bits_per_param: (8 * fileBytes) / params,
    param_ratio: params / storedParams,
    byte_ratio: (4 * params) / fileBytes,
  };
}
