/** Every built-in post-training compressor registers itself here: one line each. */
import "./methods/svd/index.js";
import "./methods/rom/index.js";
import "./methods/fwsvd/index.js";
import "./methods/rtn/index.js";
import "./methods/gptq/index.js";
import "./methods/eora/index.js";
import "./methods/magnitude/index.js";
import "./methods/wanda/index.js";
import "./methods/mcnc-fit/index.js";

export { compressorNames, findCompressor, registerCompressor, type Compressor } from "./compressor.js";
