/**
 * Every built-in post-training compressor is registered here, in the order help lists them. A compressor's
 * folder registers nothing itself, so one may use another's helpers (eora: gptq's and wanda's) without
 * side effects.
 */
import { registerCompressor } from "./compressor.js";
import { dropBlocks } from "./methods/drop-blocks/index.js";
import { eora } from "./methods/eora/index.js";
import { fwsvd } from "./methods/fwsvd/index.js";
import { gptq } from "./methods/gptq/index.js";
import { magnitude } from "./methods/magnitude/index.js";
import { mcncFit } from "./methods/mcnc-fit/index.js";
import { rom } from "./methods/rom/index.js";
import { rtn } from "./methods/rtn/index.js";
import { structured } from "./methods/structured/index.js";
import { svd } from "./methods/svd/index.js";
import { tt } from "./methods/tt/index.js";
import { vq } from "./methods/vq/index.js";
import { wanda } from "./methods/wanda/index.js";

registerCompressor(svd);
registerCompressor(rom);
registerCompressor(fwsvd);
registerCompressor(tt);
registerCompressor(rtn);
registerCompressor(gptq);
registerCompressor(vq);
registerCompressor(eora);
registerCompressor(magnitude);
registerCompressor(wanda);
registerCompressor(structured);
registerCompressor(dropBlocks);
registerCompressor(mcncFit);

export { compressorNames, findCompressor, registerCompressor, type Compressor } from "./compressor.js";
