/**
 * The layer-by-layer order of calibrated compression for models mcnc runs through another runtime
 * (onnxruntime, TF.js): weights go in waves, each wave calibrated on activations that passed through
 * every compressed layer of the waves before (GPTQ's order), the model's weights replaced by what the
 * compressed ones rebuild before the next wave is measured.
 */
import type { StoredTensor } from "../methods/index.js";
import { asMatrix, type MatrixLayout } from "../model/tensors.js";
import type { CompressedLeaf, InputMoments } from "./compressor.js";

export interface WaveLeaf {
  name: string;
  shape: number[];
  layout: MatrixLayout;
}

export interface CalibrationProgress {
  wave: number;
  waves: number;
  leaves: number;
  seconds: number;
}

export interface Waves<L extends WaveLeaf> {
  /** Each leaf's wave (see onnx-graph's `waves`). */
  waveOf(leaf: L): number;
  /** The input moments of a wave's leaves, through the model as it is now. */
  measure(group: L[], wave: number): Promise<InputMoments[]>;
  /** Puts a leaf's rebuilt weight, in the model's own shape and layout, into the model. */
  write(leaf: L, weight: Float32Array): void;
}

/** Each leaf compressed by `compressLeaf` on its input moments, wave by wave. Returns what each stores, by name. */
export async function calibrateInWaves<L extends WaveLeaf>(
  leaves: readonly L[],
  model: Waves<L>,
  compressLeaf: (leaf: L, index: number, moments: InputMoments) => Promise<CompressedLeaf>,
  onWave?: (p: CalibrationProgress) => void,
): Promise<Map<string, StoredTensor[]>> {
  const last = Math.max(...leaves.map((l) => model.waveOf(l)));
  const done = new Map<string, StoredTensor[]>();
  for (let wave = 0; wave <= last; wave++) {
    const started = performance.now();
    const group = leaves.filter((l) => model.waveOf(l) === wave);
    if (group.length === 0) continue;
    const moments = await model.measure(group, wave);
    for (const [i, leaf] of group.entries()) {
      const compressed = await compressLeaf(leaf, leaves.indexOf(leaf), moments[i]!);
      model.write(leaf, asMatrix(leaf.shape, leaf.layout).fromMatrix(compressed.weight));
      done.set(leaf.name, compressed.stored);
    }
    onWave?.({ wave: wave + 1, waves: last + 1, leaves: group.length, seconds: (performance.now() - started) / 1000 });
  }
  return done;
}

/** `sum += m`, elementwise: a batch's moment into the float64 sum. */
export function addInto(sum: Float64Array, m: ArrayLike<number>): void {
  for (let k = 0; k < m.length; k++) sum[k]! += m[k]!;
}
