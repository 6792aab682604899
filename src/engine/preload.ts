/**
 * Imported before anything that imports jax-js (first line of the API entry and of the CLI), so the
 * engine's gaps are filled and, with MCNC_THREADS > 1, the worker shim is in place when jax-js
 * builds its Wasm backend at import time. Does nothing in a browser.
 */
import { fillNodeGaps, installWorkerShim } from "./node-gaps.js";

const onNode = typeof process !== "undefined" && typeof process.versions?.node === "string";
if (onNode) {
  fillNodeGaps();
  const requested = Number(process.env.MCNC_THREADS ?? "1");
  if (Number.isInteger(requested) && requested > 1 && requested <= 64) installWorkerShim(requested);
}
