// How the coordinator's process allocates memory.
#pragma once

namespace perfgate {

// Keeps glibc's malloc from holding on to memory the coordinator freed, so
// its RSS stays flat over runs (measured with bench/dispatch, 64 load agents,
// 1,000 cases a run, RSS after the first run -> after the last):
// - One arena. glibc gives a thread that finds every arena busy a new one,
//   up to eight per core; the gRPC threads (one per connected agent's Work
//   stream, and the pool that serves calls) then spread a run's data over
//   many arenas, whose freed memory stays in the process: 39 -> 47 MB over
//   6 runs with glibc's defaults. A run's data goes to whichever arena the
//   thread that completes a case is bound to, in shares that change from run
//   to run, and each arena keeps the most it ever held. With two arenas
//   (in effect three: see LimitMallocRetention) the peak during the last of
//   10 runs was 40.7-41.8 MB (+8.8 to +11.6% over the first run, 7 runs of
//   bench/dispatch); with one, 39.2-39.9 MB (+4.5 to +8.4%, 5 runs), at the
//   same lease rate and CPU per lease. Every thread then shares one arena
//   lock (most small blocks come from the thread's own cache, tcache,
//   without it): the longest moment with no lease granted, history part,
//   was 13-46 ms against 12-27 ms with two, on a machine at load 8-11.
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
