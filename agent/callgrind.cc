#include "agent/callgrind.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/case_files.h"
#include "agent/executor.h"
#include "core/identifiers.h"
#include "core/utf8.h"

extern char** environ;

namespace perfgate {

std::vector<std::string> CallgrindArgv(const std::string& valgrind, const std::vector<std::string>& argv,
                                       const std::string& out_dir) {
  std::vector<std::string> wrapped = {valgrind, "--tool=callgrind", "--quiet", "--trace-children=yes"};
  // A process that execs starts a new callgrind, and what it ran before was
  // never written: a profile dumped before each exec keeps it. A dump also
  // zeroes the counts, and a child starts with its parent's: dumped before
  // each fork too, so that a child's profile holds none of its parent's
  // work (with the exec dump alone, a shell's loop was counted once more
  // for every command it ran after it). Not before clone: threads use it,
  // and each dump writes a whole profile.
  for (const char* spawn : {"fork", "__fork", "__libc_fork", "_Fork", "vfork", "__vfork", "posix_spawn", "posix_spawnp",
                            "execve", "fexecve", "execveat"}) {
    wrapped.push_back(absl::StrCat("--dump-before=", spawn));
  }
  wrapped.push_back("--callgrind-out-file=" + out_dir + "/callgrind.out.%p");
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

namespace {

// A profile larger than this is refused rather than read into the agent's
// memory: callgrind's profile of `import torch`, function by function, is
// tens of MB.
constexpr uint64_t kMaxProfileBytes = 256 << 20;

// The profiles callgrind wrote into `out_dir` (a case's folder: they are
// read as the case's files), in name order; the first error `each` returns ends it.
absl::Status ForEachProfile(const std::string& out_dir,
                            const std::function<absl::Status(const std::string& name, const std::string& path,
                                                             const std::string& text)>& each) {
  absl::StatusOr<CaseFolder> folder = CaseFolder::Open(out_dir);
  if (!folder.ok()) return folder.status();
  absl::StatusOr<std::vector<std::string>> names = folder->Names();
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (!absl::StartsWith(name, "callgrind.out.")) continue;
    absl::StatusOr<std::string> text = folder->Read(name, kMaxProfileBytes, "callgrind profile");
    if (!text.ok()) return text.status();
    if (absl::Status s = each(name, absl::StrCat(out_dir, "/", name), *text); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> SumCallgrindInstructions(const std::string& out_dir) {
  uint64_t total = 0;
  int profiles = 0;
  absl::Status read = ForEachProfile(out_dir, [&](const std::string&, const std::string& path, const std::string& text) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      // "summary: N" (or "totals: N") holds the first event, Ir by default.
      absl::string_view rest = line;
      if (absl::ConsumePrefix(&rest, "summary:") || absl::ConsumePrefix(&rest, "totals:")) {
        uint64_t value;
        absl::string_view first = absl::StripLeadingAsciiWhitespace(rest);
        first = first.substr(0, first.find(' '));
        if (!absl::SimpleAtoi(first, &value)) {
          return absl::DataLossError(absl::StrCat(path, ": unreadable line '", line.substr(0, 200), "'"));
        }
        // A case can write profiles of its own into the folder; a sum that wraps would hide a regression.
        if (value > std::numeric_limits<uint64_t>::max() - total) {
          return absl::DataLossError(absl::StrCat(path, ": the profiles' counts add up past 2^64; not callgrind's"));
        }
        total += value;
        ++profiles;
        return absl::OkStatus();
      }
    }
    return absl::DataLossError(absl::StrCat(path, ": no summary line (profile cut short?)"));
  });
  if (!read.ok()) return read;
  if (profiles == 0) return absl::NotFoundError(absl::StrCat("callgrind wrote no profile in ", out_dir));
  return total;
}

absl::StatusOr<std::string> FindValgrind() {
  const char* path = std::getenv("PATH");
  std::string program = ResolveProgram("valgrind", path ? path : "");
  if (program.empty()) {
    return absl::NotFoundError("valgrind not found in PATH (install the 'valgrind' package)");
  }
  return program;
}

std::vector<std::string> RegionCallgrindArgv(const std::string& valgrind, const std::vector<std::string>& argv,
                                             const std::string& out_dir) {
  // Instrumentation off until the case's first region skips the start-up
  // (import torch: minutes under full instrumentation) at native-ish speed.
  std::vector<std::string> wrapped = {valgrind,
                                      "--tool=callgrind",
                                      "--collect-atstart=no",
                                      "--instr-atstart=no",
                                      "--trace-children=yes",
                                      "--callgrind-out-file=" + out_dir + "/callgrind.out.%p"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

namespace {

// One profile file: who wrote it, which dump, what triggered it, its total.
struct Dump {
  uint64_t pid = 0;
  uint64_t number = 0;  // 0: the dump at program termination
  std::string path;
  std::string trigger;
  std::optional<uint64_t> total;
};

// "callgrind.out.PID" or "callgrind.out.PID.N"; false for other files.
bool ParseDumpName(const std::string& file, Dump* dump) {
  absl::string_view rest = file;
  if (!absl::ConsumePrefix(&rest, "callgrind.out.")) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '.');
  if (parts.empty() || parts.size() > 2 || !absl::SimpleAtoi(parts[0], &dump->pid)) return false;
  return parts.size() == 1 || absl::SimpleAtoi(parts[1], &dump->number);
}

absl::Status ReadDump(const std::string& text, Dump* dump) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "desc: Trigger: ")) {
      dump->trigger = std::string(rest.substr(0, 1024));
    } else if (absl::ConsumePrefix(&rest, "totals:")) {
      uint64_t value;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &value)) {
        return absl::DataLossError(absl::StrCat(dump->path, ": unreadable line '", line.substr(0, 200), "'"));
      }
      dump->total = value;
    }
  }
  if (!dump->total) return absl::DataLossError(absl::StrCat(dump->path, ": no totals line (profile cut short?)"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<RegionCount>> ReadRegionCounts(const std::string& out_dir) {
  std::vector<Dump> dumps;
  absl::Status read = ForEachProfile(out_dir, [&](const std::string& name, const std::string& path,
                                                  const std::string& text) {
    Dump dump;
    if (!ParseDumpName(name, &dump)) return absl::OkStatus();
    dump.path = path;
    if (absl::Status s = ReadDump(text, &dump); !s.ok()) return s;
    dumps.push_back(std::move(dump));
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  std::sort(dumps.begin(), dumps.end(),
            [](const Dump& a, const Dump& b) { return std::tie(a.pid, a.number) < std::tie(b.pid, b.number); });
  std::vector<RegionCount> regions;
  std::set<std::pair<std::string, std::string>> seen;
  for (const Dump& dump : dumps) {
    if (dump.number == 0) {
      // Collection left on at exit would lose instructions silently.
      if (*dump.total != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(dump.path, ": ", *dump.total,
                         " instructions were collected outside a named region (a region was opened and never "
                         "dumped; end each region with perfgate_region's end())"));
      }
      continue;
    }
    absl::string_view name = dump.trigger;
    if (!absl::ConsumePrefix(&name, "Client Request: ") || name.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(dump.path, ": a dump without a region name (trigger '",
                                                        dump.trigger, "'); dump with CALLGRIND_DUMP_STATS_AT(name)"));
    }
    RegionCount region;
    const std::string valid_name = EscapeInvalidUtf8(name);  // it travels in a proto string
    std::pair<std::string, std::string> split = absl::StrSplit(valid_name, absl::MaxSplits(',', 1));
    // Stripped as a PyTorch result line's names are ("bench, metric").
    region.benchmark = std::string(StripPythonWhitespace(split.first));
    region.metric = split.second.empty() ? kRegionMetric : std::string(StripPythonWhitespace(split.second));
    region.instructions = *dump.total;
    if (std::string problem = RowNameProblem(region.benchmark, region.metric); !problem.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dump.path, ": region '", region.benchmark.substr(0, 80), "': ", problem));
    }
    if (!seen.insert({region.benchmark, region.metric}).second) {
      return absl::FailedPreconditionError(
          absl::StrCat(dump.path, ": region '", region.benchmark, ",", region.metric, "' was dumped twice"));
    }
    regions.push_back(std::move(region));
  }
  if (regions.empty()) {
    return absl::NotFoundError(absl::StrCat("the case dumped no region in ", out_dir,
                                            " (instructions: region needs the case to mark its regions: "
                                            "bench_cases/src/perfgate_region.h)"));
  }
  return regions;
}

namespace {

// The agent's own variables a region run keeps: where programs, libraries
// and Python modules are found, where perfgate's case programs are, its
// slowdown knob, and Python's settings. The rest (a shell's OLDPWD, a CI
// job's ids, a script's PERFGATE_REPORT_DIR, the agent's token) is left
// out: an interpreter's memory layout, and with it the count, follows the
// number and size of its environment strings (CPython's attribute cache is
// indexed by the address of the name), and who started the agent must not
// change a count.
bool KeptInRegionRuns(absl::string_view name) {
  for (absl::string_view kept : {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "LD_PRELOAD",
                                 "PERFGATE_EXE_DIR", "PERFGATE_SLOWDOWN_PCT"}) {
    if (name == kept) return true;
  }
  return absl::StartsWith(name, "PYTHON");
}

}  // namespace

std::map<std::string, std::string> RegionEnvironment(const std::map<std::string, std::string>& overlay,
                                                     const std::string& preload) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::pair<std::string, std::string> entry = absl::StrSplit(*e, absl::MaxSplits('=', 1));
    if (KeptInRegionRuns(entry.first)) env.insert(std::move(entry));
  }
  for (const auto& [name, value] : overlay) env[name] = value;
  env[kRegionCounterEnv] = "callgrind";
  // Python's str and bytes hashes (dict and set layout) the same every run.
  env.emplace("PYTHONHASHSEED", "0");
  if (!preload.empty()) {
    std::string& value = env["LD_PRELOAD"];
    value = value.empty() ? preload : absl::StrCat(preload, ":", value);
  }
  return env;
}

RegionRun RunRegionCallgrind(const ExecSpec& exec, const std::string& valgrind, const std::string& out_dir,
                             const std::string& preload, const CancelToken* cancel) {
  ExecSpec wrapped = exec;
  // env -i: the executor lays the case's variables over the agent's whole
  // environment; a region run gets RegionEnvironment's fixed one instead.
  wrapped.argv = {"/usr/bin/env", "-i"};
  for (const auto& [name, value] : RegionEnvironment(exec.env, preload)) {
    wrapped.argv.push_back(absl::StrCat(name, "=", value));
  }
  for (std::string& arg : RegionCallgrindArgv(valgrind, exec.argv, out_dir)) wrapped.argv.push_back(std::move(arg));
  wrapped.count_instructions = false;
  // Valgrind is slow; give it room rather than report a false timeout.
  if (wrapped.timeout_ms) wrapped.timeout_ms *= 100;
  RegionRun run;
  run.exec = Execute(wrapped, cancel);
  if (!run.exec.ok()) {
    run.unavailable = UnhandledInstruction(run.exec.err);
    return run;
  }
  run.regions = ReadRegionCounts(out_dir);
  return run;
}

std::string UnhandledInstruction(const std::string& valgrind_stderr) {
  for (absl::string_view line : absl::StrSplit(valgrind_stderr, '\n')) {
    if (absl::StrContains(line, "unhandled instruction bytes") || absl::StrContains(line, "Unrecognised instruction")) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

absl::Status ProbeValgrindLoads(const std::string& valgrind, const std::vector<std::string>& libraries) {
  ExecSpec probe;
  // Not --quiet: it hides the "unhandled instruction" line the reason quotes.
  probe.argv = {valgrind, "--tool=none", "/bin/true"};
  probe.env["LD_PRELOAD"] = absl::StrJoin(libraries, ":");
  probe.timeout_ms = 60'000;
  probe.output_limit_bytes = 64 << 10;
  ExecResult run = Execute(probe);
  if (run.ok()) return absl::OkStatus();
  std::string unhandled = UnhandledInstruction(run.err);
  return absl::UnavailableError(absl::StrCat("valgrind cannot run the start-up of ", absl::StrJoin(libraries, ", "),
                                             ": ", unhandled.empty() ? run.Describe() : unhandled));
}

std::vector<std::string> LibtorchStartupLibraries() {
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib"}) {
    std::error_code ec;
    if (!std::filesystem::exists(absl::StrCat(dir, "/libtorch_cpu.so"), ec)) continue;
    const std::string hwy = absl::StrCat(dir, "/libhwy.so.1");
    if (std::filesystem::exists(hwy, ec)) return {hwy};
    return {};
  }
  return {};
}

std::string HwyShimPath() {
  const char* exe_dir = std::getenv("PERFGATE_EXE_DIR");
  if (!exe_dir) return "";
  const std::string shim = absl::StrCat(exe_dir, "/bench_cases/libperfgate_hwy_shim.so");
  std::error_code ec;
  return std::filesystem::exists(shim, ec) ? shim : "";
}

}  // namespace perfgate
