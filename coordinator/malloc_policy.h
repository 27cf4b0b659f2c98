// How the coordinator's process allocates memory.
#pragma once

namespace perfgate {

// Caps glibc's malloc arenas at two. glibc gives a thread that finds every
// arena busy a new one, up to eight per core; the coordinator's gRPC threads
// (one per connected agent's Work stream, and the pool that serves calls)
// then spread what they allocate over many arenas, whose freed memory stays
// in the process. Measured with bench/dispatch (64 load agents, 1,000 cases
// a run): RSS 39 -> 47 MB over 6 runs with glibc's default, 37 -> 39 MB with
// two arenas. Process-wide; call before starting threads.
void BoundMallocArenas();

}  // namespace perfgate
