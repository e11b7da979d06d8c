# PyTorch SDPA (causal) alone, timed as .gpu/torch_attention.py times it (median of CUDA-event
# timings after 3 warm-up calls), one JSON line per nCtx in torch_attention.py's format: for a
# side-by-side run when FlexAttention's compile would not fit the device call.
#   python3 bench/sdpa.py --n-ctx 16384,65536 [--dtype float32] [--iters 20]
import argparse, json
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--n-ctx', default='16384,65536')
p.add_argument('--heads', type=int, default=16)
p.add_argument('--head-dim', type=int, default=64)
p.add_argument('--dtype', default='float32')
p.add_argument('--iters', type=int, default=20)
a = p.parse_args()
dtype = getattr(torch, a.dtype)
for T in [int(x) for x in a.n_ctx.split(',')]:
    q, k, v = [torch.randn(1, a.heads, T, a.head_dim, device='cuda', dtype=dtype) for _ in range(3)]
    fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    for _ in range(3): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(a.iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ms = sorted(ts)[len(ts) // 2]
    flops = 4 * a.head_dim * (T * (T + 1) // 2) * a.heads
    print(json.dumps(dict(impl='torch-sdpa', torch=torch.__version__, gpu=torch.cuda.get_device_name(), dtype=a.dtype, mode='all', L=None,
                          batch=1, heads=a.heads, head_dim=a.head_dim, n_ctx=T, ms=ms, useful_tflops=flops / ms / 1e9)), flush=True)
    del q, k, v
