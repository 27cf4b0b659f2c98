// Preloaded into region-count runs on hosts where valgrind cannot run
// libtorch: libhwy (pulled in by libtorch_cpu through OpenCV, libavcodec and
// libjxl) calls hwy::platform::TimerResolution() from its ELF constructor,
// through its PLT, and that function executes RDTSCP, which valgrind 3.19
// rejects on hosts whose CPUID hides the instruction. This definition
// interposes it, so libhwy's start-up runs no RDTSCP. The value only feeds
// hwy::Measure (libhwy's own benchmarking helper, which libtorch never
// calls) and runs before any region, so region counts are unchanged.
#include <cstdint>

namespace hwy::platform {

uint64_t TimerResolution() { return 1; }

}  // namespace hwy::platform
