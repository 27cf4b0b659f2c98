// The subcommands of the `perfgate` binary. Each registers itself on the
// app and, when chosen, stores its exit code in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

namespace perfgate {

void AddCoordinatorCommand(CLI::App& app, int* exit_code);
void AddAgentCommand(CLI::App& app, int* exit_code);
void AddGateCommand(CLI::App& app, int* exit_code);
void AddRunCommand(CLI::App& app, int* exit_code);
void AddBaselineCommand(CLI::App& app, int* exit_code);

}  // namespace perfgate
