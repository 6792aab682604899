/**
 * MCNC (arXiv 2406.19301): each chunk of d weights is beta * phi(alpha), a point on a k-dimensional
 * manifold wound around the unit sphere, scaled. Only alpha, beta and the kept-dense leaves are stored.
 */
import { numpy as np } from "@jax-js/jax";
import { initParams, type HostParams, type Params } from "../../model/params.js";
import { seededUniform, STREAM } from "../../rng/seeded.js";
import { cutLeaves, flattenCompressed, keptInit, keptShapes, theta0 } from "../leaves.js";
import { type Method, type Stage } from "../method.js";
import { CHUNK_ALIGN, configureMcnc, layoutOf, MCNC_OPTIONS, type McncConfig } from "./config.js";
import { fused } from "../../engine/fused.js";
import { generatorDims, generatorFlops, generatorLayer, generatorWeights, onSphere } from "./generator.js";

export const mcnc: Method<McncConfig> = {
  name: "mcnc",
  summary: "manifold-constrained compression: chunks of weights = beta * sine-generator(alpha)",
  options: MCNC_OPTIONS,
  // The paper and the peer use 0.05; 0.02 measured better here (0.829 against 0.826 with L = 10, lower
  // training loss, and 0.822 against 0.810 with L = 20), 0.1 worse (docs/results.md).
  defaultLearningRate: 0.02,
  // As an adapter on the shipped GPT (Moby-Dick, 50 steps, ratio 1000): 0.02 -> 2.558, 0.05 -> 2.531,
  // 0.1 -> 2.521 bits per byte (docs/results.md).
  adapterLearningRate: 0.1,
  adapterValues: { residual: true },
  configure: configureMcnc,

  trainableShapes(config, specs) {
    const { chunks } = layoutOf(config, specs);
    return [
      { name: "alpha", shape: [config.m, chunks, config.k] },
      { name: "beta", shape: [config.m, chunks] },
      ...keptShapes(specs, config.compress),
    ];
  },

  /**
   * alpha ~ U(-1, 1)^k: at the defaults (k = 16, L = 5) the first layer's inputs L alpha W0 start at
   * 0.41 rad RMS and 1.76 at most, inside the sine's first half period, not over many periods
   * (`node dist/bench/probes.js first-layer`); chunks start apart because their alphas differ. Training
   * does not keep alpha in that box (docs/results.md, "Is alpha bounded?"). beta starts at the norm of the
   * same chunk under the standard initialisation (divided by sqrt(m), for m roughly orthogonal unit
   * terms), so the network starts at the usual weight scale: the plain form trains from an ordinary
   * starting point. In the residual form theta_0 already carries that scale and beta starts at 0, so
   * training starts exactly at theta_0, like LoRA's zero factor.
   */
  async init(config, specs, seed) {
    const { chunks } = layoutOf(config, specs);
    const base = await initParams(specs, seed);
    const out: HostParams = {};
    out.alpha = await seededUniform(seed, [STREAM.latent, 0], config.m * chunks * config.k, -1, 1);
    const beta = new Float32Array(config.m * chunks);
    if (!config.residual) {
      const flat = flattenCompressed(specs, config.compress, base, chunks * config.d);
      for (let c = 0; c < chunks; c++) {
        let sq = 0;
        for (let i = c * config.d; i < (c + 1) * config.d; i++) sq += flat[i]! * flat[i]!;
        for (let j = 0; j < config.m; j++) beta[j * chunks + c] = Math.sqrt(sq / config.m);
      }
    }
    out.beta = beta;
    keptInit(specs, config.compress, base, out);
    return out;
  },

  async frozen(config, specs, seed, base) {
    const dims = generatorDims(config.k, config.hidden, config.d);
    const weights = await generatorWeights(seed, dims);
    const out: Params = {};
    weights.forEach((w, i) => (out[`gen${i}`] = np.array(w).reshape([dims[i]!, dims[i + 1]!])));
    if (config.residual) {
      const { chunks } = layoutOf(config, specs);
      out.theta0 = np.array(flattenCompressed(specs, config.compress, await theta0(specs, seed, base), chunks * config.d));
    }
    return out;
  },

  /**
   * One stage per generator layer, then one that normalises, scales and cuts the chunks into the
   * model's leaves: each matmul's backward then reads a materialised cotangent.
   */
  stages(config, specs) {
    const { chunks } = layoutOf(config, specs);
    const { k, d, m, L } = config;
    const depth = config.hidden.length + 1;
    const layers: Stage[] = [];
    for (let i = 0; i < depth; i++) {
      layers.push((carry, trainable, frozen) => {
        const input = i === 0 ? trainable.alpha!.reshape([m * chunks, k]) : carry.h!;
        return { h: generatorLayer(input, frozen[`gen${i}`]!, i, depth, L) };
      });
    }
    const assemble: Stage = (carry, trainable, frozen) => {
      let theta = scaledOnSphere(carry.h!, trainable.beta!);
      theta = (m === 1 ? theta.reshape([chunks, d]) : theta.sum(0)).reshape([chunks * d]);
      if (config.residual) theta = theta.add(frozen.theta0!);
      return cutLeaves(specs, config.compress, trainable, theta);
    };
    return [...layers, assemble];
  },

  notes(config) {
    if (config.d % 4 === 0) return [];
    const better = Math.ceil(config.d / CHUNK_ALIGN) * CHUNK_ALIGN;
    return [`chunk size ${config.d} is not a multiple of 4: jax-js's Wasm kernels run it about 4x slower (try --d ${better})`];
  },

  workingSet(config, specs) {
    const { chunks } = layoutOf(config, specs);
    const dims = generatorDims(config.k, config.hidden, config.d);
    const weights = dims.slice(1).reduce((n, out, i) => n + dims[i]! * out, 0);
    // Two layers' activations at once (a layer's input and output), then the m terms before they are summed.
    const widest = Math.max(...dims.slice(1));
    return weights + config.m * chunks * 2 * widest + (config.residual ? chunks * config.d : 0);
  },

  rebuildFlops(config, specs) {
    const { chunks } = layoutOf(config, specs);
    const rows = config.m * chunks;
    return generatorFlops(rows, generatorDims(config.k, config.hidden, config.d)) + rows * config.d * (config.m > 1 ? 2 : 1);
  },
};

/**
 * Generator rows [m * chunks, d] put on the sphere and scaled by beta [m, chunks]: [m, chunks, d]. The
 * native engine runs it as one normalisation with a hand-written backward (engine/fused.ts).
 */
const scaledOnSphere = fused("sphere_scale", (h: np.Array, beta: np.Array) => {
  const [m, chunks] = beta.shape as [number, number];
  return onSphere(h).reshape([m, chunks, h.shape[1]!]).mul(beta.reshape([m, chunks, 1]));
});
