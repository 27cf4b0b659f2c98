#include "agent/host_fingerprint.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "agent/callgrind.h"
#include "agent/cgroup.h"
#include "agent/gpu_probe.h"
#include "agent/perf_counter.h"
#include "core/units.h"

namespace perfgate {
namespace {

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

// The value of the first "key<spaces>: value" line in a /proc file.
std::string ProcField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return "";
}

// Once per agent: can callgrind take region counts of libtorch cases here?
// A fast probe (about a second): valgrind runs the start-up code of the
// libraries that decide it, not all of libtorch (a minute).
void ProbeRegionCounter(v1::HostFingerprint* host) {
  auto valgrind = FindValgrind();
  if (!valgrind.ok()) {
    host->set_region_counter_unavailable(true);
    host->set_region_counter_note(std::string(valgrind.status().message()));
    return;
  }
  const std::vector<std::string> libraries = LibtorchStartupLibraries();
  if (libraries.empty()) {
    host->set_region_counter_note("callgrind available; no libtorch with libhwy here to probe");
    return;
  }
  absl::Status probe = ProbeValgrindLoads(*valgrind, libraries);
  if (probe.ok()) {
    host->set_region_counter_note(
        absl::StrCat("callgrind runs libtorch's start-up (probed ", absl::StrJoin(libraries, ", "), ")"));
    return;
  }
  // The way around: keep libhwy's constructor from executing RDTSCP.
  if (const std::string shim = HwyShimPath(); !shim.empty()) {
    std::vector<std::string> with_shim = {shim};
    with_shim.insert(with_shim.end(), libraries.begin(), libraries.end());
    if (ProbeValgrindLoads(*valgrind, with_shim).ok()) {
      host->set_region_counter_preload(shim);
      host->set_region_counter_note(absl::StrCat(probe.message(), "; region runs preload ", shim,
                                                 ", which keeps libhwy's start-up from executing RDTSCP"));
      return;
    }
  }
  host->set_region_counter_unavailable(true);
  host->set_region_counter_note(std::string(probe.message()));
}

}  // namespace

v1::HostFingerprint ProbeHost() {
  v1::HostFingerprint host;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) host.set_hostname(name);
  host.set_cpu_model(ProcField("/proc/cpuinfo", "model name"));
  host.set_cpu_cores(std::thread::hardware_concurrency());
  host.set_cpu_governor(ReadFirstLine("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"));
  utsname uts{};
  if (uname(&uts) == 0) host.set_kernel(absl::StrCat(uts.sysname, " ", uts.release));
  std::string mem_kb = ProcField("/proc/meminfo", "MemTotal");
  if (!mem_kb.empty()) host.set_memory_bytes(std::stoull(mem_kb) * 1024);
  GpuProbe gpus = ProbeGpus();
  for (auto& gpu : gpus.gpus) *host.add_gpus() = std::move(gpu);
  host.set_gpu_note(gpus.note);
  absl::Status perf = ProbePerfCounter();
  if (perf.ok()) {
    host.set_instruction_counter_note("perf_event_open available");
  } else {
    auto valgrind = FindValgrind();
    host.set_instruction_counter_note(
        absl::StrCat("hardware counters unavailable (", perf.message(), "); ",
                     valgrind.ok() ? "callgrind fallback available"
                                   : "no callgrind either: " + std::string(valgrind.status().message())));
  }
  host.set_memory_note(DefaultCgroupParent().description());
  ProbeRegionCounter(&host);
  return host;
}

std::string DescribeHost(const v1::HostFingerprint& host) {
  std::string out = absl::StrCat(host.cpu_model().empty() ? "unknown CPU" : host.cpu_model(), " x", host.cpu_cores(),
                                 ", ", FormatBytes(static_cast<double>(host.memory_bytes())), ", ", host.kernel());
  if (!host.cpu_governor().empty()) absl::StrAppend(&out, ", governor ", host.cpu_governor());
  absl::StrAppend(&out, ", ", host.gpus_size(), " GPU", host.gpus_size() == 1 ? "" : "s");
  for (const auto& gpu : host.gpus()) {
    absl::StrAppend(&out, " [", gpu.name(), " ", FormatBytes(static_cast<double>(gpu.memory_bytes())), " sm_",
                    gpu.compute_capability(), "]");
  }
  if (host.gpus_size() == 0 && !host.gpu_note().empty()) absl::StrAppend(&out, " (", host.gpu_note(), ")");
  if (host.region_counter_unavailable()) {
    absl::StrAppend(&out, ", region instruction counts unavailable (", host.region_counter_note(), ")");
  }
  return out;
}

}  // namespace perfgate
