#include "coordinator/malloc_policy.h"

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace perfgate {

namespace {
constexpr char kTcacheMax[] = "glibc.malloc.tcache_max";
constexpr char kTcacheCount[] = "glibc.malloc.tcache_count";
constexpr int kTcacheMaxBytes = 256;
// Set for the restarted program: glibc drops tunables it does not trust from
// the environment of a set-user-ID or file-capability program, and the
// restart must never repeat.
constexpr char kRestarted[] = "PERFGATE_MALLOC_RESTARTED";
}  // namespace

std::optional<std::string> TunablesWithSmallThreadCaches(const char* current) {
  const std::string small = absl::StrCat(kTcacheMax, "=", kTcacheMaxBytes);
  if (current == nullptr || *current == '\0') return small;
  for (absl::string_view tunable : absl::StrSplit(current, ':')) {
    const absl::string_view name = tunable.substr(0, tunable.find('='));
    if (name == kTcacheMax || name == kTcacheCount) return std::nullopt;
  }
  return absl::StrCat(current, ":", small);
}

absl::Status RestartWithSmallThreadCaches() {
  if (std::getenv(kRestarted) != nullptr) return absl::OkStatus();
  const char* before = std::getenv("GLIBC_TUNABLES");
  std::optional<std::string> tunables = TunablesWithSmallThreadCaches(before);
  if (!tunables) return absl::OkStatus();
  const std::optional<std::string> restore = before ? std::optional<std::string>(before) : std::nullopt;
  // Our own arguments as the kernel keeps them: NUL-terminated, one after another.
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<char*> argv;
  for (size_t at = 0; at < cmdline.size();) {
    argv.push_back(const_cast<char*>(cmdline.c_str() + at));
    const size_t end = cmdline.find('\0', at);
    if (end == std::string::npos) break;  // c_str() ends it
    at = end + 1;
  }
  if (argv.empty()) return absl::UnavailableError("cannot read /proc/self/cmdline");
  argv.push_back(nullptr);
  if (setenv("GLIBC_TUNABLES", tunables->c_str(), /*overwrite=*/1) == 0 && setenv(kRestarted, "1", 1) == 0) {
    execv("/proc/self/exe", argv.data());
  }
  const int error = errno;
  // As it was: nothing started from here may think it took effect.
  unsetenv(kRestarted);
  if (restore) {
    setenv("GLIBC_TUNABLES", restore->c_str(), /*overwrite=*/1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
  return absl::UnavailableError(absl::StrCat("restart with GLIBC_TUNABLES=", *tunables, ": ", std::strerror(error)));
}

void LimitMallocRetention() {
#ifdef M_ARENA_MAX
  mallopt(M_ARENA_MAX, 2);
#endif
  // Setting it turns off glibc's raising of it (and of M_TRIM_THRESHOLD).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

void ReleaseFreedMemory() { malloc_trim(0); }

}  // namespace perfgate
