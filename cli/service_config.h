// Config files for the long-running commands (`perfgate coordinator`,
// `perfgate agent`), as a service manager starts them:
//
//   # /etc/perfgate/agent.conf
//   coordinator = "lab-host:7600"
//   tls-ca = /etc/perfgate/ca.pem
//   label = ["gpu", "a100"]      # a repeatable flag: an array, or the key on several lines
//   insecure = false
//
// One `key = value` line per flag, the key being the flag's long name without
// its dashes. Values are bare (up to a ` #` comment) or double-quoted (`\"`
// and `\\` escapes); a list is `[a, "b"]`. Precedence: the command line, then
// the flag's environment variable, then the file, then the default.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace perfgate {

// One `key = value` line of a config file.
struct ConfigEntry {
  int line = 0;  // 1-based
  std::string key;
  std::vector<std::string> values;  // one for a scalar, any number for a list
};

// Parses a config file's text; an error names `file` and the line.
absl::StatusOr<std::vector<ConfigEntry>> ParseConfigText(absl::string_view text, const std::string& file);

// Sets the options of `cmd` named by `entries` that have no value from the
// command line or the environment. An unknown key (the error lists the known
// ones), a flag given twice that takes one value, or a value the flag refuses
// is an error naming `file` and the line; nothing is applied then.
absl::Status ApplyConfig(CLI::App* cmd, const std::vector<ConfigEntry>& entries, const std::string& file);

// Adds `--config FILE` to `cmd`: reads FILE and applies it before `cmd`'s
// requirements are checked, so a required flag may come from the file. A bad
// file throws CLI::ValidationError (exit code 2) with ApplyConfig's message.
void AddConfigFileOption(CLI::App* cmd);

}  // namespace perfgate
