#!/usr/bin/env bash
# Installs every build and test dependency of perfgate from Debian packages.
# Idempotent: packages already present are skipped by apt. Works as root or through sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential g++ cmake ninja-build pkg-config ccache
  # wire contract and RPC
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # token digests and constant-time compare (libcrypto); certificates made by tests (openssl)
  libssl-dev openssl
  # metrics, storage, parsing, CLI
  prometheus-cpp-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  # tests and benchmarks of perfgate itself; the Google Benchmark adapter's real producer
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # deterministic instruction counts where hardware counters are absent
  valgrind
  # real Prometheus server and promtool for end-to-end tests and rule checks
  prometheus
  # JUnit XML validation (xmllint) in tests
  libxml2-utils
  # Markdown report rendered by a real GFM renderer in tests
  cmark-gfm
  # the generated zsh completion script is run by a real zsh in tests
  zsh
)

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
