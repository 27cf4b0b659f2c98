#include "coordinator/listener_watch.h"

#include <grpc/support/log.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

std::mutex g_mu;
std::string g_failure ABSL_GUARDED_BY(g_mu);
std::atomic<bool> g_failed{false};  // read without the lock on every sweep

void LogAndWatch(gpr_log_func_args* args) {
  const char* file = std::strrchr(args->file, '/');
  file = file ? file + 1 : args->file;
  std::fprintf(stderr, "%s %s:%d] %s\n", gpr_log_severity_string(args->severity), file, args->line, args->message);
  // tcp_server_posix.cc's accept loop, before it gives the listener up.
  if (std::strstr(args->message, "Failed accept4") != nullptr && !g_failed.load()) {
    std::lock_guard lock(g_mu);
    g_failure = args->message;
    g_failed = true;
  }
}

}  // namespace

void WatchListeners() {
  static std::once_flag once;
  std::call_once(once, [] { gpr_set_log_function(LogAndWatch); });
}

absl::Status ListenerFailure() {
  if (!g_failed.load()) return absl::OkStatus();
  std::lock_guard lock(g_mu);
  return absl::UnavailableError(absl::StrCat("gRPC stopped accepting connections (", g_failure,
                                             "): a restart serves again; raise the file limit (LimitNOFILE) if "
                                             "this coordinator serves that many connections"));
}

}  // namespace perfgate
