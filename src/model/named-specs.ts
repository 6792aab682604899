/**
 * The built-in image classifiers as layer lists (the same networks as the PyTorch peer,
 * shared/peers/torch_mcnc.py, in NHWC/HWIO layout): a file stores only their name, input and classes,
 * and `sequential` builds them as it builds any spec. Their leaves keep the names files have always used.
 */
import { UserError } from "../errors.js";
import type { GptConfig, ImageShape, Model } from "./model.js";
import type { SequentialLmDescription } from "./sequential-lm.js";
import { sequential, type SequentialLayer } from "./sequential.js";

export const NAMED_SPECS = {
  mlp: (classes: number): SequentialLayer[] => [
    { type: "flatten" },
    { type: "dense", units: 256, weight: "w1", bias: "b1" },
    { type: "relu" },
    { type: "dense", units: classes, weight: "w2", bias: "b2" },
  ],
  lenet: (classes: number): SequentialLayer[] => [
    { type: "conv3x3", channels: 32, weight: "c1", bias: "cb1" },
    { type: "relu" },
    { type: "maxpool2" },
    { type: "conv3x3", channels: 64, weight: "c2", bias: "cb2" },
    { type: "relu" },
    { type: "maxpool2" },
    { type: "flatten" },
    { type: "dense", units: 128, weight: "w1", bias: "b1" },
    { type: "relu" },
    { type: "dense", units: classes, weight: "w2", bias: "b2" },
  ],
} as const;

export type NamedSpec = keyof typeof NAMED_SPECS;

/**
 * The built-in GPT (model/gpt.ts) as a spec: pre-LayerNorm blocks of causal attention and a 4x GELU
 * MLP, each a residual block, between learned positions and the final LayerNorm. Its leaves keep GPT-2's
 * names, and its logits are the built-in's bit for bit (test/models.test.ts).
 */
export function gptSpec(c: GptConfig): SequentialLmDescription {
  if (c.blocks) throw new UserError("a pruned GPT's blocks differ in width, which its spec form does not write");
  const block = (h: string): SequentialLayer[] => [
    { type: "residual", body: [{ type: "layernorm", gain: `${h}.ln_1.weight`, bias: `${h}.ln_1.bias` }, { type: "attention", heads: c.heads, causal: true, qkv: `${h}.attn.c_attn`, proj: `${h}.attn.c_proj` }] },
    {
      type: "residual",
      body: [
        { type: "layernorm", gain: `${h}.ln_2.weight`, bias: `${h}.ln_2.bias` },
        { type: "dense", units: 4 * c.width, weight: `${h}.mlp.c_fc.weight`, bias: `${h}.mlp.c_fc.bias` },
        { type: "gelu" },
        { type: "dense", units: c.width, weight: `${h}.mlp.c_proj.weight`, bias: `${h}.mlp.c_proj.bias` },
      ],
    },
  ];
  const layers: SequentialLayer[] = [{ type: "positions", weight: "wpe.weight" }, ...Array.from({ length: c.layers }, (_, l) => block(`h.${l}`)).flat(), { type: "layernorm", gain: "ln_f.weight", bias: "ln_f.bias" }];
  return { name: "sequential-lm", vocab: c.vocab, context: c.context, width: c.width, embedding: "wte.weight", layers };
}

export function namedModel(name: NamedSpec, input: ImageShape, classes: number): Model {
  if (name === "lenet" && (input[0] % 4 !== 0 || input[1] % 4 !== 0)) throw new UserError(`lenet needs image sides divisible by 4, got ${input[0]}x${input[1]}`);
  return sequential({ name: "sequential", input, classes, layers: NAMED_SPECS[name](classes) }, { name, description: { name, input, classes } });
}
