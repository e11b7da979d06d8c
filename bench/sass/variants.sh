#!/usr/bin/env bash
# On the GPU machine: each variant of bench/gpu.mjs (GPU-only, `all` and `local` at 16384)
# in a fresh process with its own NVIDIA shader disk cache, then the SASS of what the driver
# compiled (bench/sass/extract.py): timings and register counts of the same programs.
#   source .gpu/setup.sh; bash bench/sass/variants.sh 'name:gpu.mjs args' ...
#   e.g. 'auto:' 'q64:--variant bsattn_fwd_f32_q64_k64_qtile__subgroups' 'noscan:--no-scan'
#   (kernel variants: src/backends/webgpu/variants.ts; another build: '--dist <dir>')
# Everything lands in one archive, $OUT/variants.tgz (the device tool returns at most 8 files);
# with SMI=1, nvidia-smi logs SM clock and power every 100 ms during each variant.
set -u
FINAL=${OUT:-/tmp/out}
OUT=/tmp/variants-out; rm -rf "$OUT"; mkdir -p "$OUT"
# zstd: .gpu/zstd, packed there by bench/sass/pack-zstd.sh (the GPU machine has none)
[ -x .gpu/zstd/zstd ] && export PATH=$PWD/.gpu/zstd:$PATH LD_LIBRARY_PATH=$PWD/.gpu/zstd${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
which zstd > /dev/null || echo "no zstd: timings only, no SASS (run bench/sass/pack-zstd.sh before the call)"
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}
  cache=/tmp/glc-$name; rm -rf "$cache"; mkdir -p "$cache" "$OUT/$name"
  echo "== $name: $args ($(date +%T))"
  [ "${SMI:-0}" = 1 ] && { nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 100 > "$OUT/$name/smi.csv" & smi=$!; }
  __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_PATH=$cache __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 \
    timeout 150 node bench/gpu.mjs --gpu-only --no-crossover --sizes ${SIZES:-16384} --modes ${MODES:-all,local} $args \
      --out "$OUT/$name/gpu.json" 2>&1 | grep -E '^(all|local|strided)|ms|rror' | grep -v '^ ' | head -20
  if which zstd > /dev/null; then python3 bench/sass/extract.py "$cache" "/tmp/sass-$name" > "$OUT/$name/sass.txt"
    cat "$OUT/$name/sass.txt"; tar czf "$OUT/$name/sass.tgz" -C "/tmp/sass-$name" .
  fi
  [ "${SMI:-0}" = 1 ] && { kill $smi; awk -F', ' 'NR>1 && $3+0 > 250 {n++; c=$2+0; if (!lo || c<lo) lo=c; if (c>hi) hi=c; p+=$3} END {if (n) printf "  under load (%d samples > 250 W): SM clock %d-%d MHz, mean %.0f W\n", n, lo, hi, p/n}' "$OUT/$name/smi.csv"; }
done
tar czf "$FINAL/variants.tgz" -C "$OUT" .
