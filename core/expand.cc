#include "core/expand.h"

#include "absl/strings/str_cat.h"

namespace perfgate {

absl::StatusOr<std::string> ExpandVariables(const std::string& text, const VariableLookup& lookup) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out += '$';
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unterminated '${' in '", text, "'"));
    }
    std::string name = text.substr(i + 2, close - i - 2);
    auto value = lookup(name);
    if (!value) {
      return absl::InvalidArgumentError(absl::StrCat("${", name, "} is not set on this agent (used in '", text, "')"));
    }
    out += *value;
    i = close;
  }
  return out;
}

}  // namespace perfgate
