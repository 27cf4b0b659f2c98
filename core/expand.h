// ${NAME} expansion in case commands, done on the agent from its own
// environment, so one suite works across lab machines with different layouts.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace perfgate {

using VariableLookup = std::function<std::optional<std::string>(const std::string&)>;

// Replaces each ${NAME} with lookup(NAME); "$$" is a literal "$". An unset
// variable or an unterminated "${" is an error naming it.
absl::StatusOr<std::string> ExpandVariables(const std::string& text, const VariableLookup& lookup);

}  // namespace perfgate
