/** Every built-in method registers itself here: one line each. */
import "./dense/index.js";
import "./mcnc/index.js";
import "./lora/index.js";
import "./mcnc-lora/index.js";
import "./nola/index.js";
import "./pranc/index.js";
import "./prune/index.js";
import "./quant/index.js";
import "./quant-lora/index.js";
import "./prune-lora/index.js";

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
