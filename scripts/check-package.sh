#!/usr/bin/env bash
# Checks the Debian package end to end on this machine: builds the .deb with
# cpack from a build folder, installs it with dpkg, runs the installed
# perfgate from a temp folder (--version, an embedded gate of the bundled demo
# suite, a coordinator started from the installed config), verifies the
# installed systemd units, then removes and purges the package and checks
# that none of its files is left.
#
# It installs and removes a system package, so it needs root and never runs
# under ctest. Usage: scripts/check-package.sh [BUILD_DIR]   (default: build)
set -euo pipefail

build=$(realpath "${1:-build}")
say() { printf 'check-package: %s\n' "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs and removes the perfgate package"
[ -f "$build/CMakeCache.txt" ] || die "$build is not a configured build folder (cmake -S . -B $build -G Ninja)"
if dpkg-query -W -f='${Status}' perfgate 2>/dev/null | grep -q "install ok installed"; then
  die "perfgate is installed already; this check would remove it (dpkg -r perfgate first)"
fi

say "building in $build"
cmake --build "$build" -j2 --target perfgate bench_cases >/dev/null
rm -f "$build"/perfgate_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/perfgate_*.deb)
say "package: $deb"
dpkg-deb --field "$deb" Package Version Architecture Depends Recommends
# Every path the package ships, as "TYPE PATH" (d folder, - file, l link):
# files and links must be gone after purge, and so must its own folders (those
# with perfgate in their path; /lib and /usr are the system's).
mapfile -t shipped < <(dpkg-deb --contents "$deb" | awk '{print substr($1, 1, 1), $6}' | sed 's| \./| /|; s|/$||' |
  grep -v ' $')

tmp=$(mktemp -d)
coordinator_pid=""
cleanup() {
  [ -z "$coordinator_pid" ] || kill "$coordinator_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

dpkg -i "$deb"
cd "$tmp"  # nothing from the source tree from here on

version=$(perfgate --version)
say "installed: $version"
[[ "$version" =~ ^perfgate\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]{12}|unknown)\)$ ]] || die "--version printed '$version'"
[ "$(readlink -f /usr/bin/perfgate)" = /usr/lib/perfgate/perfgate ] || die "/usr/bin/perfgate is not a link to /usr/lib/perfgate/perfgate"

say "embedded gate of the installed demo suite"
perfgate gate --suite /usr/share/perfgate/suites/demo.yaml --state-dir "$tmp/state" --json "$tmp/report.json" \
  || die "the embedded gate of /usr/share/perfgate/suites/demo.yaml failed"
grep -q '"passed": true' "$tmp/report.json" || die "the report does not say passed"

say "coordinator from the installed config (listen and db overridden by flags)"
perfgate coordinator --config /etc/perfgate/coordinator.conf --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --db "$tmp/coordinator.db" >"$tmp/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 300); do
  grep -q "listening on" "$tmp/coordinator.log" && break
  kill -0 "$coordinator_pid" 2>/dev/null || break
  sleep 0.1
done
grep "listening on" "$tmp/coordinator.log" || die "coordinator did not start: $(cat "$tmp/coordinator.log")"
kill "$coordinator_pid"
wait "$coordinator_pid" || die "coordinator did not stop cleanly on SIGTERM"
coordinator_pid=""

say "systemd units"
# verify exits 0 on an unknown directive and only warns: any output fails.
verify=$(systemd-analyze verify /lib/systemd/system/perfgate-coordinator.service \
  /lib/systemd/system/perfgate-agent.service 2>&1) || die "systemd-analyze verify: $verify"
[ -z "$verify" ] || die "systemd-analyze verify: $verify"
getent passwd perfgate >/dev/null || die "postinst did not create the perfgate user"

say "remove: the conffiles stay"
dpkg -r perfgate
[ ! -e /usr/lib/perfgate/perfgate ] || die "dpkg -r left /usr/lib/perfgate/perfgate"
[ -f /etc/perfgate/coordinator.conf ] || die "dpkg -r removed the conffile /etc/perfgate/coordinator.conf"

say "purge: nothing is left"
dpkg -P perfgate
left=()
for entry in "${shipped[@]}"; do
  type=${entry%% *} path=${entry#* }
  if [ "$type" = d ]; then
    if [[ "$path" == *perfgate* ]] && [ -d "$path" ]; then left+=("$path"); fi
  elif [ -e "$path" ] || [ -L "$path" ]; then
    left+=("$path")
  fi
done
for path in /var/lib/perfgate /var/lib/perfgate-agent /var/cache/perfgate-agent /etc/perfgate; do
  [ ! -e "$path" ] || left+=("$path")
done
[ ${#left[@]} -eq 0 ] || die "left after purge: ${left[*]}"
say "OK: installed, ran, removed and purged ${#shipped[@]} paths cleanly (the perfgate system user stays, as Debian keeps system users)"
