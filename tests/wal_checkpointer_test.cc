// The WAL checkpointer on a real database file: commits only wake it, and
// it copies the log back into the database on its own thread.
#include "coordinator/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace perfgate {
namespace {

// Waits (polling, up to a minute) for the checkpointer to have run `n` times.
bool WaitForCheckpoints(const WalCheckpointer& c, uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (c.checkpoints() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(WalCheckpointerTest, CommitsPastTheThresholdAreCopiedBackOnItsThread) {
  testing::TempDir dir;
  const std::string path = dir.File("wal.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (b BLOB)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  const auto database_bytes = [&] { return std::filesystem::file_size(path); };
  const uintmax_t empty = database_bytes();
  {
    auto checkpointer = WalCheckpointer::Start(db, path, /*pages=*/16);
    ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
    // 64 commits of 8 KiB each: 128+ pages in the log, far past 16. SQLite's
    // own checkpoint (1,000 pages by default) is off: the hook replaced it,
    // so only the checkpointer can move these pages into the database file.
    for (int i = 0; i < 64; ++i) {
      ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (zeroblob(8192))", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    ASSERT_TRUE(WaitForCheckpoints(**checkpointer, 1));
    // A passive checkpoint copies what no reader needs; here nothing holds a
    // snapshot, so the database file now holds most of the rows' pages.
    EXPECT_GT(database_bytes(), empty + 64 * 4096u);
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
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  {
    auto checkpointer = WalCheckpointer::Start(db, path, /*pages=*/100'000);
    ASSERT_TRUE(checkpointer.ok());
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    EXPECT_EQ((*checkpointer)->checkpoints(), 0u);
  }
  sqlite3_close(db);
}

}  // namespace
}  // namespace perfgate
