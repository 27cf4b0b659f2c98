// How the coordinator's process allocates memory.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace perfgate {

// Starts this program again, same pid, arguments and environment, with
// glibc's per-thread caches of freed blocks held to blocks of 256 bytes or
// less (GLIBC_TUNABLES=glibc.malloc.tcache_max=256, which glibc reads only
// when a program starts; its default is 1,032). Each thread keeps up to 7
// freed blocks of every size it caches for itself, and nothing, malloc_trim
// included, gives them back; with a gRPC thread per agent stream (150
// threads with 64 agents) those caches fill as threads meet new kinds of
// call, and peak RSS crept up run after run. Measured in bench/dispatch, 64
// load agents, 40 runs of 1,000 cases, peak RSS first run -> last: +8.6%
// and +8.8% with glibc's default, +4.4% and +6.5% at 64 bytes. But at 64
// bytes a call's protobuf messages (a metric value, a result) miss the
// cache: CPU per lease 0.42 against 0.35 ms with glibc's default in five
// runs side by side, in either order. At 256 bytes, CPU as with the
// default, and RSS growth between the two: over 10 runs, +6.0% on average
// against +7.2% with the default and +3.6% at 64 bytes; with 128 load
// agents and 20 runs of 2,000 cases, +7.9% against +9.2% at 64 bytes.
// Returns at once, doing nothing, when GLIBC_TUNABLES already sets
// tcache_max or tcache_count (the admin's choice: glibc.malloc.tcache_max=1032
// keeps glibc's default; set one to run the coordinator under valgrind or
// heaptrack, whose hold a restart would escape) or this process is the one
// restarted. Returns the error when the program could not be started again;
// the caller goes on as it is.
// REQUIRES: no thread started yet, nothing written to stdout yet (a restart
// would lose what is buffered).
absl::Status RestartWithSmallThreadCaches();

// GLIBC_TUNABLES with tcache_max=256 added to `current` (null: unset), or
// nullopt when `current` already sets tcache_max or tcache_count.
std::optional<std::string> TunablesWithSmallThreadCaches(const char* current);

// Keeps glibc's malloc from holding on to memory the coordinator freed, so
// its RSS stays flat over runs (measured with bench/dispatch, 64 load agents,
// 1,000 cases a run, RSS after the first run -> after the last):
// - Two arenas at most. glibc gives a thread that finds every arena busy a
//   new one, up to eight per core; the gRPC threads (one per connected
//   agent's Work stream, and the pool that serves calls) then spread a run's
//   data over many arenas, whose freed memory stays in the process: 39 -> 47
//   MB over 6 runs with glibc's defaults. A run's data goes to whichever
//   arena the thread that completes a case is bound to, in shares that
//   change from run to run, and each arena keeps the most it ever held.
//   One arena grew less over 10 runs (peak during the last run +4.5 to
//   +8.4% over the first's in 7 runs, against +8.8 to +11.6% with a limit
//   of two set too late, which left three: see below), but every thread
//   then shares one lock: side by side in one bench/dispatch, CPU per lease
//   0.326 against 0.271 ms, and the longest moment with no lease granted 20
//   against 10 ms (peak growth +9.7% against +10.0% in that run).
// - A fixed mmap threshold (128 KiB, glibc's starting value). glibc raises
//   it (and the heap's trim threshold with it) each time a large block is
//   freed, after which large blocks come from the heap and are not given
//   back: 37.0 -> 41.9 MB over 30 runs with two arenas, 36.8 -> 38.5 MB with
//   the threshold fixed.
// Process-wide. Call before any thread is started (gRPC starts some when
// credentials are made): until the limit is set, a new thread's first
// allocation may make a new arena, and arenas are never removed (called
// after ServerCredentials, M_ARENA_MAX 2 left three arenas: malloc_info).
void LimitMallocRetention();

// Gives memory the allocator holds free back to the system (malloc_trim):
// after finished runs leave memory. Even with the limits above, freed
// memory stayed in the arenas, about 40 KB a run (37 -> 41 MB over 100
// runs); a trim after each run's eviction returned 1.8 of 21 MB anonymous
// memory. Costs a scan of the heap: call it once per run, not per call.
void ReleaseFreedMemory();

}  // namespace perfgate
