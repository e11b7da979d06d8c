#!/usr/bin/env bash
# On the GPU machine: nvdisasm (Triton's) over program code extracted elsewhere by
# bench/sass/extract.py: bash bench/sass/disasm.sh <dir with *.code> ... ; output under $OUT.
OUT=${OUT:-/tmp/out}
N=$(ls /opt/**/triton/backends/nvidia/bin/nvdisasm 2>/dev/null | head -1)
[ -n "$N" ] || N=$(find / -path '*triton/backends/nvidia/bin/nvdisasm' 2>/dev/null | head -1)
for d in "$@"; do
  mkdir -p "$OUT/$d"
  for c in "$d"/*.code; do
    b=$(basename "$c" .code)
    "$N" -b SM90 "$c" > "$OUT/$d/$b.sass" 2>&1
    "$N" -b SM90 --print-life-ranges --life-range-mode count "$c" > "$OUT/$d/$b.live.sass" 2>&1
  done
done
