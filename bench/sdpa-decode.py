# PyTorch's side of bench/gpu-decode.mjs (issue 17), same shapes, on the same card:
#   source .gpu/setup.sh; python3 bench/sdpa-decode.py; node bench/gpu-decode.mjs
# - decode: 1 query, 32 query / 8 K/V heads, head dim 128, fp32, SDPA with enable_gqa=True
#   against caches of 8K…128K keys: `all` attends every key (no mask: PyTorch's is_causal is
#   top-left aligned, which for one query would keep key 0 only); `local` L=4096 attends the
#   last 4096 keys, the slice a sliding-window decoder passes (k[:, :, -4096:]).
# - GQA prefill: nCtx 4096, causal, enable_gqa=True, and the same with K/V repeated to 32 heads.
# Timing: CUDA events around --repeat back-to-back calls (the mean per call), median of --runs,
# after warm-up; outputs checked first against a float64 computation.
#   --cpu: a tiny check on the CPU (no CUDA here), e.g. on the development machine
import argparse, json, math
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--caches', default='8192,32768,65536,131072')
p.add_argument('--heads', type=int, default=32)
p.add_argument('--kv-heads', type=int, default=8)
p.add_argument('--head-dim', type=int, default=128)
p.add_argument('--local', type=int, default=4096)
p.add_argument('--prefill', type=int, default=4096)
p.add_argument('--repeat', type=int, default=200)
p.add_argument('--runs', type=int, default=10)
p.add_argument('--cpu', action='store_true')
a = p.parse_args()
if a.cpu:
    a.caches, a.heads, a.kv_heads, a.head_dim, a.local, a.prefill, a.repeat, a.runs = '512,2048', 8, 2, 32, 256, 256, 3, 2
dev = 'cpu' if a.cpu else 'cuda'
H, KVH, D = a.heads, a.kv_heads, a.head_dim
HBM_BYTES_PER_MS = 3.35e9


def sdpa(q, k, v, causal):
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True), True
    except TypeError:  # torch < 2.5 has no enable_gqa: repeat K/V (said in the output)
        g = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(q, k.repeat_interleave(g, 1), v.repeat_interleave(g, 1), is_causal=causal), False


def reference(q, k, v, causal):
    g = q.shape[1] // k.shape[1]
    q, k, v = q.double(), k.repeat_interleave(g, 1).double(), v.repeat_interleave(g, 1).double()
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        nq, nk = s.shape[-2], s.shape[-1]
        keep = torch.ones(nq, nk, dtype=torch.bool, device=s.device).tril(nk - nq)
        s = s.masked_fill(~keep, float('-inf'))
    return torch.softmax(s, -1) @ v


def check(out, ref, what):
    err = ((out.double() - ref).abs() / (1e-4 + 1e-3 * ref.abs())).max().item()
    if not err <= 1:
        raise SystemExit(f'{what}: output off the float64 reference (worst {err:.2f} x tolerance)')
    return err


def timed(fn):
    for _ in range(3):
        fn()
    sync()
    ms = []
    for _ in range(a.runs):
        if dev == 'cuda':
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(a.repeat):
                fn()
            e.record()
            torch.cuda.synchronize()
            ms.append(s.elapsed_time(e) / a.repeat)
        else:
            import time
            t0 = time.perf_counter()
            for _ in range(a.repeat):
                fn()
            ms.append((time.perf_counter() - t0) * 1e3 / a.repeat)
    return sorted(ms)[len(ms) // 2]


def sync():
    if dev == 'cuda':
        torch.cuda.synchronize()


info = dict(impl='torch-sdpa', torch=torch.__version__, gpu=torch.cuda.get_device_name() if dev == 'cuda' else 'cpu', dtype='float32')
g = torch.Generator(device='cpu').manual_seed(0)
rand = lambda *s: (torch.rand(*s, generator=g) * 2 - 1).to(dev)

for mode in ['all', 'local']:
    for C in [int(x) for x in a.caches.split(',')]:
        q = rand(1, H, 1, D)
        k, v = rand(1, KVH, C, D), rand(1, KVH, C, D)
        if mode == 'local':
            k, v = k[:, :, -a.local:].contiguous(), v[:, :, -a.local:].contiguous()
        out, gqa = sdpa(q, k, v, False)
        err = check(out, reference(q, k, v, False), f'decode {mode} {C}')
        ms = timed(lambda: sdpa(q, k, v, False))
        hbm = 2 * k.shape[2] * KVH * D * 4 / HBM_BYTES_PER_MS
        print(json.dumps(dict(info, case='decode', mode=mode, L=a.local if mode == 'local' else None, cache=C, heads=H, kvHeads=KVH, headDim=D,
                              enable_gqa=gqa, ms=ms, hbmBoundMs=hbm, vsHbm=ms / hbm, worstErr=err)), flush=True)
        del q, k, v, out

n = a.prefill
q = rand(1, H, n, D)
k, v = rand(1, KVH, n, D), rand(1, KVH, n, D)
out, gqa = sdpa(q, k, v, True)
err = check(out[:, :, :64], reference(q[:, :, :64], k[:, :, :64], v[:, :, :64], True), 'GQA prefill rows 0..63')
ms_gqa = timed(lambda: sdpa(q, k, v, True))
kr, vr = k.repeat_interleave(H // KVH, 1), v.repeat_interleave(H // KVH, 1)
ms_rep = timed(lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=True))
print(json.dumps(dict(info, case='gqa-prefill', mode='all', nCtx=n, heads=H, kvHeads=KVH, headDim=D, enable_gqa=gqa, gqaMs=ms_gqa, repeatedMs=ms_rep,
                      ratio=ms_gqa / ms_rep, worstErrRows0to63=err)), flush=True)
