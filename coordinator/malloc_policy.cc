#include "coordinator/malloc_policy.h"

#include <malloc.h>

namespace perfgate {

void LimitMallocRetention() {
#ifdef M_ARENA_MAX
  mallopt(M_ARENA_MAX, 2);
#endif
  // Setting it turns off glibc's raising of it (and of M_TRIM_THRESHOLD).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

void ReleaseFreedMemory() { malloc_trim(0); }

}  // namespace perfgate
