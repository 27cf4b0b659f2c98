#include "cli/service_config.h"

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/bounded_read.h"

namespace perfgate {
namespace {

// A config file is a handful of lines; the cap only stops /dev/zero.
constexpr uint64_t kMaxConfigBytes = 1 << 20;

bool ValidKey(absl::string_view key) {
  if (key.empty() || !absl::ascii_islower(key[0])) return false;
  for (char c : key) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

// Reads the values after `key =` of one line, left to right.
class ValueReader {
 public:
  explicit ValueReader(absl::string_view rest) : rest_(rest) {}

  absl::StatusOr<std::vector<std::string>> ReadAll() {
    SkipSpace();
    std::vector<std::string> values;
    if (Peek('[')) {
      rest_.remove_prefix(1);
      if (auto s = ReadList(&values); !s.ok()) return s;
    } else {
      auto value = ReadValue(/*stop=*/"");
      if (!value.ok()) return value.status();
      values.push_back(*std::move(value));
    }
    SkipSpace();
    if (!rest_.empty() && rest_[0] != '#') {
      return absl::InvalidArgumentError(absl::StrCat("unexpected '", rest_, "' after the value"));
    }
    return values;
  }

 private:
  bool Peek(char c) const { return !rest_.empty() && rest_[0] == c; }
  void SkipSpace() { rest_ = absl::StripLeadingAsciiWhitespace(rest_); }

  absl::Status ReadList(std::vector<std::string>* values) {
    for (SkipSpace(); !Peek(']'); SkipSpace()) {
      auto value = ReadValue(/*stop=*/",]");
      if (!value.ok()) return value.status();
      values->push_back(*std::move(value));
      SkipSpace();
      if (Peek(',')) {
        rest_.remove_prefix(1);
      } else if (!Peek(']')) {
        return absl::InvalidArgumentError("a list is [a, b, ...] on one line: expected ',' or ']'");
      }
    }
    rest_.remove_prefix(1);
    return absl::OkStatus();
  }

  // A quoted value, or a bare one that ends at a character of `stop`, at a
  // `#` after whitespace, or at the end of the line.
  absl::StatusOr<std::string> ReadValue(absl::string_view stop) {
    if (Peek('"')) return ReadQuoted();
    size_t end = 0;
    while (end < rest_.size() && stop.find(rest_[end]) == absl::string_view::npos &&
           !(rest_[end] == '#' && (end == 0 || absl::ascii_isspace(rest_[end - 1])))) {
      ++end;
    }
    std::string value(absl::StripTrailingAsciiWhitespace(rest_.substr(0, end)));
    rest_.remove_prefix(end);
    if (value.empty()) return absl::InvalidArgumentError("no value (an empty value is written \"\")");
    // "pool = h100# rack 3" meant a comment, and registered pool "h100# rack 3".
    if (value.find('#') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", value,
                                                     "': a '#' in a bare value; quote the value if the '#' is "
                                                     "part of it, or put a space before a comment"));
    }
    return value;
  }

  absl::StatusOr<std::string> ReadQuoted() {
    std::string value;
    for (size_t i = 1; i < rest_.size(); ++i) {
      if (rest_[i] == '"') {
        rest_.remove_prefix(i + 1);
        return value;
      }
      if (rest_[i] == '\\' && i + 1 < rest_.size() && (rest_[i + 1] == '"' || rest_[i + 1] == '\\')) ++i;
      value += rest_[i];
    }
    return absl::InvalidArgumentError("a quoted value has no closing '\"'");
  }

  absl::string_view rest_;
};

// The option a key names, if a config file may set it.
CLI::Option* ConfigurableOption(CLI::App* cmd, const std::string& key) {
  CLI::Option* opt = cmd->get_option_no_throw("--" + key);
  return opt && opt->get_configurable() ? opt : nullptr;
}

std::string KnownKeys(const CLI::App* cmd) {
  std::vector<std::string> keys;
  for (const CLI::Option* opt : cmd->get_options()) {
    if (!opt->get_configurable()) continue;
    for (const std::string& name : opt->get_lnames()) keys.push_back(name);
  }
  return absl::StrJoin(keys, ", ");
}

bool TakesMany(const CLI::Option* opt) { return opt->get_expected_max() > 1; }
bool IsFlag(const CLI::Option* opt) { return opt->get_expected_min() == 0; }

absl::Status CheckEntries(CLI::App* cmd, const std::vector<ConfigEntry>& entries, const std::string& file) {
  std::map<std::string, int> first_line;
  for (const ConfigEntry& e : entries) {
    const std::string where = absl::StrCat(file, ":", e.line, ": ");
    const CLI::Option* opt = ConfigurableOption(cmd, e.key);
    if (!opt) {
      return absl::InvalidArgumentError(absl::StrCat(where, "unknown key '", e.key, "': perfgate ", cmd->get_name(),
                                                     " has no --", e.key, "; its keys are ", KnownKeys(cmd)));
    }
    auto [first, fresh] = first_line.emplace(e.key, e.line);
    if (TakesMany(opt)) continue;
    if (!fresh) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "'", e.key, "' is set again (first on line ", first->second, "); it takes one value"));
    }
    if (e.values.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(where, "'", e.key, "' takes one value, not a list"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ConfigEntry>> ParseConfigText(absl::string_view text, const std::string& file) {
  std::vector<ConfigEntry> entries;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    const std::string where = absl::StrCat(file, ":", number, ": ");
    line = absl::StripAsciiWhitespace(line);  // CRLF files too
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      return absl::InvalidArgumentError(absl::StrCat(where, "sections are not used: one `key = value` line per flag"));
    }
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected `key = value`, not '", line, "'"));
    }
    ConfigEntry entry{number, std::string(absl::StripTrailingAsciiWhitespace(line.substr(0, eq))), {}};
    if (!ValidKey(entry.key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "'", entry.key, "' is not a key: a key is a flag's long name without dashes, like tls-ca"));
    }
    auto values = ValueReader(line.substr(eq + 1)).ReadAll();
    if (!values.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, entry.key, ": ", values.status().message()));
    }
    entry.values = *std::move(values);
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::Status ApplyConfig(CLI::App* cmd, const std::vector<ConfigEntry>& entries, const std::string& file) {
  if (auto s = CheckEntries(cmd, entries, file); !s.ok()) return s;
  // Values from the command line and the environment are in place already; they win.
  std::set<CLI::Option*> given;
  for (CLI::Option* opt : cmd->get_options()) {
    if (opt->count() > 0) given.insert(opt);
  }
  std::map<CLI::Option*, const ConfigEntry*> applied;  // option -> its first entry
  for (const ConfigEntry& e : entries) {
    CLI::Option* opt = ConfigurableOption(cmd, e.key);
    if (given.count(opt) || e.values.empty()) continue;  // `label = []`: no labels
    applied.emplace(opt, &e);
    try {
      if (IsFlag(opt)) {
        opt->add_result(opt->get_flag_value(e.key, e.values[0]));
      } else {
        opt->add_result(e.values);
      }
    } catch (const CLI::Error& error) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", e.line, ": ", e.key, ": ", error.what()));
    }
  }
  for (auto [opt, e] : applied) {
    try {
      opt->run_callback();  // converts and checks the value, then stores it in the flag's variable
    } catch (const CLI::Error& error) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", e->line, ": ", e->key, ": ", error.what()));
    }
  }
  return absl::OkStatus();
}

void AddConfigFileOption(CLI::App* cmd) {
  if (CLI::Option* help = cmd->get_help_ptr()) help->configurable(false);
  cmd->add_option_function<std::string>(
         "--config",
         [cmd](const std::string& path) {
           auto text = ReadFileBounded(path, kMaxConfigBytes, "config file");
           absl::Status status = text.status();
           if (text.ok()) {
             auto entries = ParseConfigText(*text, path);
             status = entries.ok() ? ApplyConfig(cmd, *entries, path) : entries.status();
           }
           if (!status.ok()) throw CLI::ValidationError(std::string(status.message()));
         },
         "config file: one `key = value` line per flag (key: the flag's name without dashes); "
         "flags (and the agent's PERFGATE_ environment variables) override it")
      ->configurable(false);
}

}  // namespace perfgate
