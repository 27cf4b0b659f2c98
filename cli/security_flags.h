// Flags shared by the commands that talk to a coordinator (agent, gate):
// TLS trust, client certificate, token file, --insecure; and the message
// size flags that coordinator and clients share.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "transport/transport.h"

namespace perfgate {

void AddClientSecurityFlags(CLI::App* cmd, ClientSecurityFlags* flags);

// Text of a size flag ("16MiB") as given on the command line; parsed by ParseSizeFlags.
struct SizeFlag {
  std::string name;  // "--max-submit-size"
  std::string text;
  uint64_t MessageLimits::*field;
};
// Adds one option per entry, defaulting to the value already in `limits`.
void AddSizeFlags(CLI::App* cmd, std::vector<SizeFlag>* sizes, const MessageLimits& limits);
// Fills `limits`; an error names the flag.
absl::Status ParseSizeFlags(const std::vector<SizeFlag>& sizes, MessageLimits* limits);

// Printed on every start with --insecure, so nobody forgets it is on: by
// the coordinator (what it serves), and by its clients (whom they trust).
void WarnInsecure(const char* command);
void WarnInsecureClient(const char* command);

}  // namespace perfgate
