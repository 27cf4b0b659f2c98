// The store's log syncer: a caller returns only after a sync that began
// after its writes, callers that come during a sync share the next one, and
// a failed sync fails every later call.
#include "coordinator/wal_syncer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

// Waits (polling, up to a minute) until `n` callers wait in Sync.
bool WaitForWaiting(const WalSyncer& s, int n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (s.waiting() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(WalSyncerTest, SyncsTheRealLogWithFdatasync) {
  testing::TempDir dir;
  const std::string wal = dir.File("db-wal");
  auto syncer = WalSyncer::Open(wal);
  ASSERT_TRUE(syncer.ok()) << syncer.status();
  EXPECT_TRUE(std::filesystem::exists(wal)) << "made empty when SQLite has not yet";
  EXPECT_TRUE((*syncer)->Sync().ok());
  EXPECT_EQ((*syncer)->syncs(), 1u);
}

TEST(WalSyncerTest, ALogThatCannotBeOpenedIsAnErrorNamingIt) {
  auto syncer = WalSyncer::Open("/nonexistent-folder/db-wal");
  ASSERT_FALSE(syncer.ok());
  EXPECT_THAT(syncer.status().message(), HasSubstr("/nonexistent-folder/db-wal"));
}

// A sync function whose first call does not end until Release(); `before`
// runs at the start of every call.
class GatedSync {
 public:
  explicit GatedSync(std::function<void()> before = [] {}) : before_(std::move(before)) {}
  WalSyncer::SyncFile Function() {
    return [this](int) {
      before_();
      if (calls_.fetch_add(1) == 0) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return released_; });
      }
      return 0;
    };
  }
  // Returns once the first call has begun.
  void AwaitFirst() const {
    while (calls_.load() == 0) std::this_thread::yield();
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  int calls() const { return calls_.load(); }

 private:
  const std::function<void()> before_;
  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// A write made while a sync is under way is not covered by it: the caller
// waits for the next. Each caller "writes" by raising `written`; a sync
// covers what was written when it began.
TEST(WalSyncerTest, ACallDuringASyncWaitsForTheNextOne) {
  testing::TempDir dir;
  std::atomic<int> written{0};
  std::atomic<int> on_disk{0};
  int covers = 0;
  GatedSync gate([&] { covers = written.load(); });
  auto sync = gate.Function();
  auto syncer = WalSyncer::Open(dir.File("db-wal"), [&](int fd) {
    const int rc = sync(fd);
    on_disk = std::max(on_disk.load(), covers);
    return rc;
  });
  ASSERT_TRUE(syncer.ok());
  WalSyncer& s = **syncer;
  written = 1;
  std::thread first([&] { EXPECT_TRUE(s.Sync().ok()); });
  gate.AwaitFirst();
  written = 2;  // after the first sync began: it does not cover this
  int on_disk_when_second_returned = -1;
  std::thread second([&] {
    EXPECT_TRUE(s.Sync().ok());
    on_disk_when_second_returned = on_disk.load();
  });
  ASSERT_TRUE(WaitForWaiting(s, 2));
  gate.Release();
  first.join();
  second.join();
  EXPECT_EQ(on_disk_when_second_returned, 2);
  EXPECT_EQ(s.syncs(), 2u);
}

// Callers that arrive while one sync runs are all covered by the next one:
// one sync for the lot, not one each.
TEST(WalSyncerTest, CallersDuringASyncShareTheNextOne) {
  testing::TempDir dir;
  GatedSync gate;
  auto syncer = WalSyncer::Open(dir.File("db-wal"), gate.Function());
  ASSERT_TRUE(syncer.ok());
  WalSyncer& s = **syncer;
  std::thread first([&] { EXPECT_TRUE(s.Sync().ok()); });
  gate.AwaitFirst();
  std::vector<std::thread> later;
  for (int i = 0; i < 8; ++i) later.emplace_back([&] { EXPECT_TRUE(s.Sync().ok()); });
  ASSERT_TRUE(WaitForWaiting(s, 9));
  gate.Release();
  first.join();
  for (auto& t : later) t.join();
  EXPECT_EQ(gate.calls(), 2) << "the first sync, then one for the eight that came during it";
}

// A group commit's writers: the first syncs, and one whose commit came
// before that sync began waits for it, not for another.
TEST(WalSyncerTest, ACommitMadeBeforeASyncBeganIsCoveredByIt) {
  testing::TempDir dir;
  GatedSync gate;
  auto syncer = WalSyncer::Open(dir.File("db-wal"), gate.Function());
  ASSERT_TRUE(syncer.ok());
  WalSyncer& s = **syncer;
  const uint64_t committed_earlier = s.NoteWritten();
  std::thread first([&] { EXPECT_TRUE(s.Sync().ok()); });
  gate.AwaitFirst();
  std::thread earlier([&] { EXPECT_TRUE(s.Sync(committed_earlier).ok()); });
  ASSERT_TRUE(WaitForWaiting(s, 2));
  gate.Release();
  first.join();
  earlier.join();
  EXPECT_EQ(gate.calls(), 1);
}

TEST(WalSyncerTest, AFailedSyncFailsThatCallAndEveryLaterOne) {
  testing::TempDir dir;
  int calls = 0;
  auto syncer = WalSyncer::Open(dir.File("db-wal"), [&](int) {
    ++calls;
    if (calls > 1) return 0;  // a later sync that succeeds does not bring lost pages back
    errno = EIO;
    return -1;
  });
  ASSERT_TRUE(syncer.ok());
  const absl::Status first = (*syncer)->Sync();
  EXPECT_EQ(first.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(first.message(), HasSubstr("db-wal"));
  EXPECT_THAT(first.message(), HasSubstr("Input/output error"));
  EXPECT_EQ((*syncer)->Sync(), first);
  EXPECT_EQ(calls, 1) << "no sync is tried once one failed";
}

}  // namespace
}  // namespace perfgate
