// Copies SQLite's write-ahead log back into the database on a thread of its
// own. With SQLite's automatic checkpoint, the commit that crosses the
// threshold copies thousands of pages before it returns, while the
// scheduler's lock is held: every agent waits (39-56 ms gaps in which no
// lease was granted, bench/dispatch). Here a commit only wakes the thread.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace perfgate {

class WalCheckpointer {
 public:
  // Opens a connection of its own to `path` and takes over `writer`'s WAL
  // hook (which turns SQLite's automatic checkpoint off): once a commit
  // leaves `pages` or more pages in the log, a passive checkpoint runs on
  // the thread. Passive: it never waits for, nor blocks, readers or writers.
  // REQUIRES: writer is in WAL mode and outlives this object.
  static absl::StatusOr<std::unique_ptr<WalCheckpointer>> Start(sqlite3* writer, const std::string& path, int pages);
  ~WalCheckpointer();  // removes the hook, stops the thread
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Checkpoints run so far.
  uint64_t checkpoints() const;

 private:
  WalCheckpointer(sqlite3* writer, sqlite3* own, int pages);
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages_in_log);
  void Loop();

  sqlite3* const writer_;
  sqlite3* const own_;
  const int pages_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool due_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t checkpoints_ ABSL_GUARDED_BY(mu_) = 0;
  std::promise<void> ready_;  // the thread is named and at its priority
  std::thread thread_;
};

}  // namespace perfgate
