// The subcommands of the `perfgate` binary. Each registers itself on the
// app and, when chosen, stores its exit code in *exit_code.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace perfgate {

void AddCoordinatorCommand(CLI::App& app, int* exit_code);
void AddAgentCommand(CLI::App& app, int* exit_code);
void AddGateCommand(CLI::App& app, int* exit_code);
// `ad_hoc`: the words after `--` (`perfgate run -- CMD ARGS...`), if any.
void AddRunCommand(CLI::App& app, int* exit_code, std::optional<std::vector<std::string>> ad_hoc = std::nullopt);
void AddBaselineCommand(CLI::App& app, int* exit_code);

}  // namespace perfgate
