#include "cli/value_checks.h"

#include "absl/strings/str_cat.h"
#include "core/identifiers.h"
#include "core/units.h"
#include "transport/transport.h"

namespace perfgate {

CLI::Validator DurationCheck(uint64_t min_ms) {
  return CLI::Validator(
      [min_ms](std::string& text) -> std::string {
        const auto ms = ParseDurationMs(text);
        if (!ms) return absl::StrCat("'", text, "' is not a duration like 500ms, 10s or 2m");
        if (*ms < min_ms) return absl::StrCat("'", text, "' is shorter than ", FormatDurationSeconds(min_ms / 1000.0));
        return "";
      },
      "DURATION", "duration");
}

CLI::Validator SizeCheck(uint64_t min_bytes, uint64_t max_bytes) {
  return CLI::Validator(
      [min_bytes, max_bytes](std::string& text) -> std::string {
        const auto bytes = ParseBytes(text);
        if (!bytes) return absl::StrCat("'", text, "' is not a size like 512KiB or 20GiB");
        if (*bytes < min_bytes) return absl::StrCat("'", text, "' is less than ", FormatBytes(min_bytes));
        if (*bytes > max_bytes) return absl::StrCat("'", text, "' is more than ", FormatBytes(max_bytes));
        return "";
      },
      "SIZE", "size");
}

CLI::Validator AddressCheck(bool port_zero_picks, bool empty_allowed) {
  return CLI::Validator(
      [port_zero_picks, empty_allowed](std::string& text) -> std::string {
        if (text.empty() && empty_allowed) return "";
        absl::Status s = CheckAddress(text, "address", port_zero_picks);
        return s.ok() ? "" : std::string(s.message());
      },
      "HOST:PORT", "address");
}

CLI::Validator AgentNameCheck(const char* what) {
  return CLI::Validator([what](std::string& text) { return AgentNameProblem(what, text); }, "NAME", "agent name");
}

}  // namespace perfgate
