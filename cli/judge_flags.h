// Flags that decide how a run is judged, shared by `gate` and `run`:
// baselines, the failing verdicts, confirmation, and A/B variants.
#pragma once

#include <CLI/CLI.hpp>

#include "gate/judged_suite.h"

namespace perfgate {

void AddJudgeFlags(CLI::App* cmd, JudgeSettings* flags, bool with_history);

}  // namespace perfgate
