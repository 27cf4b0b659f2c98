#include "agent/executor.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/run_supplies.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

ExecSpec Shell(const std::string& script) {
  ExecSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  return spec;
}

uint64_t PeakRssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

TEST(ExecutorTest, ExitCodeAndOutputAreCaptured) {
  ExecResult r = Execute(Shell("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(r.end, ExecResult::End::kExited);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.wall_s, 0);
  EXPECT_EQ(r.Describe(), "exit 3");
}

size_t OpenDescriptors() {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                           std::filesystem::directory_iterator()));
}

// A case that forks a worker, waits for its word through a pipe and exits
// without reaping it hid the worker's CPU time: wait4 of the case counts only
// the children it reaped itself. The agent reaps the orphan (as subreaper)
// and counts it, with a run group and without one.
// A descriptor the agent holds without close-on-exec (from whoever started
// it: a shell, a CI runner) once reached every case, as another user too.
TEST(ExecutorTest, DescriptorsTheAgentLeftOpenAreNotTheCases) {
  const int fd = open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  ASSERT_GE(fd, 3);
  for (bool count : {false, true}) {
    ExecSpec spec;
    spec.argv = {"/bin/sh", "-c", "test -e /proc/$$/fd/" + std::to_string(fd) + " && echo leaked; echo done"};
    spec.count_instructions = count;  // the fork path too
    const ExecResult r = Execute(spec);
    EXPECT_EQ(r.out, "done\n") << "count_instructions " << count;
  }
  close(fd);
}

TEST(ExecutorTest, CpuTimeOfAnUnreapedWorkerIsCounted) {
  testing::TempDir dir;
  const std::string fifo = dir.File("done");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // The worker (a subshell running the loop) says when it is done; the case,
  // by then `head`, which never reaps, reads that and exits.
  const std::string script = "(python3 -c 'x = 0\nfor i in range(3_000_000): x += i'; echo > " + fifo +
                             ") & exec head -c1 " + fifo;
  const CgroupParent none = CgroupParent::Detect("none");
  for (const CgroupParent* parent : {&DefaultCgroupParent(), &none}) {
    ExecSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.cgroups = parent;
    const ExecResult r = Execute(spec);
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    // The worker takes 0.2-0.5 s of CPU; sh and head alone a few ms.
    EXPECT_GT(r.user_cpu_s + r.sys_cpu_s, 0.1) << parent->description();
  }
}

// Out of descriptors after the case's stdout pipe but before its stderr
// pipe (EMFILE): the spawn fails with why, and the first pipe is closed, not
// leaked (an agent near its limit would otherwise lose two a case).
TEST(ExecutorTest, APipeThatCannotBeMadeFailsTheSpawnAndLeaksNoDescriptor) {
  const CgroupParent no_groups = CgroupParent::Detect("none");
  ExecSpec spec;
  spec.argv = {"/bin/true"};
  spec.cgroups = &no_groups;
  ASSERT_TRUE(Execute(spec).ok());  // opens what is opened once per process (/dev/null)
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  // The first pipe takes the two lowest free descriptors; the limit leaves no third.
  if (fcntl(lowest_free + 1, F_GETFD) != -1) GTEST_SKIP() << "descriptor " << lowest_free + 1 << " is in use";
  const size_t before = OpenDescriptors();
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free + 2);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  const ExecResult r = Execute(spec);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(r.end, ExecResult::End::kSpawnFailed);
  EXPECT_THAT(r.spawn_error, HasSubstr("pipe: Too many open files"));
  // Counted with the limit restored: the directory listing needs a descriptor of its own.
  EXPECT_EQ(OpenDescriptors(), before);
}

// Every case reads an empty stdin (/dev/null, opened once by the agent), never the agent's own.
// `started` is called while the case runs (here the case waits for it to
// say go: called only after the case ended, Execute would never return),
// once per run, and never for a spawn that failed.
TEST(ExecutorTest, StartedIsCalledOnceTheCaseRunsAndNeverForAFailedSpawn) {
  testing::TempDir dir;
  const std::string fifo = dir.File("go");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ExecSpec waits = Shell("read line < '" + fifo + "'; echo got $line");
  waits.timeout_ms = 60'000;  // without a call, the case times out rather than waiting forever
  int calls = 0;
  waits.started = [&] {
    ++calls;
    std::ofstream(fifo) << "go\n";
  };
  ExecResult r = Execute(waits);
  EXPECT_TRUE(r.ok()) << r.Describe() << r.err;
  EXPECT_EQ(r.out, "got go\n");
  EXPECT_EQ(calls, 1);

  ExecSpec bad_cwd = Shell("true");
  bad_cwd.cwd = "/nonexistent/dir";
  ExecSpec not_executable;
  not_executable.argv = {"/etc/hostname"};
  for (ExecSpec failed : {bad_cwd, not_executable}) {
    failed.started = [&] { ++calls; };
    EXPECT_EQ(Execute(failed).end, ExecResult::End::kSpawnFailed);
  }
  EXPECT_EQ(calls, 1);
}

TEST(ExecutorTest, EveryCaseGetsDevNullAsStdin) {
  for (int i = 0; i < 3; ++i) {
    ExecResult r = Execute(Shell("readlink /proc/self/fd/0"));
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    EXPECT_EQ(r.out, "/dev/null\n") << "run " << i;
  }
}

TEST(ExecutorTest, EnvironmentOverlayAndWorkingDirectory) {
  testing::TempDir dir;
  ExecSpec spec = Shell("echo \"$PG_TEST_VAR $(pwd)\"");
  spec.env["PG_TEST_VAR"] = "hello";
  spec.cwd = dir.path();
  ExecResult r = Execute(spec);
  ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
  EXPECT_EQ(r.out, "hello " + dir.path() + "\n");
}

// A pull request's case must not read the agent's token: with it, it could
// register as an agent and report results for other people's runs.
TEST(ExecutorTest, TheAgentsCredentialsNeverReachACase) {
  setenv("PERFGATE_TOKEN", "secret-token", 1);
  setenv("PERFGATE_TOKEN_FILE", "/etc/perfgate/agent.token", 1);
  setenv("PERFGATE_TLS_KEY", "/etc/perfgate/agent.key", 1);
  setenv("PG_TEST_KEPT", "kept", 1);
  ExecResult r = Execute(Shell("echo \"${PERFGATE_TOKEN-unset} ${PERFGATE_TOKEN_FILE-unset} ${PERFGATE_TLS_KEY-unset} "
                               "$PG_TEST_KEPT\""));
  for (const char* name : {"PERFGATE_TOKEN", "PERFGATE_TOKEN_FILE", "PERFGATE_TLS_KEY", "PG_TEST_KEPT"}) unsetenv(name);
  ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
  EXPECT_EQ(r.out, "unset unset unset kept\n");
}

// A case of the agent's user could read the token from /proc/<agent>/environ
// (the values an agent started with live there) or from its memory.
TEST(ExecutorTest, TheAgentBlanksItsCredentialsAndCannotBeReadByItsCases) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv("PERFGATE_TOKEN", "secret-token", 1);
    HideCredentialsFromCases();
    const char* blank = std::getenv("PERFGATE_TOKEN");
    const bool blanked = blank && *blank == '\0';
    _exit(blanked && prctl(PR_GET_DUMPABLE) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "token still readable, or the agent dumpable";
}

TEST(ExecutorTest, MeasuresCpuTimeAndPeakRss) {
  ExecSpec spec;
  spec.argv = {testing::CaseBinary("alloc"), "32"};
  ExecResult r = Execute(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_GE(r.peak_rss_bytes, 32ull << 20);
  EXPECT_LT(r.peak_rss_bytes, 128ull << 20);
  EXPECT_GT(r.user_cpu_s + r.sys_cpu_s, 0);
}

constexpr uint64_t kMiB = 1 << 20;

// Run groups under a parent private to this test, removed at its end.
class CgroupExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (parent_.memory_source() == MemorySource::kRusage || !parent_.makes_groups()) {
      GTEST_SKIP() << "no cgroup can be made here: " << parent_.description();
    }
  }
  void TearDown() override { parent_.RemoveParents(); }
  ExecResult Run(ExecSpec spec) {
    spec.cgroups = &parent_;
    return Execute(spec);
  }
  const CgroupParent parent_ = CgroupParent::Detect("perfgate-test-" + std::to_string(getpid()));
};

// The old rusage of a vfork'd child held the agent's own resident set
// (15-21 MiB for /bin/true); the run's cgroup holds only the case's.
TEST_F(CgroupExecutorTest, PeakMemoryOfATrivialCaseIsTheCasesNotTheAgents) {
  ExecSpec spec;
  spec.argv = {"/bin/true"};
  ExecResult r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_NE(r.memory_source, MemorySource::kRusage);
  EXPECT_GT(r.peak_rss_bytes, 0u);
  EXPECT_LE(r.peak_rss_bytes, 4 * kMiB);
}

TEST_F(CgroupExecutorTest, PeakMemoryOfA256MiBCaseIsWithin5Percent) {
  ExecSpec spec;
  spec.argv = {testing::CaseBinary("alloc"), "256"};
  ExecResult r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_GE(r.peak_rss_bytes, 256 * kMiB * 95 / 100);
  EXPECT_LE(r.peak_rss_bytes, 256 * kMiB * 105 / 100);
}

// The `orphans` case wrote the pids of the child it did not reap and of the
// setsid'd sleeper it left; both must be gone: killed and reaped (ESRCH, not a zombie).
void ExpectOrphansGone(const std::string& pid_file) {
  std::ifstream in(pid_file);
  pid_t zombie = 0, escapee = 0;
  ASSERT_TRUE(in >> zombie >> escapee);
  EXPECT_EQ(kill(escapee, 0), -1) << "setsid escapee " << escapee << " survived the case";
  EXPECT_EQ(errno, ESRCH);
  EXPECT_EQ(kill(zombie, 0), -1) << "child " << zombie << " of the case was never reaped";
  EXPECT_EQ(errno, ESRCH);
}

// The case leaves a setsid'd sleeper and an unreaped child behind. Once
// Execute returns, both are gone: killed and reaped (ESRCH, not a zombie).
TEST_F(CgroupExecutorTest, ProcessesThatLeftTheProcessGroupAreKilledAndReaped) {
  testing::TempDir dir;
  const std::string pid_file = dir.File("pids");
  ExecSpec spec;
  spec.argv = {testing::CaseBinary("orphans"), pid_file};
  ExecResult r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
  ExpectOrphansGone(pid_file);
  EXPECT_GE(r.leftovers_killed, 1u) << "the result counts what it killed";
}

// A case whose orphans (re-parented to the agent, their subreaper) exit
// while it runs: `orphans` of them, each in a session of its own (out of
// the case's process group). It prints their pids on one line, lets them
// go, waits up to 30 s for their zombies to go, and prints "reaped" or
// "left zombies".
std::vector<std::string> OrphansCase(int orphans) {
  const std::string script = absl::StrCat(
      "import os, time\n"
      "hold_r, hold_w = os.pipe()\n"
      "pid_r, pid_w = os.pipe()\n"
      "if os.fork() == 0:\n"
      "    for _ in range(",
      orphans,
      "):\n"
      "        orphan = os.fork()\n"
      "        if orphan == 0:\n"
      "            os.setsid()\n"
      "            os.close(hold_w)\n"
      "            os.close(pid_w)\n"
      "            os.read(hold_r, 1)\n"
      "            os._exit(0)\n"
      "        os.write(pid_w, b'%d ' % orphan)\n"
      "    os._exit(0)\n"
      "os.close(pid_w)\n"
      "os.wait()\n"  // their parent has exited: they are the agent's now
      "orphans = [int(p) for p in os.fdopen(pid_r).read().split()]\n"
      "print(*orphans, flush=True)\n"
      "os.close(hold_w)\n"  // they exit: zombies until the agent reaps them
      "def state(p):\n"
      "    try: return open('/proc/%d/stat' % p).read().rsplit(')', 1)[1].split()[0]\n"
      "    except OSError: return 'gone'\n"
      "deadline = time.monotonic() + 30\n"
      "while any(state(p) != 'gone' for p in orphans) and time.monotonic() < deadline:\n"
      "    time.sleep(0.01)\n"
      "print('left zombies' if any(state(p) != 'gone' for p in orphans) else 'reaped')\n");
  return {"/usr/bin/python3", "-c", script};
}

// The pids OrphansCase printed that are still there once Execute returned.
std::vector<pid_t> Remaining(const ExecResult& r) {
  std::istringstream pids(r.out.substr(0, r.out.find('\n')));
  std::vector<pid_t> left;
  for (pid_t pid; pids >> pid;) {
    if (kill(pid, 0) == 0 || errno != ESRCH) left.push_back(pid);
  }
  return left;
}

// An orphan of the case that exits is the agent's zombie child. Reaped only
// once the case ended (and without a group, never, out of the case's
// process group), a case that leaves short-lived background children behind
// held a pid of the host for each, and as a case user ran out of its task
// limit. Here they are reaped while the case runs, with a group and without.
TEST_F(CgroupExecutorTest, OrphansThatExitAreReapedWhileTheCaseRunsWithAGroupOrWithout) {
  const CgroupParent none = CgroupParent::Detect("none");
  for (const CgroupParent* groups : {&parent_, &none}) {
    ExecSpec spec;
    spec.argv = OrphansCase(3);
    spec.cgroups = groups;
    ExecResult r = Execute(spec);
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    EXPECT_THAT(r.out, ::testing::EndsWith("\nreaped\n")) << groups->description();
    EXPECT_THAT(Remaining(r), ::testing::IsEmpty());
  }
}

// Field 22 of /proc/PID/stat: when the process started, in ticks since boot.
uint64_t StartTicksOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
  }
  return std::stoull(field);
}

// A process in the run groups `name` names (in every hierarchy), as a
// case's setsid'd server would be; the pid, for waitpid.
pid_t LeftoverIn(const CgroupParent& parent, const std::string& name) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t leftover = fork();
  if (leftover == 0) {
    char byte;
    close(ready[1]);
    if (read(ready[0], &byte, 1) == 1) execl("/bin/sleep", "sleep", "300", nullptr);
    _exit(1);
  }
  close(ready[0]);
  for (const std::string& folder : {parent.kill_folder(), parent.memory_folder()}) {
    const std::string group = folder + "/" + name;
    if (!std::filesystem::exists(group)) mkdir(group.c_str(), 0700);
    std::ofstream(group + "/cgroup.procs") << leftover << "\n";
  }
  [[maybe_unused]] ssize_t n = write(ready[1], "x", 1);
  close(ready[1]);
  return leftover;
}

// An agent killed (SIGKILL, the OOM killer) while its case had left a
// process running leaves that process in its run group; the next agent to
// start kills it and removes the group, where it once stayed for good:
// whether the dead agent's pid is gone, a zombie not reaped yet, or
// another process's now. A live agent's groups stay.
TEST_F(CgroupExecutorTest, WhatADeadAgentsCaseLeftRunningIsKilledWhenTheNextAgentStarts) {
  const pid_t reaped = fork();
  if (reaped == 0) _exit(0);
  ASSERT_EQ(waitpid(reaped, nullptr, 0), reaped);
  const pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, zombie, &info, WEXITED | WNOWAIT), 0);  // exited, not reaped
  struct stat ns;
  ASSERT_EQ(stat("/proc/self/ns/pid", &ns), 0);
  const auto name = [&](uint64_t pid_namespace, pid_t pid, uint64_t start) {
    return "run-" + std::to_string(pid_namespace) + "-" + std::to_string(pid) + "-" + std::to_string(start) + "-1";
  };
  const std::vector<std::string> stale = {
      name(ns.st_ino, reaped, 12345), name(ns.st_ino, zombie, StartTicksOf(zombie)),
      name(ns.st_ino, getpid(), StartTicksOf(getpid()) + 1),  // the pid is another process's now
  };
  const std::vector<std::string> live = {
      name(ns.st_ino, getpid(), StartTicksOf(getpid())),
      name(ns.st_ino + 1, reaped, 12345),  // another pid namespace's agent: its pids mean nothing here
  };
  std::vector<pid_t> leftovers, kept;
  for (const std::string& group : stale) leftovers.push_back(LeftoverIn(parent_, group));
  for (const std::string& group : live) kept.push_back(LeftoverIn(parent_, group));

  const CgroupParent next_agent = CgroupParent::Detect("perfgate-test-" + std::to_string(getpid()));
  EXPECT_EQ(next_agent.killed_at_start(), stale.size());
  for (pid_t leftover : leftovers) {
    int status = 0;
    ASSERT_EQ(waitpid(leftover, &status, 0), leftover);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  }
  for (const std::string& name : stale) {
    EXPECT_FALSE(std::filesystem::exists(parent_.kill_folder() + "/" + name)) << name;
  }
  for (const std::string& group : live) {
    EXPECT_TRUE(std::filesystem::exists(parent_.kill_folder() + "/" + group)) << "a live agent's group " << group;
    EXPECT_TRUE(std::filesystem::exists(parent_.memory_folder() + "/" + group)) << "a live agent's group " << group;
  }
  for (pid_t pid : kept) {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, WNOHANG), 0) << "a live agent's case was killed";
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  waitpid(zombie, nullptr, 0);
  for (const std::string& group : live) {
    for (const std::string& folder : {parent_.kill_folder(), parent_.memory_folder()})
      rmdir((folder + "/" + group).c_str());
  }
}

TEST_F(CgroupExecutorTest, RunGroupsAndParentsAreRemoved) {
  ASSERT_TRUE(Run(Shell("true")).ok());
  for (const std::string& folder : {parent_.kill_folder(), parent_.memory_folder()}) {
    ASSERT_TRUE(std::filesystem::is_directory(folder)) << folder;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      EXPECT_FALSE(entry.is_directory()) << "left behind: " << entry.path();
    }
  }
  parent_.RemoveParents();
  for (const std::string& folder : {parent_.kill_folder(), parent_.memory_folder()}) {
    EXPECT_FALSE(std::filesystem::exists(folder)) << folder;
  }
}

// The case runs in its run's group in every hierarchy used: born in the v2
// one (clone3 CLONE_INTO_CGROUP) where it can be, moved into the v1 one.
TEST_F(CgroupExecutorTest, TheCaseIsInItsRunsGroupsInEveryHierarchy) {
  for (bool supplied : {false, true}) {
    RunSupplies supplies(parent_);
    ExecSpec spec;
    spec.argv = {"/bin/cat", "/proc/self/cgroup"};
    if (supplied) spec.supplies = &supplies;
    ExecResult r = Run(spec);
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    const std::string run = "-" + std::to_string(getpid()) + "-";  // run-<pid namespace>-<pid>-<start>-<n>
    // One line per hierarchy in /proc/self/cgroup: "0::/path" (v2), "4:memory:/path" (v1).
    const size_t hierarchies = parent_.kill_folder() == parent_.memory_folder() ? 1 : 2;
    std::istringstream lines(r.out);
    std::string line;
    size_t in_run_group = 0;
    while (std::getline(lines, line)) in_run_group += line.find(run) != std::string::npos;
    EXPECT_EQ(in_run_group, hierarchies) << (supplied ? "supplied group:\n" : "") << r.out;
  }
}

// The run groups now in `folder` (the spare made ahead, retired ones awaiting removal).
std::vector<std::string> RunGroupsIn(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  return names;
}

// The agent takes a run's groups made ahead and leaves their removal to
// Tidy(), which it calls while it waits for the coordinator. Removal waits;
// the kill and reap does not: once Execute returns, nothing of the case runs.
TEST_F(CgroupExecutorTest, WithSuppliesLeftoversAreGoneWhenExecuteReturnsThoughTheGroupWaits) {
  RunSupplies supplies(parent_);
  supplies.Tidy();
  testing::TempDir dir;
  const std::string pid_file = dir.File("pids");
  ExecSpec spec;
  spec.argv = {testing::CaseBinary("orphans"), pid_file};
  spec.supplies = &supplies;
  ExecResult r = Execute(spec);
  ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
  EXPECT_EQ(supplies.retired_count(), 1u);
  ExpectOrphansGone(pid_file);
}

// A spare is a fresh group: a run in it reports its own peak, not that of
// the 256 MiB run before it (as it would in a reused group).
TEST_F(CgroupExecutorTest, ARunInASpareGroupReportsOnlyItsOwnPeakMemory) {
  RunSupplies supplies(parent_);
  ExecSpec big;
  big.argv = {testing::CaseBinary("alloc"), "256"};
  big.supplies = &supplies;
  ExecResult first = Execute(big);
  ASSERT_TRUE(first.ok()) << first.Describe();
  ASSERT_GE(first.peak_rss_bytes, 256 * kMiB * 95 / 100);
  supplies.Tidy();
  ExecSpec small;
  small.argv = {"/bin/true"};
  small.supplies = &supplies;
  ExecResult second = Execute(small);
  ASSERT_TRUE(second.ok()) << second.Describe();
  EXPECT_GT(second.peak_rss_bytes, 0u);
  EXPECT_LE(second.peak_rss_bytes, 4 * kMiB);
}

// The run's groups, as the case sees them in /proc/self/cgroup: the one
// that measures memory, and the one that finds leftovers ("" where that is
// the same group). A line per hierarchy: "0::/path" (v2), "4:memory:/path" (v1).
struct CaseGroups {
  std::string memory;
  std::string kill;
};
CaseGroups GroupsOfTheCase(const CgroupParent& parent, RunSupplies* supplies) {
  ExecSpec spec;
  spec.argv = {"/bin/cat", "/proc/self/cgroup"};
  spec.supplies = supplies;
  ExecResult r = Execute(spec);
  EXPECT_TRUE(r.ok()) << r.Describe() << r.err;
  CaseGroups groups;
  std::istringstream lines(r.out);
  std::string line;
  const bool memory_in_v2 = parent.memory_source() == MemorySource::kCgroupV2;
  while (std::getline(lines, line)) {
    const size_t at = line.find("/run-");
    if (at == std::string::npos) continue;
    const bool v2 = line.rfind("0::", 0) == 0;
    (v2 == memory_in_v2 ? groups.memory : groups.kill) = line.substr(at + 1);
  }
  return groups;
}

// Over many runs each gets a memory group no run had before (its peak is its
// own), and nothing piles up: the spares and the last run's groups between
// runs, none once the supplies are gone.
TEST_F(CgroupExecutorTest, EachRunGetsAFreshMemoryGroupAndNoneOutliveTheSupplies) {
  {
    RunSupplies supplies(parent_);
    std::vector<std::string> used;
    for (int i = 0; i < 20; ++i) {
      supplies.Tidy();
      ASSERT_EQ(RunGroupsIn(parent_.memory_folder()).size(), RunSupplies::kSpares) << "only the spares, after Tidy";
      const std::string group = GroupsOfTheCase(parent_, &supplies).memory;
      ASSERT_THAT(group, HasSubstr("run-"));
      EXPECT_THAT(used, ::testing::Not(::testing::Contains(group))) << "a memory group served two runs";
      used.push_back(group);
      EXPECT_THAT(RunGroupsIn(parent_.memory_folder()), ::testing::Contains(group)) << "removed at Tidy(), not before";
      for (const std::string& folder : {parent_.kill_folder(), parent_.memory_folder()}) {
        EXPECT_LE(RunGroupsIn(folder).size(), RunSupplies::kSpares + 1) << folder;
      }
    }
    supplies.Tidy();
  }
  for (const std::string& folder : {parent_.kill_folder(), parent_.memory_folder()}) {
    EXPECT_THAT(RunGroupsIn(folder), ::testing::IsEmpty()) << folder;
  }
}

// Where the group that finds leftovers is a v2 group of its own (memory is
// measured in v1), it serves run after run: no mkdir and rmdir per run. A
// group in which leftovers had to be killed is not lent again (this kernel
// SIGKILLs whatever is born into a group once written `cgroup.kill`), and
// every run's leftovers are still killed and reaped when it ends.
TEST_F(CgroupExecutorTest, AV2GroupThatMeasuresNothingServesAgainUnlessLeftoversWereKilledInIt) {
  if (parent_.kill_folder() == parent_.memory_folder()) GTEST_SKIP() << "one group measures and kills here";
  RunSupplies supplies(parent_);
  std::set<std::string> groups;
  for (int i = 0; i < 10; ++i) {
    supplies.Tidy();
    groups.insert(GroupsOfTheCase(parent_, &supplies).kill);
  }
  EXPECT_LE(groups.size(), RunSupplies::kSpares + 1) << "a new leftover group for most runs";
  for (int i = 0; i < 6; ++i) {
    supplies.Tidy();
    testing::TempDir dir;
    ExecSpec spec;
    spec.argv = {testing::CaseBinary("orphans"), dir.File("pids")};
    spec.supplies = &supplies;
    ExecResult r = Execute(spec);
    ASSERT_TRUE(r.ok()) << "run " << i << ": " << r.Describe() << r.err;
    ExpectOrphansGone(dir.File("pids"));
    // Fails (killed by SIGKILL) if the group the leftovers were killed in was lent to this run.
    GroupsOfTheCase(parent_, &supplies);
  }
  supplies.Tidy();
  EXPECT_LE(RunGroupsIn(parent_.kill_folder()).size(), 2 * RunSupplies::kSpares);
}

// What the thread `tid` of this process sleeps in ("" if unknown).
std::string WaitChannel(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/wchan");
  std::string channel;
  std::getline(in, channel);
  return channel;
}

// Agents on a host make and remove their groups in turn, through an flock
// on the folder they share: while another agent's change is under way, a
// group is made only once it ends, and the maker sleeps meanwhile (in the
// kernel's own locks it would spin, taking a core from the cases).
TEST_F(CgroupExecutorTest, MakingAGroupWaitsAsleepForAnotherAgentsChange) {
  const int other_agent = open(parent_.memory_folder().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(other_agent, 0);
  ASSERT_EQ(flock(other_agent, LOCK_EX), 0);
  std::atomic<pid_t> maker_tid{0};
  std::atomic<bool> made{false};
  std::thread maker([&] {
    maker_tid = gettid();
    made = RunCgroup::Create(parent_).ok();
  });
  while (!made && (maker_tid == 0 || WaitChannel(maker_tid) != "locks_lock_inode_wait")) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(made) << "a group was made during another agent's change";
  flock(other_agent, LOCK_UN);
  close(other_agent);
  maker.join();
  EXPECT_TRUE(made);
}

// However long the wait, a Tidy removes at most kRemovalsPerWait retired
// groups: each removal holds the kernel's global cgroup_mutex, which every
// other agent needs to start a case. Tidy() without a wait removes them all.
TEST_F(CgroupExecutorTest, TidyRemovesAFewRetiredGroupsPerWait) {
  RunSupplies supplies(parent_);
  const auto answered_at_once = [] { return true; };
  for (size_t i = 0; i < 3 * RunSupplies::kRemovalsPerWait; ++i) {
    supplies.Tidy(answered_at_once);
    ExecSpec spec = Shell("true");
    spec.supplies = &supplies;
    ASSERT_TRUE(Execute(spec).ok());
  }
  const size_t retired = supplies.retired_count();
  ASSERT_GE(retired, 3 * RunSupplies::kRemovalsPerWait);
  const auto never_answered = [] { return false; };
  supplies.Tidy(never_answered);
  EXPECT_EQ(supplies.retired_count(), retired - RunSupplies::kRemovalsPerWait);
  supplies.Tidy();
  EXPECT_EQ(supplies.retired_count(), 0u);
}

// Removal stops once the coordinator has answered (the next case waits for
// nothing but its spare), yet what is deferred stays bounded.
TEST_F(CgroupExecutorTest, TidyDefersRemovalsOnceAnsweredButNeverMoreThanItsBound) {
  RunSupplies supplies(parent_);
  const auto answered_at_once = [] { return true; };
  for (size_t i = 0; i < 3 * RunSupplies::kMaxDeferred; ++i) {
    supplies.Tidy(answered_at_once);
    ExecSpec spec = Shell("true");
    spec.supplies = &supplies;
    ASSERT_TRUE(Execute(spec).ok());
    EXPECT_LE(supplies.retired_count(), RunSupplies::kMaxDeferred + 1);
  }
  EXPECT_GE(supplies.retired_count(), RunSupplies::kMaxDeferred) << "nothing was deferred";
  supplies.Tidy();
  EXPECT_EQ(supplies.retired_count(), 0u);
  EXPECT_EQ(RunGroupsIn(parent_.kill_folder()).size(), RunSupplies::kSpares) << "only the spares";
}

TEST(ExecutorTest, WithoutCgroupsPeakMemoryIsRusageAndSaysSo) {
  const CgroupParent none = CgroupParent::Detect("none");
  EXPECT_FALSE(none.makes_groups());
  EXPECT_EQ(none.memory_source(), MemorySource::kRusage);
  EXPECT_THAT(none.description(), HasSubstr("rusage"));
  ExecSpec spec;
  spec.argv = {"/bin/true"};
  spec.cgroups = &none;
  ExecResult r = Execute(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.memory_source, MemorySource::kRusage);
  EXPECT_STREQ(MemorySourceName(r.memory_source), "agent:rusage");
}

TEST(ExecutorTest, SegfaultIsReportedWithItsSignal) {
  ExecResult r = Execute(Shell("kill -SEGV $$"));
  EXPECT_EQ(r.end, ExecResult::End::kSignaled);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.Describe(), "killed by SIGSEGV");
}

// A timeout test cannot wait for the case to be ready: the timer runs from the
// spawn. Under load the shell may not reach its first command before a short
// timeout, so these tests try again with a longer one until the case reports
// it got that far; what they assert holds at every length.
constexpr int kTimeoutTries[] = {300, 1'200, 4'800, 19'200, 76'800};

TEST(ExecutorTest, TimeoutKillsTheWholeProcessGroupIncludingGrandchildren) {
  testing::TempDir dir;
  for (int timeout_ms : kTimeoutTries) {
    const std::string pids = dir.File("pids-" + std::to_string(timeout_ms));
    ExecSpec spec = Shell("sleep 300 & echo $! > " + pids + "; sleep 300 & echo $! >> " + pids + "; wait");
    spec.timeout_ms = timeout_ms;
    spec.kill_grace_ms = 200;
    ExecResult r = Execute(spec);
    EXPECT_EQ(r.end, ExecResult::End::kTimedOut);
    EXPECT_EQ(r.Describe(), "timed out");
    std::ifstream in(pids);
    pid_t pid;
    int count = 0;
    while (in >> pid) {
      ++count;
      EXPECT_TRUE(testing::ProcessGone(pid)) << "grandchild " << pid << " survived";
    }
    if (count == 2) return;
  }
  ADD_FAILURE() << "the case never started both grandchildren before its timeout";
}

// A case leads a session of its own: it cannot move into a process group
// its child made (out of reach of every killpg, so its timeout never came),
// and it has no controlling terminal to read what is typed at the agent.
TEST(ExecutorTest, ACaseCannotLeaveItsProcessGroupAndHasNoTerminal) {
  ExecSpec spec;
  spec.argv = {"/usr/bin/python3", "-c",
               "import os, sys, time\n"
               "print('session leader' if os.getsid(0) == os.getpid() else 'in the agent session')\n"
               "child = os.fork()\n"
               "if child == 0:\n"
               "    os.setpgid(0, 0)\n"
               "    time.sleep(300)\n"
               "    os._exit(0)\n"
               "while os.getpgid(child) != child: time.sleep(0.001)\n"
               "try:\n"
               "    os.setpgid(0, child)\n"
               "    print('moved')\n"
               "except OSError as e:\n"
               "    print('stayed')\n"
               "try:\n"
               "    open('/dev/tty')\n"
               "    print('has a terminal')\n"
               "except OSError:\n"
               "    print('no terminal')\n"
               "sys.stdout.flush()\n"
               "time.sleep(300)\n"};
  spec.kill_grace_ms = 200;
  for (int timeout_ms : kTimeoutTries) {
    spec.timeout_ms = timeout_ms;
    ExecResult r = Execute(spec);
    EXPECT_EQ(r.end, ExecResult::End::kTimedOut) << r.err;
    if (!r.out.ends_with("terminal\n")) continue;  // the timeout came before it got that far
    EXPECT_EQ(r.out, "session leader\nstayed\nno terminal\n") << r.err;
    return;
  }
  ADD_FAILURE() << "the case never got through its checks before its timeout";
}

// The packaged agent holds CAP_PERFMON as an ambient capability, which
// exec passes on: a case of the agent's own user must start without it.
TEST(ExecutorTest, ACaseStartsWithoutTheAgentsAmbientCapabilities) {
  constexpr int kCapPerfmon = 38;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2]{};
  ASSERT_EQ(syscall(SYS_capget, &header, caps), 0);
  if (!(caps[kCapPerfmon / 32].permitted & (1u << (kCapPerfmon % 32)))) GTEST_SKIP() << "no CAP_PERFMON to pass on";
  const __user_cap_data_struct before[2] = {caps[0], caps[1]};
  caps[kCapPerfmon / 32].inheritable |= 1u << (kCapPerfmon % 32);
  ASSERT_EQ(syscall(SYS_capset, &header, caps), 0);
  ASSERT_EQ(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, kCapPerfmon, 0, 0), 0);
  ExecResult r = Execute(Shell("grep CapAmb /proc/self/status"));
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_data_struct restore[2] = {before[0], before[1]};
  syscall(SYS_capset, &header, restore);
  EXPECT_EQ(r.out, "CapAmb:\t0000000000000000\n") << r.err;
}

TEST(ExecutorTest, CaseIgnoringSigtermIsKilledAfterGrace) {
  for (int timeout_ms : kTimeoutTries) {
    ExecSpec spec = Shell("trap '' TERM; echo ready; while :; do sleep 1; done");
    spec.timeout_ms = timeout_ms;
    spec.kill_grace_ms = 200;
    ExecResult r = Execute(spec);
    EXPECT_EQ(r.end, ExecResult::End::kTimedOut);
    if (r.out != "ready\n") continue;  // SIGTERM came before the trap was set
    EXPECT_GE(r.wall_s, (timeout_ms + 200) / 1000.0 - 0.05) << "killed before the grace ran out";
    EXPECT_LT(r.wall_s, (timeout_ms + 200) / 1000.0 + 5);
    return;
  }
  ADD_FAILURE() << "the case never set its trap before its timeout";
}

TEST(ExecutorTest, OutputBeyondTheLimitIsDroppedAndCountedWithBoundedMemory) {
  // 1 GiB through stdout; the agent keeps the first 1 MiB and a small tail.
  std::ofstream("/proc/self/clear_refs") << "5";  // reset VmHWM so this test measures itself
  const uint64_t before_kib = PeakRssKiB();
  ExecSpec spec = Shell("head -c 1073741824 /dev/zero");
  spec.output_limit_bytes = 1 << 20;
  ExecResult r = Execute(spec);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out.size(), 1u << 20);
  EXPECT_EQ(r.out_dropped, (1ull << 30) - (1 << 20));
  EXPECT_LE(r.out_tail.size(), 4096u);
  const uint64_t growth_kib = PeakRssKiB() - before_kib;
  EXPECT_LT(growth_kib, 32u * 1024) << "agent memory grew by " << growth_kib << " KiB";
}

TEST(ExecutorTest, MissingProgramAndBadDirectoryAreSpawnErrors) {
  ExecSpec missing;
  missing.argv = {"perfgate-no-such-program"};
  ExecResult r = Execute(missing);
  EXPECT_EQ(r.end, ExecResult::End::kSpawnFailed);
  EXPECT_THAT(r.spawn_error, HasSubstr("not found in PATH"));

  ExecSpec bad_cwd = Shell("true");
  bad_cwd.cwd = "/nonexistent/dir";
  r = Execute(bad_cwd);
  EXPECT_EQ(r.end, ExecResult::End::kSpawnFailed);
  EXPECT_THAT(r.spawn_error, HasSubstr("cannot enter working directory '/nonexistent/dir'"));

  ExecSpec not_executable;
  not_executable.argv = {"/etc/hostname"};
  r = Execute(not_executable);
  EXPECT_EQ(r.end, ExecResult::End::kSpawnFailed);
  EXPECT_THAT(r.spawn_error, HasSubstr("cannot execute '/etc/hostname'"));
}

TEST(ExecutorTest, CancelStopsARunningCase) {
  testing::TempDir dir;
  const std::string fifo = dir.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  CancelToken cancel;
  ExecSpec spec = Shell("echo started > " + fifo + "; sleep 300");
  spec.kill_grace_ms = 200;
  std::thread canceller([&] {
    // Opening the FIFO blocks until the case has started and writes to it.
    std::ifstream started(fifo);
    std::string word;
    started >> word;
    cancel.Cancel();
  });
  ExecResult r = Execute(spec, &cancel);
  canceller.join();
  EXPECT_EQ(r.end, ExecResult::End::kCancelled);
  EXPECT_LT(r.wall_s, 5);
}

// Counted runs take the fork path (the counter is attached between fork and
// exec); everything else spawns vfork-style. Both must behave the same.
TEST(ExecutorTest, CountedRunsForkAndReportTheCountOrWhyNot) {
  ExecSpec spec = Shell("echo counted; exit 5");
  spec.count_instructions = true;
  ExecResult r = Execute(spec);
  EXPECT_EQ(r.end, ExecResult::End::kExited);
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.out, "counted\n");
  if (r.instructions) {
    EXPECT_GT(*r.instructions, 1000u);
  } else {
    EXPECT_THAT(r.instructions_error, HasSubstr("perf_event_open"));  // this VM: no hardware counters
  }
  ExecSpec bad_cwd = Shell("true");
  bad_cwd.count_instructions = true;
  bad_cwd.cwd = "/nonexistent/dir";
  r = Execute(bad_cwd);
  EXPECT_EQ(r.end, ExecResult::End::kSpawnFailed);
  EXPECT_THAT(r.spawn_error, HasSubstr("cannot enter working directory '/nonexistent/dir'"));
  ExecSpec slow = Shell("sleep 300");
  slow.count_instructions = true;
  slow.timeout_ms = 200;
  slow.kill_grace_ms = 100;
  EXPECT_EQ(Execute(slow).end, ExecResult::End::kTimedOut);
}

// A case that eats the host's memory is what the OOM killer takes, not the
// agent; on both spawn paths, and whatever the agent's own score.
TEST(ExecutorTest, TheOomKillerTakesTheCaseBeforeTheAgent) {
  for (bool count : {false, true}) {
    ExecSpec spec = Shell("cat /proc/self/oom_score_adj");
    spec.count_instructions = count;
    ExecResult r = Execute(spec);
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    EXPECT_EQ(r.out, "1000\n") << "count_instructions " << count;
  }
  std::ifstream agent("/proc/self/oom_score_adj");
  int score = 1000;
  agent >> score;
  EXPECT_LT(score, 1000) << "the agent's own score is left as it was";
}

TEST(ExecutorTest, CaseStartsWithDefaultSignalsWhateverTheAgentSet) {
  // An agent that ignores SIGPIPE and SIGTERM must not pass that on.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe, old_term;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  sigaction(SIGTERM, &ignore, &old_term);
  ExecResult r = Execute(Shell("grep -E '^Sig(Ign|Blk)' /proc/self/status"));
  sigaction(SIGPIPE, &old_pipe, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("SigBlk:\t0000000000000000"));
  // grep itself ignores nothing; bit 13 (SIGPIPE) and 15 (SIGTERM) are clear.
  EXPECT_THAT(r.out, HasSubstr("SigIgn:\t0000000000000000"));
}

TEST(ExecutorTest, ResolvesProgramsInPath) {
  EXPECT_EQ(ResolveProgram("sh", "/nonexistent:/bin"), "/bin/sh");
  EXPECT_EQ(ResolveProgram("/x/y", ""), "/x/y");
  EXPECT_EQ(ResolveProgram("perfgate-no-such-program", "/bin:/usr/bin"), "");
}

}  // namespace
}  // namespace perfgate
