// perfgate's exit codes, the contract with CI. Documented in --help and the README.
#pragma once

namespace perfgate {

inline constexpr int kExitPassed = 0;         // the gate passed
inline constexpr int kExitGateFailed = 1;     // the gate failed on results (regression, error, missing result)
inline constexpr int kExitBadInput = 2;       // bad usage or input (flags, suite or baseline file)
inline constexpr int kExitInfra = 3;          // infrastructure failure (coordinator unreachable, store error)
inline constexpr int kExitInterrupted = 130;  // interrupted (Ctrl-C); the run was cancelled

inline constexpr char kExitCodesHelp[] =
    "Exit codes: 0 passed; 1 the gate failed on results; 2 bad usage or input;\n"
    "            3 infrastructure failure; 130 interrupted (the run was cancelled).";
// The same codes as a service (coordinator, agent) uses them.
inline constexpr char kServiceExitCodesHelp[] =
    "Exit codes: 0 stopped by a signal; 2 bad usage or configuration (a packaged unit\n"
    "            does not restart on it); 3 infrastructure failure (restarted).";

}  // namespace perfgate
