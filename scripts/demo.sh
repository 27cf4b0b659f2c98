#!/usr/bin/env bash
# The main job on a fresh machine: install, build, and run the bundled suite
# through a gate run on the embedded default (a local coordinator, two local
# agents over loopback gRPC, SQLite under .perfgate/). Exits with the gate's code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
exec build/perfgate gate --suite bench_cases/demo.yaml "$@"
