#!/usr/bin/env bash
# System packages the test suite needs: Mesa's lavapipe (software Vulkan) from
# bookworm-backports for the WebGPU tests (bookworm's Mesa 22 lacks what Dawn needs),
# and Debian's chromium for the browser test. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
src=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$src" ]; then
  cat > "$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
need=()
dpkg -s mesa-vulkan-drivers 2>/dev/null | grep -q '^Version: 25' || need+=(mesa)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  if [[ " ${need[*]} " == *" mesa "* ]]; then
    apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
  fi
  if [[ " ${need[*]} " == *" chromium "* ]]; then
    apt-get install -y -qq chromium >/dev/null
  fi
fi
dpkg -s mesa-vulkan-drivers | grep '^Version'
chromium --version
