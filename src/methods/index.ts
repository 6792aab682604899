/** Every built-in method registers itself here: one line each. */
import "./dense/index.js";
import "./mcnc/index.js";

export { findMethod, materializer, methodNames, registerMethod, type Method, type MethodOption, type OptionValues } from "./method.js";
