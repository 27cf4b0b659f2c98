// Whether gRPC's listeners still accept connections. The gRPC of Debian 12
// (1.51) stops accepting on a listening socket for good after any accept4
// error but EAGAIN and ECONNABORTED: once the process runs out of file
// descriptors (EMFILE), which a few thousand idle connections from anyone
// who can reach the port bring about, it logs "Failed accept4" and never
// accepts again, while the process lives on and its service manager sees
// nothing wrong. The watch reads gRPC's log for that line, so that the
// coordinator can stop (exit 3) and be restarted.
#pragma once

#include "absl/status/status.h"

namespace perfgate {

// Routes gRPC's log through the watch, which writes every line to stderr as
// gRPC does. Process-wide; idempotent.
void WatchListeners();

// OK while no listener has stopped accepting; else what gRPC said.
absl::Status ListenerFailure();

}  // namespace perfgate
