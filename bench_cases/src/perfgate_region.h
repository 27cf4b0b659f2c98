// Marks a case's measured regions for `instructions: region`: the agent runs
// the case under callgrind with instrumentation and collection off at start
// (agent/callgrind.h), and counts only what runs between Begin() and End().
// Outside valgrind the client requests are a few no-op instructions.
//
// End(name) dumps the region's count under `name` ("BENCHMARK" gives the row
// BENCHMARK,instruction_count; "BENCHMARK,METRIC" names the metric).
#pragma once

#include <valgrind/callgrind.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace perfgate_region {

// True in the agent's region-count runs: skip timing loops there, since
// time under callgrind measures the instrument.
inline bool Counting() {
  const char* mode = std::getenv("PERFGATE_REGION_COUNTER");
  return mode != nullptr && std::strcmp(mode, "callgrind") == 0;
}

inline void Begin() {
  CALLGRIND_START_INSTRUMENTATION;
  CALLGRIND_TOGGLE_COLLECT;
}

// Pause() and Resume() leave out per-iteration set-up inside a region.
inline void Pause() { CALLGRIND_TOGGLE_COLLECT; }
inline void Resume() { CALLGRIND_TOGGLE_COLLECT; }

// Instrumentation goes off again, so the rest of the case runs at the speed
// of valgrind's core, not callgrind's.
inline void End(const char* name) {
  CALLGRIND_TOGGLE_COLLECT;
  CALLGRIND_DUMP_STATS_AT(name);
  CALLGRIND_STOP_INSTRUMENTATION;
}

// `units` of work with PERFGATE_SLOWDOWN_PCT=N percent more, so anyone can
// see the gate catch a regression (--head-env PERFGATE_SLOWDOWN_PCT=5).
inline uint64_t WithSlowdown(uint64_t units) {
  const char* pct = std::getenv("PERFGATE_SLOWDOWN_PCT");
  return units + units * (pct ? std::strtoull(pct, nullptr, 10) : 0) / 100;
}

}  // namespace perfgate_region
