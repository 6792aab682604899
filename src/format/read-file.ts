/** Reading a .mcnc file from disk (Node). The codec itself, model-file.ts, runs anywhere. */
import { readWholeFile } from "../files.js";
import { decodeModelFile, type DecodeOptions, type LoadedModel } from "./model-file.js";

export function readModelFile(path: string, options?: DecodeOptions): LoadedModel {
  return decodeModelFile(readWholeFile(path, ".mcnc"), path, options);
}
