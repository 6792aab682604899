/**
 * Every built-in method is registered here, one line each, in the order help lists them. A method's folder
 * registers nothing itself, so one method may use another's helpers without side effects.
 */
import { dense } from "./dense/index.js";
import { lora } from "./lora/index.js";
import { mcnc } from "./mcnc/index.js";
import { mcncLora } from "./mcnc-lora/index.js";
import { registerMethod } from "./method.js";
import { nola } from "./nola/index.js";
import { pranc } from "./pranc/index.js";
import { prune } from "./prune/index.js";
import { pruneLora } from "./prune-lora/index.js";
import { quant } from "./quant/index.js";
import { quantLora } from "./quant-lora/index.js";
import { tt } from "./tt/index.js";
import { vq } from "./vq/index.js";

registerMethod(dense);
registerMethod(mcnc);
registerMethod(lora);
registerMethod(mcncLora);
registerMethod(nola);
registerMethod(pranc);
registerMethod(prune);
registerMethod(quant);
registerMethod(quantLora);
registerMethod(pruneLora);
registerMethod(tt);
registerMethod(vq);

export {
  findMethod,
  materializer,
  memoryReader,
  methodNames,
  rebuildBytes,
  registerMethod,
  roundTrip,
  type Codec,
  type Method,
  type MethodOption,
  type OptionValues,
  type StoredReader,
  type StoredTensor,
} from "./method.js";
