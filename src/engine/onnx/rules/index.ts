/**
 * ONNX for the engine's fused operations (engine/fused.ts), by the jit name they are traced under:
 * each forward as one of onnxruntime's whole operators where one exists, each backward as the short
 * chain of nodes the derivative needs. The inference build of onnxruntime-node has no gradient
 * operators, so backward passes are written from MatMul, Conv, ConvTranspose and elementwise nodes.
 */
import type { FusedRule } from "../fused-rule.js";
import { conv3x3, maxPool2, reluMaxPool2 } from "./convolution.js";
import { sphereScale } from "./mcnc.js";
import { cacheWrite, causalAttention, crossEntropy, gelu, layerNorm, softmax } from "./transformer.js";

export const FUSED_RULES: ReadonlyMap<string, FusedRule> = new Map([
  ["mcnc_layer_norm", layerNorm],
  ["mcnc_gelu", gelu],
  ["mcnc_causal_attention", causalAttention],
  ["mcnc_cross_entropy", crossEntropy],
  ["mcnc_conv3x3", conv3x3],
  ["mcnc_max_pool2", maxPool2],
  ["mcnc_relu_max_pool2", reluMaxPool2],
  ["mcnc_softmax", softmax],
  ["mcnc_cache_write", cacheWrite],
  ["mcnc_sphere_scale", sphereScale],
]);
