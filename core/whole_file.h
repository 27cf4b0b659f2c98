// Writing a file that readers must see whole or not at all: an expected
// file that `baseline update` replaces, cut short by a Ctrl-C or a full
// disk, would lose its rows.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace perfgate {

// Replaces `path` with `contents`: written to a new file beside it, synced,
// then renamed over it, so that `path` holds its old or its new contents,
// never part of them. A link is followed (its target is replaced) and an
// existing file keeps its permission bits. On error `path` is unchanged, the
// new file is removed, and the message names `path` and the cause.
absl::Status WriteFileWhole(const std::string& path, const std::string& contents);

}  // namespace perfgate
