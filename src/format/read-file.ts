/** Reading a model from disk (Node): a .mcnc file, or a Hugging Face model folder. The codec itself, model-file.ts, runs anywhere. */
import { existsSync, statSync } from "node:fs";
import { UserError } from "../errors.js";
import { readWholeFile } from "../files.js";
import { isHfFolder, readHfModel } from "./hf-folder.js";
import { decodeModelFile, type DecodeOptions, type LoadedModel } from "./model-file.js";

export function readModelFile(path: string, options?: DecodeOptions): LoadedModel {
  if (isHfFolder(path)) return readHfModel(path, options);
  if (options?.context !== undefined) throw new UserError(`--context sets the window of a Hugging Face LLaMA-family folder; ${path} is none (an .mcnc file keeps its own)`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${path} is a folder without config.json: give a .mcnc file or a Hugging Face model folder`);
  return decodeModelFile(readWholeFile(path, ".mcnc"), path, options);
}
