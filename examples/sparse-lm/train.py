#!/usr/bin/env python3
"""Trains the byte-level Sparse Transformer of examples/sparse-lm and exports it.

    python3 train.py --out OUT            # build the corpus, train, evaluate, export (GPU)
    python3 train.py --probe              # versions, corpus size, a short speed test
    python3 train.py --plot LOG.json SVG  # redraw the loss curve from a training log

Everything the JS side needs to match is defined here and in README.md "Model":
byte tokens (vocab 256), tied embedding, pre-norm blocks (RMSNorm), rotary position
embedding (RoPE) on q and k, grouped K/V heads, attention factorised as in Child et al.
2019 (layers alternate `local` and `strided`, with the library's causal mask rules), a
SwiGLU MLP. The attention is an explicit reference: a boolean mask of the pattern, used
by torch SDPA (training) or by a plain masked softmax (export, fixtures).

Only PyTorch and the standard library are used. Outputs in --out: weights.safetensors
(f16), model.json, fixtures.json, train_log.json, loss.svg.
"""
import argparse
import base64
import hashlib
import json
import math
import os
import struct
import sys
import sysconfig
import time

# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------

CONFIG = {
    "vocab_size": 256,            # bytes
    "d_model": 256,
    "n_layer": 6,
    "n_head": 8,                  # query heads
    "n_kv_head": 2,               # K/V heads; query head h reads K/V head floor(h*n_kv_head/n_head)
    "head_dim": 32,
    "d_ff": 704,                  # SwiGLU hidden width
    # Layer l attends with layers[l]: the library's modes, causal, localAttnCtx = L.
    "layers": [
        {"attn": "local", "L": 256},
        {"attn": "strided", "L": 64},
        {"attn": "local", "L": 256},
        {"attn": "strided", "L": 64},
        {"attn": "local", "L": 256},
        {"attn": "strided", "L": 64},
    ],
    "rope_base": 10000.0,
    "norm_eps": 1e-5,
    "tied_embedding": True,
    "n_ctx_train": 4096,
    "n_ctx_max": 8192,
}

TRAIN = {
    "seed": 1234,
    "batch_size": 32,             # sequences of n_ctx_train bytes (+1 target) per step
    "steps": 1500,
    "lr": 2e-3,
    "lr_min_ratio": 0.1,          # cosine decay to lr * lr_min_ratio
    "warmup_steps": 150,
    "weight_decay": 0.1,          # on the 2-D projection matrices only (not embedding, norms)
    "betas": [0.9, 0.95],
    "adam_eps": 1e-8,
    "grad_clip": 1.0,
    "eval_every": 100,
    "eval_windows": 48,           # the curve's validation loss: the first 48 windows of 4096
    "init_std": 0.02,
    "precision": "bf16 autocast, TF32 matmuls; master weights fp32",
}

VAL_EVERY = 20                   # file i (sorted order) is validation iff i % 20 == 0

# ---------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------


def stdlib_dir():
    return sysconfig.get_paths()["stdlib"]


def list_sources(root):
    """Relative POSIX paths of the regular (non-link) .py files under root, sorted by
    Python string order; site-packages, dist-packages and __pycache__ are skipped."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in ("site-packages", "dist-packages", "__pycache__")]
        for f in files:
            if not f.endswith(".py"):
                continue
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            out.append(os.path.relpath(p, root).replace(os.sep, "/"))
    out.sort()
    return out


def build_corpus(root=None):
    root = root or stdlib_dir()
    paths = list_sources(root)
    train, val, whole = [], [], hashlib.sha256()
    val_files = []
    for i, rel in enumerate(paths):
        with open(os.path.join(root, rel), "rb") as fh:
            b = fh.read()
        whole.update(b)
        if i % VAL_EVERY == 0:
            val.append(b)
            val_files.append(rel)
        else:
            train.append(b)
    train_b, val_b = b"".join(train), b"".join(val)
    info = {
        "python": sys.version.split()[0],
        "stdlib": root,
        "files": len(paths),
        "train_files": len(paths) - len(val_files),
        "val_files": len(val_files),
        "bytes": len(train_b) + len(val_b),
        "sha256": whole.hexdigest(),
        "train_bytes": len(train_b),
        "train_sha256": hashlib.sha256(train_b).hexdigest(),
        "val_bytes": len(val_b),
        "val_sha256": hashlib.sha256(val_b).hexdigest(),
        "first_val_file": val_files[0],
        "split_rule": "sorted index i: i % 20 == 0 -> validation, else training",
    }
    return train_b, val_b, val_files, info


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def allowed(mode, L, n_q, n_k, device):
    """Boolean [n_q, n_k] mask of the library's causal rules; query i sits at position
    n_k - n_q + i (bottom-right alignment, as with a KV cache), key j at position j."""
    i = torch.arange(n_k - n_q, n_k, device=device)[:, None]
    j = torch.arange(n_k, device=device)[None, :]
    if mode == "local":
        return (j <= i) & (j > i - L)
    if mode == "strided":
        return (j <= i) & ((i - j) % L == 0)
    if mode == "all":
        return j <= i
    raise ValueError(mode)


def rope_tables(n, head_dim, base, device, offset=0):
    """cos, sin [n, head_dim/2] for positions offset..offset+n-1, computed in float64,
    then rounded to float32: angle(p, i) = p * base^(-2i/head_dim)."""
    half = head_dim // 2
    inv = base ** (-torch.arange(half, dtype=torch.float64, device=device) * 2.0 / head_dim)
    pos = torch.arange(offset, offset + n, dtype=torch.float64, device=device)
    ang = pos[:, None] * inv[None, :]
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin):
    """x [B, T, H, D]; rotate-half (GPT-NeoX) layout: the pair is (x[i], x[i + D/2])."""
    half = x.shape[-1] // 2
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(dt)
    x1, x2 = xf[..., :half], xf[..., half:]
    c = cos[None, :, None, :].to(dt)
    s = sin[None, :, None, :].to(dt)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1).to(x.dtype)


def rms_norm(x, w, eps):
    xf = x if x.dtype == torch.float64 else x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y * w.to(xf.dtype)).to(x.dtype)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["d_model"], c["head_dim"]
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.wq = nn.Parameter(torch.empty(c["n_head"] * hd, d))
        self.wk = nn.Parameter(torch.empty(c["n_kv_head"] * hd, d))
        self.wv = nn.Parameter(torch.empty(c["n_kv_head"] * hd, d))
        self.wo = nn.Parameter(torch.empty(d, c["n_head"] * hd))
        self.mlp_norm = nn.Parameter(torch.ones(d))
        self.w1 = nn.Parameter(torch.empty(c["d_ff"], d))   # gate
        self.w3 = nn.Parameter(torch.empty(c["d_ff"], d))   # up
        self.w2 = nn.Parameter(torch.empty(d, c["d_ff"]))   # down


class SparseLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_emb = nn.Parameter(torch.empty(c["vocab_size"], c["d_model"]))
        self.layers = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.final_norm = nn.Parameter(torch.ones(c["d_model"]))

    def init_weights(self, std):
        resid = std / math.sqrt(2 * self.c["n_layer"])
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(".wo") or name.endswith(".w2"):
                nn.init.normal_(p, 0.0, resid)
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, attn_impl="sdpa", masks=None):
        """idx [B, T] int64 bytes -> logits [B, T, 256]. attn_impl: 'sdpa' (torch SDPA
        with the boolean mask) or 'manual' (masked softmax written out)."""
        c = self.c
        B, T = idx.shape
        H, KV, hd, eps = c["n_head"], c["n_kv_head"], c["head_dim"], c["norm_eps"]
        if masks is None:
            masks = {}
        cos, sin = rope_tables(T, hd, c["rope_base"], idx.device)
        x = F.embedding(idx, self.tok_emb)
        for spec, blk in zip(c["layers"], self.layers):
            key = (spec["attn"], spec["L"], T)
            if key not in masks:
                masks[key] = allowed(spec["attn"], spec["L"], T, T, idx.device)
            mask = masks[key]
            h = rms_norm(x, blk.attn_norm, eps)
            q = (h @ blk.wq.t().to(h.dtype)).view(B, T, H, hd)
            k = (h @ blk.wk.t().to(h.dtype)).view(B, T, KV, hd)
            v = (h @ blk.wv.t().to(h.dtype)).view(B, T, KV, hd)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))            # [B, heads, T, hd]
            k = k.repeat_interleave(H // KV, dim=1)                     # head h -> kv h // (H/KV)
            v = v.repeat_interleave(H // KV, dim=1)
            if attn_impl == "sdpa":
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            else:
                s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
                s = s.masked_fill(~mask, float("-inf"))
                o = torch.softmax(s, dim=-1) @ v
            o = o.transpose(1, 2).reshape(B, T, H * hd)
            x = x + o @ blk.wo.t().to(o.dtype)
            h = rms_norm(x, blk.mlp_norm, eps)
            g = h @ blk.w1.t().to(h.dtype)
            u = h @ blk.w3.t().to(h.dtype)
            x = x + (F.silu(g) * u) @ blk.w2.t().to(h.dtype)
        x = rms_norm(x, self.final_norm, eps)
        return x @ self.tok_emb.t().to(x.dtype)


def param_count(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------
# Weights file: safetensors layout, f16
# ---------------------------------------------------------------------------------------


def save_f16(model, path, metadata):
    """safetensors: u64 LE header length N, N bytes of JSON (space-padded to a multiple
    of 8), then the tensors' raw little-endian f16 data in the header's order."""
    header, blobs, off = {}, [], 0
    for name, p in model.named_parameters():
        raw = p.detach().to("cpu", torch.float16).contiguous().view(torch.uint8).numpy().tobytes() \
            if _has_numpy() else _f16_bytes(p)
        header[name] = {"dtype": "F16", "shape": list(p.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    with open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def _has_numpy():
    try:
        import numpy  # noqa: F401
        return True
    except ImportError:
        return False


def _f16_bytes(p):
    t = p.detach().to("cpu", torch.float16).contiguous().view(torch.int16).flatten().tolist()
    return struct.pack("<%dh" % len(t), *t)


def load_f16(path, device):
    with open(path, "rb") as fh:
        data = fh.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        a, b = m["data_offsets"]
        raw = bytearray(data[base + a:base + b])
        t = torch.frombuffer(raw, dtype=torch.float16).reshape(m["shape"])
        out[name] = t.to(device, torch.float32)
    return out


# ---------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------


def windows(stream, n_ctx, count=None):
    """Non-overlapping windows of n_ctx predictions: inputs stream[s:s+n], targets
    stream[s+1:s+n+1], s = 0, n, 2n, ...; the last one may be shorter."""
    n_pred = len(stream) - 1
    starts = list(range(0, n_pred, n_ctx))
    if count is not None:
        starts = starts[:count]
    return [(s, min(n_ctx, n_pred - s)) for s in starts]


@torch.no_grad()
def evaluate(model, stream, n_ctx, count, attn_impl, autocast, batch=8):
    """Mean cross-entropy (nats per byte) over the windows' every prediction."""
    model.eval()
    dev = stream.device
    total, n = 0.0, 0
    ws = windows(stream, n_ctx, count)
    masks = {}
    full = [w for w in ws if w[1] == n_ctx]
    part = [w for w in ws if w[1] != n_ctx]
    groups = [full[i:i + batch] for i in range(0, len(full), batch)] + [[w] for w in part]
    for g in groups:
        L = g[0][1]
        idx = torch.stack([stream[s:s + L + 1] for s, _ in g]).long()
        with torch.autocast(dev.type, torch.bfloat16, enabled=autocast):
            logits = model(idx[:, :-1], attn_impl=attn_impl, masks=masks)
        loss = F.cross_entropy(logits.float().reshape(-1, 256), idx[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        n += idx[:, 1:].numel()
    model.train()
    return total / n, n


def lr_at(step, t):
    if step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    p = (step - t["warmup_steps"]) / max(1, t["steps"] - t["warmup_steps"])
    lo = t["lr"] * t["lr_min_ratio"]
    return lo + 0.5 * (t["lr"] - lo) * (1 + math.cos(math.pi * min(1.0, p)))


def make_optimizer(model, t):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n != "tok_emb"]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and n != "tok_emb")]
    groups = [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": other, "weight_decay": 0.0}]
    kw = dict(lr=t["lr"], betas=tuple(t["betas"]), eps=t["adam_eps"])
    try:
        return torch.optim.AdamW(groups, fused=True, **kw)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, **kw)


def fmt32(x):
    """A float32 value as the shortest decimal that reads back to it."""
    return float("%.9g" % x)


def set_fp32_exact():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def export_fixtures(model, val_stream_cpu, val_files, corpus_root, device, weights_sha, long_len=8192):
    """fp32 logits (weights = the f16 values, math in fp32, TF32 off, manual masked
    softmax) for held prompts, and a 256-step greedy continuation."""
    set_fp32_exact()
    model.eval()
    with open(os.path.join(corpus_root, val_files[0]), "rb") as fh:
        prompt = fh.read()[:1000]
    positions = [0, 1, 63, 64, 65, 255, 256, 257, 511, 512, 999]
    ids = torch.tensor(list(prompt), device=device)[None]
    with torch.no_grad():
        lg32 = model(ids, attn_impl="manual")[0]
        m64 = model.double()
        lg64 = m64(ids, attn_impl="manual")[0]
        model.float()
    diff = (lg32.double() - lg64).abs().max().item()
    short = {
        "source": "%s, bytes 0..%d (the first validation file)" % (val_files[0], len(prompt) - 1),
        "bytes_b64": base64.b64encode(prompt).decode(),
        "length": len(prompt),
        "logits": [{"position": p, "logits": [fmt32(v) for v in lg32[p].tolist()]} for p in positions],
        "max_abs_diff_fp32_vs_fp64": diff,
    }
    # Greedy continuation: full recomputation each step, fp32.
    seq = list(prompt)
    toks, gaps, firsts = [], [], []
    with torch.no_grad():
        for _ in range(256):
            lg = model(torch.tensor(seq, device=device)[None], attn_impl="manual")[0, -1]
            top = torch.topk(lg, 2)
            t0 = int(top.indices[0])
            toks.append(t0)
            gaps.append(fmt32(float(top.values[0] - top.values[1])))
            seq.append(t0)
    greedy = {
        "prompt": "the short prompt above (1000 bytes)",
        "steps": 256,
        "tokens": toks,
        "text": bytes(toks).decode("utf-8", errors="replace"),
        "top2_gap": gaps,
        "min_top2_gap": min(gaps),
        "argmin_top2_gap": gaps.index(min(gaps)),
    }
    # A long prompt past the training context: the first 8192 bytes of the validation stream.
    long_prompt = bytes(val_stream_cpu[:long_len].tolist())
    lpos = [p for p in [0, 999, 4095, 4096, 4097, 6000, 8191] if p < long_len - 1] + [long_len - 1]
    with torch.no_grad():
        ids = torch.tensor(list(long_prompt), device=device)[None]
        lgl = model(ids, attn_impl="manual")[0]
        lgl64 = model.double()(ids, attn_impl="manual")[0]
        model.float()
    long = {
        "source": "the validation stream (validation files concatenated in sorted order), bytes 0..%d" % (long_len - 1),
        "bytes_b64": base64.b64encode(long_prompt).decode(),
        "length": len(long_prompt),
        "logits": [{"position": p, "logits": [fmt32(v) for v in lgl[p].tolist()]} for p in lpos],
        "max_abs_diff_fp32_vs_fp64": (lgl.double() - lgl64).abs().max().item(),
    }
    return {
        "format": "sparse-lm-fixtures-v1",
        "weights_sha256": weights_sha,
        "math": "weights = the f16 values of weights.safetensors widened to f32; every op in f32 "
                "(TF32 off), attention as an explicit masked softmax; RoPE tables computed in f64 then "
                "rounded to f32; logits are those of the byte that follows each position",
        "short": short,
        "greedy": greedy,
        "long": long,
    }


def svg_plot(log, path):
    """Train and validation loss (bits per byte) against step, as a standalone SVG."""
    tr = [(r["step"], r["train_loss"] / math.log(2)) for r in log["curve"] if r.get("train_loss") is not None]
    va = [(r["step"], r["val_loss"] / math.log(2)) for r in log["curve"] if r.get("val_loss") is not None]
    W, H, ml, mr, mt, mb = 720, 420, 60, 20, 30, 45
    xs = [s for s, _ in tr + va] or [1]
    ys = [y for _, y in tr + va] or [1]
    x0, x1 = 0, max(xs)
    y0, y1 = max(0.0, math.floor(min(ys) * 2) / 2), math.ceil(min(max(ys), 8.5) * 2) / 2
    px = lambda s: ml + (W - ml - mr) * (s - x0) / max(1, x1 - x0)  # noqa: E731
    py = lambda y: mt + (H - mt - mb) * (1 - (min(y, y1) - y0) / max(1e-9, y1 - y0))  # noqa: E731
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="12">' % (W, H, W, H),
         '<rect width="100%" height="100%" fill="white"/>']
    yt = y0
    while yt <= y1 + 1e-9:
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (ml, W - mr, py(yt), py(yt)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%.1f</text>' % (ml - 6, py(yt) + 4, yt))
        yt += 0.5
    step = 10 ** math.floor(math.log10(max(1, x1)))
    if x1 / step < 4:
        step //= 2 or 1
    xt = 0
    while xt <= x1:
        o.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (px(xt), px(xt), mt, H - mb))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(xt), H - mb + 16, xt))
        xt += max(1, step)
    o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>' % (ml, mt, W - ml - mr, H - mt - mb))
    for pts, col in ((tr, "#1f77b4"), (va, "#d62728")):
        if pts:
            o.append('<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>'
                     % (col, " ".join("%.1f,%.1f" % (px(s), py(y)) for s, y in pts)))
    o.append('<text x="%d" y="%d" text-anchor="middle">step</text>' % ((W + ml) // 2, H - 8))
    o.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">bits per byte</text>' % (H // 2, H // 2))
    o.append('<text x="%d" y="18" text-anchor="middle">%s</text>' % ((W + ml) // 2, log.get("title", "loss")))
    lx = W - mr - 190
    o.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#1f77b4" stroke-width="2"/>' % (lx, lx + 24, mt + 16, mt + 16))
    o.append('<text x="%d" y="%d">train (mean since last point)</text>' % (lx + 30, mt + 20))
    o.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#d62728" stroke-width="2"/>' % (lx, lx + 24, mt + 34, mt + 34))
    o.append('<text x="%d" y="%d">validation (fixed subset)</text>' % (lx + 30, mt + 38))
    o.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(o) + "\n")


def train_main(args):
    t_start = time.time()
    t = dict(TRAIN)
    if args.steps:
        t["steps"] = args.steps
    if args.batch:
        t["batch_size"] = args.batch
    if args.warmup:
        t["warmup_steps"] = args.warmup
    if args.eval_every:
        t["eval_every"] = args.eval_every
    if args.eval_windows:
        t["eval_windows"] = args.eval_windows
    c = dict(CONFIG)
    long_len, val_count = 8192, (args.final_val_windows or None)
    if args.smoke:   # a CPU check of the whole pipeline, not a model
        c["n_ctx_train"] = 128
        t.update(steps=args.steps or 3, batch_size=2, eval_every=10, eval_windows=2, warmup_steps=1)
        long_len, val_count = 1100, 4
    os.makedirs(args.out, exist_ok=True)
    device = torch.device(args.device)

    root = stdlib_dir()
    train_b, val_b, val_files, corpus = build_corpus(root)
    print("corpus:", json.dumps(corpus), flush=True)
    train_s = torch.frombuffer(bytearray(train_b), dtype=torch.uint8).to(device)
    val_cpu = torch.frombuffer(bytearray(val_b), dtype=torch.uint8)
    val_s = val_cpu.to(device)

    torch.manual_seed(t["seed"])
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    model = SparseLM(c).to(device)
    model.init_weights(t["init_std"])
    n_params = param_count(model)
    print("params:", n_params, flush=True)
    opt = make_optimizer(model, t)
    gen = torch.Generator().manual_seed(t["seed"] + 1)
    n = c["n_ctx_train"]
    B = t["batch_size"]
    offs = torch.arange(n + 1, device=device)
    masks = {}
    curve, run_sum, run_n = [], 0.0, 0
    use_amp = device.type == "cuda"
    t_train = time.time()
    step_done = 0
    stopped_early = False
    auto_steps = None
    step = 0
    while step < t["steps"]:
        if args.time_limit and time.time() - t_train > args.time_limit:
            stopped_early = True
            break
        if args.stop_at and step >= args.stop_at:
            stopped_early = True
            break
        if args.replay_at and step == args.replay_at:
            t["steps"] = auto_steps = args.replay_steps
        if args.train_seconds and step == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_meas = time.time()
        if args.train_seconds and step == 23:
            # Fix the step count from the measured speed (recorded; rerun with --steps N).
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_step = (time.time() - t_meas) / 20
            left = args.train_seconds - (time.time() - t_train)
            t["steps"] = auto_steps = max(t["warmup_steps"] + 1, 24, 23 + int(0.97 * left / (per_step * 1.01)))
            print("measured %.3f s/step; steps set to %d" % (per_step, t["steps"]), flush=True)
        starts = torch.randint(0, len(train_b) - n - 1, (B,), generator=gen).to(device)
        batch = train_s[starts[:, None] + offs[None, :]].long()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, t)
        try:
            with torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
                logits = model(batch[:, :-1], attn_impl="sdpa", masks=masks)
            loss = F.cross_entropy(logits.float().reshape(-1, 256), batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
        except torch.cuda.OutOfMemoryError:
            if step > 0 or B == 1:
                raise
            logits = loss = None
            opt.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            B = t["batch_size"] = B // 2
            print("out of memory on the first step: batch size now %d" % B, flush=True)
            continue
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
        run_sum += loss.detach()
        run_n += 1
        step_done = step + 1
        if step_done % t["eval_every"] == 0 or step_done == t["steps"] or step == 0:
            tl = (run_sum / run_n).item()
            vl, _ = evaluate(model, val_s, n, t["eval_windows"], "sdpa", use_amp)
            el = time.time() - t_train
            curve.append({"step": step_done, "train_loss": tl, "val_loss": vl, "lr": lr_at(step, t),
                          "grad_norm": float(gn), "elapsed_s": round(el, 1)})
            print("step %5d  train %.4f  val %.4f (%.3f bpb)  lr %.2e  gn %.2f  %.0fs  %.0f tok/s" % (
                step_done, tl, vl, vl / math.log(2), lr_at(step, t), float(gn), el,
                step_done * B * n / max(el, 1e-9)), flush=True)
            run_sum, run_n = 0.0, 0
            with open(os.path.join(args.out, "curve.partial.json"), "w") as fh:
                json.dump(curve, fh)
        step += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s_elapsed = time.time() - t_train
    print("trained %d steps in %.1f s" % (step_done, train_s_elapsed), flush=True)

    # Export: f16 weights; every number below uses exactly those weights, in fp32.
    meta = {"format": "sparse-lm-f16-v1", "config": "model.json"}
    wpath = os.path.join(args.out, "weights.safetensors")
    sha, size = save_f16(model, wpath, meta)
    sd = load_f16(wpath, device)
    model.load_state_dict(sd)
    set_fp32_exact()
    t_eval = time.time()
    val_loss, val_n = evaluate(model, val_s, n, val_count, "sdpa", False)
    train_loss_fixed, train_n = evaluate(model, train_s, n, val_count or 256, "sdpa", False)
    print("final (f16 weights, fp32): val %.4f nats/byte = %.4f bpb over %d bytes; train subset %.4f (%.4f bpb) over %d" % (
        val_loss, val_loss / math.log(2), val_n, train_loss_fixed, train_loss_fixed / math.log(2), train_n), flush=True)
    # SDPA and the written-out masked softmax agree (fp32), on one validation window.
    with torch.no_grad():
        w = val_s[:n + 1].long()[None]
        a = model(w[:, :-1], attn_impl="sdpa")
        b = model(w[:, :-1], attn_impl="manual")
        sdpa_vs_manual = (a - b).abs().max().item()
    print("sdpa vs manual max |diff| (fp32 logits, %d bytes): %.3g" % (n, sdpa_vs_manual), flush=True)
    if args.smoke_no_fixtures:
        return
    fixtures = export_fixtures(model, val_cpu, val_files, root, device, sha, long_len)
    print("greedy:", repr(fixtures["greedy"]["text"][:200]), "min gap", fixtures["greedy"]["min_top2_gap"], flush=True)
    print("fp32 vs fp64 logits: short %.3g, long %.3g" % (
        fixtures["short"]["max_abs_diff_fp32_vs_fp64"], fixtures["long"]["max_abs_diff_fp32_vs_fp64"]), flush=True)
    eval_s = time.time() - t_eval

    model_json = dict(c)
    model_json.update({
        "format": "sparse-lm-v1",
        "n_params": n_params,
        "weights": {"file": "weights.safetensors", "dtype": "F16", "bytes": size, "sha256": sha,
                    "tensors": [[k, list(v.shape)] for k, v in model.state_dict().items()]},
        "attention_scale": 1.0 / math.sqrt(c["head_dim"]),
        "kv_head_of_query_head": "floor(h * n_kv_head / n_head)",
        "rope": "rotate-half (GPT-NeoX) on the whole head: pairs (x[i], x[i + head_dim/2]), "
                "angle = position * rope_base^(-2i/head_dim), applied to q and k after projection",
        "norm": "RMSNorm: x / sqrt(mean(x^2) + norm_eps) * weight, no bias",
        "mlp": "SwiGLU: w2(silu(w1 x) * w3 x), no biases",
        "linear": "y = x W^T (W stored [out, in], as torch.nn.Linear), no biases",
        "logits": "final_norm(x) @ tok_emb^T (tied)",
    })
    with open(os.path.join(args.out, "model.json"), "w") as fh:
        json.dump(model_json, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(args.out, "fixtures.json"), "w") as fh:
        json.dump(fixtures, fh)
        fh.write("\n")
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    log = {
        "title": "sparse-lm: %d params, %s, batch %d x %d bytes" % (n_params, gpu, B, n),
        "torch": torch.__version__,
        "device": gpu,
        "corpus": corpus,
        "config": c,
        "train": t,
        "n_params": n_params,
        "steps_done": step_done,
        "steps_from_measured_speed": auto_steps,
        "train_seconds_target": args.train_seconds or None,
        "stopped_early_by_time_limit": stopped_early,
        "train_seconds": round(train_s_elapsed, 1),
        "eval_export_seconds": round(eval_s, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "tokens_seen": step_done * B * n,
        "final": {
            "weights": "f16 (the exported file), fp32 math, TF32 off",
            "val_loss_nats": val_loss, "val_bpb": val_loss / math.log(2), "val_bytes_scored": val_n,
            "val_windows": ("the whole validation stream in non-overlapping windows of 4096 predictions (last one shorter)"
                            if not val_count else "the first %d non-overlapping windows of 4096 of the validation stream" % val_count),
            "train_subset_loss_nats": train_loss_fixed, "train_subset_bpb": train_loss_fixed / math.log(2),
            "train_subset": "the first %d non-overlapping windows of 4096 of the training stream" % (val_count or 256),
            "last_train_loss_bf16": curve[-1]["train_loss"] if curve else None,
            "sdpa_vs_manual_max_abs_diff": sdpa_vs_manual,
        },
        "weights_sha256": sha,
        "curve": curve,
    }
    with open(os.path.join(args.out, "train_log.json"), "w") as fh:
        json.dump(log, fh, indent=1)
        fh.write("\n")
    svg_plot(log, os.path.join(args.out, "loss.svg"))
    os.remove(os.path.join(args.out, "curve.partial.json"))
    print("done in %.1f s; weights sha256 %s (%d bytes)" % (time.time() - t_start, sha, size), flush=True)


def probe_main(args):
    print("python", sys.version.split()[0], "torch", torch.__version__,
          "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0))
    for mod in ("numpy", "matplotlib", "safetensors"):
        try:
            m = __import__(mod)
            print(mod, getattr(m, "__version__", "?"))
        except ImportError:
            print(mod, "missing")
    t0 = time.time()
    train_b, val_b, val_files, corpus = build_corpus()
    print("corpus (%.1fs):" % (time.time() - t0), json.dumps(corpus))
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    model = SparseLM(CONFIG).to(device)
    model.init_weights(0.02)
    print("params", param_count(model))
    n = CONFIG["n_ctx_train"]
    train_s = torch.frombuffer(bytearray(train_b), dtype=torch.uint8).to(device)
    opt = make_optimizer(model, TRAIN)
    for B in [int(b) for b in args.probe_batches.split(",")]:
        masks = {}
        offs = torch.arange(n + 1, device=device)
        times = []
        for it in range(args.probe_iters):
            if device.type == "cuda":
                torch.cuda.synchronize()
            a = time.time()
            starts = torch.randint(0, len(train_b) - n - 1, (B,)).to(device)
            batch = train_s[starts[:, None] + offs[None, :]].long()
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(batch[:, :-1], attn_impl="sdpa", masks=masks)
            loss = F.cross_entropy(logits.float().reshape(-1, 256), batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.time() - a)
        med = sorted(times[2:])[len(times[2:]) // 2]
        mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0
        print("batch %d: median step %.3f s, %.0f tok/s, loss %.3f, peak mem %.1f GiB" % (
            B, med, B * n / med, loss.item(), mem), flush=True)
    # fp32 check: SDPA vs manual, and the cost of one fp32 eval window batch
    set_fp32_exact()
    with torch.no_grad():
        w = train_s[:n + 1].long()[None]
        a = model(w[:, :-1], attn_impl="sdpa")
        b = model(w[:, :-1], attn_impl="manual")
        print("sdpa vs manual fp32 max diff", (a - b).abs().max().item())
        if device.type == "cuda":
            torch.cuda.synchronize()
        a0 = time.time()
        idx = torch.stack([train_s[i * n:i * n + n] for i in range(8)]).long()
        model(idx, attn_impl="sdpa")
        if device.type == "cuda":
            torch.cuda.synchronize()
        print("fp32 eval, 8 windows: %.3f s" % (time.time() - a0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=0, help="override TRAIN['steps']")
    ap.add_argument("--batch", type=int, default=0, help="override TRAIN['batch_size']")
    ap.add_argument("--train-seconds", type=float, default=0,
                    help="set the step count from the speed of steps 3..22 to fill this many seconds")
    ap.add_argument("--warmup", type=int, default=0, help="override TRAIN['warmup_steps']")
    ap.add_argument("--eval-every", type=int, default=0, help="override TRAIN['eval_every']")
    ap.add_argument("--eval-windows", type=int, default=0, help="override TRAIN['eval_windows']")
    ap.add_argument("--final-val-windows", type=int, default=0,
                    help="final validation on the first N windows only (default: the whole split)")
    ap.add_argument("--replay-at", type=int, default=0,
                    help="with --replay-steps N: the schedule spans TRAIN['steps'] until this step, then N steps "
                         "(what --train-seconds does at step 23)")
    ap.add_argument("--replay-steps", type=int, default=0)
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop after this many steps (the schedule still spans --steps): replays a run cut by --time-limit")
    ap.add_argument("--time-limit", type=float, default=0, help="stop training after this many seconds (a guard)")
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run of the whole pipeline")
    ap.add_argument("--smoke-no-fixtures", action="store_true", help="stop after the final evaluation")
    ap.add_argument("--probe-batches", default="8,16,32")
    ap.add_argument("--probe-iters", type=int, default=8)
    ap.add_argument("--plot", nargs=2, metavar=("LOG", "SVG"))
    args = ap.parse_args()
    if args.plot:
        with open(args.plot[0]) as fh:
            svg_plot(json.load(fh), args.plot[1])
    elif args.probe:
        probe_main(args)
    else:
        train_main(args)


if __name__ == "__main__":
    main()
