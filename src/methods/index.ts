/** Every built-in method registers itself here: one line each. */
import "./dense/index.js";
import "./mcnc/index.js";
import "./lora/index.js";
import "./mcnc-lora/index.js";
import "./nola/index.js";
import "./pranc/index.js";
import "./prune/index.js";
import "./quant/index.js";

export { findMethod, materializer, methodNames, registerMethod, type Method, type MethodOption, type OptionValues } from "./method.js";
