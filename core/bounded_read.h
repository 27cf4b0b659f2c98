// Reading files named by users or written by cases, with a cap: a result
// file of 1 GB, or `expected: /dev/zero`, must end in a clear error, not in
// an agent or gate that grows until the machine kills it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace perfgate {

// The whole content of `path`, or an error naming the path and `what` (for
// example "expected-results file") when it cannot be opened or read, or
// holds more than `max_bytes`. Reads at most `max_bytes` + 1 bytes, so
// endless sources (/dev/zero, a FIFO whose writer never stops) end at the
// cap; a regular file over the cap is refused from its size without
// reading it. A FIFO is read once a writer has opened it; one that nothing
// writes to within 10 s is an error, not a wait for ever.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, uint64_t max_bytes, const std::string& what);

// The same for a file the caller opened (and checked) itself; `path` only
// names it in errors. Does not close `fd`.
absl::StatusOr<std::string> ReadOpenFileBounded(int fd, const std::string& path, uint64_t max_bytes,
                                                const std::string& what);

}  // namespace perfgate
