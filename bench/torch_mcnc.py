"""PyTorch peer of mcnc's image training, for the speed ratios of `npm run bench` (bench/train-vs-torch.ts).
The same networks (MLP 784-256-10, LeNet 3x3 conv 32 and 64 with 2x2 pooling, 128 hidden), the same
MCNC layout as mcnc's (chunks of --d numbers over the weight matrices only, biases trained dense, a frozen
sine generator k -> hidden -> hidden -> d normalised onto the sphere), batch 128, Adam.

    python3 bench/torch_mcnc.py --data data/fashion-mnist --model lenet --method mcnc --d 1024 \
        --epochs 2 --limit 1280 --threads 2

Prints JSON lines: the layout, then per epoch the accuracy on 1,000 test images and training samples/s."""
import argparse, gzip, json, math, time, struct
import numpy as np
import torch, torch.nn.functional as F


def idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic, n = struct.unpack('>II', data[:8])
    if magic == 2051:
        r, c = struct.unpack('>II', data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, r, c)
    return np.frombuffer(data, np.uint8, offset=8)


def load(root):
    xtr = torch.tensor(idx(f'{root}/train-images-idx3-ubyte.gz'), dtype=torch.float32).div_(255).unsqueeze(1)
    ytr = torch.tensor(idx(f'{root}/train-labels-idx1-ubyte.gz'), dtype=torch.long)
    xte = torch.tensor(idx(f'{root}/t10k-images-idx3-ubyte.gz'), dtype=torch.float32).div_(255).unsqueeze(1)
    yte = torch.tensor(idx(f'{root}/t10k-labels-idx1-ubyte.gz'), dtype=torch.long)
    m, s = 0.2860, 0.3530
    return (xtr - m) / s, ytr, (xte - m) / s, yte


def shapes(model):
    if model == 'mlp':
        return {'w1': (784, 256), 'b1': (256,), 'w2': (256, 10), 'b2': (10,)}
    return {'c1': (32, 1, 3, 3), 'cb1': (32,), 'c2': (64, 32, 3, 3), 'cb2': (64,),
            'w1': (64 * 7 * 7, 128), 'b1': (128,), 'w2': (128, 10), 'b2': (10,)}


def forward(model, p, x):
    if model == 'mlp':
        h = F.relu(x.flatten(1) @ p['w1'] + p['b1'])
        return h @ p['w2'] + p['b2']
    h = F.max_pool2d(F.relu(F.conv2d(x, p['c1'], p['cb1'], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p['c2'], p['cb2'], padding=1)), 2)
    h = F.relu(h.flatten(1) @ p['w1'] + p['b1'])
    return h @ p['w2'] + p['b2']


def init_dense(shp):
    out = {}
    for n, s in shp.items():
        fan_in = s[0] if len(s) == 2 else (int(np.prod(s[1:])) if len(s) == 4 else 1)
        bound = 1 / math.sqrt(fan_in) if len(s) > 1 else 0.0
        out[n] = (torch.rand(s) * 2 - 1) * bound
    return out


class Generator:
    """Frozen sine MLP k -> hidden... -> d, rows normalised onto the unit sphere."""
    def __init__(self, k, d, hidden, L, seed):
        g = torch.Generator().manual_seed(seed)
        dims = [k, *hidden, d]
        self.ws = [(torch.rand(dims[i], dims[i + 1], generator=g) * 2 - 1) * math.sqrt(6 / dims[i]) for i in range(len(dims) - 1)]
        self.ws[0] = (torch.rand(k, dims[1], generator=g) * 2 - 1) / k
        self.L = L

    def __call__(self, a):
        x = torch.sin(a @ self.ws[0] * self.L)
        for w in self.ws[1:-1]:
            x = torch.sin(x @ w)
        x = x @ self.ws[-1]
        return x / x.norm(dim=1, keepdim=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--model', default='mlp'); ap.add_argument('--method', default='mcnc')
    ap.add_argument('--k', type=int, default=16); ap.add_argument('--d', type=int, default=1600)
    ap.add_argument('--hidden', default='64,64'); ap.add_argument('--L', type=float, default=5)
    ap.add_argument('--epochs', type=int, default=2); ap.add_argument('--bs', type=int, default=128)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--limit', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    xtr, ytr, xte, yte = load(a.data)
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    xte, yte = xte[:1000], yte[:1000]
    shp = shapes(a.model)
    dense = init_dense(shp)
    n_params = sum(int(np.prod(s)) for s in shp.values())
    weights = [n for n, s in shp.items() if len(s) > 1]
    if a.method == 'dense':
        params = {n: t.clone().requires_grad_() for n, t in dense.items()}
        trainable = list(params.values()); lr = 1e-3
        materialize = lambda: params
    else:
        gen = Generator(a.k, a.d, [int(h) for h in a.hidden.split(',')], a.L, seed=1234)
        flat = torch.cat([dense[n].flatten() for n in weights])
        n_w = flat.numel()
        m = math.ceil(n_w / a.d)
        padded = torch.zeros(m * a.d); padded[:n_w] = flat
        alpha = (torch.rand(m, a.k) * 2 - 1).requires_grad_()
        beta = padded.view(m, a.d).norm(dim=1).clone().requires_grad_()
        biases = {n: dense[n].clone().requires_grad_() for n in shp if n not in weights}
        trainable = [alpha, beta, *biases.values()]; lr = 0.05

        def materialize():
            theta = (beta[:, None] * gen(alpha)).flatten()[:n_w]
            out, o = dict(biases), 0
            for n in weights:
                c = int(np.prod(shp[n])); out[n] = theta[o:o + c].view(shp[n]); o += c
            return out
    n_train = sum(t.numel() for t in trainable)
    print(json.dumps({'model': a.model, 'method': a.method, 'params': n_params, 'trainable': n_train,
                      'd': a.d if a.method == 'mcnc' else None, 'threads': a.threads}), flush=True)
    opt = torch.optim.Adam(trainable, lr=lr)
    for ep in range(a.epochs):
        perm = torch.randperm(len(xtr)); t0 = time.time(); seen = 0
        # Full batches only, as mcnc's loop does.
        for i in range(0, len(xtr) - a.bs + 1, a.bs):
            idx_ = perm[i:i + a.bs]
            loss = F.cross_entropy(forward(a.model, materialize(), xtr[idx_]), ytr[idx_])
            opt.zero_grad(); loss.backward(); opt.step(); seen += len(idx_)
        dt = time.time() - t0
        with torch.no_grad():
            acc = (forward(a.model, materialize(), xte).argmax(1) == yte).float().mean().item()
        print(json.dumps({'epoch': ep + 1, 'acc': round(acc, 4), 'train_samples_per_s': round(seen / dt, 1)}), flush=True)


if __name__ == '__main__':
    main()
