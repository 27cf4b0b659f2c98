// SIGINT/SIGTERM delivered to one thread as an ordinary callback, so
// shutdown code can take locks and make RPCs (no async-signal-safety games).
#pragma once

#include <functional>

namespace perfgate {

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it
// starts later). REQUIRES: called in main before any thread is created.
void BlockTerminationSignals();

// Lets SIGINT and SIGTERM end the process again (their default action), for
// a command that has no shutdown of its own to run: `baseline update`
// ignored Ctrl-C while it waited on a FIFO.
void UnblockTerminationSignals();

// Starts a thread that calls `on_signal(signo)` for each SIGINT/SIGTERM.
// REQUIRES: BlockTerminationSignals() was called.
void OnTerminationSignal(std::function<void(int)> on_signal);

}  // namespace perfgate
