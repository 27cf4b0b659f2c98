#!/usr/bin/env bash
# Optional: PyTorch 1.13 (CPU) from Debian for the torch suites
# (bench_cases/torch*.yaml): python3-torch for the Python cases, libtorch-dev
# for the C++ runtime-overhead case (built by cmake when it is installed).
# Not part of the test path: it pulls in ~240 packages, and the suites'
# callgrind runs of libtorch take minutes; run them with scripts/torch-suites.sh.
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
if /usr/bin/python3 -c 'import torch' 2>/dev/null && [ -e /usr/include/ATen/ATen.h ]; then
  echo "install-torch: PyTorch already importable by /usr/bin/python3, libtorch-dev installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends python3-torch libtorch-dev
/usr/bin/python3 -c 'import torch; print("install-torch: PyTorch", torch.__version__)'
