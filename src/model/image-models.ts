/**
 * The image classifiers, as plain functions of a parameter tree (the same networks as the PyTorch
 * peer, shared/peers/torch_mcnc.py, in NHWC/HWIO layout).
 */
import { UserError } from "../errors.js";
import { conv3x3, dense, maxPool2, relu, tapOf } from "./layers.js";
import type { ParamSpec } from "./params.js";
import type { ImageShape, Model } from "./model.js";

function weight(name: string, shape: number[], fanIn: number): ParamSpec {
  return { name, shape, role: "weight", fanIn };
}
function bias(name: string, size: number, fanIn: number): ParamSpec {
  return { name, shape: [size], role: "bias", fanIn };
}

export function mlp(input: ImageShape, classes: number, hidden = 256): Model {
  const [h, w, c] = input;
  const inputs = h * w * c;
  return {
    name: "mlp",
    kind: "classifier",
    description: { name: "mlp", input, classes },
    specs: [weight("w1", [inputs, hidden], inputs), bias("b1", hidden, inputs), weight("w2", [hidden, classes], hidden), bias("b2", classes, hidden)],
    apply(p, x, tap) {
      const flat = x.reshape([x.shape[0]!, inputs]);
      return dense(relu(dense(flat, p.w1!, p.b1!, tapOf(tap, "w1"))), p.w2!, p.b2!, tapOf(tap, "w2"));
    },
  };
}

export function lenet(input: ImageShape, classes: number): Model {
  const [h, w, c] = input;
  if (h % 4 !== 0 || w % 4 !== 0) throw new UserError(`lenet needs image sides divisible by 4, got ${h}x${w}`);
  const flat = (h / 4) * (w / 4) * 64;
  return {
    name: "lenet",
    kind: "classifier",
    description: { name: "lenet", input, classes },
    specs: [
      weight("c1", [3, 3, c, 32], 9 * c),
      bias("cb1", 32, 9 * c),
      weight("c2", [3, 3, 32, 64], 9 * 32),
      bias("cb2", 64, 9 * 32),
      weight("w1", [flat, 128], flat),
      bias("b1", 128, flat),
      weight("w2", [128, classes], 128),
      bias("b2", classes, 128),
    ],
    apply(p, x, tap) {
      let y = maxPool2(relu(conv3x3(x, p.c1!, p.cb1!, tapOf(tap, "c1"))));
      y = maxPool2(relu(conv3x3(y, p.c2!, p.cb2!, tapOf(tap, "c2"))));
      y = y.reshape([y.shape[0]!, flat]);
      return dense(relu(dense(y, p.w1!, p.b1!, tapOf(tap, "w1"))), p.w2!, p.b2!, tapOf(tap, "w2"));
    },
  };
}
