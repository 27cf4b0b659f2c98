#include "core/judge.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/baseline_update.h"
#include "core/exit_codes.h"
#include "core/names.h"
#include "core/units.h"

namespace perfgate {
namespace {

std::string OutcomeText(const v1::CaseResult& r) {
  switch (r.outcome()) {
    case v1::CaseResult::OUTCOME_FAILED:
      return absl::StrCat("exit ", r.exit_code());
    case v1::CaseResult::OUTCOME_CRASHED:
      return absl::StrCat("signal ", r.signal());
    default:
      return OutcomeName(r.outcome());
  }
}

const std::vector<ExpectedRow>* RowsFor(const Baselines& baselines, const std::string& pool) {
  if (auto it = baselines.expected.find(pool); it != baselines.expected.end()) return &it->second;
  if (auto it = baselines.expected.find("*"); it != baselines.expected.end()) return &it->second;
  return nullptr;
}

const Series* FindSeries(const std::vector<Series>& all, const Series& like, const std::string& variant) {
  for (const auto& s : all) {
    if (s.benchmark == like.benchmark && s.metric == like.metric && s.source == like.source && s.variant == variant) {
      return &s;
    }
  }
  return nullptr;
}

// The expected-file row of a series measured on `pool`, if any. An A/B
// head is compared with its base side only.
const ExpectedRow* ExpectedRowOf(const Series& series, const std::string& pool, const Baselines& baselines) {
  if (series.variant == SideName(Side::kHead)) return nullptr;
  if (const auto* rows = RowsFor(baselines, pool)) {
    for (const auto& row : *rows) {
      if (row.benchmark == series.benchmark && row.metric == series.metric) return &row;
    }
  }
  return nullptr;
}

// Judged by the policy (the case's `judge:` list, else the defaults), or
// because an expected file has a row for it: a row asks for its metric to be
// gated, as every row is in PyTorch's check_results.py.
bool JudgedHere(const std::string& case_name, const Series& series, const ExpectedRow* row, const Policy& policy) {
  return policy.Judged(case_name, series.metric) || row != nullptr;
}

// The comparison with the first baseline source that has `series`: its
// expected-file `row` where it has one.
std::optional<Comparison> CompareWithBaseline(const Series& series, double median, Direction better,
                                              const std::vector<Series>& all, const std::string& pool,
                                              const ExpectedRow* row, const Baselines& baselines,
                                              const Policy& policy) {
  if (series.variant == SideName(Side::kHead)) {
    if (const Series* base = FindSeries(all, series, SideName(Side::kBase))) {
      const bool count = IsCount(series.metric, UnitOf(series.metric, series.unit, policy.compare.declared));
      return CompareAB(better, base->values, series.values, policy.compare, count);
    }
    return std::nullopt;
  }
  if (row != nullptr) return CompareWithExpected(better, median, *row);
  {
    auto it = baselines.history.find({pool, series.benchmark, series.metric, series.source});
    if (it != baselines.history.end()) {
      const std::string unit = UnitOf(series.metric, series.unit, policy.compare.declared);
      Comparison c = CompareWithHistory(better, series.values, it->second, policy.compare,
                                        IsTimedOrRate(unit, series.metric), IsCount(series.metric, unit));
      if (c.verdict != Verdict::kNoBaseline) return c;
    }
  }
  return std::nullopt;
}

// "case metric" or "case benchmark metric".
std::string DescribeSeriesName(const CaseReport& c, const MetricReport& m) {
  return m.series.benchmark == c.name ? absl::StrCat(c.name, " ", m.series.metric)
                                      : absl::StrCat(c.name, " ", m.series.benchmark, " ", m.series.metric);
}

// Compares one series with the first baseline source that has it. `all` is
// every series of the same result, for the A/B base side; `row` is the
// series' expected-file row, if any (ExpectedRowOf). A series that is
// judged by policy but cannot be judged (core/metric_traits.h) gets no
// comparison, and `note` says why; a change within the instrument's
// resolution passes, and `note` says so. `judged_before`: a re-measurement of
// a series the first round judged, judged again as if listed under `judge:`
// (a wall time re-measured under the shortness floor cleared a 7x slowdown).
std::optional<Comparison> Compare(const std::string& case_name, const Series& series, const std::vector<Series>& all,
                                  const std::string& pool, const ExpectedRow* row, const Baselines& baselines,
                                  const Policy& policy, std::string* note, bool judged_before = false) {
  if (!judged_before && !JudgedHere(case_name, series, row, policy)) return std::nullopt;
  const double median = Summarize(series.values).median;
  const MetricTraits traits = TraitsOf(series.metric, series.source, policy.compare.declared);
  std::optional<Comparison> c =
      CompareWithBaseline(series, median, traits.direction, all, pool, row, baselines, policy);
  if (c && c->method == Method::kExpected && traits.direction == Direction::kUnknown) {
    // A row no direction can judge would pass whatever the change.
    c->verdict = Verdict::kError;
    *note = absl::StrCat("the expected file has a row for ", series.metric, " (line ", row->line,
                         ") but its direction is unknown: declare it under metrics: (", series.metric,
                         ": {better: lower|higher})");
    return c;
  }
  if (c && c->method == Method::kAB && c->verdict == Verdict::kError) {
    *note = absl::StrCat("too few samples for the rank test (", c->baseline_n, " base, ", series.values.size(),
                         " head): A/B needs at least ", policy.compare.ab_min_samples, " a side (repeats:)");
  }
  if (c && PassWithinResolution(traits.resolution, &*c)) {
    *note = absl::StrCat("within the instrument's resolution (",
                         FormatValue(traits.resolution, series.unit, series.metric), "): no change");
  }
  // A row asks for its metric to be judged, as a `judge:` entry does: a 4 ms
  // row is judged even though a 4 ms wall time alone would only be shown.
  const auto listed = policy.judged_metrics.find(case_name);
  const bool asked =
      judged_before || row != nullptr || (listed != policy.judged_metrics.end() && listed->second.count(series.metric));
  const double span = SpanJudgedForShortness(median, c ? std::optional<double>(c->baseline) : std::nullopt);
  if (auto why = ShownOnlyReason(series.metric, series.source, span, asked, policy.compare.declared)) {
    if (row != nullptr && c && c->method == Method::kExpected) {
      // What the row asks cannot be judged: passing it would pass any change.
      c->verdict = Verdict::kError;
      *note = absl::StrCat("the expected file has a row for ", series.metric, " (line ", row->line,
                           "), which cannot be judged here (", *why, "); remove the row");
      return c;
    }
    *note = *why;
    return std::nullopt;
  }
  return c;
}

// The row verdict of a case that ran: the worst verdict of its judged metrics.
Verdict WorstJudgedVerdict(const CaseReport& c) {
  std::set<Verdict> seen;
  bool any_compared = false;
  for (const auto& m : c.metrics) {
    if (!m.judged) continue;
    seen.insert(m.verdict);
    any_compared |= m.comparison.has_value();
  }
  for (Verdict v : {Verdict::kRegression, Verdict::kError, Verdict::kMissingResult, Verdict::kImprovement}) {
    if (seen.count(v)) return v;
  }
  return any_compared ? Verdict::kPass : Verdict::kNoBaseline;
}

// What the policy's fail_on is checked against: the verdict of every metric
// a case judged (one regressing metric fails `--fail-on regression` even when
// another one errs), else the case's own verdict (its outcome, or no baseline).
std::set<Verdict> GateVerdicts(const CaseReport& c) {
  std::set<Verdict> out;
  for (const auto& m : c.metrics) {
    if (c.ran && m.judged) out.insert(m.verdict);
  }
  if (out.empty()) out.insert(c.verdict);
  return out;
}

// A case without a measured result never passes, whatever fail_on says: a
// case cancelled or lost on the way hides what it would have measured. Only
// a case no agent can run is the policy's call (`perfgate run` skips those).
bool Unmeasured(const CaseReport& c) { return !c.ran && c.verdict != Verdict::kNoCapableAgent; }

// Improvements against an expected file, as rows to apply.
std::vector<ExpectedRow> ImprovementPatch(const GateReport& report) {
  std::vector<ExpectedRow> rows;
  for (const auto& c : report.cases) {
    for (const auto& m : c.metrics) {
      if (m.verdict == Verdict::kImprovement && m.comparison && m.comparison->method == Method::kExpected) {
        rows.push_back(
            {m.series.benchmark, m.series.metric, KeepLeadingFourDigits(m.summary.median), m.comparison->threshold, 0});
      }
    }
  }
  return rows;
}

// At most this many names in one line of a summary: a suite of thousands of
// new cases would otherwise print every name (each case's own row has it).
constexpr size_t kNamesShown = 10;

// "a, b, c" or, past kNamesShown names, "a, b, ... and 7990 more".
std::string ShortList(const std::vector<std::string>& names, const char* separator) {
  if (names.size() <= kNamesShown) return absl::StrJoin(names, separator);
  const std::vector<std::string> shown(names.begin(), names.begin() + kNamesShown);
  return absl::StrCat(absl::StrJoin(shown, separator), separator, "... and ", names.size() - kNamesShown, " more");
}

std::string CaseList(const std::vector<std::string>& names) {
  return absl::StrCat(names.size(), " case", names.size() == 1 ? "" : "s", " (", ShortList(names, ", "), ")");
}

// The pools of the agents that delivered this run's results.
std::set<std::string> PoolsThatRan(const v1::Run& run) {
  std::set<std::string> ran;
  for (const auto& c : run.cases()) {
    if (c.has_result() && !c.result().pool().empty()) ran.insert(c.result().pool());
  }
  return ran;
}

// Expected files for pools that took no part in this run judged nothing. Only
// said when the coordinator told which pools exist (an unknown pool is an
// error before the report is built: CheckBaselinePools).
std::vector<std::string> IdlePoolWarnings(const GateReport& report, const Baselines& baselines) {
  std::vector<std::string> out;
  if (!baselines.known_pools) return out;
  const std::set<std::string> ran = PoolsThatRan(report.run);
  for (const auto& [pool, rows] : baselines.expected) {
    if (pool == "*" || ran.count(pool)) continue;
    out.push_back(absl::StrCat("the expected file for pool '", pool,
                               "' judged nothing: no agent of that pool took part in this run (pools that ran: ",
                               ran.empty() ? "none" : absl::StrJoin(ran, ", "), ")"));
  }
  return out;
}

// Marks each case that fails the gate, and says which rules failed: one
// line per verdict the policy fails on, one for cases without a measured result.
std::vector<std::string> FailedRules(std::vector<CaseReport>& cases, const Policy& policy) {
  std::map<Verdict, std::vector<std::string>> failing;
  std::vector<std::string> unmeasured;
  for (auto& c : cases) {
    if (c.ran) c.verdict = WorstJudgedVerdict(c);
    c.fails = false;
    for (auto& m : c.metrics) m.fails = m.judged && policy.fail_on.count(m.verdict);
    for (Verdict v : GateVerdicts(c)) {
      if (!policy.fail_on.count(v)) continue;
      failing[v].push_back(c.name);
      c.fails = true;
    }
    if (Unmeasured(c) && !policy.fail_on.count(c.verdict)) {
      unmeasured.push_back(absl::StrCat(c.name, ": ", VerdictName(c.verdict)));
      c.fails = true;
    }
  }
  std::vector<std::string> rules;
  for (const auto& [verdict, names] : failing) {
    rules.push_back(absl::StrCat(VerdictName(verdict), " fails the gate: ", CaseList(names)));
  }
  if (!unmeasured.empty()) {
    rules.push_back(absl::StrCat("a case without a measured result fails the gate: ", CaseList(unmeasured)));
  }
  return rules;
}

// The rule for a run in which no case ran, when the policy has one: with
// fail_on leaving out no_capable_agent, a submit while every agent was away
// passed with nothing measured.
std::optional<std::string> NothingMeasured(const std::vector<CaseReport>& cases, const Policy& policy) {
  if (!policy.fail_unmeasured_run || cases.empty()) return std::nullopt;
  if (std::any_of(cases.begin(), cases.end(), [](const CaseReport& c) { return c.ran; })) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& c : cases) names.push_back(absl::StrCat(c.name, ": ", VerdictName(c.verdict)));
  return absl::StrCat("a run in which no case was measured fails the gate: ", CaseList(names));
}

// Cases with nothing to compare with, when the policy lets them pass.
std::optional<std::string> NoBaselineWarning(const std::vector<CaseReport>& cases, const Policy& policy) {
  if (policy.fail_on.count(Verdict::kNoBaseline)) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& c : cases) {
    if (c.verdict == Verdict::kNoBaseline) names.push_back(c.name);
  }
  if (names.empty()) return std::nullopt;
  return absl::StrCat("no baseline for ", CaseList(names), ": nothing to compare with yet");
}

// Expected rows no case produced: a failed rule or a warning, as the policy says.
void AddMissingRows(const Policy& policy, GateReport* report) {
  const auto& missing = report->missing_rows;
  if (missing.empty()) return;
  const std::string what = absl::StrCat(missing.size(), " expected row", missing.size() == 1 ? "" : "s",
                                        " with no result (", ShortList(missing, "; "), ")");
  report->missing_rows_fail = policy.fail_on.count(Verdict::kMissingResult) > 0;
  if (report->missing_rows_fail) {
    report->failed_rules.push_back(absl::StrCat("missing result fails the gate: ", what));
  } else {
    report->warnings.push_back(what);
  }
}

// Metrics nobody told perfgate the direction of: shown, never judged, and said so.
std::optional<std::string> UndirectedWarning(const std::vector<CaseReport>& cases) {
  std::vector<std::string> undirected;
  for (const auto& c : cases) {
    for (const auto& m : c.metrics) {
      if (m.note.find("direction unknown") != std::string::npos) undirected.push_back(DescribeSeriesName(c, m));
    }
  }
  if (undirected.empty()) return std::nullopt;
  return absl::StrCat("direction unknown: declare it under metrics: for ", absl::StrJoin(undirected, ", "),
                      " (shown, not judged)");
}

// A cancelled run never passes: what its cases would have measured is unknown.
void SetOutcome(GateReport* report) {
  report->passed = report->failed_rules.empty();
  if (report->run.state() == v1::RUN_STATE_CANCELLED) {
    report->passed = false;
    report->exit_code = kExitInterrupted;
  } else {
    report->exit_code = report->passed ? kExitPassed : kExitGateFailed;
  }
}

// Case and gate verdicts from the metric verdicts and case outcomes.
void Derive(GateReport* report, const Baselines& baselines, const Policy& policy) {
  report->baseline_patch = ImprovementPatch(*report);
  report->failed_rules = FailedRules(report->cases, policy);
  if (auto rule = NothingMeasured(report->cases, policy); rule && report->failed_rules.empty()) {
    report->failed_rules.push_back(std::move(*rule));
    for (auto& c : report->cases) c.fails = true;  // so every report says what the exit code says
  }
  report->warnings = IdlePoolWarnings(*report, baselines);
  report->warnings.insert(report->warnings.end(), report->unclaimed_rows.begin(), report->unclaimed_rows.end());
  report->warnings.insert(report->warnings.end(), report->shared_history.begin(), report->shared_history.end());
  if (auto w = NoBaselineWarning(report->cases, policy)) report->warnings.push_back(std::move(*w));
  AddMissingRows(policy, report);
  if (auto w = UndirectedWarning(report->cases)) report->warnings.push_back(std::move(*w));
  SetOutcome(report);
}

bool HasResult(const v1::CaseStatus& c) {
  return c.has_result() && c.result().outcome() != v1::CaseResult::OUTCOME_UNSPECIFIED;
}

// A case's row before its metrics: who ran it, and its verdict when it did not run to exit 0.
CaseReport StartCaseReport(const v1::CaseStatus& c) {
  CaseReport cr;
  cr.name = c.name();
  cr.agent_id = c.agent_id();
  cr.attempts = c.attempts();
  cr.detail = c.error();
  cr.outcome = HasResult(c) ? OutcomeText(c.result()) : "not run";
  cr.pool = c.result().pool();
  switch (c.state()) {
    case v1::CASE_STATE_DONE:
      if (c.result().outcome() == v1::CaseResult::OUTCOME_OK) {
        cr.ran = true;
        cr.detail.clear();
      } else {
        cr.verdict = Verdict::kError;
        if (cr.detail.empty()) cr.detail = c.result().error();
      }
      break;
    case v1::CASE_STATE_NO_CAPABLE_AGENT:
      cr.verdict = Verdict::kNoCapableAgent;
      break;
    case v1::CASE_STATE_CANCELLED:
      cr.verdict = Verdict::kCancelled;
      break;
    case v1::CASE_STATE_ERROR:
      cr.verdict = Verdict::kError;
      break;
    default:
      cr.verdict = Verdict::kMissingResult;
      if (cr.detail.empty()) cr.detail = "the run ended before this case did";
  }
  return cr;
}

// NaN compares false with every limit, so a series holding one would pass
// whatever its baseline. The coordinator refuses such results; a judge that
// meets one anyway (an older store, another coordinator) calls it an error.
bool AllFinite(const Series& series) {
  return std::all_of(series.values.begin(), series.values.end(), [](double v) { return std::isfinite(v); });
}

// A count below zero (declared so by its suite, or built in) is no count:
// a lying agent's -1e308 iterations read as an improvement, and was offered
// as the new expected row.
bool CountBelowZero(const Series& series, const Policy& policy) {
  if (!IsCount(series.metric, UnitOf(series.metric, series.unit, policy.compare.declared))) return false;
  return std::any_of(series.values.begin(), series.values.end(), [](double v) { return v < 0; });
}

MetricReport BrokenSeries(const CaseReport& cr, const Series& series, const ExpectedRow* row, const Policy& policy,
                          const std::string& why) {
  MetricReport m;
  m.series = series;
  m.series.unit = UnitOf(series.metric, series.unit, policy.compare.declared);
  m.verdict = Verdict::kError;
  m.judged = cr.ran && JudgedHere(cr.name, series, row, policy);
  m.note = absl::StrCat(why, ": the agent that measured it is broken");
  return m;
}

// One measured series of a case, compared where the case ran. `all` is every
// series of the same result (the A/B base side is shown beside its head).
MetricReport JudgeSeries(const CaseReport& cr, const Series& series, const std::vector<Series>& all,
                         const Baselines& baselines, const Policy& policy) {
  const Series* base =
      series.variant == SideName(Side::kHead) ? FindSeries(all, series, SideName(Side::kBase)) : nullptr;
  const ExpectedRow* row = ExpectedRowOf(series, cr.pool, baselines);
  if (!AllFinite(series) || (base && !AllFinite(*base))) {
    return BrokenSeries(cr, series, row, policy, "a sample value is not a finite number (NaN or infinity)");
  }
  if (CountBelowZero(series, policy) || (base && CountBelowZero(*base, policy))) {
    return BrokenSeries(cr, series, row, policy, "a count below zero");
  }
  MetricReport m{series,
                 Summarize(series.values),
                 std::nullopt,
                 std::nullopt,
                 {},
                 Verdict::kNoBaseline,
                 cr.ran && JudgedHere(cr.name, series, row, policy),
                 ""};
  m.series.unit = UnitOf(series.metric, series.unit, policy.compare.declared);
  m.better = TraitsOf(series.metric, series.source, policy.compare.declared).direction;
  if (base) m.base = Summarize(base->values);
  if (cr.ran) {
    m.comparison = Compare(cr.name, series, all, cr.pool, row, baselines, policy, &m.note);
    if (m.comparison) m.verdict = m.comparison->verdict;
    // Shown only (core/metric_traits.h): no verdict of it can fail the gate.
    if (!m.comparison && !m.note.empty()) m.judged = false;
  }
  return m;
}

// A missing result of a case that ran: `what` it should have reported, and why.
MetricReport MissingMetric(Series series, std::string note) {
  MetricReport m;
  m.series = std::move(series);
  m.verdict = Verdict::kMissingResult;
  m.judged = true;
  m.note = std::move(note);
  return m;
}

// Expected rows for the benchmarks a case that ran produced, where no case
// of the run produced that row's metric: each is a missing result of the
// first such case. `produced` holds the whole run's keys, so that the answer
// does not depend on the order of the cases (two cases may share a
// benchmark, each reporting its own metrics of it).
// In a run of some cases only (`perfgate run --case`), such a row may be
// another case's, one that did not run: it is a warning in `unclaimed`, not
// a missing result of this case.
void AddRowsTheCaseMissed(const std::vector<Series>& all, const Baselines& baselines, bool complete_run, CaseReport* cr,
                          std::set<std::string>* produced, std::vector<std::string>* unclaimed) {
  const auto* rows = RowsFor(baselines, cr->pool);
  if (!cr->ran || !rows) return;
  std::set<std::string> benchmarks;
  for (const auto& series : all) benchmarks.insert(series.benchmark);
  for (const auto& row : *rows) {
    if (!benchmarks.count(row.benchmark) || produced->count(row.Key())) continue;
    produced->insert(row.Key());
    if (!complete_run) {
      unclaimed->push_back(absl::StrCat("no result for ", row.Key(), " (line ", row.line, ") of benchmark ",
                                        row.benchmark, ", which ", cr->name,
                                        " measured: a case that did not run may report it; run the whole suite to "
                                        "judge it"));
      continue;
    }
    cr->metrics.push_back(
        MissingMetric(Series{row.benchmark, row.metric, "", "", "", {}},
                      absl::StrCat("expected ", row.expected, " (row on line ", row.line, "), no result")));
  }
}

// A/B: a series the base side measured and the head side did not, of a
// metric the head side would have had judged. The head lost a benchmark (or
// a metric of one): a missing result, never dropped.
void AddSeriesHeadMissed(const std::vector<Series>& all, const Policy& policy, CaseReport* cr) {
  if (!cr->ran) return;
  for (const auto& series : all) {
    if (series.variant != SideName(Side::kBase) || FindSeries(all, series, SideName(Side::kHead))) continue;
    const MetricTraits traits = TraitsOf(series.metric, series.source, policy.compare.declared);
    if (!policy.Judged(cr->name, series.metric) || !traits.judgeable || traits.direction == Direction::kUnknown) {
      continue;
    }
    Series head = series;
    head.variant = SideName(Side::kHead);
    head.values.clear();
    cr->metrics.push_back(MissingMetric(std::move(head), "measured on the base side, not on the head side"));
  }
}

// The metrics of a case's result.
// An instruction count the host could not make: the result holds another
// instrument's count instead (`auto` names the count by its instrument:
// instructions or instructions_callgrind), or a note says the counter is
// unavailable here. Any other absence of a listed count is a missing result.
bool CountTheHostCouldNotMake(const std::string& metric, const std::vector<Series>& all,
                              const std::vector<std::string>& notes) {
  if (!IsInstructionCount(metric)) return false;
  if (std::any_of(all.begin(), all.end(), [](const Series& s) { return IsInstructionCount(s.metric); })) return true;
  return std::any_of(notes.begin(), notes.end(),
                     [](const std::string& note) { return note.find("unavailable") != std::string::npos; });
}

// A metric the case's `judge:` list names, of which its result holds no
// value on any benchmark (a metric renamed, or no longer reported): it
// judged nothing and passed as "no baseline", in history mode with history
// there. A result of no sample at all measured nothing.
void AddListedMetricsMissed(const std::vector<Series>& all, const Policy& policy, CaseReport* cr) {
  if (!cr->ran) return;
  if (all.empty()) {
    cr->metrics.push_back(MissingMetric(Series{cr->name, "wall_time", "", "", "", {}},
                                        "the result holds no sample: nothing was measured"));
    return;
  }
  const auto listed = policy.judged_metrics.find(cr->name);
  if (listed == policy.judged_metrics.end()) return;
  for (const std::string& metric : listed->second) {
    if (CountTheHostCouldNotMake(metric, all, cr->notes)) continue;
    if (std::any_of(all.begin(), all.end(), [&](const Series& s) { return s.metric == metric; })) continue;
    cr->metrics.push_back(MissingMetric(Series{cr->name, metric, "", "", "", {}},
                                        "listed under judge:, and the result holds no value of it"));
  }
}

// Expected rows of other pools for benchmarks a case measured on a pool
// that has no expected file: the case ran where no file judges it (a GPU
// agent that also runs CPU cases, the CPU agents away), and those rows were
// checked by nothing. A row of a series this case measured is a missing
// result unless something judged that series here (history); a row no case
// of the run measured is this case's, as in AddRowsTheCaseMissed. A/B
// cases are judged side against side, never by rows.
void AddRowsOfOtherPools(const std::vector<Series>& all, const Baselines& baselines, bool complete_run, CaseReport* cr,
                         std::set<std::string>* produced, std::vector<std::string>* unclaimed) {
  if (!cr->ran || RowsFor(baselines, cr->pool) != nullptr) return;
  std::set<std::string> benchmarks;
  for (const auto& series : all) {
    if (!series.variant.empty()) return;
    benchmarks.insert(series.benchmark);
  }
  for (const auto& [pool, rows] : baselines.expected) {
    for (const auto& row : rows) {
      if (!benchmarks.count(row.benchmark)) continue;
      const std::string note = absl::StrCat(
          "not checked: the expected file for pool '", pool, "' has a row for it (line ", row.line,
          "), and the case ran on pool '", cr->pool, "', which has none; give one for '", cr->pool, "' (--baseline ",
          cr->pool, "=FILE), or keep the case to '", pool, "''s agents (requires: {labels: [...]})");
      auto own = std::find_if(cr->metrics.begin(), cr->metrics.end(),
                              [&](const MetricReport& m) { return m.series.Key() == row.Key(); });
      if (own != cr->metrics.end()) {
        // Only a series nothing judged: a broken one stays an error, one shown only keeps its reason.
        if (!own->comparison && own->verdict == Verdict::kNoBaseline && own->note.empty()) {
          own->verdict = Verdict::kMissingResult;
          own->judged = true;
          own->note = note;
        }
        continue;
      }
      if (produced->count(row.Key())) continue;  // another case's series: judged with it
      produced->insert(row.Key());
      if (!complete_run) {
        unclaimed->push_back(absl::StrCat("no result for ", row.Key(), " (line ", row.line, " of pool '", pool,
                                          "''s expected file) of benchmark ", row.benchmark, ", which ", cr->name,
                                          " measured: a case that did not run may report it"));
        continue;
      }
      cr->metrics.push_back(MissingMetric(Series{row.benchmark, row.metric, "", "", "", {}}, note));
    }
  }
}

void AddMetrics(const std::vector<Series>& all, const Baselines& baselines, const Policy& policy, CaseReport* cr) {
  for (const auto& series : all) {
    if (series.variant == SideName(Side::kBase)) continue;  // shown beside its head
    cr->metrics.push_back(JudgeSeries(*cr, series, all, baselines, policy));
  }
  AddSeriesHeadMissed(all, policy, cr);
  AddListedMetricsMissed(all, policy, cr);
}

// Rows that no case produced at all, on a run of the whole suite: a benchmark renamed or gone.
std::vector<std::string> RowsNothingProduced(const std::vector<CaseReport>& cases, const Baselines& baselines,
                                             const std::set<std::string>& produced) {
  // Each file once: pools without a file of their own (and a case that ran
  // nowhere, of no pool) share the file for every pool.
  std::set<const std::vector<ExpectedRow>*> files;
  for (const auto& c : cases) {
    if (const auto* rows = RowsFor(baselines, c.pool)) files.insert(rows);
  }
  std::vector<std::string> missing;
  for (const auto& [pool, rows] : baselines.expected) {
    if (!files.count(&rows)) continue;
    for (const auto& row : rows) {
      if (!produced.count(row.Key()) && !produced.count(row.benchmark)) {
        missing.push_back(absl::StrCat(row.Key(), " (line ", row.line, ")"));
      }
    }
  }
  return missing;
}

// Rows no case produced, of a run of the whole suite: missing results, or,
// where some case could run nowhere (a GPU case by hand on a CPU machine),
// a warning: those rows may be that case's, and it is failed or skipped for
// itself (fail_on's no_capable_agent), not once more for each of its rows.
void AddRowsNothingProduced(const Baselines& baselines, const std::set<std::string>& produced, GateReport* report) {
  std::vector<std::string> rows = RowsNothingProduced(report->cases, baselines, produced);
  std::vector<std::string> unrun;
  for (const auto& c : report->cases) {
    if (c.verdict == Verdict::kNoCapableAgent) unrun.push_back(c.name);
  }
  if (unrun.empty()) {
    report->missing_rows = std::move(rows);
  } else if (!rows.empty()) {
    report->unclaimed_rows.push_back(absl::StrCat(
        rows.size(), " expected row", rows.size() == 1 ? "" : "s", " with no result (", ShortList(rows, "; "),
        "), which a case no agent could run may report (", ShortList(unrun, ", "), ")"));
  }
}

// `baselines` without the histories of series that several cases report
// (the store's history is by pool, benchmark, metric and source, and holds
// the medians of all their values: each case judged against it read as a
// regression or hid one), each said in `shared`; nullopt if there is none.
std::optional<Baselines> WithoutSharedHistory(const v1::Run& run, const std::vector<std::vector<Series>>& series,
                                              const Baselines& baselines, std::vector<std::string>* shared) {
  std::map<HistoryKey, std::vector<std::string>> reporters;
  for (int i = 0; i < run.cases_size(); ++i) {
    for (const auto& s : series[static_cast<size_t>(i)]) {
      if (!s.variant.empty()) continue;  // A/B is judged side against side
      auto& names = reporters[{run.cases(i).result().pool(), s.benchmark, s.metric, s.source}];
      if (names.empty() || names.back() != run.cases(i).name()) names.push_back(run.cases(i).name());
    }
  }
  std::optional<Baselines> own;
  for (const auto& [key, names] : reporters) {
    if (names.size() < 2 || !baselines.history.count(key)) continue;
    if (!own) own = baselines;
    own->history.erase(key);
    shared->push_back(absl::StrCat("not judged against history: ", std::get<1>(key), " ", std::get<2>(key),
                                   " is reported by cases ", absl::StrJoin(names, ", "),
                                   ", whose history is one; give each its own benchmark name"));
  }
  return own;
}

}  // namespace

GateReport BuildGateReport(const v1::Run& run, const Baselines& all_baselines, const Policy& policy,
                           bool complete_run) {
  GateReport report;
  report.run = run;
  std::set<std::string> produced;  // "benchmark,metric" produced by some case, or a case name
  std::vector<std::vector<Series>> series(static_cast<size_t>(run.cases_size()));
  for (int i = 0; i < run.cases_size(); ++i) {
    const v1::CaseStatus& c = run.cases(i);
    produced.insert(c.name());
    if (!HasResult(c)) continue;
    series[static_cast<size_t>(i)] = CollectSeries(c.result());
    for (const auto& s : series[static_cast<size_t>(i)]) produced.insert(s.Key());
  }
  const std::optional<Baselines> unshared = WithoutSharedHistory(run, series, all_baselines, &report.shared_history);
  const Baselines& baselines = unshared ? *unshared : all_baselines;
  for (int i = 0; i < run.cases_size(); ++i) {
    const v1::CaseStatus& c = run.cases(i);
    CaseReport cr = StartCaseReport(c);
    if (HasResult(c)) {
      cr.notes.assign(c.result().notes().begin(), c.result().notes().end());
      AddMetrics(series[static_cast<size_t>(i)], baselines, policy, &cr);
      AddRowsTheCaseMissed(series[static_cast<size_t>(i)], baselines, complete_run, &cr, &produced,
                           &report.unclaimed_rows);
      AddRowsOfOtherPools(series[static_cast<size_t>(i)], baselines, complete_run, &cr, &produced,
                          &report.unclaimed_rows);
    }
    report.cases.push_back(std::move(cr));
  }
  if (complete_run) AddRowsNothingProduced(baselines, produced, &report);
  Derive(&report, baselines, policy);
  return report;
}

std::vector<std::string> SuspectedRegressions(const GateReport& report) {
  std::vector<std::string> names;
  for (const auto& c : report.cases) {
    if (c.verdict == Verdict::kRegression) names.push_back(c.name);
  }
  return names;
}

void ApplyConfirmation(GateReport* report, const v1::Run& confirmation, const Baselines& baselines,
                       const Policy& policy) {
  if (confirmation.state() == v1::RUN_STATE_CANCELLED) {
    report->passed = false;
    report->exit_code = kExitInterrupted;
    report->failed_rules.push_back("the gate was interrupted while re-measuring suspected regressions");
    return;
  }
  for (auto& c : report->cases) {
    const v1::CaseStatus* again = nullptr;
    for (const auto& cs : confirmation.cases()) {
      if (cs.name() == c.name) again = &cs;
    }
    if (!again) continue;
    const bool ok = again->state() == v1::CASE_STATE_DONE && again->result().outcome() == v1::CaseResult::OUTCOME_OK;
    const std::vector<Series> all = ok ? CollectSeries(again->result()) : std::vector<Series>{};
    // Numbers from different testbeds are never compared: a re-measurement on
    // another pool (the gate pins it to the first's; another client may not)
    // neither clears nor confirms the first.
    const std::string& pool = again->result().pool();
    for (auto& m : c.metrics) {
      if (m.verdict != Verdict::kRegression || !m.comparison) continue;
      if (ok && pool != c.pool) {
        m.note = absl::StrCat("re-measured on pool '", pool, "', not '", c.pool,
                              "', where it was judged; first measurement stands");
        continue;
      }
      const Series* series = FindSeries(all, m.series, m.series.variant);
      if (series && !std::all_of(all.begin(), all.end(), AllFinite)) {
        m.note = "confirmation run gave a value that is not a finite number; first measurement stands";
        continue;
      }
      std::string shown_only;
      std::optional<Comparison> re =
          series ? Compare(c.name, *series, all, c.pool, ExpectedRowOf(*series, c.pool, baselines), baselines, policy,
                           &shown_only, /*judged_before=*/true)
                 : std::nullopt;
      if (!re && !shown_only.empty()) {  // a re-measurement that cannot be judged clears nothing
        m.note = absl::StrCat("re-measurement not judged (", shown_only, "); first measurement stands");
        continue;
      }
      if (!re) {
        m.note = absl::StrCat("confirmation run gave no value (", ok ? "metric missing" : again->error(),
                              "); first measurement stands");
        continue;
      }
      m.confirmations.push_back(*re);
      if (re->verdict != Verdict::kRegression) {
        m.verdict = Verdict::kPass;
        m.note = absl::StrCat("not confirmed: first ", ExplainComparison(*m.comparison, m.series), "; re-measured ",
                              ExplainComparison(*re, m.series));
      } else {
        m.note = absl::StrCat("confirmed by re-measurement: ", ExplainComparison(*re, m.series));
      }
    }
  }
  Derive(report, baselines, policy);
}

absl::Status CheckBaselinePools(const Policy& policy, const std::set<std::string>& known_pools, const v1::Run& run) {
  const std::set<std::string> ran = PoolsThatRan(run);
  for (const auto& [pool, path] : policy.expected_files) {
    if (pool == "*" || known_pools.count(pool)) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "the expected file ", path, " is for pool '", pool,
        "', but no agent has ever registered with that pool (pools that ran: ",
        ran.empty() ? "none" : absl::StrJoin(ran, ", "),
        "; pools known to the coordinator: ", known_pools.empty() ? "none" : absl::StrJoin(known_pools, ", "),
        "). Name a pool that exists (POOL=FILE, or * for any), or start an agent with --pool ", pool));
  }
  return absl::OkStatus();
}

}  // namespace perfgate
