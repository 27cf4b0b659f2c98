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

// A write made while a sync is under way is not covered by it: the caller
// waits for the next. Each caller "writes" by raising `written`; a sync
// covers what was written when it began.
TEST(WalSyncerTest, ACallDuringASyncWaitsForTheNextOne) {
  testing::TempDir dir;
  std::atomic<int> written{0};
  std::atomic<int> on_disk{0};
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool first_may_end = false;
  std::atomic<bool> first_began{false};
  auto syncer = WalSyncer::Open(dir.File("db-wal"), [&](int) {
    const int covers = written.load();
    if (!first_began.exchange(true)) {  // the first sync waits until the test lets it end
      std::unique_lock lock(gate_mu);
      gate_cv.wait(lock, [&] { return first_may_end; });
    }
    on_disk = std::max(on_disk.load(), covers);
    return 0;
  });
  ASSERT_TRUE(syncer.ok());
  WalSyncer& s = **syncer;
  written = 1;
  std::thread first([&] { EXPECT_TRUE(s.Sync().ok()); });
  ASSERT_TRUE(WaitForWaiting(s, 1));
  while (!first_began) std::this_thread::yield();
  written = 2;  // after the first sync began: it does not cover this
  int on_disk_when_second_returned = -1;
  std::thread second([&] {
    EXPECT_TRUE(s.Sync().ok());
    on_disk_when_second_returned = on_disk.load();
  });
  ASSERT_TRUE(WaitForWaiting(s, 2));
  {
    std::lock_guard lock(gate_mu);
    first_may_end = true;
  }
  gate_cv.notify_all();
  first.join();
  second.join();
  EXPECT_EQ(on_disk_when_second_returned, 2);
  EXPECT_EQ(s.syncs(), 2u);
}

// Callers that arrive while one sync runs are all covered by the next one:
// one sync for the lot, not one each.
TEST(WalSyncerTest, CallersDuringASyncShareTheNextOne) {
  testing::TempDir dir;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool first_may_end = false;
  std::atomic<int> calls{0};
  auto syncer = WalSyncer::Open(dir.File("db-wal"), [&](int) {
    if (calls.fetch_add(1) == 0) {
      std::unique_lock lock(gate_mu);
      gate_cv.wait(lock, [&] { return first_may_end; });
    }
    return 0;
  });
  ASSERT_TRUE(syncer.ok());
  WalSyncer& s = **syncer;
  std::thread first([&] { EXPECT_TRUE(s.Sync().ok()); });
  while (calls.load() == 0) std::this_thread::yield();
  std::vector<std::thread> later;
  for (int i = 0; i < 8; ++i) later.emplace_back([&] { EXPECT_TRUE(s.Sync().ok()); });
  ASSERT_TRUE(WaitForWaiting(s, 9));
  {
    std::lock_guard lock(gate_mu);
    first_may_end = true;
  }
  gate_cv.notify_all();
  first.join();
  for (auto& t : later) t.join();
  EXPECT_EQ(calls.load(), 2) << "the first sync, then one for the eight that came during it";
}

// A group commit's writers: the first syncs, and one whose commit came
// before that sync began waits for it, not for another.
TEST(WalSyncerTest, ACommitMadeBeforeASyncBeganIsCoveredByIt) {
  testing::TempDir dir;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool first_may_end = false;
  std::atomic<int> calls{0};
  auto syncer = WalSyncer::Open(dir.File("db-wal"), [&](int) {
    if (calls.fetch_add(1) == 0) {
      std::unique_lock lock(gate_mu);
      gate_cv.wait(lock, [&] { return first_may_end; });
    }
    return 0;
  });
  ASSERT_TRUE(syncer.ok());
  WalSyncer& s = **syncer;
  const uint64_t committed_earlier = s.NoteWritten();
  std::thread first([&] { EXPECT_TRUE(s.Sync().ok()); });
  while (calls.load() == 0) std::this_thread::yield();
  std::thread earlier([&] { EXPECT_TRUE(s.Sync(committed_earlier).ok()); });
  ASSERT_TRUE(WaitForWaiting(s, 2));
  {
    std::lock_guard lock(gate_mu);
    first_may_end = true;
  }
  gate_cv.notify_all();
  first.join();
  earlier.join();
  EXPECT_EQ(calls.load(), 1);
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
