/** Reading a model from disk (Node): a .mcnc file, or a Hugging Face model folder. The codec itself, model-file.ts, runs anywhere. */
import { existsSync, statSync } from "node:fs";
import { folderTokenizer } from "../data/folder-tokenizer.js";
import type { Tokenizer } from "../data/tokenizer.js";
import { UserError } from "../errors.js";
import { readWholeFile } from "../files.js";
import { isHfFolder, readHfModel } from "./hf-folder.js";
import { decodeModelFile, type DecodeOptions, type LoadedModel } from "./model-file.js";

export interface ReadOptions extends DecodeOptions {
  /** A folder whose tokenizer reads the model's text, instead of the model folder's or the one its file records. */
  tokenizer?: string;
}

export function readModelFile(path: string, options: ReadOptions = {}): LoadedModel {
  let loaded: LoadedModel;
  if (isHfFolder(path)) loaded = readHfModel(path, options);
  else {
    if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${path} is a folder without config.json: give a .mcnc file or a Hugging Face model folder`);
    if (options.context !== undefined) throw new UserError(`--context sets the window of a Hugging Face LLaMA-family folder; ${path} is none (an .mcnc file keeps its own)`);
    loaded = decodeModelFile(readWholeFile(path, ".mcnc"), path, options);
  }
  return withTokenizer(path, loaded, options.tokenizer);
}

/**
 * The model with the tokenizer of `folder`, or, for an .mcnc file compressed from a Hugging Face folder,
 * of the folder it records (its text is that folder's tokens, which the file does not hold).
 */
function withTokenizer(path: string, loaded: LoadedModel, folder?: string): LoadedModel {
  const lm = loaded.model.lm;
  if (folder !== undefined && !lm) throw new UserError(`--tokenizer: ${path} holds a ${loaded.model.name}, which reads no text`);
  const recorded = loaded.file.meta?.tokenizer_folder;
  const from = folder ?? (typeof recorded === "string" && !isHfFolder(path) ? recorded : undefined);
  if (!lm || from === undefined) return loaded;
  let tokenizer: Tokenizer | undefined;
  const read = (): Tokenizer => {
    if (folder === undefined && !existsSync(from)) throw new UserError(`${path} reads text with the tokenizer of ${from}, which is not there: give the folder with --tokenizer DIR`);
    return (tokenizer ??= folderTokenizer(from, lm.vocab));
  };
  return { ...loaded, model: { ...loaded.model, tokenizer: read } };
}
