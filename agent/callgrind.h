// Deterministic instruction counts with valgrind's callgrind, the fallback
// where hardware counters are absent (VMs, CI).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/executor.h"

namespace perfgate {

// `argv` wrapped to run under callgrind, following children, writing one
// profile per process into `out_dir`, and one more before each fork and
// exec of what the process ran since its last: every instruction in one
// profile, counted once. `valgrind` is the resolved program.
// Valgrind numbers each program's dumps from 1, so in a chain of execs in
// one process (a shell that execs env, which execs the program) a later
// program's dump overwrites an earlier one's of the same number: some of the
// earlier programs' work is lost, the same in every run of the case.
std::vector<std::string> CallgrindArgv(const std::string& valgrind, const std::vector<std::string>& argv,
                                       const std::string& out_dir);

// Total instructions (Ir) over every profile in `out_dir`.
absl::StatusOr<uint64_t> SumCallgrindInstructions(const std::string& out_dir);

// The valgrind program, or NotFound with what to install.
absl::StatusOr<std::string> FindValgrind();

// Region-only counting (`instructions: region`): `argv` under callgrind with
// instrumentation and collection off at start; the case switches them on
// around each region and dumps the region's count with a name
// (bench_cases/src/perfgate_region.h, bench_cases/torch/perfgate_region.py).
std::vector<std::string> RegionCallgrindArgv(const std::string& valgrind, const std::vector<std::string>& argv,
                                             const std::string& out_dir);

// Set in the environment of region runs, so a case can skip its timing
// loops there: time under callgrind measures the instrument.
inline constexpr char kRegionCounterEnv[] = "PERFGATE_REGION_COUNTER";

// The metric of a region dumped as "NAME"; "NAME,METRIC" names its own
// (PyTorch's compile-time rows use compile_time_instruction_count).
inline constexpr char kRegionMetric[] = "instruction_count";

struct RegionCount {
  std::string benchmark;
  std::string metric;
  uint64_t instructions = 0;
};

// The regions dumped in `out_dir`, in dump order. Errors name the profile:
// a dump without a name, a name dumped twice, no region at all.
absl::StatusOr<std::vector<RegionCount>> ReadRegionCounts(const std::string& out_dir);

// One region-counting run of `exec` under callgrind (RegionCallgrindArgv,
// kRegionCounterEnv set), profiles in `out_dir`. `unavailable` is set when
// valgrind stopped on an instruction it cannot run: a property of the host,
// not a failure of the case.
struct RegionRun {
  ExecResult exec;
  absl::StatusOr<std::vector<RegionCount>> regions = absl::UnknownError("not run");
  std::string unavailable;
};
// The whole environment of a region run: the case's and variant's variables
// (`overlay`), perfgate's, PYTHONHASHSEED=0 unless the case sets it, and of
// the agent's own only PATH, HOME, LANG, LC_ALL, TMPDIR, LD_LIBRARY_PATH,
// LD_PRELOAD, PERFGATE_EXE_DIR, PERFGATE_SLOWDOWN_PCT and PYTHON*, so a
// count does not depend on who started the agent. `preload` goes first in LD_PRELOAD.
std::map<std::string, std::string> RegionEnvironment(const std::map<std::string, std::string>& overlay,
                                                     const std::string& preload);

// `preload`: a library to preload (HostFingerprint.region_counter_preload).
RegionRun RunRegionCallgrind(const ExecSpec& exec, const std::string& valgrind, const std::string& out_dir,
                             const std::string& preload, const CancelToken* cancel);

// Valgrind's own words when it stopped on an instruction it cannot run
// ("vex amd64->IR: unhandled instruction bytes: 0xF 0x1 0xF9 ..."), else empty.
std::string UnhandledInstruction(const std::string& valgrind_stderr);

// Whether valgrind runs the start-up code of `libraries` on this host:
// `valgrind --tool=none /bin/true` with them preloaded. OK, or why not.
absl::Status ProbeValgrindLoads(const std::string& valgrind, const std::vector<std::string>& libraries);

// The libraries whose start-up decides whether callgrind can run libtorch
// here (libtorch_cpu's dependency libhwy runs RDTSCP in its ELF constructor),
// or empty when libtorch is not installed.
std::vector<std::string> LibtorchStartupLibraries();

// bench_cases/libperfgate_hwy_shim.so next to the perfgate binary
// ($PERFGATE_EXE_DIR), or empty: preloaded, libhwy's start-up runs no RDTSCP.
std::string HwyShimPath();

}  // namespace perfgate
