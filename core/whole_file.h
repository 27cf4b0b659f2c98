// Writing a file that readers must see whole or not at all: an expected
// file that `baseline update` replaces, cut short by a Ctrl-C or a full
// disk, would lose its rows.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace perfgate {

// Replaces the regular file `path` with `contents`: written to a new file
// beside it, synced, then renamed over it, so that `path` holds its old or
// its new contents, never part of them. Links are followed (their target is
// replaced, also one not there yet) and an existing file keeps its
// permission bits (not its owner, nor other hard links to it). Anything
// else (/dev/stdout, a device, a FIFO) is written into, not replaced. On
// error a regular `path` is unchanged, the new file is removed, and the
// message names `path` and the cause.
absl::Status WriteFileWhole(const std::string& path, const std::string& contents);

}  // namespace perfgate
