#!/bin/sh
# How perfgate-agent.service starts the agent: in a leaf of the unit's
# delegated cgroup v2 subtree, with its cases' groups beside it.
#
# cgroup v2 lets a group hand controllers to its children only while no
# process sits in the group itself, and systemd 252 (it has no
# DelegateSubgroup=) starts the agent in the unit's own group. So this script
# moves itself into <unit>/agent, enables the memory controller for the
# unit's children where the kernel offers it, and runs the agent with
# --cgroup-root <unit>/cases: each case's group then has memory.peak, and
# cgroup.kill still reaches every process a case leaves behind. Where the
# unit's group cannot be written (no v2 hierarchy, nothing delegated), the
# agent starts as it is; its first lines say which instrument it uses.
#
# PERFGATE_BINARY names the binary (default /usr/bin/perfgate).
set -eu
perfgate=${PERFGATE_BINARY:-/usr/bin/perfgate}
say() { echo "perfgate agent-service: $*" >&2; }

# The v2 mount point, if the whole hierarchy is mounted there.
mount=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2" && $4 == "/") print $5; break } }' \
  /proc/self/mountinfo | head -n 1)
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
unit="$mount$own"
if [ -z "$mount" ] || [ -z "$own" ] || [ "$own" = / ] || [ ! -w "$unit/cgroup.procs" ]; then
  say "no delegated cgroup v2 group to arrange (own group '${own:-none}'); starting the agent as it is"
  exec "$perfgate" agent "$@"
fi
if ! { mkdir -p "$unit/agent" && echo $$ >"$unit/agent/cgroup.procs"; } 2>/dev/null; then
  say "cannot move into $unit/agent; starting the agent as it is"
  exec "$perfgate" agent "$@"
fi
if grep -qw memory "$unit/cgroup.controllers" && echo +memory >"$unit/cgroup.subtree_control" 2>/dev/null; then
  say "agent in $own/agent, cases under $own/cases with the memory controller"
else
  say "agent in $own/agent, cases under $own/cases; no v2 memory controller in $unit"
fi
exec "$perfgate" agent --cgroup-root "$own/cases" "$@"
