// "Did you mean ...?" for a mistyped flag or subcommand: CLI11 says what it
// did not expect; this names what the user probably meant, from the app's
// own subcommands and options (never a hand-kept list).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace perfgate {

// Optimal string alignment distance: insertions, deletions, substitutions
// and transpositions of neighbours each cost 1 ("--repats" -> "--repeats": 1).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, if it is near enough to be a typo of it
// (at most a third of the word's letters wrong, and at least one right).
std::optional<std::string> NearestCandidate(std::string_view word, const std::vector<std::string>& candidates);

// For the first flag or subcommand in `args` (argv without the program)
// that `app` does not know: "unknown flag '--repets' for 'perfgate run'; did
// you mean '--repeats'?". Empty when every flag and subcommand is known.
std::string DescribeTypo(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace perfgate
