/* The region markers of perfgate_region.h for cases that cannot issue
 * valgrind client requests themselves (Python, through ctypes:
 * bench_cases/torch/perfgate_region.py). */
#include <valgrind/callgrind.h>

extern "C" void perfgate_region_start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
extern "C" void perfgate_region_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
extern "C" void perfgate_region_dump(const char* name) { CALLGRIND_DUMP_STATS_AT(name); }
extern "C" void perfgate_region_stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
