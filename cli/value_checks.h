// CLI11 checks for flags whose values are text with a grammar of their own
// (durations, sizes, addresses). Attached to the flag, a bad value is refused where it
// is read: on the command line naming the flag, and in a config file naming
// the file and the line (ApplyConfig runs a flag's checks on its value).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

namespace perfgate {

// A duration like 500ms, 10s or 2m, at least min_ms.
CLI::Validator DurationCheck(uint64_t min_ms);
// A size like 512KiB or 20GiB, from min_bytes to max_bytes.
CLI::Validator SizeCheck(uint64_t min_bytes, uint64_t max_bytes);
// HOST:PORT, [V6]:PORT or a unix socket, as CheckAddress (transport.h) takes
// it; "" too where the flag's empty value means "off" or "embedded".
CLI::Validator AddressCheck(bool port_zero_picks, bool empty_allowed);
// An agent's id, pool or label (AgentNameProblem, core/identifiers.h).
CLI::Validator AgentNameCheck(const char* what);

}  // namespace perfgate
