"""An independent PyTorch reading of a Hugging Face GPT-2 or LLaMA-family folder, written from the
architectures' definitions and Hugging Face's key names (not from mcnc's code), to check what mcnc
computes on it.

GPT-2: token and learned position embeddings; per block, LayerNorm (eps from the config), causal
self-attention with q|k|v fused in a Conv1D ([in, out], y = x @ W + b) scaled by 1/sqrt(head size), a
Conv1D projection, LayerNorm, a 4x MLP with GELU (tanh form), each added to its input; a final
LayerNorm and the output head (lm_head.weight if saved, else the token embedding, tied). Weights come
from model.safetensors or the shards model.safetensors.index.json lists, F32, F16 or BF16, with or
without the `transformer.` prefix; the safetensors format is parsed here (header length, JSON header,
little-endian data).

LLaMA (model_type llama, mistral, qwen2): token embedding; per block, RMSNorm (x / sqrt(mean(x^2) + eps)
* g), attention with Linear ([out, in], y = x @ W^T) q, k, v projections (biases: Qwen2's on q, k, v;
attention_bias: on all four), rotary positions applied to q and k in the rotate-half form (angles
position * theta^(-2i/D), Llama 3's rope_scaling rescaling the frequencies), each key/value head shared
by heads / kv_heads consecutive query heads, causal softmax scaled by 1/sqrt(D), the o projection,
RMSNorm, and the MLP down(silu(gate(x)) * up(x)), each added to its input; a final RMSNorm and the head
(lm_head.weight, or the embedding where tie_word_embeddings). Keys with or without `model.`.

With --peft ADAPTER_DIR, a PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors) is
merged first as PEFT merges one: W += B @ A * lora_alpha / r (/ sqrt(r) with use_rslora), transposed
for Conv1D layers (fan_in_fan_out).

Usage: python3 torch_hf.py --model DIR --tokens 1,2,3 --logits OUT.f32 [--greedy N] [--peft DIR]
Writes the logits of every position ([T, vocab], float32 little-endian) to OUT.f32 and prints one
JSON line: {"shape": [T, vocab], "greedy": [N tokens]} where greedy decoding recomputes the whole
window at each step (no cache).
"""
import argparse, json, math, os, struct
import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, end = e['data_offsets']
        raw = data[b:end]
        if e['dtype'] == 'F32':
            a = np.frombuffer(raw, dtype='<f4').astype(np.float32)
        elif e['dtype'] == 'F16':
            a = np.frombuffer(raw, dtype='<f2').astype(np.float32)
        elif e['dtype'] == 'BF16':
            a = (np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f'{path}: dtype {e["dtype"]} not read here')
        out[name] = torch.from_numpy(a.reshape(e['shape']).copy())
    return out


def read_weights(folder):
    single = os.path.join(folder, 'model.safetensors')
    if os.path.exists(single):
        files = [single]
    else:
        index = json.load(open(os.path.join(folder, 'model.safetensors.index.json')))
        files = sorted({os.path.join(folder, f) for f in index['weight_map'].values()})
    w = {}
    for f in files:
        for k, v in read_safetensors(f).items():
            for prefix in ('transformer.', 'model.'):
                if k.startswith(prefix):
                    k = k[len(prefix):]
            w[k] = v
    return w


def merge_peft(w, folder):
    cfg = json.load(open(os.path.join(folder, 'adapter_config.json')))
    if cfg.get('peft_type') != 'LORA':
        raise SystemExit('only LoRA adapters are merged here')
    scale = cfg['lora_alpha'] / (math.sqrt(cfg['r']) if cfg.get('use_rslora') else cfg['r'])
    factors = read_safetensors(os.path.join(folder, 'adapter_model.safetensors'))
    for key, a in factors.items():
        if not key.endswith('.lora_A.weight'):
            continue
        b = factors[key.replace('lora_A', 'lora_B')]
        module = key[len('base_model.model.'):-len('.lora_A.weight')]
        for prefix in ('transformer.', 'model.'):
            if module.startswith(prefix):
                module = module[len(prefix):]
        delta = b @ a
        w[module + '.weight'] = w[module + '.weight'] + (delta.t() if cfg.get('fan_in_fan_out') else delta) * scale


def gpt2_logits(cfg, w, ids):
    C, H = cfg['n_embd'], cfg['n_head']
    eps = cfg.get('layer_norm_epsilon', 1e-5)
    T = len(ids)
    x = torch.tensor(ids)
    h = w['wte.weight'][x] + w['wpe.weight'][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg['n_layer']):
        p = f'h.{l}.'
        a = F.layer_norm(h, (C,), w[p + 'ln_1.weight'], w[p + 'ln_1.bias'], eps)
        qkv = a @ w[p + 'attn.c_attn.weight'] + w[p + 'attn.c_attn.bias']
        q, k, v = (t.view(T, H, C // H).transpose(0, 1) for t in qkv.split(C, dim=1))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(~mask, float('-inf')).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        h = h + y @ w[p + 'attn.c_proj.weight'] + w[p + 'attn.c_proj.bias']
        m = F.layer_norm(h, (C,), w[p + 'ln_2.weight'], w[p + 'ln_2.bias'], eps)
        m = F.gelu(m @ w[p + 'mlp.c_fc.weight'] + w[p + 'mlp.c_fc.bias'], approximate='tanh')
        h = h + m @ w[p + 'mlp.c_proj.weight'] + w[p + 'mlp.c_proj.bias']
    h = F.layer_norm(h, (C,), w['ln_f.weight'], w['ln_f.bias'], eps)
    head = w.get('lm_head.weight', w['wte.weight'])
    return h @ head.t()


def inverse_frequencies(cfg, D):
    inv = 1.0 / (cfg.get('rope_theta', 10000.0) ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    s = cfg.get('rope_scaling')
    if not s or s.get('rope_type', s.get('type')) == 'default':
        return inv
    if s.get('rope_type', s.get('type')) != 'llama3':
        raise SystemExit(f'rope_scaling {s} is not read here')
    old = s['original_max_position_embeddings']
    low, high = old / s['low_freq_factor'], old / s['high_freq_factor']
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low, inv / s['factor'], inv)
    smooth = (old / wavelen - s['low_freq_factor']) / (s['high_freq_factor'] - s['low_freq_factor'])
    smoothed = (1 - smooth) * scaled / s['factor'] + smooth * scaled
    medium = ~(wavelen < high) & ~(wavelen > low)
    return torch.where(medium, smoothed, scaled)


def llama_logits(cfg, w, ids):
    C, H, L = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_hidden_layers']
    K = cfg.get('num_key_value_heads') or H
    D = cfg.get('head_dim') or C // H
    eps = cfg.get('rms_norm_eps', 1e-6)
    T = len(ids)

    def rms(x, g):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g

    def linear(x, name):
        y = x @ w[name + '.weight'].t()
        return y + w[name + '.bias'] if name + '.bias' in w else y

    angles = torch.arange(T).float()[:, None] * inverse_frequencies(cfg, D)[None, :]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rotary(x):  # [heads, T, D]
        turned = torch.cat([-x[..., D // 2:], x[..., :D // 2]], -1)
        return x * cos + turned * sin

    mask = torch.ones(T, T, dtype=torch.bool).tril()
    h = w['embed_tokens.weight'][torch.tensor(ids)]
    for l in range(L):
        p = f'layers.{l}.'
        a = rms(h, w[p + 'input_layernorm.weight'])
        q = rotary(linear(a, p + 'self_attn.q_proj').view(T, H, D).transpose(0, 1))
        k = rotary(linear(a, p + 'self_attn.k_proj').view(T, K, D).transpose(0, 1)).repeat_interleave(H // K, 0)
        v = linear(a, p + 'self_attn.v_proj').view(T, K, D).transpose(0, 1).repeat_interleave(H // K, 0)
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(D)).masked_fill(~mask, float('-inf')).softmax(-1)
        h = h + linear((att @ v).transpose(0, 1).reshape(T, H * D), p + 'self_attn.o_proj')
        m = rms(h, w[p + 'post_attention_layernorm.weight'])
        h = h + linear(F.silu(linear(m, p + 'mlp.gate_proj')) * linear(m, p + 'mlp.up_proj'), p + 'mlp.down_proj')
    h = rms(h, w['norm.weight'])
    head = w['embed_tokens.weight'] if cfg.get('tie_word_embeddings') else w['lm_head.weight']
    return h @ head.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--tokens', required=True)
    ap.add_argument('--logits', required=True)
    ap.add_argument('--greedy', type=int, default=0)
    ap.add_argument('--peft')
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(a.model, 'config.json')))
    forward = {'gpt2': gpt2_logits, 'llama': llama_logits, 'mistral': llama_logits, 'qwen2': llama_logits}.get(cfg.get('model_type'))
    if not forward:
        raise SystemExit(f'model_type {cfg.get("model_type")} is not read here')
    context = cfg.get('n_positions') or cfg['max_position_embeddings']
    w = read_weights(a.model)
    if a.peft:
        merge_peft(w, a.peft)
    ids = [int(t) for t in a.tokens.split(',')]
    with torch.no_grad():
        logits = forward(cfg, w, ids)
        logits.numpy().astype('<f4').tofile(a.logits)
        window, greedy = list(ids), []
        for _ in range(a.greedy):
            t = int(forward(cfg, w, window[-context:])[-1].argmax())
            greedy.append(t)
            window.append(t)
    print(json.dumps({'shape': list(logits.shape), 'greedy': greedy}))


if __name__ == '__main__':
    main()
