#!/usr/bin/env bash
# One device call on the GPU machine (../shared/gpu/README.md): this library's GPU-only
# times and PyTorch's baselines (SDPA, FlexAttention) side by side on the same card.
# Each PyTorch process is bounded by `timeout`, so a FlexAttention compile that hangs
# costs its own step only; every line reaches $OUT as soon as it is printed.
#   source .gpu/setup.sh; bash bench/h100-baselines.sh a|b
#   a: ours at 16384 and 65536 (GPU-only), PyTorch bfloat16 at 16384 and 65536, every mode
#   b: PyTorch float32 at 65536 (all: SDPA and Flex; local)
#   c: PyTorch float32 at 16384, every mode
#   d: ours end to end and GPU-only at 4096, 16384, 65536; PyTorch at 4096, both dtypes
#   e: ours GPU-only (16384, 65536), kernel-time scaling 1K→64K, end to end (4096, 16384, 65536)
#   f: PyTorch float32 at 16384 (every mode) and 65536 (every mode)
#   (e and f: the files bench/report.mjs reads, each under its own name)
# TORCHINDUCTOR_COMPILE_THREADS=1: with Inductor's pool of compile workers, FlexAttention's
# create_block_mask at nCtx 16384 waited forever on a worker (seen twice, 150 and 170 s;
# a SIGINT traceback showed async_compile.wait); compiling in-process it takes ~30 s a mode.
set -u
part=${1:-a}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
T=.gpu/torch_attention.py
export TORCHINDUCTOR_COMPILE_THREADS=1
torch() { # n_ctx dtype modes seconds
  echo "== torch $1 $2 $3 ($(date +%T))"
  timeout "$4" python3 -u "$T" --n-ctx "$1" --heads 16 --head-dim 64 --modes "$3" --ctx 512,128 --dtypes "$2" --iters 20 \
    | tee -a "$OUT/torch.jsonl"
  echo "rc ${PIPESTATUS[0]}"
}
ours() { # extra arguments of bench/gpu.mjs
  echo "== ours $* ($(date +%T))"
  timeout 200 node bench/gpu.mjs --no-crossover "$@" --out "$OUT/gpu-ours-${name:-$part}.json" 2>&1 | grep -v '^ \|^{\|^}'
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader
case $part in
  a)
    ours --gpu-only --sizes 16384,65536
    torch 16384 bfloat16 all,local,strided 150
    torch 65536 bfloat16 all,local,strided 200
    ;;
  b)
    torch 65536 float32 all,local 330
    ;;
  c)
    torch 16384 float32 all,local,strided 400
    ;;
  d)
    ours --sizes 4096,16384,65536
    torch 4096 float32,bfloat16 all,local,strided 200
    ;;
  e)
    name=gpu-only ours --gpu-only --sizes 16384,65536
    name=scaling ours --gpu-only --sizes 1024,2048,4096,8192,16384,32768,65536
    name=e2e ours --sizes 4096,16384,65536
    ;;
  f)
    torch 16384 float32 all,local,strided 280
    torch 65536 float32 all,local,strided 280
    ;;
esac
echo "== done ($(date +%T))"
