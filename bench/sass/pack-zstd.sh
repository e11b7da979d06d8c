#!/usr/bin/env bash
# The GPU machine has no zstd (bench/sass/extract.py needs it for the driver's shader cache):
# pack this machine's (Debian: apt-get install zstd) into .gpu/zstd, after
# ../shared/gpu/prepare.sh; bench/sass/variants.sh puts it on PATH there.
set -euo pipefail
cd "$(dirname "$0")/../.."
z=$(command -v zstd)
mkdir -p .gpu/zstd
cp "$z" .gpu/zstd/
for lib in $(ldd "$z" | awk '/liblz4|liblzma/ {print $3}'); do cp "$lib" .gpu/zstd/; done
ls .gpu/zstd
