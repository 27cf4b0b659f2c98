// perfgate: gates pull requests on benchmark regressions.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/signals.h"
#include "cli/typo.h"
#include "core/exit_codes.h"

int main(int argc, char** argv) {
  perfgate::BlockTerminationSignals();
  // Suites name bundled case binaries relative to this executable:
  // ${PERFGATE_EXE_DIR}/bench_cases/... works from any working directory.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) setenv("PERFGATE_EXE_DIR", exe.parent_path().c_str(), /*overwrite=*/0);
  CLI::App app{
      "perfgate: run benchmark suites on lab machines and gate pull requests on regressions.\n"
      "One binary: a coordinator, the agents that measure, the gate that CI calls, and manual runs."};
  app.require_subcommand(1);
  app.footer(perfgate::kExitCodesHelp);
  app.set_version_flag("--version", "perfgate 0.1.0");
  int exit_code = perfgate::kExitPassed;
  perfgate::AddGateCommand(app, &exit_code);
  // `perfgate run -- CMD ARGS...`: what follows `--` is the command, never perfgate's flags.
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<std::vector<std::string>> ad_hoc;
  if (auto dashes = std::find(args.begin(), args.end(), "--"); !args.empty() && args[0] == "run" && dashes != args.end()) {
    ad_hoc.emplace(dashes + 1, args.end());
    args.erase(dashes, args.end());
  }
  perfgate::AddRunCommand(app, &exit_code, ad_hoc);
  perfgate::AddCoordinatorCommand(app, &exit_code);
  perfgate::AddAgentCommand(app, &exit_code);
  perfgate::AddBaselineCommand(app, &exit_code);
  perfgate::AddCompletionCommand(app, &exit_code);
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 takes them reversed
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    if (code == 0) return 0;
    if (std::string typo = perfgate::DescribeTypo(app, args); !typo.empty()) std::cerr << "perfgate: " << typo << "\n";
    return perfgate::kExitBadInput;
  }
  return exit_code;
}
