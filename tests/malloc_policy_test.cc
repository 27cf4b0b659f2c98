// How the coordinator's process allocates: glibc's per-thread caches held to
// small blocks, by starting itself again with the tunable set.
#include "coordinator/malloc_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::PerfgateBinary;
using testing::Subprocess;

TEST(TunablesWithSmallThreadCachesTest, AddsTheCountToWhatIsThere) {
  EXPECT_EQ(TunablesWithSmallThreadCaches(nullptr), "glibc.malloc.tcache_max=256");
  EXPECT_EQ(TunablesWithSmallThreadCaches(""), "glibc.malloc.tcache_max=256");
  EXPECT_EQ(TunablesWithSmallThreadCaches("glibc.malloc.arena_max=2"),
            "glibc.malloc.arena_max=2:glibc.malloc.tcache_max=256");
  // A longer name that starts the same is another tunable.
  EXPECT_EQ(TunablesWithSmallThreadCaches("glibc.malloc.tcache_max_x=1"),
            "glibc.malloc.tcache_max_x=1:glibc.malloc.tcache_max=256");
}

TEST(TunablesWithSmallThreadCachesTest, LeavesACountSomeoneChose) {
  EXPECT_EQ(TunablesWithSmallThreadCaches("glibc.malloc.tcache_max=1032"), std::nullopt);
  EXPECT_EQ(TunablesWithSmallThreadCaches("glibc.malloc.tcache_count=7"), std::nullopt);
  EXPECT_EQ(TunablesWithSmallThreadCaches("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=3"), std::nullopt);
}

// The environment block a process was started with, as the kernel keeps it:
// "NAME=value" strings, each ended by a NUL. glibc may write NULs into
// GLIBC_TUNABLES's value as it parses it, so look for pieces, not entries.
std::string EnvironmentOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class CoordinatorProcessTest : public ::testing::Test {
 protected:
  // `argv`: what runs the coordinator (e.g. /usr/bin/env NAME=value), if anything.
  std::unique_ptr<Subprocess> Start(std::vector<std::string> argv) {
    argv.insert(argv.end(), {PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", db_});
    auto p = std::make_unique<Subprocess>(argv);
    EXPECT_FALSE(testing::CoordinatorAddress(*p).empty()) << p->output();
    return p;
  }
  testing::TempDir dir_;
  const std::string db_ = dir_.File("perfgate.db");
};

// Same pid (what a supervisor or the bench watches), now with small caches.
TEST_F(CoordinatorProcessTest, RunsWithSmallThreadCachesUnderItsOwnPid) {
  auto coordinator = Start({});
  const std::string env = EnvironmentOf(coordinator->pid());
  EXPECT_THAT(env, HasSubstr(std::string("GLIBC_TUNABLES=glibc.malloc.tcache_max=256\0", 43))) << coordinator->output();
  EXPECT_THAT(env, HasSubstr(std::string("\0PERFGATE_MALLOC_RESTARTED=1\0", 29)));
  EXPECT_THAT(coordinator->output(), Not(HasSubstr("keeps glibc's full per-thread malloc caches")));
}

TEST_F(CoordinatorProcessTest, KeepsTheCountAnAdminSet) {
  auto coordinator = Start({"/usr/bin/env", "GLIBC_TUNABLES=glibc.malloc.tcache_max=1032"});
  const std::string env = EnvironmentOf(coordinator->pid());
  EXPECT_THAT(env, HasSubstr(std::string("GLIBC_TUNABLES=glibc.malloc.tcache_max=1032\0", 44)));
  EXPECT_THAT(env, Not(HasSubstr("PERFGATE_MALLOC_RESTARTED"))) << "it did not start itself again";
}

TEST_F(CoordinatorProcessTest, AddsToOtherTunables) {
  auto coordinator = Start({"/usr/bin/env", "GLIBC_TUNABLES=glibc.malloc.arena_max=2"});
  const std::string env = EnvironmentOf(coordinator->pid());
  EXPECT_THAT(env, HasSubstr("GLIBC_TUNABLES=glibc.malloc.arena_max=2"));
  EXPECT_THAT(env, HasSubstr(std::string("glibc.malloc.tcache_max=256\0", 28)));
  EXPECT_THAT(env, HasSubstr("PERFGATE_MALLOC_RESTARTED=1"));
}

}  // namespace
}  // namespace perfgate
