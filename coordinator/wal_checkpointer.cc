#include "coordinator/wal_checkpointer.h"

#include <pthread.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "coordinator/process_priority.h"

namespace perfgate {
namespace {

// The thread takes the write lock only when its checkpoint left at most
// this many frames behind (2 MiB of 4 KiB pages), so that writers wait for
// little more than two fsyncs. Checkpoints beyond one a wake, to catch up
// with the writer, cost 10-20% more CPU per lease in bench/dispatch: pages
// that commits rewrite were copied again each time.
constexpr int kFramesLeftForTheLock = 512;

}  // namespace

absl::StatusOr<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(sqlite3* writer, const std::string& path,
                                                                        WalLimits limits,
                                                                        UnderWriteLock under_write_lock) {
  sqlite3* own = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &own, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
  // A connection opens its file lazily; until it has read the header it does
  // not know the database is in WAL mode, and a checkpoint would do nothing.
  if (rc == SQLITE_OK) rc = sqlite3_exec(own, "PRAGMA journal_mode", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = own ? sqlite3_errmsg(own) : sqlite3_errstr(rc);
    sqlite3_close_v2(own);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open database for checkpoints: ", message));
  }
  return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(writer, own, limits, std::move(under_write_lock)));
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, sqlite3* own, WalLimits limits, UnderWriteLock under_write_lock)
    : writer_(writer),
      own_(own),
      limits_(limits),
      under_write_lock_(std::move(under_write_lock)),
      thread_([this] { Loop(); }) {
  ready_.get_future().wait();  // named and at its priority
  sqlite3_wal_hook(writer_, &WalCheckpointer::OnCommit, this);
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_hook(writer_, nullptr, nullptr);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  sqlite3_close_v2(own_);
}

uint64_t WalCheckpointer::checkpoints() const {
  std::lock_guard lock(mu_);
  return checkpoints_;
}

uint64_t WalCheckpointer::restarts_prepared() const {
  std::lock_guard lock(mu_);
  return restarts_prepared_;
}

uint64_t WalCheckpointer::commits_at_bound() const {
  std::lock_guard lock(mu_);
  return commits_at_bound_;
}

// Runs on the committing thread after SQLite's write lock is released (the
// caller's write lock is still held): a wake-up, or at the bound the copy.
int WalCheckpointer::OnCommit(void* self, sqlite3*, const char*, int pages_in_log) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (pages_in_log < c->limits_.checkpoint_pages) return SQLITE_OK;
  if (pages_in_log >= c->limits_.most_pages) {
    int log = 0, copied = 0;
    const bool whole = c->Checkpoint(&log, &copied) && copied == log;
    std::lock_guard lock(c->mu_);
    c->commits_at_bound_ += whole;
    return SQLITE_OK;
  }
  {
    std::lock_guard lock(c->mu_);
    c->due_ = true;
  }
  c->wake_.notify_one();
  return SQLITE_OK;
}

bool WalCheckpointer::Checkpoint(int* log, int* copied) {
  std::lock_guard checkpoint(checkpoint_mu_);
  return sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, log, copied) == SQLITE_OK;
}

void WalCheckpointer::CheckpointOnce() {
  int log = 0, copied = 0;
  if (!Checkpoint(&log, &copied) || log < limits_.restart_pages) return;
  // A reader holding frames back, or a writer that kept ahead: after a later commit.
  if (log - copied > kFramesLeftForTheLock) return;
  bool whole = false;
  ServingPriorityScope serving;  // under the lock every agent's report waits for
  under_write_lock_([&] { whole = Checkpoint(&log, &copied) && copied == log; });
  std::lock_guard lock(mu_);
  restarts_prepared_ += whole;
}

void WalCheckpointer::Loop() {
  pthread_setname_np(pthread_self(), "checkpointer");
  // Copying takes no lock a commit waits for (unless the log is at its
  // bound, which the thread keeps it from): it may wait for a core.
  ReturnToStartingPriority();
  ready_.set_value();
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return due_ || stop_; });
    if (stop_) return;
    due_ = false;
    lock.unlock();
    // A checkpoint that could not copy every frame (a reader still needs
    // them) is tried again after a later commit.
    CheckpointOnce();
    lock.lock();
    ++checkpoints_;
  }
}

}  // namespace perfgate
