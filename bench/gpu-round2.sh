#!/usr/bin/env bash
# The GPU measurements round 2 still owes (issues 16–20), in one device call on the GPU machine
# (../shared/gpu/README.md), PyTorch beside this library on the same card. Each step is bounded
# by `timeout` and writes under $OUT/r2 as it goes; at the end everything is packed into
# $OUT/round2.tar.gz (the device returns at most 8 files) beside the trained model's folder.
#   npm ci && npm run build && bash ../shared/gpu/prepare.sh     # here, once
#   run(carry: .gpu dist [old-dist]):  source .gpu/setup.sh; TRAIN_S=420 bash bench/gpu-round2.sh
# OLD_DIST (optional): another build's dist/ (e.g. round 1's) for the issue-16 A/B, run
# interleaved A B B A with SDPA before and after. TRAIN_S: seconds of model training (issue 19:
# ≤ 600); 0 skips it. STEPS: a comma list to run only some of: ab,decode,mods,e2e,lm,train.
set -u
OUT=${OUT:-/tmp/out}
R=$OUT/r2
mkdir -p "$R"
STEPS=${STEPS:-ab,decode,mods,e2e,lm,train}
has() { [[ ",$STEPS," == *",$1,"* ]]; }
step() { echo "== $* ($(date +%T))" | tee -a "$R/log.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader > "$R/gpu.txt" 2>&1

if has ab; then
  # issue 16 (no change of speed from the reshape) and issue 20's sub-millisecond timing: kernel
  # time over --repeat back-to-back dispatches (Dawn's timestamps tick in 65.536 µs there)
  step "SDPA fp32 16K, before"
  timeout 120 python3 bench/sdpa.py --n-ctx 16384 --iters 20 > "$R/sdpa-16k-1.txt" 2>&1
  i=0
  for v in new old old new; do
    i=$((i + 1))
    dist=dist
    if [ "$v" = old ]; then [ -n "${OLD_DIST:-}" ] || continue; dist=$OLD_DIST; fi
    step "ours $v ($dist) 16K GPU-only"
    timeout 120 node bench/gpu.mjs --dist "$dist" --gpu-only --no-crossover --sizes 16384 --out "$R/ab-$i-$v.json" > "$R/ab-$i-$v.txt" 2>&1
  done
  step "SDPA fp32 16K, after"
  timeout 120 python3 bench/sdpa.py --n-ctx 16384 --iters 20 > "$R/sdpa-16k-2.txt" 2>&1
fi

if has decode; then
  # issues 17 and 18: flash-decoding 32/8 heads d128 against SDPA (enable_gqa), f32 and f16
  step "SDPA decode"
  timeout 300 python3 bench/sdpa-decode.py > "$R/sdpa-decode.txt" 2>&1
  step "ours decode f32"
  timeout 300 node bench/gpu-decode.mjs --out "$R/gpu-decode-f32.json" > "$R/gpu-decode-f32.txt" 2>&1
  if grep -q -- '--dtype' bench/gpu-decode.mjs; then
    step "ours decode f16"
    timeout 300 node bench/gpu-decode.mjs --dtype float16 --out "$R/gpu-decode-f16.json" > "$R/gpu-decode-f16.txt" 2>&1
  fi
fi

if has mods; then
  # issue 18: each score modifier's cost on `local` 16K (target ≤ 10%)
  step "modifier overhead"
  timeout 300 node bench/gpu-mods.mjs --sizes 16384 --modes local --repeat 20 --rounds 5 --out "$R/gpu-mods.json" > "$R/gpu-mods.txt" 2>&1
fi

if has e2e; then
  # issue 20: forward() from Float32Arrays at 16K `all` (target ≤ 40 ms) and the host copy
  # rates PyTorch reaches on the same card (pinned and pageable)
  step "ours end to end"
  timeout 300 node bench/gpu.mjs --no-crossover --sizes 4096,16384 --out "$R/gpu-e2e.json" > "$R/gpu-e2e.txt" 2>&1
  step "PyTorch host-to-device copies"
  timeout 120 python3 - > "$R/h2d.txt" 2>&1 <<'PY'
import torch, time
n = 268_435_456 // 4  # 268 MB of f32, the 16K `all` call's q, k, v and out
for pinned in (False, True):
    x = torch.empty(n, dtype=torch.float32, pin_memory=pinned)
    y = torch.empty(n, dtype=torch.float32, device='cuda')
    for _ in range(3): y.copy_(x); torch.cuda.synchronize()
    t = time.perf_counter(); reps = 10
    for _ in range(reps): y.copy_(x)
    torch.cuda.synchronize()
    s = (time.perf_counter() - t) / reps
    print({'pinned': pinned, 'bytes': n * 4, 'ms': round(s * 1e3, 3), 'GBps': round(n * 4 / s / 1e9, 2)})
PY
fi

if has lm; then
  # issue 19: the example model on the WebGPU path (parity with PyTorch's fixtures, speed)
  step "sparse-lm parity (webgpu)"
  timeout 300 node examples/sparse-lm/check-parity.mjs --path webgpu --long > "$R/lm-parity.txt" 2>&1
  step "sparse-lm bench (webgpu, cpu)"
  timeout 300 node examples/sparse-lm/bench.mjs --path webgpu --contexts 1000,8000 > "$R/lm-bench-webgpu.txt" 2>&1
  timeout 300 node examples/sparse-lm/bench.mjs --path cpu --contexts 1000,8000 > "$R/lm-bench-cpu.txt" 2>&1
fi

if has train && [ "${TRAIN_S:-0}" -gt 0 ]; then
  # issue 19: the model trained on the GPU (seeded; weights, fixtures, curve and log in $OUT/model)
  step "train ${TRAIN_S} s"
  mkdir -p "$OUT/model"
  timeout $((TRAIN_S + 900)) python3 examples/sparse-lm/train.py --out "$OUT/model" --train-seconds "$TRAIN_S" --time-limit $((TRAIN_S + 60)) > "$R/train.txt" 2>&1
  echo "train rc $?" >> "$R/log.txt"
fi

step "done"
tar -czf "$OUT/round2.tar.gz" -C "$OUT" r2 && rm -rf "$R"
