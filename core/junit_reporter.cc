#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/report.h"
#include "core/units.h"

namespace perfgate {
namespace {

std::string Xml(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
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

struct TestCase {
  std::string classname, name, failure_type, failure_message, failure_text, skipped, system_out;
};

}  // namespace

void JunitReporter::Write(const GateReport& report, std::ostream& out) const {
  std::vector<TestCase> tests;
  for (const auto& c : report.cases) {
    const std::string classname = absl::StrCat("perfgate.", report.run.suite_name(), ".", c.name);
    if (!c.ran) {
      TestCase t{classname, "run", "", "", "", "", ""};
      if (!c.fails || report.run.state() == v1::RUN_STATE_CANCELLED) {
        t.skipped = absl::StrCat(VerdictName(c.verdict), c.detail.empty() ? "" : ": " + c.detail);
      } else {
        t.failure_type = VerdictName(c.verdict);
        t.failure_message =
            absl::StrCat(VerdictName(c.verdict), ": ", c.outcome, c.detail.empty() ? "" : " - " + c.detail);
        t.failure_text = t.failure_message;
      }
      tests.push_back(std::move(t));
      continue;
    }
    for (const auto& m : c.metrics) {
      if (!m.comparison && m.verdict != Verdict::kMissingResult) continue;  // nothing judged
      TestCase t{classname,
                 m.series.benchmark == c.name ? m.series.metric : m.series.benchmark + "." + m.series.metric,
                 "",
                 "",
                 "",
                 "",
                 DescribeMetric(c, m)};
      if (m.fails && report.run.state() != v1::RUN_STATE_CANCELLED) {
        t.failure_type = VerdictName(m.verdict);
        t.failure_message = DescribeMetric(c, m);
        if (m.comparison) {
          const Comparison& cmp = *m.comparison;
          auto value = [&](double v) { return FormatValue(v, m.series.unit, m.series.metric); };
          t.failure_text =
              absl::StrCat("baseline: ", value(cmp.baseline), " (", MethodName(cmp.method), ")\nresult: ", value(cmp.result),
                           " (median of ", m.summary.n, ")\nchange: ", FormatPercent(cmp.change, /*sign=*/true),
                           "\nthreshold: ", FormatPercent(cmp.threshold), "\nnoise: ", FormatPercent(cmp.noise));
        } else {
          t.failure_text = m.note;
        }
      }
      tests.push_back(std::move(t));
    }
    if (!std::any_of(c.metrics.begin(), c.metrics.end(),
                     [](const MetricReport& m) { return m.comparison.has_value(); })) {
      tests.push_back(TestCase{classname, "run", "", "", "", "", "no baseline: measured, nothing to compare with"});
    }
  }
  size_t failures = 0, skipped = 0;
  for (const auto& t : tests) {
    failures += !t.failure_type.empty();
    skipped += !t.skipped.empty();
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"perfgate\" tests=\"" << tests.size() << "\" failures=\"" << failures << "\">\n";
  out << "  <testsuite name=\"" << Xml(report.run.suite_name()) << "\" tests=\"" << tests.size() << "\" failures=\""
      << failures << "\" errors=\"0\" skipped=\"" << skipped << "\">\n";
  out << "    <properties>\n      <property name=\"run_id\" value=\"" << Xml(report.run.run_id()) << "\"/>\n"
      << "      <property name=\"commit\" value=\"" << Xml(report.run.commit()) << "\"/>\n    </properties>\n";
  for (const auto& t : tests) {
    out << "    <testcase classname=\"" << Xml(t.classname) << "\" name=\"" << Xml(t.name) << "\">\n";
    if (!t.skipped.empty()) out << "      <skipped message=\"" << Xml(t.skipped) << "\"/>\n";
    if (!t.failure_type.empty()) {
      out << "      <failure type=\"" << Xml(t.failure_type) << "\" message=\"" << Xml(t.failure_message) << "\">"
          << Xml(t.failure_text) << "</failure>\n";
    }
    if (!t.system_out.empty()) out << "      <system-out>" << Xml(t.system_out) << "</system-out>\n";
    out << "    </testcase>\n";
  }
  out << "  </testsuite>\n</testsuites>\n";
}

}  // namespace perfgate
