// Puts the store's write-ahead log on disk before a write is acknowledged.
//
// The store runs SQLite with synchronous=NORMAL: a commit reaches the
// operating system, not the disk, so it survives the coordinator's death but
// not the machine's (a power cut, a kernel crash). synchronous=FULL syncs
// the log inside every COMMIT, while the store's write lock is held and
// every agent's report waits: side by side in bench/dispatch's defaults,
// 21% fewer leases a second than without syncs, and 15% more coordinator
// CPU per lease. Here a writer syncs after it lets the lock go, and writers
// that come while a sync runs share the next one (group commit): 13% fewer
// leases a second and 9-10% more CPU per lease in two runs, most of it the
// fdatasync itself (0.05 ms of CPU each here, writing back pages the
// kernel's flusher would otherwise write). Used only with --sync-commits
// (CommitDurability::kPowerLoss): on a shared disk a sync's latency has a
// long tail (syncs of 300-700 ms while a checkpoint wrote, on the
// development VM), and every acknowledgement waits for it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace perfgate {

class WalSyncer {
 public:
  // How a file's data reaches the disk: 0 or -1 with errno, as fdatasync(2),
  // which is the default. Tests pass their own.
  using SyncFile = std::function<int(int fd)>;

  // Opens the log at `wal_path` (creating it empty if SQLite has not yet)
  // and syncs its folder, so that the log's own name is on disk too.
  static absl::StatusOr<std::unique_ptr<WalSyncer>> Open(const std::string& wal_path, SyncFile sync = {});
  ~WalSyncer();
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  // A ticket for everything written to the log so far: a sync that begins
  // after this call covers it. Thread-safe.
  uint64_t NoteWritten() ABSL_LOCKS_EXCLUDED(mu_);
  // Returns once what `ticket` stands for is on disk: after a sync that
  // began after NoteWritten returned it, run by this caller or by another
  // (a commit made before a sync under way began waits for that one only).
  // Once a sync fails, every call returns that error: the kernel may have
  // dropped the pages it could not write, and a later sync that succeeds
  // would not bring them back. Thread-safe.
  absl::Status Sync(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);
  // Everything written before the call.
  absl::Status Sync() { return Sync(NoteWritten()); }

  // Syncs run so far, and callers waiting for one now (for tests).
  uint64_t syncs() const ABSL_LOCKS_EXCLUDED(mu_);
  int waiting() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  WalSyncer(std::string path, int fd, SyncFile sync);

  const std::string path_;
  const int fd_;
  const SyncFile sync_;
  mutable std::mutex mu_;
  std::condition_variable done_;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;  // the last ticket given
  uint64_t synced_ ABSL_GUARDED_BY(mu_) = 0;   // tickets up to this one are on disk
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perfgate
