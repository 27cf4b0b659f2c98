#!/usr/bin/env bash
# Optional: PyTorch (python3-torch 1.13, CPU) from Debian for bench_cases/torch.yaml.
# Not part of the test path: it pulls in ~240 packages.
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "install-torch: PyTorch already importable by /usr/bin/python3"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends python3-torch
/usr/bin/python3 -c 'import torch; print("install-torch: PyTorch", torch.__version__)'
