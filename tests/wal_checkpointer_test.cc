// The WAL checkpointer on a real database file: commits only wake it, it
// copies the log back into the database on its own thread, and the log
// starts over even under commits that never pause.
#include "coordinator/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace perfgate {
namespace {

// A new database at `path` in WAL mode with a table t (b); null if it could
// not be made. The caller closes it.
sqlite3* OpenWalDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (b BLOB)", nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

// Restarts and the bound far away, unless a test sets them.
WalLimits Limits(int checkpoint_pages) {
  return {.checkpoint_pages = checkpoint_pages, .restart_pages = 1 << 30, .most_pages = 1 << 30};
}

// For tests whose one thread both commits and waits: nothing to serialise.
UnderWriteLock NoLock() {
  return [](const std::function<void()>& f) { f(); };
}

// The same for restarts prepared under the write lock.
bool WaitForRestarts(const WalCheckpointer& c, uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (c.restarts_prepared() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(WalCheckpointerTest, CommitsPastTheThresholdAreCopiedBackOnItsThread) {
  testing::TempDir dir;
  const std::string path = dir.File("wal.db");
  sqlite3* db = OpenWalDatabase(path);
  ASSERT_NE(db, nullptr);
  const auto database_bytes = [&] { return std::filesystem::file_size(path); };
  const uintmax_t empty = database_bytes();
  {
    auto checkpointer = WalCheckpointer::Start(db, path, Limits(/*checkpoint_pages=*/16), NoLock());
    ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
    // 64 commits of 8 KiB each: 128+ pages in the log, far past 16. SQLite's
    // own checkpoint (1,000 pages by default) is off: the hook replaced it,
    // so only the checkpointer can move these pages into the database file.
    for (int i = 0; i < 64; ++i) {
      ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (zeroblob(8192))", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    // A passive checkpoint copies what no reader needs; here nothing holds a
    // snapshot, so the database file comes to hold most of the rows' pages.
    // Polled for, not read after the first checkpoint: under load that one
    // may have run after the sixth commit, and the last commits' pages wait
    // for the checkpoint they are due (the log holds 16+ pages past it).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (database_bytes() <= empty + 64 * 4096u && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GT(database_bytes(), empty + 64 * 4096u);
    EXPECT_GE((*checkpointer)->checkpoints(), 1u);
  }
  // Stopped: the hook is gone and commits go on without it.
  EXPECT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM t", -1, &count, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(count, 0), 65);
  sqlite3_finalize(count);
  sqlite3_close(db);
}

TEST(WalCheckpointerTest, CommitsBelowTheThresholdDoNotWakeIt) {
  testing::TempDir dir;
  const std::string path = dir.File("wal.db");
  sqlite3* db = OpenWalDatabase(path);
  ASSERT_NE(db, nullptr);
  {
    auto checkpointer = WalCheckpointer::Start(db, path, Limits(/*checkpoint_pages=*/100'000), NoLock());
    ASSERT_TRUE(checkpointer.ok());
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    EXPECT_EQ((*checkpointer)->checkpoints(), 0u);
  }
  sqlite3_close(db);
}

// Frames in the log since it last started over: mxFrame of the wal-index
// header at the start of the -shm file (https://www.sqlite.org/walformat.html),
// read without a checkpoint, which would copy frames back itself.
uint32_t FramesInLog(const std::string& path) {
  std::ifstream shm(path + "-shm", std::ios::binary);
  shm.seekg(16);
  uint32_t frames = 0;
  shm.read(reinterpret_cast<char*>(&frames), sizeof frames);
  EXPECT_TRUE(shm) << path << "-shm";
  return frames;
}

// The most pages one of these tests' commits writes: a row of 8 KiB takes
// two overflow pages and its leaf, and now and then a leaf splits.
constexpr uint32_t kCommitPages = 6;

// SQLite starts the log over only at a write that begins with every frame
// copied back. Without the bound, commits that follow one another with no
// pause never see that while the thread copies beside them, and the log
// grew by every commit's pages (to 144 MB in bench/dispatch). With it, the
// commit that reaches it copies what is left, and the next starts over.
TEST(WalCheckpointerTest, ALogUnderCommitsThatNeverPauseStaysWithinItsBound) {
  testing::TempDir dir;
  const std::string path = dir.File("wal.db");
  sqlite3* db = OpenWalDatabase(path);
  ASSERT_NE(db, nullptr);
  constexpr uint32_t kMostPages = 120;
  std::mutex write_mu;
  const auto under_write_lock = [&](const std::function<void()>& f) {
    std::lock_guard lock(write_mu);
    f();
  };
  // Restarts by the thread out of reach: only the bound keeps the log short.
  auto checkpointer = WalCheckpointer::Start(
      db, path, {.checkpoint_pages = 16, .restart_pages = 1 << 30, .most_pages = int{kMostPages}}, under_write_lock);
  ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
  // 1,000 commits of 8 KiB (3 pages each, most of them): 3,000
  // pages of log, 25 times the bound. No fsyncs, so that they follow one
  // another as closely as the agents' do on a busy coordinator.
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA synchronous=OFF", nullptr, nullptr, nullptr), SQLITE_OK);
  uint32_t most_frames = 0;
  for (int i = 0; i < 1000; ++i) {
    std::lock_guard lock(write_mu);
    ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (zeroblob(8192))", nullptr, nullptr, nullptr), SQLITE_OK);
    most_frames = std::max(most_frames, FramesInLog(path));
  }
  EXPECT_LE(most_frames, kMostPages + kCommitPages);
  EXPECT_GE((*checkpointer)->commits_at_bound(), 1u);
  // The file itself: never written past the bound's frames (24-byte frame
  // headers, a 32-byte log header).
  EXPECT_LE(std::filesystem::file_size(path + "-wal"), (kMostPages + kCommitPages) * (4096u + 24) + 32);
  checkpointer->reset();
  sqlite3_close(db);
}

TEST(WalCheckpointerTest, TheThreadStartsTheLogOverUnderTheWriteLock) {
  testing::TempDir dir;
  const std::string path = dir.File("wal.db");
  sqlite3* db = OpenWalDatabase(path);
  ASSERT_NE(db, nullptr);
  std::mutex write_mu;
  int locked_checkpoints = 0;
  const auto under_write_lock = [&](const std::function<void()>& f) {
    std::lock_guard lock(write_mu);
    ++locked_checkpoints;
    f();
  };
  auto checkpointer = WalCheckpointer::Start(
      db, path, {.checkpoint_pages = 16, .restart_pages = 64, .most_pages = 1 << 30}, under_write_lock);
  ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
  // Commits until the log holds 64 pages (it may start over on its own
  // before, when the thread happens to copy the last frame between two).
  // Each from the 16th page on wakes the thread; the wake after the last
  // finds 64 or more and copies the log back whole under the lock.
  int commits = 0;
  for (; commits < 10'000 && FramesInLog(path) < 64; ++commits) {
    std::lock_guard lock(write_mu);
    ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (zeroblob(8192))", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ASSERT_LT(commits, 10'000);
  ASSERT_TRUE(WaitForRestarts(**checkpointer, 1));
  {
    std::lock_guard lock(write_mu);
    EXPECT_GE(locked_checkpoints, 1);
    ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (zeroblob(8192))", nullptr, nullptr, nullptr), SQLITE_OK);
    // The write started the log over: only its own frames are in it.
    EXPECT_LE(FramesInLog(path), kCommitPages);
  }
  EXPECT_EQ((*checkpointer)->commits_at_bound(), 0u);
  checkpointer->reset();
  sqlite3_close(db);
}

}  // namespace
}  // namespace perfgate
