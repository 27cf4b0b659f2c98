// Whether a client can trust that a plaintext coordinator address reaches
// the coordinator, and no one else. Without TLS nothing proves who answers:
// a loopback port is anyone's to listen on while the coordinator is down (a
// restart, an upgrade, an agent started first), and whoever answers an agent
// gets its token and has it run commands; a gate would take its verdict. A
// unix socket is as safe as the folders above it: only who may write in its
// folder can put a socket there.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace perfgate {

// The file of a unix socket's address: "unix:/run/x.sock", "unix:///run/x.sock"
// or "unix:x.sock" (relative). REQUIRES: `address` starts with "unix:".
std::string UnixSocketPath(const std::string& address);

// OK when `path`'s folder, and every folder above it, is owned by root, by
// this process's user or by the `perfgate` service user, and none of them
// can be written by its group or by others (a sticky folder, like /tmp, may
// be above the socket's folder but not be it). A folder not made yet is
// judged by the nearest one that exists, as the socket's folder. Otherwise
// an error naming the folder, its owner and mode, and what to change.
absl::Status CheckSocketFolders(const std::string& path);

// OK for a plaintext `address` (host:port, unix:PATH, unix-abstract:NAME)
// only a unix socket in folders that pass CheckSocketFolders; an error that
// says why and what to use instead for the others. `flag` names the address.
absl::Status CheckPlaintextPeer(const std::string& address, const char* flag);

}  // namespace perfgate
