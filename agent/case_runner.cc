#include "agent/case_runner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/callgrind.h"
#include "agent/case_files.h"
#include "agent/case_user_leftovers.h"
#include "agent/perf_counter.h"
#include "agent/result_adapters.h"
#include "agent/run_supplies.h"
#include "core/capabilities.h"
#include "core/expand.h"
#include "core/series.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

// Callgrind counts are deterministic, and each run is ~50x slower than
// native, so a few runs are enough to show the count is stable.
constexpr uint32_t kMaxCallgrindRuns = 3;

// A scratch folder removed when the case is done, or handed back to the
// supplies it came from.
class ScratchDir {
 public:
  // REQUIRES: `user` is the one `supplies` was made for.
  ScratchDir(RunSupplies* supplies, const CaseUser* user)
      : supplies_(supplies), path_(supplies ? supplies->TakeScratchFolder() : MakeScratchFolder(user)) {}
  ~ScratchDir() {
    if (supplies_ && !path_.empty()) {
      supplies_->RetireScratchFolder(path_);
      return;
    }
    if (!path_.empty()) RemoveScratchFolder(path_);
  }
  const std::string& path() const { return path_; }

 private:
  RunSupplies* const supplies_;
  const std::string path_;
};

// Turns a failed run into the case's outcome. Returns false if `exec` succeeded.
bool RecordFailure(const ExecResult& exec, const std::string& phase, v1::CaseResult* result) {
  if (exec.ok()) return false;
  using End = ExecResult::End;
  switch (exec.end) {
    case End::kExited:
      result->set_outcome(v1::CaseResult::OUTCOME_FAILED);
      result->set_exit_code(exec.exit_code);
      break;
    case End::kSignaled:
      result->set_outcome(v1::CaseResult::OUTCOME_CRASHED);
      result->set_signal(exec.signal);
      break;
    case End::kTimedOut:
      result->set_outcome(v1::CaseResult::OUTCOME_TIMED_OUT);
      break;
    case End::kCancelled:
      result->set_outcome(v1::CaseResult::OUTCOME_CANCELLED);
      break;
    case End::kSpawnFailed:
      result->set_outcome(v1::CaseResult::OUTCOME_ERROR);
      break;
  }
  result->set_error(absl::StrCat(phase, ": ", exec.Describe()));
  result->set_stdout_tail(exec.out_tail);
  result->set_stderr_tail(exec.err_tail);
  return true;
}

enum class Counter { kNone, kPerf, kCallgrind, kRegion };

std::string VariantSuffix(const v1::Variant& variant) {
  return variant.name().empty() ? "" : absl::StrCat(" (", variant.name(), ")");
}

// The variables that say who the case runs as, when that is a case user
// and not the agent's. Its home and its temporary files are its scratch
// folder, removed after the case: otherwise what one case leaves in a
// home or in the shared $TMPDIR (a compiler's cache,
// /tmp/torchinductor_$USER, Python's ~/.local that every later Python
// imports from) is there for every later case of that user.
std::map<std::string, std::string> UserVariables(const CaseUser* user, const std::string& scratch) {
  if (!user) return {};
  return {{"HOME", scratch}, {"USER", user->name}, {"LOGNAME", user->name}, {"TMPDIR", scratch}};
}

// The runnable form of `spec` for one variant: ${NAME}s expanded from the
// variant's env, the case's env, perfgate's own variables, then the agent's
// environment.
absl::StatusOr<ExecSpec> BuildExec(const v1::CaseSpec& spec, const v1::Variant& variant, const std::string& result_file,
                                   const CaseRunOptions& options) {
  const std::map<std::string, std::string> user_variables =
      UserVariables(options.user, fs::path(result_file).parent_path().string());
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (auto it = variant.env().find(name); it != variant.env().end()) return it->second;
    if (auto it = spec.env().find(name); it != spec.env().end()) return it->second;
    if (name == "PERFGATE_RESULT_FILE") return result_file;
    if (name == "VARIANT_ROOT" && !variant.root().empty()) return variant.root();
    if (auto it = user_variables.find(name); it != user_variables.end()) return it->second;
    if (IsCredentialVariable(name)) return std::nullopt;
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
  ExecSpec exec;
  exec.user = options.user;
  for (const auto& arg : spec.argv()) {
    auto expanded = ExpandVariables(arg, lookup);
    if (!expanded.ok()) return expanded.status();
    exec.argv.push_back(*expanded);
  }
  std::map<std::string, std::string> env = user_variables;
  for (const auto& [name, value] : spec.env()) env[name] = value;
  for (const auto& [name, value] : variant.env()) env[name] = value;
  for (const auto& [name, value] : env) {
    auto expanded = ExpandVariables(value, lookup);
    if (!expanded.ok()) return expanded.status();
    exec.env[name] = *expanded;
  }
  exec.env["PERFGATE_RESULT_FILE"] = result_file;
  if (!variant.root().empty()) exec.env["VARIANT_ROOT"] = variant.root();
  if (!spec.cwd().empty()) {
    auto expanded = ExpandVariables(spec.cwd(), lookup);
    if (!expanded.ok()) return expanded.status();
    exec.cwd = *expanded;
  }
  exec.timeout_ms = spec.timeout_ms();
  exec.kill_grace_ms = options.kill_grace_ms;
  exec.output_limit_bytes = spec.output_limit_bytes() ? spec.output_limit_bytes() : (8 << 20);
  return exec;
}

// What the case wrote to $PERFGATE_RESULT_FILE, read as a case's file (agent/case_files.h).
absl::StatusOr<std::string> ReadResultFile(const std::string& result_file) {
  const fs::path path(result_file);
  absl::StatusOr<CaseFolder> folder = CaseFolder::Open(path.parent_path().string());
  if (!folder.ok()) return folder.status();
  return folder->Read(path.filename().string(), kMaxResultFileBytes, "result file ($PERFGATE_RESULT_FILE)");
}

// The metrics the case reported itself (its result file or stdout, per the
// suite), added to `sample`; what the output left out, to `notes`. Errors
// name the phase and what was wrong.
absl::Status AddCaseReportedValues(const v1::CaseSpec& spec, const ExecResult& run, const std::string& result_file,
                                   const std::string& phase, v1::Sample* sample, std::vector<std::string>* notes) {
  if (spec.result_format() == v1::RESULT_FORMAT_NONE) return absl::OkStatus();
  std::string text;
  std::string source;
  if (spec.result_source() == v1::RESULT_SOURCE_FILE) {
    auto read = ReadResultFile(result_file);
    if (absl::IsNotFound(read.status())) {
      return absl::InvalidArgumentError(
          absl::StrCat(phase, ": the case wrote no result file ($PERFGATE_RESULT_FILE)"));
    }
    if (!read.ok()) return absl::InvalidArgumentError(absl::StrCat(phase, ": ", read.status().message()));
    text = *std::move(read);
    source = absl::StrCat(phase, " result file");
  } else {
    if (run.out_dropped > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          phase, ": stdout exceeded output_limit (", run.out_dropped,
          " bytes dropped), so its results cannot be trusted; raise output_limit or use results_from: file"));
    }
    text = run.out;
    source = absl::StrCat(phase, " stdout");
  }
  auto values = ParseCaseResults(spec.result_format(), text, source, notes);
  if (!values.ok()) return values.status();
  for (auto& value : *values) *sample->add_values() = std::move(value);
  return absl::OkStatus();
}

// `instructions: region`: callgrind around the case's marked regions, or a
// note saying why there are no region counts here (timed metrics still run).
Counter ChooseRegionCounter(const v1::HostFingerprint& host, std::string* valgrind, v1::CaseResult* result) {
  if (host.region_counter_unavailable()) {
    result->add_notes(absl::StrCat("region instruction counts unavailable on this host: ", host.region_counter_note()));
    return Counter::kNone;
  }
  auto found = FindValgrind();
  if (!found.ok()) {
    result->add_notes(absl::StrCat("region instruction counts unavailable: ", found.status().message()));
    return Counter::kNone;
  }
  *valgrind = *found;
  if (!host.region_counter_preload().empty()) result->add_notes(host.region_counter_note());
  absl::Status perf = ProbePerfCounter();
  result->add_notes(absl::StrCat(
      "instructions: the case's regions only, callgrind with collection off at start, in separate runs (",
      perf.ok() ? "deterministic, as PyTorch counts; hardware counters are not used for regions"
                : absl::StrCat("hardware counters unavailable: ", perf.message()),
      ")"));
  return Counter::kRegion;
}

// One case on this machine: the phases of RunCase, each a method that
// returns false once the result is final (an error, a failed run, a cancel).
class CaseRun {
 public:
  CaseRun(const v1::CaseSpec& spec, const v1::HostFingerprint& host, const CaseRunOptions& options)
      : spec_(spec), host_(host), options_(options), scratch_(options.supplies, options.user) {
    result_.set_case_name(spec.name());
    *result_.mutable_host() = host;
  }

  v1::CaseResult Run() && {
    if (std::string unmet = UnmetRequirement(spec_.requirements(), host_, options_.labels); !unmet.empty()) {
      result_.set_outcome(v1::CaseResult::OUTCOME_SKIPPED);
      result_.set_error(unmet);
      return std::move(result_);
    }
    if (Prepare() && RemoveLeftovers() && ChooseCounter() && WarmUp() && Sample() && CountRegions() &&
        CountWithCallgrind()) {
      if (result_.output_dropped_bytes() > 0) {
        result_.add_notes(
            absl::StrCat(result_.output_dropped_bytes(), " bytes of output beyond output_limit were dropped"));
      }
      AddSamplingNotes();
      result_.set_outcome(v1::CaseResult::OUTCOME_OK);
    }
    return std::move(result_);
  }

 private:
  bool Fail(const std::string& why) {
    result_.set_outcome(v1::CaseResult::OUTCOME_ERROR);
    result_.set_error(why);
    return false;
  }

  void Progress(const std::string& what) const {
    if (options_.progress) options_.progress(what);
  }

  v1::Sample* AddSample(size_t variant) {
    v1::Sample* sample = result_.add_samples();
    sample->set_index(sample_index_++);
    sample->set_variant(variants_[variant].name());
    return sample;
  }

  // A scratch folder for the result file, and one executable form per
  // variant (a plain run has one, unnamed).
  bool Prepare() {
    if (spec_.argv_size() == 0) return Fail("case has no command");
    if (scratch_.path().empty()) {
      return Fail(absl::StrCat("cannot create a scratch folder in ", TempRoot(), " (", std::strerror(errno),
                               "); check $TMPDIR, or that /tmp can be written"));
    }
    result_file_ = scratch_.path() + "/results";
    variants_.assign(spec_.variants().begin(), spec_.variants().end());
    if (variants_.empty()) variants_.emplace_back();
    for (const auto& variant : variants_) {
      auto exec = BuildExec(spec_, variant, result_file_, options_);
      if (!exec.ok()) return Fail(std::string(exec.status().message()));
      exec->supplies = options_.supplies;
      exec->started = options_.started;
      execs_.push_back(*std::move(exec));
    }
    if (variants_.size() > 1) {
      result_.add_notes(absl::StrCat("A/B: ", variants_.size(), " variants interleaved on this machine (ABBA order)"));
    }
    return true;
  }

  // What earlier cases of the case user left where this one could find it
  // (agent/case_user_leftovers.h), removed before it starts; a case that
  // cannot start clean does not start.
  bool RemoveLeftovers() {
    if (!options_.user) return true;
    LeftoverSweep sweep;
    sweep.supplies = options_.supplies;
    sweep.cancel = options_.cancel;
    absl::StatusOr<Leftovers> removed = RemoveCaseUserLeftovers(*options_.user, sweep);
    if (!removed.ok()) return Fail(std::string(removed.status().message()));
    if (!removed->empty()) {
      result_.add_notes(absl::StrCat("removed what earlier cases of '", options_.user->name,
                                     "' left before this one started: ", removed->Describe()));
    }
    return true;
  }

  // Which instruction counter, said plainly in the result.
  bool ChooseCounter() {
    if (spec_.instructions() == v1::INSTRUCTION_COUNTER_REGION) {
      counter_ = ChooseRegionCounter(host_, &valgrind_, &result_);
    } else if (spec_.instructions() != v1::INSTRUCTION_COUNTER_OFF) {
      absl::Status perf = spec_.instructions() == v1::INSTRUCTION_COUNTER_CALLGRIND
                              ? absl::UnavailableError("callgrind requested by the case")
                              : ProbePerfCounter();
      if (perf.ok()) {
        counter_ = Counter::kPerf;
        result_.add_notes("instructions: hardware counter (perf_event_open, user space, children included)");
      } else if (spec_.instructions() == v1::INSTRUCTION_COUNTER_PERF) {
        return Fail(absl::StrCat("case asks for hardware instruction counts, but ", perf.message(),
                                 "; use 'instructions: auto' to fall back to callgrind"));
      } else {
        auto found = FindValgrind();
        if (!found.ok()) {
          return Fail(absl::StrCat("no instruction counter: ", perf.message(), "; ", found.status().message()));
        }
        valgrind_ = *found;
        counter_ = Counter::kCallgrind;
        result_.add_notes(absl::StrCat("instructions: callgrind in separate runs (", perf.message(),
                                       "); not comparable with hardware counts"));
      }
    }
    for (auto& exec : execs_) exec.count_instructions = counter_ == Counter::kPerf;
    return true;
  }

  bool WarmUp() {
    for (uint32_t i = 0; i < spec_.warmup(); ++i) {
      Progress(absl::StrCat("warm-up ", i + 1, "/", spec_.warmup()));
      for (size_t v = 0; v < execs_.size(); ++v) {
        ExecResult run = Execute(execs_[v], options_.cancel);
        if (RecordFailure(run, absl::StrCat("warm-up run ", i + 1, VariantSuffix(variants_[v])), &result_)) {
          return false;
        }
      }
    }
    return true;
  }

  // The timed repeats; with several variants, in ABBA order: alternating
  // which goes first, so drift hits both alike.
  bool Sample() {
    const uint32_t repeats = std::max<uint32_t>(1, spec_.repeats());
    for (uint32_t i = 0; i < repeats; ++i) {
      Progress(absl::StrCat("sample ", i + 1, "/", repeats));
      for (size_t k = 0; k < execs_.size(); ++k) {
        const size_t v = (i % 2 == 0) ? k : execs_.size() - 1 - k;
        if (!SampleOnce(v, absl::StrCat("sample ", i + 1, VariantSuffix(variants_[v])))) return false;
      }
    }
    return true;
  }

  bool SampleOnce(size_t v, const std::string& phase) {
    std::error_code ec;
    fs::remove(result_file_, ec);
    ExecResult run = Execute(execs_[v], options_.cancel);
    if (RecordFailure(run, phase, &result_)) return false;
    ++timed_runs_;
    if (run.leftovers_killed > 0) {
      ++runs_with_leftovers_;
      leftovers_killed_ += run.leftovers_killed;
    }
    result_.set_output_dropped_bytes(result_.output_dropped_bytes() + run.out_dropped + run.err_dropped);
    result_.set_stdout_tail(run.out_tail);
    result_.set_stderr_tail(run.err_tail);

    v1::Sample* sample = AddSample(v);
    AddValue(sample, spec_.name(), kWallTime, run.wall_s, "s", "agent:clock");
    AddValue(sample, spec_.name(), kUserCpuTime, run.user_cpu_s, "s", "agent:rusage");
    AddValue(sample, spec_.name(), kSysCpuTime, run.sys_cpu_s, "s", "agent:rusage");
    AddValue(sample, spec_.name(), kPeakRss, static_cast<double>(run.peak_rss_bytes), "bytes",
             MemorySourceName(run.memory_source));
    if (counter_ == Counter::kPerf) {
      if (!run.instructions) return Fail(absl::StrCat(phase, ": instruction counter failed: ", run.instructions_error));
      AddValue(sample, spec_.name(), kInstructions, static_cast<double>(*run.instructions), "count", "agent:perf");
    }
    std::vector<std::string> left_out;
    if (auto s = AddCaseReportedValues(spec_, run, result_file_, phase, sample, &left_out); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    sampling_notes_.insert(left_out.begin(), left_out.end());
    return true;
  }

  // What the timed runs left out, said once for all of them.
  void AddSamplingNotes() {
    for (const std::string& note : sampling_notes_) result_.add_notes(note);
    if (runs_with_leftovers_ > 0) {
      result_.add_notes(absl::StrCat("the case left processes running when it ended, in ", runs_with_leftovers_, " of ",
                                     timed_runs_, " timed runs (", leftovers_killed_,
                                     " in all): they were killed then, and what they would still have done or "
                                     "written is in no result"));
    }
  }

  // One run per variant: region counts are deterministic, and a libtorch
  // case costs tens of seconds under valgrind even with instrumentation off
  // until its first region.
  bool CountRegions() {
    if (counter_ != Counter::kRegion) return true;
    Progress("region counts");
    for (size_t v = 0; v < execs_.size(); ++v) {
      absl::StatusOr<std::string> out_dir = MakeProfileFolder(absl::StrCat("regions-", v));
      if (!out_dir.ok()) return Fail(std::string(out_dir.status().message()));
      RegionRun run =
          RunRegionCallgrind(execs_[v], valgrind_, *out_dir, host_.region_counter_preload(), options_.cancel);
      const std::string phase = absl::StrCat("region count run", VariantSuffix(variants_[v]));
      if (!run.unavailable.empty()) {
        result_.add_notes(absl::StrCat("region instruction counts unavailable on this host: ", run.unavailable));
        return true;
      }
      if (RecordFailure(run.exec, phase, &result_)) return false;
      if (!run.regions.ok()) return Fail(absl::StrCat(phase, ": ", EscapeInvalidUtf8(run.regions.status().message())));
      v1::Sample* sample = AddSample(v);
      for (const RegionCount& region : *run.regions) {
        AddValue(sample, region.benchmark, region.metric.c_str(), static_cast<double>(region.instructions), "count",
                 "agent:callgrind-region");
      }
    }
    return true;
  }

  // A new folder `name` in the scratch folder for callgrind's profiles, the
  // case user's where there is one (valgrind runs as that user). Made new
  // each time: one the case made (a link elsewhere, say) is refused.
  absl::StatusOr<std::string> MakeProfileFolder(const std::string& name) {
    const std::string path = absl::StrCat(scratch_.path(), "/", name);
    if (mkdir(path.c_str(), 0700) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot make ", path, " for callgrind's profiles: ", std::strerror(errno),
                       errno == EEXIST ? " (the case made it; a case must leave that name to the agent)" : ""));
    }
    // lchown never follows a link, whatever a leftover of the case (without
    // control groups) might have put there since the mkdir.
    if (options_.user && lchown(path.c_str(), options_.user->uid, options_.user->gid) != 0) {
      return absl::InternalError(absl::StrCat("cannot hand ", path, " to user '", options_.user->name,
                                              "': ", std::strerror(errno)));
    }
    return path;
  }

  // Whole-process counts where there is no hardware counter: a few separate
  // runs under callgrind, to show the count is stable.
  bool CountWithCallgrind() {
    if (counter_ != Counter::kCallgrind) return true;
    const uint32_t runs = std::min(std::max<uint32_t>(1, spec_.repeats()), kMaxCallgrindRuns);
    for (uint32_t i = 0; i < runs; ++i) {
      Progress(absl::StrCat("callgrind ", i + 1, "/", runs));
      for (size_t v = 0; v < execs_.size(); ++v) {
        absl::StatusOr<std::string> out_dir = MakeProfileFolder(absl::StrCat("callgrind-", i, "-", v));
        if (!out_dir.ok()) return Fail(std::string(out_dir.status().message()));
        ExecSpec wrapped = execs_[v];
        wrapped.argv = CallgrindArgv(valgrind_, execs_[v].argv, *out_dir);
        // Valgrind is slow; give it room rather than report a false timeout.
        if (wrapped.timeout_ms) wrapped.timeout_ms *= 100;
        ExecResult run = Execute(wrapped, options_.cancel);
        const std::string phase = absl::StrCat("callgrind run ", i + 1, VariantSuffix(variants_[v]));
        if (RecordFailure(run, phase, &result_)) return false;
        auto total = SumCallgrindInstructions(*out_dir);
        // The message may quote a line of the profile: escape it for the proto string field.
        if (!total.ok()) return Fail(absl::StrCat(phase, ": ", EscapeInvalidUtf8(total.status().message())));
        AddValue(AddSample(v), spec_.name(), kCallgrindInstructions, static_cast<double>(*total), "count",
                 "agent:callgrind");
      }
    }
    return true;
  }

  const v1::CaseSpec& spec_;
  const v1::HostFingerprint& host_;
  const CaseRunOptions& options_;
  v1::CaseResult result_;
  ScratchDir scratch_;
  std::string result_file_;
  std::vector<v1::Variant> variants_;
  std::vector<ExecSpec> execs_;
  Counter counter_ = Counter::kNone;
  std::string valgrind_;
  uint32_t sample_index_ = 0;
  std::set<std::string> sampling_notes_;
  uint32_t timed_runs_ = 0;
  uint32_t runs_with_leftovers_ = 0;
  size_t leftovers_killed_ = 0;
};

}  // namespace

v1::CaseResult RunCase(const v1::CaseSpec& spec, const v1::HostFingerprint& host, const CaseRunOptions& options) {
  return CaseRun(spec, host, options).Run();
}

}  // namespace perfgate
