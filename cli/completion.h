// Shell completion scripts generated from the CLI11 app itself, so a new
// subcommand or flag completes without anyone editing a script:
//   source <(perfgate completion bash)
//   perfgate completion zsh > "${fpath[1]}/_perfgate"
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace perfgate {

enum class Shell { kBash, kZsh };

// "bash" or "zsh"; nullopt otherwise.
std::optional<Shell> ParseShell(const std::string& name);

// The completion script for `app` (its subcommands, nested, and their flags).
std::string CompletionScript(const CLI::App& app, Shell shell);

// Registers `perfgate completion bash|zsh`, which prints the script for `app`.
void AddCompletionCommand(CLI::App& app, int* exit_code);

}  // namespace perfgate
