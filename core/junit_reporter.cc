// JUnit XML as Jenkins and GitHub's JUnit reporters read it:
// testsuites > testsuite > testcase. A regression is a <failure> (the test
// ran and its assertion failed); a case that could not produce a result, or
// an expected result that is missing, is an <error>; a judged metric with
// nothing to compare with is <skipped> with the reason.
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/names.h"
#include "core/report.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// U+FFFE and U+FFFF, which XML 1.0 forbids as it forbids most controls.
bool IsNonCharacterAt(const std::string& s, size_t i) {
  return i + 2 < s.size() && s[i] == '\xEF' && s[i + 1] == '\xBF' && (s[i + 2] == '\xBE' || s[i + 2] == '\xBF');
}

std::string Xml(const std::string& raw) {
  const std::string s = ShowableUtf8(raw);  // names and output are bytes; an XML file is UTF-8
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (IsNonCharacterAt(s, i)) {
      out += '?';
      i += 2;
      continue;
    }
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters, even escaped.
        if (ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r')
          out += '?';
        else
          out += static_cast<char>(ch);
    }
  }
  return out;
}

enum class Status { kPassed, kFailure, kError, kSkipped };

struct TestCase {
  std::string classname, name;
  double seconds = 0;
  Status status = Status::kPassed;
  std::string type, message, text;  // of the failure, error or skip
  std::string system_out;
};

// Seconds as JUnit wants them: a plain decimal, never an exponent.
std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", s);
  return buf;
}

// The case's measured wall time: what one run of it took (median).
double CaseSeconds(const CaseReport& c) {
  const MetricReport* wall = FindMeasured(c, "wall_time");
  return wall && wall->summary.n > 0 ? wall->summary.median : 0;
}

// A case that did not run to completion: one test case for it.
TestCase NotRun(const GateReport& report, const CaseReport& c, const TestCase& base) {
  TestCase t = base;
  t.name = absl::StrCat(base.classname, ".run");
  const std::string why =
      absl::StrCat(VerdictName(c.verdict), ": ", c.outcome, c.detail.empty() ? "" : " - " + c.detail);
  t.type = VerdictName(c.verdict);
  t.message = why;
  t.text = why;
  // A run the user cancelled failed nobody's test.
  t.status = c.fails && report.run.state() != v1::RUN_STATE_CANCELLED ? Status::kError : Status::kSkipped;
  return t;
}

TestCase Judged(const GateReport& report, const CaseReport& c, const MetricReport& m, const TestCase& base) {
  TestCase t = base;
  t.name = absl::StrCat(base.classname, ".",
                        m.series.benchmark == c.name ? m.series.metric : m.series.benchmark + "." + m.series.metric);
  t.type = VerdictName(m.verdict);
  t.system_out = DescribeMetric(c, m);
  // Red exactly where the gate fails (m.fails: the policy fails on this
  // verdict), so a CI's JUnit view never disagrees with the exit code.
  const bool fails = m.fails && report.run.state() != v1::RUN_STATE_CANCELLED;
  if (m.verdict == Verdict::kMissingResult || m.verdict == Verdict::kError) {
    t.status = fails ? Status::kError : Status::kSkipped;
    t.message = absl::StrCat(VerdictName(m.verdict), ": ", m.note);
    t.text = m.note;
  } else if (!m.comparison) {
    t.status = fails ? Status::kFailure : Status::kSkipped;
    t.message =
        absl::StrCat("no baseline: ", m.note.empty() ? "no expected row, history or A/B base to compare with" : m.note);
  } else if (fails) {
    const Comparison& cmp = *m.comparison;
    auto value = [&](double v) { return FormatValue(v, m.series.unit, m.series.metric); };
    t.status = Status::kFailure;
    t.message = DescribeMetric(c, m);
    t.text = absl::StrCat("baseline: ", value(cmp.baseline), " (", MethodName(cmp.method), ")\nresult: ", value(cmp.result),
                          " (median of ", m.summary.n, ")\nchange: ", FormatPercent(cmp.change, /*sign=*/true),
                          "\nthreshold: ", FormatPercent(cmp.threshold), "\nnoise: ", FormatPercent(cmp.noise));
    if (!std::isnan(cmp.p_value)) absl::StrAppend(&t.text, "\np-value: ", cmp.p_value);
    if (!m.note.empty()) absl::StrAppend(&t.text, "\n", m.note);
  }
  return t;
}

// A case that ran with no metric judged: passed, unless the policy fails
// such a case (`--fail-on no_baseline`), and then red as the exit code is.
TestCase NothingJudged(const GateReport& report, const CaseReport& c, const TestCase& base) {
  TestCase t = base;
  t.name = absl::StrCat(base.classname, ".run");
  t.system_out = "measured; no metric of this case is judged";
  if (c.fails && report.run.state() != v1::RUN_STATE_CANCELLED) {
    t.status = Status::kFailure;
    t.type = VerdictName(c.verdict);
    t.message = absl::StrCat(VerdictName(c.verdict), ": no metric of this case was judged, and the policy fails that");
  }
  return t;
}

std::vector<TestCase> TestCases(const GateReport& report) {
  std::vector<TestCase> tests;
  for (const auto& c : report.cases) {
    TestCase base;
    base.classname = absl::StrCat(report.run.suite_name(), ".", c.name);
    base.seconds = CaseSeconds(c);
    if (!c.ran) {
      tests.push_back(NotRun(report, c, base));
      continue;
    }
    bool any = false;
    for (const auto& m : c.metrics) {
      if (!m.judged) continue;  // shown only: no test of it
      tests.push_back(Judged(report, c, m, base));
      any = true;
    }
    if (!any) tests.push_back(NothingJudged(report, c, base));
  }
  for (const auto& missing : report.missing_rows) {
    TestCase t;
    t.classname = report.run.suite_name();
    t.name = absl::StrCat(report.run.suite_name(), ".", missing);
    t.status = report.missing_rows_fail ? Status::kError : Status::kSkipped;
    t.type = VerdictName(Verdict::kMissingResult);
    t.message = absl::StrCat("missing result: expected row ", missing, " was produced by no case");
    tests.push_back(std::move(t));
  }
  return tests;
}

void WriteTestCase(const TestCase& t, std::ostream& out) {
  out << "    <testcase classname=\"" << Xml(t.classname) << "\" name=\"" << Xml(t.name) << "\" time=\""
      << Seconds(t.seconds) << "\">\n";
  switch (t.status) {
    case Status::kPassed:
      break;
    case Status::kSkipped:
      out << "      <skipped message=\"" << Xml(t.message) << "\"/>\n";
      break;
    case Status::kFailure:
    case Status::kError: {
      const char* tag = t.status == Status::kFailure ? "failure" : "error";
      out << "      <" << tag << " type=\"" << Xml(t.type) << "\" message=\"" << Xml(t.message) << "\">" << Xml(t.text)
          << "</" << tag << ">\n";
      break;
    }
  }
  if (!t.system_out.empty()) out << "      <system-out>" << Xml(t.system_out) << "</system-out>\n";
  out << "    </testcase>\n";
}

}  // namespace

void JunitReporter::Write(const GateReport& report, std::ostream& out) const {
  const std::vector<TestCase> tests = TestCases(report);
  size_t failures = 0, errors = 0, skipped = 0;
  double seconds = 0;
  for (const auto& t : tests) {
    failures += t.status == Status::kFailure;
    errors += t.status == Status::kError;
    skipped += t.status == Status::kSkipped;
    seconds += t.seconds;
  }
  // Jenkins' schema has no `skipped` on <testsuites>, only on <testsuite>.
  const std::string counts = absl::StrCat("tests=\"", tests.size(), "\" failures=\"", failures, "\" errors=\"", errors,
                                          "\" time=\"", Seconds(seconds), "\"");
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"perfgate\" " << counts << ">\n";
  out << "  <testsuite name=\"" << Xml(report.run.suite_name()) << "\" " << counts << " skipped=\"" << skipped
      << "\">\n";
  out << "    <properties>\n      <property name=\"run_id\" value=\"" << Xml(report.run.run_id()) << "\"/>\n"
      << "      <property name=\"commit\" value=\"" << Xml(report.run.commit()) << "\"/>\n"
      << "      <property name=\"branch\" value=\"" << Xml(report.run.branch()) << "\"/>\n    </properties>\n";
  for (const auto& t : tests) WriteTestCase(t, out);
  out << "  </testsuite>\n</testsuites>\n";
}

}  // namespace perfgate
