// perfgate: gates pull requests on benchmark regressions.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "cli/signals.h"
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
  perfgate::AddRunCommand(app, &exit_code);
  perfgate::AddCoordinatorCommand(app, &exit_code);
  perfgate::AddAgentCommand(app, &exit_code);
  perfgate::AddBaselineCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : perfgate::kExitBadInput;
  }
  return exit_code;
}
