#include "agent/callgrind.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/executor.h"

namespace perfgate {

std::vector<std::string> CallgrindArgv(const std::string& valgrind, const std::vector<std::string>& argv,
                                       const std::string& out_dir) {
  std::vector<std::string> wrapped = {valgrind, "--tool=callgrind", "--quiet", "--trace-children=yes",
                                      "--callgrind-out-file=" + out_dir + "/callgrind.out.%p"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

absl::StatusOr<uint64_t> SumCallgrindInstructions(const std::string& out_dir) {
  uint64_t total = 0;
  int profiles = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(out_dir, ec)) {
    if (entry.path().filename().string().rfind("callgrind.out.", 0) != 0) continue;
    std::ifstream in(entry.path());
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
      // "summary: N" (or "totals: N") holds the first event, Ir by default.
      absl::string_view rest = line;
      if (absl::ConsumePrefix(&rest, "summary:") || absl::ConsumePrefix(&rest, "totals:")) {
        uint64_t value;
        absl::string_view first = absl::StripLeadingAsciiWhitespace(rest);
        first = first.substr(0, first.find(' '));
        if (!absl::SimpleAtoi(first, &value)) {
          return absl::DataLossError(absl::StrCat(entry.path().string(), ": unreadable line '", line, "'"));
        }
        total += value;
        found = true;
        break;
      }
    }
    if (!found) {
      return absl::DataLossError(absl::StrCat(entry.path().string(), ": no summary line (profile cut short?)"));
    }
    ++profiles;
  }
  if (ec) return absl::NotFoundError(absl::StrCat(out_dir, ": ", ec.message()));
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

}  // namespace perfgate
