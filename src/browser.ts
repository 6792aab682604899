/**
 * The part of mcnc a web page needs to rebuild a model from a .mcnc file's bytes: the engine, the
 * codec, the methods and the networks. Nothing here touches Node's built-ins (test/browser-bundle.test.ts
 * bundles it for the browser to prove it).
 */
export { initEngine } from "./engine/engine.js";
export { decodeModelFile, rebuildParams, timedRebuild, type LoadedModel } from "./format/model-file.js";
export { findMethod, methodNames } from "./methods/index.js";
export { buildModel } from "./model/models.js";
export { toHost, type Params } from "./model/params.js";
export { crc32 } from "./format/crc32.js";
