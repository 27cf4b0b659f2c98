// Command lines of the benchmarks: CLI11, as perfgate's own, so that each
// has --help with its defaults and a clear error for a value it cannot take.
#ifndef PERFGATE_BENCH_BENCH_CLI_H_
#define PERFGATE_BENCH_BENCH_CLI_H_

#include <CLI/CLI.hpp>
#include <optional>

namespace perfgate::bench {

// Exit codes every benchmark keeps: 0 measured (or --help), 2 bad usage, 3 a part failed.
inline constexpr int kExitMeasured = 0, kExitUsage = 2, kExitFailed = 3;
inline constexpr char kExitCodesFooter[] = "exit codes: 0 measured, 2 bad usage, 3 a part failed (its error above)";

// A count: at least one.
inline const CLI::Range kCount(1, 1 << 30);

// Parses argv into the app's options. An exit code to return at once (after
// --help, or a usage error printed with its option), or nothing: measure.
inline std::optional<int> ParseOrExit(CLI::App& app, int argc, char** argv) {
  app.footer(kExitCodesFooter);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitMeasured : kExitUsage;
  }
  return std::nullopt;
}

}  // namespace perfgate::bench

#endif  // PERFGATE_BENCH_BENCH_CLI_H_
