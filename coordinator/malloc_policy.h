// How the coordinator's process allocates memory.
#pragma once

namespace perfgate {

// Keeps glibc's malloc from holding on to memory the coordinator freed, so
// its RSS stays flat over runs (measured with bench/dispatch, 64 load agents,
// 1,000 cases a run, RSS after the first run -> after the last):
// - Two arenas at most. glibc gives a thread that finds every arena busy a
//   new one, up to eight per core; the gRPC threads (one per connected
//   agent's Work stream, and the pool that serves calls) then spread what
//   they allocate over many arenas, whose freed memory stays in the process:
//   39 -> 47 MB over 6 runs with glibc's defaults, 37 -> 39 MB with two.
// - A fixed mmap threshold (128 KiB, glibc's starting value). glibc raises
//   it (and the heap's trim threshold with it) each time a large block is
//   freed, after which large blocks come from the heap and are not given
//   back: 37.0 -> 41.9 MB over 30 runs with two arenas, 36.8 -> 38.5 MB with
//   the threshold fixed.
// Process-wide; call before starting threads.
void LimitMallocRetention();

// Gives memory the allocator holds free back to the system (malloc_trim):
// after finished runs leave memory. Even with the limits above, freed
// memory stayed in the arenas, about 40 KB a run (37 -> 41 MB over 100
// runs); a trim after each run's eviction returned 1.8 of 21 MB anonymous
// memory. Costs a scan of the heap: call it once per run, not per call.
void ReleaseFreedMemory();

}  // namespace perfgate
