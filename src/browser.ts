/**
 * The part of mcnc a web page needs: rebuild a model from a .mcnc file's bytes (and an adapter on its
 * base), and sample text from a GPT. The engine, the codec, the methods, the networks and generation;
 * nothing here touches Node's built-ins (test/browser-bundle.test.ts bundles it for the browser).
 */
export { initEngine } from "./engine/engine.js";
export { checkBase, decodeModelFile, rebuildParams, timedRebuild, type DecodeOptions, type LoadedModel } from "./format/model-file.js";
export { weightsHash } from "./format/weights-hash.js";
export { findMethod, methodNames } from "./methods/index.js";
export { buildModel, parseDescription } from "./model/models.js";
export { toDevice, toHost, type HostParams, type Params } from "./model/params.js";
export { gptDecoder, type Decoder } from "./generate/decoder.js";
export { generate, pick, type SampleOptions } from "./generate/sample.js";
export { crc32 } from "./format/crc32.js";
export { checkMemory, DEFAULT_MEMORY_LIMIT, memoryLimit, setMemoryLimit } from "./limits.js";
