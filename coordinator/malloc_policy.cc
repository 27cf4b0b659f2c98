#include "coordinator/malloc_policy.h"

#include <malloc.h>

namespace perfgate {

void BoundMallocArenas() {
#ifdef M_ARENA_MAX
  mallopt(M_ARENA_MAX, 2);
#endif
}

}  // namespace perfgate
