#include "cli/typo.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace perfgate {

size_t EditDistance(std::string_view a, std::string_view b) {
  // d[i][j]: distance between a[0, i) and b[0, j).
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string> NearestCandidate(std::string_view word, const std::vector<std::string>& candidates) {
  // Dashes are not letters the user could have mistyped.
  const size_t letters = word.size() - std::min(word.find_first_not_of('-'), word.size());
  const size_t limit = std::max<size_t>(1, letters / 3);
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const size_t distance = EditDistance(word, candidate);
    if (distance < best_distance && distance < std::max<size_t>(letters, 1)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

namespace {

std::vector<const CLI::App*> Subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

const CLI::App* FindSubcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : Subcommands(app)) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

// The flag named by `arg` ("--json=x" names "--json") on `app` or, for
// flags like --version, one of its parents.
const CLI::Option* FindFlag(const CLI::App& app, const std::string& name) {
  for (const CLI::App* a = &app; a != nullptr; a = a->get_parent()) {
    if (const CLI::Option* opt = a->get_option_no_throw(name)) return opt;
  }
  return nullptr;
}

std::vector<std::string> FlagNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options()) {
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
  }
  return names;
}

bool HasPositionals(const CLI::App& app) {
  return !app.get_options([](const CLI::Option* opt) { return opt->get_positional(); }).empty();
}

std::string Suggestion(const std::string& what, const std::string& word, const std::string& where,
                       const std::vector<std::string>& candidates) {
  const auto nearest = NearestCandidate(word, candidates);
  return absl::StrCat(
      "unknown ", what, " '", word, "' for '", where, "'",
      nearest ? absl::StrCat("; did you mean '", *nearest, "'?") : absl::StrCat("; see '", where, " --help'"));
}

}  // namespace

std::string DescribeTypo(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  std::string where = app.get_name().empty() ? "perfgate" : app.get_name();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;  // what follows is not perfgate's to parse
    if (arg.size() > 1 && arg[0] == '-') {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* opt = FindFlag(*current, name);
      if (opt == nullptr) return Suggestion("flag", name, where, FlagNames(*current));
      if (opt->get_expected_min() > 0 && name.size() == arg.size()) ++i;  // its value
      continue;
    }
    if (const CLI::App* sub = FindSubcommand(*current, arg)) {
      current = sub;
      absl::StrAppend(&where, " ", arg);
      continue;
    }
    // A word where only a subcommand can stand.
    if (!Subcommands(*current).empty() && !HasPositionals(*current)) {
      std::vector<std::string> names;
      for (const CLI::App* sub : Subcommands(*current)) names.push_back(sub->get_name());
      return Suggestion("command", arg, where, names);
    }
  }
  return "";
}

}  // namespace perfgate
