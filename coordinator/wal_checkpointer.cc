#include "coordinator/wal_checkpointer.h"

#include <pthread.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "coordinator/process_priority.h"

namespace perfgate {

absl::StatusOr<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(sqlite3* writer, const std::string& path,
                                                                        int pages) {
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
  return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(writer, own, pages));
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, sqlite3* own, int pages)
    : writer_(writer), own_(own), pages_(pages), thread_([this] { Loop(); }) {
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

// Runs on the committing thread after the write lock is released: only a wake-up.
int WalCheckpointer::OnCommit(void* self, sqlite3*, const char*, int pages_in_log) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (pages_in_log < c->pages_) return SQLITE_OK;
  {
    std::lock_guard lock(c->mu_);
    c->due_ = true;
  }
  c->wake_.notify_one();
  return SQLITE_OK;
}

void WalCheckpointer::Loop() {
  pthread_setname_np(pthread_self(), "checkpointer");
  // A passive checkpoint takes no lock a commit waits for: it may wait for a core.
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
    sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    ++checkpoints_;
  }
}

}  // namespace perfgate
