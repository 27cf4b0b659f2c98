// Copies SQLite's write-ahead log back into the database on a thread of its
// own, and keeps the log from growing without bound. With SQLite's automatic
// checkpoint, the commit that crosses the threshold copies thousands of
// pages before it returns, while the scheduler's lock is held: every agent
// waits (39-56 ms gaps in which no lease was granted, bench/dispatch). Here
// a commit only wakes the thread, unless the log reaches its bound.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace perfgate {

// When the log is copied back, and when it starts over. SQLite starts the
// log over (writes from its first frame again) only at a write that begins
// with every frame already copied back. Under commits that never pause, a
// passive checkpoint on another thread never leaves it so: frames come in
// while it copies. The log then grew for as long as agents reported (to 144
// MB in bench/dispatch's load part).
struct WalLimits {
  // A commit that leaves this many pages or more in the log wakes the
  // thread for a passive checkpoint.
  int checkpoint_pages = 8000;
  // Once the log holds this many, a checkpoint of the thread that leaves
  // few frames behind is followed by one of those frames holding the
  // writers' lock (see UnderWriteLock), so that the next write starts the
  // log over.
  int restart_pages = 16000;
  // The bound, should the thread fall behind: the commit that leaves this
  // many pages in the log copies it back itself before it returns (after
  // any checkpoint under way), so the writer's next write starts it over.
  // Readers that still hold snapshots older than the log's end can keep it
  // from starting over; they end, and the next commit tries again.
  int most_pages = 32000;
};

// Runs its argument while no commit can begin: under the lock every writer
// of the database takes.
using UnderWriteLock = std::function<void(const std::function<void()>&)>;

class WalCheckpointer {
 public:
  // Opens a connection of its own to `path` and takes over `writer`'s WAL
  // hook (which turns SQLite's automatic checkpoint off). Passive
  // checkpoints: they never wait for, nor block, readers or writers.
  // REQUIRES: writer is in WAL mode, is the database's only writing
  // connection, and outlives this object; limits ascending;
  // `under_write_lock` serialises with every commit of `writer`.
  static absl::StatusOr<std::unique_ptr<WalCheckpointer>> Start(sqlite3* writer, const std::string& path,
                                                                WalLimits limits, UnderWriteLock under_write_lock);
  ~WalCheckpointer();  // removes the hook, stops the thread
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Checkpoints the thread ran so far.
  uint64_t checkpoints() const;
  // Times the log was copied back whole so that it could start over: by the
  // thread under the write lock, and by a commit at the bound.
  uint64_t restarts_prepared() const;
  uint64_t commits_at_bound() const;

 private:
  WalCheckpointer(sqlite3* writer, sqlite3* own, WalLimits limits, UnderWriteLock under_write_lock);
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages_in_log);
  void Loop();
  // One wake's work: a passive checkpoint, and at restart_pages the rest.
  void CheckpointOnce();
  // A passive checkpoint of own_, after any under way; *log and *copied:
  // frames in the log, and copied back; false if it could not run.
  bool Checkpoint(int* log, int* copied) ABSL_LOCKS_EXCLUDED(checkpoint_mu_);

  sqlite3* const writer_;
  sqlite3* const own_;
  const WalLimits limits_;
  const UnderWriteLock under_write_lock_;
  // Held while own_ checkpoints, by the thread or by a commit at the bound.
  // Taken after the write lock, never before it.
  std::mutex checkpoint_mu_;  // own_ is used under it
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool due_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t checkpoints_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t restarts_prepared_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t commits_at_bound_ ABSL_GUARDED_BY(mu_) = 0;
  std::promise<void> ready_;  // the thread is named and at its priority
  std::thread thread_;
};

}  // namespace perfgate
