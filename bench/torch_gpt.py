"""PyTorch peer of mcnc's byte-level GPT, for side-by-side measurement (bench/gpt-bench.ts runs it).

The same network as src/model/gpt.ts (GPT-2's shape: learned positions, pre-LayerNorm blocks, causal
attention, 4x GELU (tanh) MLP, tied output; weights uniform with std 0.02, residual projections
0.02 / sqrt(2 layers)), the same optimiser (Adam, PyTorch's defaults, no weight decay), the same
schedule (linear warm-up, cosine decay to a tenth), the same batch and context, on the same training
and validation bytes (written by the caller), scored on the same evenly spaced validation windows.

Usage: python3 torch_gpt.py --train train.bin --valid valid.bin --steps N [--layers 4 --width 128
       --heads 4 --context 128 --batch 32 --lr 1e-3 --warmup 100 --threads 2 --eval-tokens 65536]
Prints one JSON line: tokens/s over the timed steps (after --skip warm-up steps) and the final
validation bits per byte, on --eval-tokens evenly spaced tokens and on all of the validation text.
"""
import argparse, json, math, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F


def uniform_std(shape, std, g):
    b = std * math.sqrt(3)
    return ((torch.rand(shape, generator=g) * 2 - 1) * b).requires_grad_()


def build(a, g):
    C, V = a.width, 256
    p = {'wte': uniform_std((V, C), 0.02, g), 'wpe': uniform_std((a.context, C), 0.02, g)}
    rs = 0.02 / math.sqrt(2 * a.layers)
    for l in range(a.layers):
        p[f'{l}.ln1.w'] = torch.ones(C, requires_grad=True); p[f'{l}.ln1.b'] = torch.zeros(C, requires_grad=True)
        p[f'{l}.attn.w'] = uniform_std((C, 3 * C), 0.02, g); p[f'{l}.attn.b'] = torch.zeros(3 * C, requires_grad=True)
        p[f'{l}.proj.w'] = uniform_std((C, C), rs, g); p[f'{l}.proj.b'] = torch.zeros(C, requires_grad=True)
        p[f'{l}.ln2.w'] = torch.ones(C, requires_grad=True); p[f'{l}.ln2.b'] = torch.zeros(C, requires_grad=True)
        p[f'{l}.fc.w'] = uniform_std((C, 4 * C), 0.02, g); p[f'{l}.fc.b'] = torch.zeros(4 * C, requires_grad=True)
        p[f'{l}.mproj.w'] = uniform_std((4 * C, C), rs, g); p[f'{l}.mproj.b'] = torch.zeros(C, requires_grad=True)
    p['lnf.w'] = torch.ones(C, requires_grad=True); p['lnf.b'] = torch.zeros(C, requires_grad=True)
    return p


def forward(p, x, a, cache=None, start=0):
    """Logits [B, n, 256] for tokens x [B, n] at positions start..start+n-1. With a cache (a list per
    layer of [k, v], [B, H, S, D], or None), keys and values of earlier positions are reused and kept."""
    B, n = x.shape
    C, H = a.width, a.heads
    h = p['wte'][x] + p['wpe'][start:start + n]
    for l in range(a.layers):
        y = F.layer_norm(h, (C,), p[f'{l}.ln1.w'], p[f'{l}.ln1.b'], 1e-5)
        q, k, v = (y @ p[f'{l}.attn.w'] + p[f'{l}.attn.b']).split(C, dim=2)
        q, k, v = (t.view(B, n, H, C // H).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            if cache[l] is not None:
                k = torch.cat([cache[l][0], k], 2); v = torch.cat([cache[l][1], v], 2)
            cache[l] = [k, v]
        S = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(~torch.ones(n, S, dtype=torch.bool).tril(S - n), float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, n, C)
        h = h + y @ p[f'{l}.proj.w'] + p[f'{l}.proj.b']
        y = F.layer_norm(h, (C,), p[f'{l}.ln2.w'], p[f'{l}.ln2.b'], 1e-5)
        y = F.gelu(y @ p[f'{l}.fc.w'] + p[f'{l}.fc.b'], approximate='tanh')
        h = h + y @ p[f'{l}.mproj.w'] + p[f'{l}.mproj.b']
    h = F.layer_norm(h, (C,), p['lnf.w'], p['lnf.b'], 1e-5)
    return h @ p['wte'].t()


def decode(p, x, a, cache, start):
    return forward(p, x, a, cache, start)[0, -1]


def generate(p, a, tokens, g):
    """The same rule as src/generate/sample.ts: a KV cache; when full, re-prefill the last half window."""
    T = a.context
    window = [10]
    with torch.no_grad():
        cache = [None] * a.layers
        logits = decode(p, torch.tensor([window]), a, cache, 0)
        pos = len(window)
        for i in range(tokens):
            probs = (logits / 0.8).softmax(-1)
            tok = int(torch.multinomial(probs, 1, generator=g))
            window.append(tok)
            if pos < T:
                logits = decode(p, torch.tensor([[tok]]), a, cache, pos); pos += 1
            else:
                window = window[-(T // 2):]
                cache = [None] * a.layers
                logits = decode(p, torch.tensor([window]), a, cache, 0); pos = len(window)


def evaluate(p, valid, a):
    T = a.context
    windows = (len(valid) - 1) // T
    picked = windows if a.eval_tokens == 0 else max(1, min(windows, math.ceil(a.eval_tokens / T)))
    starts = [((i * windows) // picked) * T for i in range(picked)]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, picked, 16):
            rows = starts[i:i + 16]
            x = torch.stack([torch.from_numpy(valid[s:s + T].astype(np.int64)) for s in rows])
            y = torch.stack([torch.from_numpy(valid[s + 1:s + T + 1].astype(np.int64)) for s in rows])
            loss = F.cross_entropy(forward(p, x, a).reshape(-1, 256), y.reshape(-1), reduction='sum')
            total += loss.item(); count += y.numel()
    return total / count / math.log(2)


def blas():
    """Which BLAS PyTorch's matmuls reach: Debian's torch is built with BLAS_INFO=generic, so it uses
    whatever libblas.so.3 the system selects (the reference BLAS unless OpenBLAS is installed)."""
    info = torch.__config__.show()
    built = info.split('BLAS_INFO=')[1].split(',')[0] if 'BLAS_INFO=' in info else 'unknown'
    lib = os.path.realpath('/etc/alternatives/libblas.so.3-x86_64-linux-gnu')
    return f'{built}: {lib}' if built == 'generic' else built


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--train', required=True); ap.add_argument('--valid', required=True)
    ap.add_argument('--steps', type=int, default=0); ap.add_argument('--skip', type=int, default=0)
    ap.add_argument('--layers', type=int, default=4); ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--heads', type=int, default=4); ap.add_argument('--context', type=int, default=128)
    ap.add_argument('--batch', type=int, default=32); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--warmup', type=int, default=100); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--eval-tokens', type=int, default=65536); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-eval', action='store_true')
    ap.add_argument('--generate', type=int, default=0, help='instead of training: tokens/s of sampling this many bytes')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(a.seed)
    train = np.fromfile(a.train, dtype=np.uint8); valid = np.fromfile(a.valid, dtype=np.uint8)
    p = build(a, g)
    if a.generate:
        generate(p, a, 8, g)  # warm-up, as ours
        start = time.perf_counter()
        generate(p, a, a.generate, g)
        seconds = time.perf_counter() - start
        print(json.dumps({'peer': 'torch', 'torch': torch.__version__, 'blas': blas(), 'threads': a.threads, 'tokens_per_s': round(a.generate / seconds, 1),
                          'note': f'KV cache, {a.generate} tokens sampled, the window re-prefilled from its last half when full'}))
        return
    if a.steps < 1: ap.error('--steps (or --generate) is required')
    opt = torch.optim.Adam(p.values(), lr=a.lr)
    T, B = a.context, a.batch

    def lr_at(t):
        if t < a.warmup: return a.lr * (t + 1) / (a.warmup + 1)
        progress = min(1.0, (t - a.warmup) / max(1, a.steps - a.warmup))
        return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    start = None
    for t in range(a.steps):
        if t == a.skip: start = time.perf_counter()
        at = torch.randint(0, len(train) - T, (B,), generator=g).numpy()
        x = torch.from_numpy(np.stack([train[s:s + T] for s in at]).astype(np.int64))
        y = torch.from_numpy(np.stack([train[s + 1:s + T + 1] for s in at]).astype(np.int64))
        for group in opt.param_groups: group['lr'] = lr_at(t)
        loss = F.cross_entropy(forward(p, x, a).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        if (t + 1) % 100 == 0 and start is not None:
            done = t + 1 - a.skip
            print(f'step {t + 1}/{a.steps} loss {loss.item():.4f} {done * B * T / (time.perf_counter() - start):.0f} tokens/s', file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    out = {'peer': 'torch', 'torch': torch.__version__, 'blas': blas(), 'threads': a.threads, 'steps': a.steps, 'timed_steps': a.steps - a.skip,
           'tokens_per_s': round((a.steps - a.skip) * B * T / seconds, 1), 'final_loss': round(loss.item(), 5)}
    out['train_seconds'] = round(seconds, 1)
    if not a.no_eval:
        out['bits_per_byte'] = round(evaluate(p, valid, a), 6)
        a.eval_tokens = 0
        out['bits_per_byte_all'] = round(evaluate(p, valid, a), 6)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
