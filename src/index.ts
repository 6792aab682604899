/**
 * mcnc's API: the same steps as the CLI, as functions. Import order matters on Node: the preload
 * must run before jax-js loads (see engine/preload.ts).
 */
import "./engine/preload.js";

export { initEngine, DEFAULT_THREADS, type EngineOptions } from "./engine/engine.js";
export { loadDataset, finishDataset, dataRecord, DEFAULT_DATA_DIR, type Dataset, type Split, type LoadOptions, type Normalisation } from "./data/dataset.js";
export { loadText, type TextCorpus } from "./data/text.js";
export { BUNDLED, bundledPath } from "./data/bundled.js";
export { buildModel, parseDescription, MODEL_NAMES, type Model, type ModelDescription, type GptConfig, type ImageShape } from "./model/models.js";
export { NAMED_SPECS } from "./model/named-specs.js";
export type { SequentialDescription, SequentialLayer } from "./model/sequential.js";
export { countParams, initParams, toDevice, toHost, type HostParams, type ParamSpec, type Params } from "./model/params.js";
export * from "./methods/index.js";
export { configureAdapter, producedSpecs, type AdapterInfo } from "./methods/adapter.js";
export { MCNC_DEFAULTS, type McncConfig } from "./methods/mcnc/config.js";
export { train, type TrainOptions, type TrainResult, type StepProgress, type Adapter } from "./train/trainer.js";
export type { Checkpoint, EpochStats } from "./train/run-state.js";
export { imageTask, textTask, crossEntropy, defaultBatch, type Task, type Metrics } from "./train/tasks.js";
export { defaultWarmup, type ScheduleOptions } from "./train/schedule.js";
export { accuracy, predictor } from "./train/evaluate.js";
export { checkBase, decodeModelFile, encodeModelFile, rebuildParams, timedRebuild, type DecodeOptions, type LoadedModel, type ModelFile } from "./format/model-file.js";
export { checkMemory, DEFAULT_MEMORY_LIMIT, memoryLimit, setMemoryLimit } from "./limits.js";
export { readModelFile } from "./format/read-file.js";
export { fileSource } from "./files.js";
export { sizeReport, type SizeReport } from "./format/size-report.js";
export { encodeSafetensors, readSafetensors, memorySource, safetensorsHeader, MODEL_METADATA, type SafetensorsDtype, type ByteSource } from "./format/safetensors.js";
export { readOnnx, type OnnxModel, type OnnxWeight } from "./format/onnx.js";
export { openForeign, openSafetensors, openOnnx, openTfjs, type ForeignModel, type ForeignTensor } from "./format/foreign-model.js";
export { asMatrix, tensorsModel, type MatrixLayout, type TensorsDescription } from "./model/tensors.js";
export { compressModel, matrixLeaves, probeInput, type CalibrationBatch, type CompressRun } from "./compress/compress-model.js";
export { compressorNames, findCompressor, registerCompressor, type Compressor } from "./compress/index.js";
export { calibrateOnnx, calibrationGraph, uncalibratable, type OnnxLeaf } from "./compress/calibrate-onnx.js";
export { writeCompact, type CompactForm } from "./format/onnx-compact.js";
export { graphInputs, type GraphInput } from "./format/onnx-graph.js";
export { openModelInputs, imagePaths, type ModelInputs, type ImagePrep } from "./data/model-inputs.js";
export { openModelSession, type ModelSession, type Feed } from "./engine/model-session.js";
export { predictOnnx, predictWith, type Prediction, type PredictOptions } from "./predict/predict-foreign.js";
export { openTfjsSession, type TfjsSession } from "./engine/tfjs-session.js";
export { predictNetwork, predictNextByte, type NetworkPrediction } from "./predict/predict-network.js";
export { weightsHash } from "./format/weights-hash.js";
export { encodeCheckpoint, decodeCheckpoint } from "./format/checkpoint-file.js";
export { writeFileAtomic } from "./format/atomic-write.js";
export { UserError } from "./errors.js";
