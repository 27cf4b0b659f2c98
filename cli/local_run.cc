#include "cli/local_run.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agent/case_runner.h"
#include "agent/run_supplies.h"
#include "core/suite.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {

v1::Suite AdHocSuite(const std::vector<std::string>& argv) {
  v1::Suite suite;
  suite.set_name("ad-hoc");
  v1::CaseSpec* spec = suite.add_cases();
  std::vector<std::string> words = argv;
  words[0] = std::filesystem::path(argv[0]).filename().string();
  spec->set_name(absl::StrJoin(words, " "));
  // Run as given, as hyperfine would: a suite's commands expand ${NAME} and
  // $$, so `sh -c 'kill -9 $$'` ran `kill -9 $`. Each $ is escaped as $$;
  // A/B's VARIANT_ROOT is in the case's environment.
  for (const auto& arg : argv) spec->add_argv(absl::StrReplaceAll(arg, {{"$", "$$"}}));
  spec->set_warmup(kAdHocWarmup);
  spec->set_repeats(kAdHocRepeats);
  spec->set_timeout_ms(kDefaultTimeoutMs);
  spec->set_output_limit_bytes(kDefaultOutputLimitBytes);
  spec->add_judged_metrics("wall_time");
  return suite;
}

v1::CaseSpec WithOverrides(v1::CaseSpec spec, const LocalRunOptions& options) {
  if (options.repeats) {
    spec.set_repeats(spec.variants_size() ? std::max(options.repeats, options.ab_min_samples) : options.repeats);
  }
  if (options.warmup) spec.set_warmup(*options.warmup);
  return spec;
}

v1::Run RunLocally(const v1::Suite& suite, const v1::HostFingerprint& host, const LocalRunOptions& options) {
  RemoveStaleScratchFolders();  // an agent's RunSupplies does it; a run by hand has none
  v1::Run run;
  run.set_run_id("local");
  run.set_suite_name(suite.name());
  run.set_state(v1::RUN_STATE_FINISHED);
  int index = 0, total = 0;
  for (const auto& c : suite.cases()) total += options.cases.empty() || options.cases.count(c.name());
  for (const v1::CaseSpec& listed : suite.cases()) {
    if (!options.cases.empty() && !options.cases.count(listed.name())) continue;
    ++index;
    const v1::CaseSpec spec = WithOverrides(listed, options);
    auto* status = run.add_cases();
    status->set_name(spec.name());
    status->set_attempts(1);
    status->set_agent_id("this machine");
    if (options.cancel && options.cancel->cancelled()) {
      status->set_state(v1::CASE_STATE_CANCELLED);
      continue;
    }
    CaseRunOptions run_options;
    run_options.cancel = options.cancel;
    run_options.labels = options.labels;
    run_options.user = options.user;
    run_options.progress = [&](const std::string& phase) {
      if (options.progress) options.progress(index, total, spec.name(), phase);
    };
    v1::CaseResult result = RunCase(spec, host, run_options);
    if (result.outcome() == v1::CaseResult::OUTCOME_SKIPPED) {
      if (options.skipped) options.skipped(spec.name(), result.error());
      status->set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
      status->set_error(result.error());
      continue;
    }
    status->set_state(result.outcome() == v1::CaseResult::OUTCOME_CANCELLED ? v1::CASE_STATE_CANCELLED
                                                                            : v1::CASE_STATE_DONE);
    status->set_error(result.error());
    result.set_pool(options.pool);
    *status->mutable_result() = std::move(result);
  }
  if (options.cancel && options.cancel->cancelled()) run.set_state(v1::RUN_STATE_CANCELLED);
  return run;
}

namespace {

std::string Seconds(double s) { return FormatDurationSeconds(s); }

// "  Time (median ± MAD):  101 ms ± 0.31 ms    [User: 0.52 ms, System: 0.70 ms]"
void WriteTime(const CaseReport& c, const MetricReport& wall, std::ostream& out) {
  out << "  Time (median ± MAD):   " << Seconds(wall.summary.median) << " ± " << Seconds(wall.summary.mad);
  const MetricReport* user = FindMeasured(c, "user_cpu_time");
  const MetricReport* sys = FindMeasured(c, "sys_cpu_time");
  if (user && sys)
    out << "    [User: " << Seconds(user->summary.median) << ", System: " << Seconds(sys->summary.median) << "]";
  out << "\n  Range (min … max):     " << Seconds(wall.summary.min) << " … " << Seconds(wall.summary.max) << "    "
      << wall.summary.n << (wall.summary.n == 1 ? " run" : " runs") << "\n";
}

void WriteOther(const CaseReport& c, std::ostream& out) {
  const std::pair<const char*, const char*> shown[] = {{"peak_rss", "Peak memory (median):   "},
                                                       {"instructions", "Instructions (median):  "},
                                                       {"instructions_callgrind", "Instructions (median):  "}};
  for (const auto& [metric, label] : shown) {
    if (const MetricReport* m = FindMeasured(c, metric)) {
      out << "  " << label << FormatValue(m->summary.median, m->series.unit, m->series.metric) << "    ("
          << m->series.source << ")\n";
    }
  }
}

}  // namespace

void CommandSummaryReporter::Write(const GateReport& report, std::ostream& out) const {
  int number = 0;
  for (const auto& c : report.cases) {
    // The name is the command as given: any bytes, newlines and escapes included.
    out << "Benchmark " << ++number << ": " << EscapeControls(c.name) << "\n";
    const MetricReport* wall = FindMeasured(c, "wall_time");
    if (!c.ran || !wall) {
      out << "  " << VerdictName(c.verdict) << ": " << EscapeControls(c.outcome)
          << (c.detail.empty() ? "" : " - " + EscapeControls(c.detail)) << "\n";
      continue;
    }
    WriteTime(c, *wall, out);
    WriteOther(c, out);
    for (const auto& note : c.notes) out << "  Note: " << EscapeControls(note) << "\n";
    for (const auto& m : c.metrics) {
      if (m.comparison) out << "  " << VerdictName(m.verdict) << ": " << DescribeMetricOfCase(c, m) << "\n";
    }
  }
  for (const auto& rule : report.failed_rules) out << "failed: " << rule << "\n";
}

}  // namespace perfgate
