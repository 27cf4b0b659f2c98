// A case is a pull request's code. These tests play a hostile case against
// the agent's instrument: links, FIFOs and other users' files where the
// agent reads what the case wrote (agent/case_files.h), and, run as a case
// user (agent/case_user.h), the agent's secrets and its own folders.
#include "agent/case_user.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/callgrind.h"
#include "agent/case_files.h"
#include "agent/case_runner.h"
#include "agent/case_user_leftovers.h"
#include "agent/cgroup.h"
#include "agent/executor.h"
#include "agent/host_fingerprint.h"
#include "agent/run_supplies.h"
#include "core/exit_codes.h"
#include "core/series.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::OnOwnThread;
using testing::PerfgateBinary;
using testing::RunCommand;

constexpr char kSecret[] = "the-agents-secret-token";

v1::CaseSpec ShellCase(const std::string& name, const std::string& script) {
  v1::CaseSpec spec;
  spec.set_name(name);
  for (const char* arg : {"/bin/sh", "-c"}) spec.add_argv(arg);
  spec.add_argv(script);
  spec.set_repeats(1);
  spec.set_warmup(0);
  spec.set_timeout_ms(60'000);
  return spec;
}

// A case whose results come from $PERFGATE_RESULT_FILE, as PyTorch lines.
v1::CaseSpec ResultFileCase(const std::string& name, const std::string& script) {
  v1::CaseSpec spec = ShellCase(name, script);
  spec.set_result_format(v1::RESULT_FORMAT_PYTORCH_CSV);
  spec.set_result_source(v1::RESULT_SOURCE_FILE);
  return spec;
}

// A file only root may read, in a folder anyone may pass through, holding kSecret.
std::string WriteSecret(const testing::TempDir& dir) {
  chmod(dir.path().c_str(), 0755);
  const std::string path = dir.Write("token", std::string(kSecret) + ",metric,1\n");
  chmod(path.c_str(), 0600);
  return path;
}

TEST(CaseFilesTest, ALinkInPlaceOfTheResultFileIsRefusedNotFollowed) {
  testing::TempDir dir;
  const std::string secret = WriteSecret(dir);
  v1::CaseResult r = RunCase(ResultFileCase("link", "ln -s " + secret + " \"$PERFGATE_RESULT_FILE\""), ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_ERROR);
  EXPECT_THAT(r.error(), HasSubstr("is a symbolic link"));
  EXPECT_THAT(r.DebugString(), Not(HasSubstr(kSecret))) << "the linked file's content reached the result";
}

// Before, the agent's open() of the FIFO waited for a writer forever.
TEST(CaseFilesTest, AFifoInPlaceOfTheResultFileEndsInAnErrorNotAHang) {
  v1::CaseResult r = RunCase(ResultFileCase("fifo", "mkfifo \"$PERFGATE_RESULT_FILE\""), ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_ERROR);
  EXPECT_THAT(r.error(), HasSubstr("is not a regular file"));
}

TEST(CaseFilesTest, ProfilesThatAreLinksOrAThirdUsersFilesAreRefused) {
  testing::TempDir dir;
  const std::string secret = WriteSecret(dir);
  const std::string out = dir.path() + "/out";
  std::filesystem::create_directory(out);
  std::filesystem::create_symlink(secret, out + "/callgrind.out.1");
  absl::StatusOr<uint64_t> linked = SumCallgrindInstructions(out);
  EXPECT_THAT(linked.status().message(), HasSubstr("is a symbolic link"));
  EXPECT_THAT(linked.status().message(), Not(HasSubstr(kSecret)));

  // In a case user's folder, a hard link to a file of another user (root's
  // token, say, where protected_hardlinks is off) is not the case's to give.
  std::filesystem::remove(out + "/callgrind.out.1");
  if (geteuid() != 0) GTEST_SKIP() << "only root can give a folder to another user";
  ASSERT_EQ(chown(out.c_str(), 65534, 65534), 0);
  const std::string root_file = dir.Write("profile", "summary: 5\n");
  ASSERT_EQ(link(root_file.c_str(), (out + "/callgrind.out.2").c_str()), 0);
  EXPECT_THAT(SumCallgrindInstructions(out).status().message(), HasSubstr("belongs to uid 0, not to uid 65534"));
}

// Without a case user the case runs as the agent, which could read the file
// anyway; a result written through another user (a container's, sudo -u) is
// read as before.
TEST(CaseFilesTest, WithoutACaseUserAResultOfAnotherUserIsRead) {
  if (geteuid() != 0) GTEST_SKIP() << "only root can give a file to another user";
  v1::CaseResult r = RunCase(
      ResultFileCase("chowned", "echo x,y,1 > \"$PERFGATE_RESULT_FILE\" && chown 65534 \"$PERFGATE_RESULT_FILE\""),
      ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
}

// The case can write profiles of its own beside callgrind's: two that add up
// past 2^64 once wrapped to a count of a few thousand.
TEST(CaseFilesTest, ProfilesWhoseSumWrapsAreRefused) {
  testing::TempDir dir;
  dir.Write("callgrind.out.1", "summary: 223596422\n");
  dir.Write("callgrind.out.2", absl::StrCat("summary: ", std::numeric_limits<uint64_t>::max() - 223596422 + 18128, "\n"));
  EXPECT_THAT(SumCallgrindInstructions(dir.path()).status().message(), HasSubstr("add up past 2^64"));
}

TEST(CaseFilesTest, AFolderTheCaseLinkedElsewhereIsNotOpened) {
  testing::TempDir dir;
  std::filesystem::create_symlink("/etc", dir.path() + "/regions-0");
  absl::StatusOr<CaseFolder> folder = CaseFolder::Open(dir.path() + "/regions-0");
  EXPECT_THAT(folder.status().message(), HasSubstr("is a symbolic link"));
  absl::StatusOr<CaseFolder> top = CaseFolder::Open(dir.path());
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_THAT(top->Sub("regions-0").status().message(), HasSubstr("is a symbolic link"));
}

// std::filesystem::remove_all holds a descriptor per level, and gave up
// (EMFILE) on a tree deeper than the agent's limit: the folder stayed.
TEST(CaseFilesTest, ATreeDeeperThanTheDescriptorLimitIsRemoved) {
  testing::TempDir dir;
  const std::string top = dir.File("scratch");
  std::string path = top;
  for (int i = 0; i < 300; ++i) path += "/d";
  std::filesystem::create_directories(path);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = 128;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  RemoveScratchFolder(top);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_FALSE(std::filesystem::exists(top));
}

// The user the tests run cases as: nobody, where the tests run as root.
std::optional<CaseUser> Nobody() {
  absl::StatusOr<CaseUser> user = LookUpCaseUser("nobody");
  if (!user.ok()) return std::nullopt;
  return *user;
}

#define REQUIRE_NOBODY(user)                                                              \
  const std::optional<CaseUser> user = Nobody();                                          \
  if (!user) GTEST_SKIP() << "needs root and a user 'nobody' to run cases as another user"

TEST(CaseUserTest, LookUpRefusesRootAndUnknownUsersAndSaysWhatToDo) {
  if (geteuid() != 0) {
    EXPECT_THAT(LookUpCaseUser("nobody").status().message(), HasSubstr("needs the agent to run as root"));
    return;
  }
  EXPECT_THAT(LookUpCaseUser("root").status().message(), HasSubstr("is root; name an unprivileged user"));
  EXPECT_THAT(LookUpCaseUser("0").status().message(), HasSubstr("is root"));
  absl::StatusOr<CaseUser> unknown = LookUpCaseUser("no-such-perfgate-user");
  EXPECT_TRUE(absl::IsNotFound(unknown.status()));
  EXPECT_THAT(unknown.status().message(), HasSubstr("useradd"));
}

TEST(CaseUserTest, SecretsTheCaseUserCouldReadAreNamedWithTheFix) {
  REQUIRE_NOBODY(user);
  testing::TempDir dir;
  const std::string secret = WriteSecret(dir);
  EXPECT_TRUE(CheckUnreadableBy(*user, {"", secret, dir.File("absent")}).ok());
  chmod(secret.c_str(), 0644);
  absl::Status readable = CheckUnreadableBy(*user, {secret});
  EXPECT_THAT(readable.message(), HasSubstr(secret + " (mode 0644"));
  EXPECT_THAT(readable.message(), HasSubstr("chmod 600 " + secret));
  chmod(secret.c_str(), 0600);
  ASSERT_EQ(chown(secret.c_str(), user->uid, 0), 0);
  EXPECT_FALSE(CheckUnreadableBy(*user, {secret}).ok()) << "the case user's own file";
}

TEST(CaseUserTest, ACaseRunsAsTheCaseUserWithItsScratchAsHomeAndTmpdirAndWritesItsResults) {
  REQUIRE_NOBODY(user);
  CaseRunOptions options;
  options.user = &*user;
  v1::CaseResult r = RunCase(ResultFileCase("who",
                                            "id -u; id -G; echo \"user=$USER\"; "
                                            "[ \"$TMPDIR\" = \"$(dirname $PERFGATE_RESULT_FILE)\" ] && "
                                            "[ \"$HOME\" = \"$TMPDIR\" ] && echo own-tmpdir-and-home; "
                                            "echo who,uid,$(id -u) > \"$PERFGATE_RESULT_FILE\""),
                             ProbeHost(), options);
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error() << r.stderr_tail();
  EXPECT_THAT(r.stdout_tail(), HasSubstr(absl::StrCat(user->uid, "\n")));
  EXPECT_THAT(r.stdout_tail(), Not(HasSubstr("\n0\n"))) << "root's group kept";
  EXPECT_THAT(r.stdout_tail(), HasSubstr(absl::StrCat("user=", user->name)));
  EXPECT_THAT(r.stdout_tail(), HasSubstr("own-tmpdir-and-home"));
  const std::vector<Series> series = CollectSeries(r);
  ASSERT_EQ(series.size(), 5u);  // the agent's four, and the case's own
  bool found = false;
  for (const Series& s : series) {
    if (s.metric != "uid") continue;
    found = true;
    EXPECT_EQ(s.values, std::vector<double>{static_cast<double>(user->uid)});
  }
  EXPECT_TRUE(found);
}

// The same command as the agent's user reads the token: what the flag is for.
TEST(CaseUserTest, ACaseCannotReadTheAgentsTokenFile) {
  REQUIRE_NOBODY(user);
  testing::TempDir dir;
  const std::string secret = WriteSecret(dir);
  const v1::CaseSpec spec = ShellCase("steal", "cat " + secret);
  v1::CaseResult as_agent = RunCase(spec, ProbeHost(), {});
  EXPECT_THAT(as_agent.stdout_tail(), HasSubstr(kSecret)) << "the agent's user reads it";
  CaseRunOptions options;
  options.user = &*user;
  v1::CaseResult as_user = RunCase(spec, ProbeHost(), options);
  EXPECT_EQ(as_user.outcome(), v1::CaseResult::OUTCOME_FAILED);
  EXPECT_THAT(as_user.stderr_tail(), HasSubstr("Permission denied"));
  EXPECT_THAT(as_user.DebugString(), Not(HasSubstr(kSecret)));
}

// In the sticky $TMPDIR the owner of a folder may rename it and put a link
// in its place, which the agent would then read through; the case user's
// folders are in one only root can change.
TEST(CaseUserTest, ACaseCannotMoveItsScratchFolderAwayNorReplaceIt) {
  REQUIRE_NOBODY(user);
  testing::TempDir tmp;
  chmod(tmp.path().c_str(), 01777);
  CaseRunOptions options;
  options.user = &*user;
  const std::string script =
      "d=$(dirname \"$PERFGATE_RESULT_FILE\"); stat -c 'mode=%a owner=%u' \"$d\"; "
      "stat -c 'above=%a owner=%u' \"$(dirname \"$d\")\"; mv \"$d\" \"" + tmp.path() + "/moved\"";
  v1::CaseResult r = RunCase(ShellCase("move", script), ProbeHost(), options);
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_FAILED) << r.stdout_tail();
  EXPECT_THAT(r.stdout_tail(), HasSubstr(absl::StrCat("mode=700 owner=", user->uid)));
  EXPECT_THAT(r.stdout_tail(), HasSubstr("above=711 owner=0"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/moved"));
}

// The agent's path: folders made ahead for the user, reused when left as made.
TEST(CaseUserTest, SuppliedFoldersAreTheCaseUsersAndServeAgain) {
  REQUIRE_NOBODY(user);
  RunSupplies supplies(DefaultCgroupParent(), &*user);
  CaseRunOptions options;
  options.user = &*user;
  options.supplies = &supplies;
  std::vector<std::string> folders;
  for (int i = 0; i < 3; ++i) {
    supplies.Tidy();
    v1::CaseResult r = RunCase(
        ResultFileCase("supplied", "echo x,y,1 > \"$PERFGATE_RESULT_FILE\"; rm \"$PERFGATE_RESULT_FILE\"; "
                                   "echo x,y,1 > \"$PERFGATE_RESULT_FILE\"; dirname \"$PERFGATE_RESULT_FILE\""),
        ProbeHost(), options);
    ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error() << r.stderr_tail();
    folders.push_back(r.stdout_tail());
  }
  supplies.Tidy();
  for (const std::string& folder : folders) EXPECT_FALSE(std::filesystem::exists(folder.substr(0, folder.size() - 1)));
}

// The System V IPC objects `uid` owns or made, of all three kinds.
std::vector<std::string> IpcObjectsOf(uid_t uid) {
  std::vector<std::string> ids;
  for (const char* table : {"/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg"}) {
    std::ifstream in(table);
    std::stringstream text;
    text << in.rdbuf();
    for (std::string& id : IpcIdsOf(uid, text.str())) ids.push_back(absl::StrCat(table, " ", id));
  }
  return ids;
}

// One pull request's case must not leave what a later one's picks up: files
// in the folders every user may write, System V IPC objects.
TEST(CaseUserTest, WhatACaseLeftInSharedFoldersAndIpcIsGoneBeforeTheNextCase) {
  REQUIRE_NOBODY(user);
  const std::string tag = absl::StrCat("perfgate-test-leftover-", getpid());
  const std::string file = "/tmp/" + tag, tree = "/var/tmp/" + tag, shm = "/dev/shm/" + tag;
  const std::string roots = "/tmp/" + tag + "-roots";  // root's: stays
  std::ofstream(roots) << "root's\n";
  const std::string shared = "/tmp/" + tag + "-shared";  // root's, open to all: stays, but not what the case put in it
  std::filesystem::create_directories(shared + "/deeper");
  chmod((shared + "/deeper").c_str(), 01777);
  CaseRunOptions options;
  options.user = &*user;
  v1::CaseResult first =
      RunCase(ShellCase("leave", "echo planted > " + file + " && mkdir -p " + tree + "/a/b && touch " + tree +
                                     "/a/b/f && chmod 000 " + tree + "/a && echo x > " + shm + " && echo planted > " +
                                     shared + "/deeper/f && ipcmk -M 4096 && ipcmk -S 1 && ipcmk -Q"),
              ProbeHost(), options);
  ASSERT_EQ(first.outcome(), v1::CaseResult::OUTCOME_OK) << first.error() << first.stderr_tail();
  ASSERT_TRUE(std::filesystem::exists(file) && std::filesystem::exists(tree) && std::filesystem::exists(shm));
  ASSERT_GE(IpcObjectsOf(user->uid).size(), 3u);

  v1::CaseResult next =
      RunCase(ShellCase("look", "cat " + file + " " + shm + " 2>&1; ls " + tree + " 2>&1; true"), ProbeHost(), options);
  ASSERT_EQ(next.outcome(), v1::CaseResult::OUTCOME_OK) << next.error() << next.stderr_tail();
  EXPECT_THAT(next.stdout_tail(), Not(HasSubstr("planted")));
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_FALSE(std::filesystem::exists(tree)) << "a tree the case closed to itself";
  EXPECT_FALSE(std::filesystem::exists(shm));
  EXPECT_FALSE(std::filesystem::exists(shared + "/deeper/f")) << "in a folder of another user's";
  EXPECT_TRUE(std::filesystem::exists(shared + "/deeper"));
  EXPECT_THAT(IpcObjectsOf(user->uid), ::testing::IsEmpty());
  EXPECT_THAT(absl::StrJoin(next.notes(), "\n"),
              AllOf(HasSubstr("removed what earlier cases of 'nobody' left before this one started"), HasSubstr(file),
                    HasSubstr("System V IPC objects")));
  std::ifstream kept(roots);
  std::string content((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "root's\n") << "another user's file is not the case user's to remove";
  std::filesystem::remove(roots);
  std::filesystem::remove_all(shared);
}

// The removal runs as the case user: what that user cannot remove (a
// folder of root's inside its own), the agent does not remove for it, and
// the case does not start.
TEST(CaseUserTest, LeftoversTheUserCannotRemoveStopTheCaseAndAreNamed) {
  REQUIRE_NOBODY(user);
  testing::TempDir dir;
  chmod(dir.path().c_str(), 0755);
  const std::string own = dir.File("own");
  std::filesystem::create_directories(own + "/roots");
  std::ofstream(own + "/roots/f") << "x";
  std::ofstream(own + "/removable") << "x";
  ASSERT_EQ(chown(own.c_str(), user->uid, user->gid), 0);
  LeftoverSweep sweep;
  sweep.folders = {dir.path(), dir.File("absent")};
  absl::StatusOr<Leftovers> removed = RemoveCaseUserLeftovers(*user, sweep);
  EXPECT_THAT(removed.status().message(),
              AllOf(HasSubstr("could not remove what earlier cases of 'nobody' left"), HasSubstr(own + "/roots")));
  EXPECT_TRUE(std::filesystem::exists(own + "/roots/f"));
  EXPECT_FALSE(std::filesystem::exists(own + "/removable"));
}

// In a root-owned sticky folder (/tmp, /dev/shm) the agent removes the
// user's entries as root, with what other users put inside them: a case can
// open a folder of its own to all (0733), and as that user the removal
// could never get past another user's files there.
TEST(CaseUserTest, ATreeOfTheUsersAtTheTopOfAStickyFolderGoesWithWhatOthersPutInIt) {
  REQUIRE_NOBODY(user);
  testing::TempDir dir;
  chmod(dir.path().c_str(), 01777);
  const std::string own = dir.File("own");
  std::filesystem::create_directories(own + "/others");
  std::ofstream(own + "/others/f") << "x";
  chmod((own + "/others").c_str(), 0755);
  ASSERT_EQ(chown(own.c_str(), user->uid, user->gid), 0);
  chmod(own.c_str(), 0733);
  LeftoverSweep sweep;
  sweep.folders = {dir.path()};
  absl::StatusOr<Leftovers> removed = RemoveCaseUserLeftovers(*user, sweep);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->entries, std::vector<std::string>{own});
  EXPECT_FALSE(std::filesystem::exists(own));
}

// More entries than one command's arguments can hold (the kernel's limit,
// 2 MiB here) are removed in batches; one `rm` of them all could never start,
// and every later case of the user failed.
TEST(CaseUserTest, MoreLeftoversThanOneCommandCanNameAreAllRemoved) {
  REQUIRE_NOBODY(user);
  testing::TempDir dir;
  chmod(dir.path().c_str(), 01777);
  const std::string long_name(200, 'x');
  constexpr int kFiles = 15'000;  // 3 MB of names
  for (int i = 0; i < kFiles; ++i) {
    const std::string file = dir.File(long_name + std::to_string(i));
    std::ofstream(file).put('x');
    ASSERT_EQ(chown(file.c_str(), user->uid, user->gid), 0);
  }
  LeftoverSweep sweep;
  sweep.folders = {dir.path()};
  absl::StatusOr<Leftovers> removed = RemoveCaseUserLeftovers(*user, sweep);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->entries.size(), static_cast<size_t>(kFiles));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// Python's ctypes, for the keyring system calls (no keyctl(1) here).
std::string KeyringScript(const std::string& calls) {
  return "/usr/bin/python3 -c \"import ctypes; l = ctypes.CDLL(None); " + calls + "\"";
}

// Keys outlive processes (the user's keyrings, its persistent keyring), and
// a case would inherit the agent's session keyring: a case user's case may
// not use keyrings at all, as in Docker's default seccomp profile. Before,
// a key one case added was there for the next, and the agent's was readable.
TEST(CaseUserTest, ACaseCanNeitherLeaveKeysNorReadTheAgents) {
  REQUIRE_NOBODY(user);
  constexpr long kAddKey = 248, kKeyctl = 250, kJoinSession = 1, kSearch = 10, kSession = -3;
  OnOwnThread([&] {  // a keyring joined here stays with this thread
    ASSERT_GE(syscall(kKeyctl, kJoinSession, nullptr), 0);
    ASSERT_GT(syscall(kAddKey, "user", "perfgate-test-agents", "secret", 6, kSession), 0);
    CaseRunOptions options;
    options.user = &*user;
    const v1::CaseResult plant =
        RunCase(ShellCase("plant", KeyringScript("print(l.syscall(248, b'user', b'perfgate-test-left', b'x', 1, -4), "
                                                 "l.syscall(248, b'user', b'perfgate-test-left', b'x', 1, -3), "
                                                 "l.syscall(250, 22, -1, -2), ctypes.get_errno())") +
                                       "; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status"),
                ProbeHost(), options);
    ASSERT_EQ(plant.outcome(), v1::CaseResult::OUTCOME_OK) << plant.error() << plant.stderr_tail();
    EXPECT_THAT(plant.stdout_tail(), HasSubstr("-1 -1 -1"));  // user, session, persistent (KEYCTL_GET_PERSISTENT)
    EXPECT_THAT(plant.stdout_tail(), HasSubstr("NoNewPrivs:\t1"));
    EXPECT_THAT(plant.stdout_tail(), HasSubstr("Seccomp:\t2"));
    const v1::CaseResult look = RunCase(
        ShellCase("look", KeyringScript("print([l.syscall(250, 10, ring, b'user', name, 0) for ring in (-4, -3) "
                                        "for name in (b'perfgate-test-left', b'perfgate-test-agents')])")),
        ProbeHost(), options);
    ASSERT_EQ(look.outcome(), v1::CaseResult::OUTCOME_OK) << look.error() << look.stderr_tail();
    EXPECT_EQ(look.stdout_tail(), "[-1, -1, -1, -1]\n");
    EXPECT_GT(syscall(kKeyctl, kSearch, kSession, "user", "perfgate-test-agents", 0), 0) << "the agent's own stays";
    const v1::CaseResult as_agent = RunCase(  // without a case user, nothing is filtered
        ShellCase("agent", KeyringScript("print(l.syscall(250, 10, -3, b'user', b'perfgate-test-agents', 0) > 0)")),
        ProbeHost(), {});
    EXPECT_EQ(as_agent.stdout_tail(), "True\n");
  });
}

// Another process removing its own folder in /tmp while the sweep's find
// walked it made find exit 1, and failed the case (a flake under ctest -j2,
// where tests remove their temp folders); any other complaint still fails it.
TEST(CaseUserTest, AFindThatMetOnlyVanishedEntriesRemovedEverythingThere) {
  ExecResult r;
  r.end = ExecResult::End::kExited;
  r.exit_code = 1;
  r.err = "find: '/tmp/perfgate-test-bjWCvK': No such file or directory\nfind: '/tmp/x/y': No such file or directory\n";
  EXPECT_TRUE(FindSawOnlyVanishedEntries(r));
  r.err += "rm: cannot remove '/tmp/z': Operation not permitted\n";
  EXPECT_FALSE(FindSawOnlyVanishedEntries(r));
  r.err = "find: '/tmp/x': Permission denied\n";
  EXPECT_FALSE(FindSawOnlyVanishedEntries(r));
  r.err = "find: '/tmp/x': No such file or directory\n";
  r.exit_code = 2;
  EXPECT_FALSE(FindSawOnlyVanishedEntries(r));
}

TEST(CaseUserTest, IpcTablesAreReadByTheirHeader) {
  const std::string sem =
      "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"
      "  12345678          7   600          1 65534 65534 65534 65534          0 1700000000\n"
      "  12345679          8   600          1     0     0 65534 65534          0 1700000000\n"
      "  1234567a          9   600          1     0     0     0     0          0 1700000000\n";
  EXPECT_EQ(IpcIdsOf(65534, sem), (std::vector<std::string>{"7", "8"}));
  const std::string shm =
      "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid\n"
      "         0         42  1600                  4096   100   100      0  1000  1000  1000  1000\n";
  EXPECT_EQ(IpcIdsOf(1000, shm), std::vector<std::string>{"42"});
  EXPECT_THAT(IpcIdsOf(1000, "nonsense\n1 2 3\n"), ::testing::IsEmpty());
  EXPECT_THAT(IpcIdsOf(1000, ""), ::testing::IsEmpty());
}

TEST(CaseUserTest, AUserThatRunsAProcessOrCanWriteItsHomeIsRefused) {
  REQUIRE_NOBODY(user);
  EXPECT_TRUE(CheckCaseUserAlone(*user).ok()) << CheckCaseUserAlone(*user);
  testing::TempDir dir;
  CaseUser housed = *user;
  housed.home = dir.path();
  ASSERT_EQ(chown(dir.path().c_str(), user->uid, user->gid), 0);
  EXPECT_THAT(CheckCaseUserAlone(housed).message(), AllOf(HasSubstr("can write its home folder " + dir.path()),
                                                          HasSubstr("usermod --home /nonexistent nobody")));
  testing::Subprocess running({"/usr/bin/setpriv", absl::StrCat("--reuid=", user->uid),
                               absl::StrCat("--regid=", user->gid), "--clear-groups", "sh", "-c",
                               "echo ready; exec sleep 300"});
  ASSERT_TRUE(running.WaitForLine("ready", 60'000)) << running.output();
  EXPECT_THAT(CheckCaseUserAlone(*user).message(),
              AllOf(HasSubstr("'nobody' already runs pid"), HasSubstr("give cases a user that runs nothing else")));
  running.Signal(SIGKILL);
  running.Wait(60'000);

  // A process whose main thread has exited while another runs on is a
  // zombie to /proc's State, and still running.
  testing::Subprocess threads(
      {"/usr/bin/setpriv", absl::StrCat("--reuid=", user->uid), absl::StrCat("--regid=", user->gid), "--clear-groups",
       "/usr/bin/python3", "-c",
       "import ctypes, os, threading, time; threading.Thread(target=time.sleep, args=(300,)).start(); "
       "print('ready', os.getpid(), flush=True); ctypes.CDLL(None).syscall(60, 0)"});
  const std::optional<std::string> ready = threads.WaitForLine("ready", 60'000);
  ASSERT_TRUE(ready) << threads.output();
  const std::string status = "/proc/" + ready->substr(ready->find(' ') + 1) + "/status";
  const auto leader_exited = [&] {
    std::ifstream in(status);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("State:\tZ") != std::string::npos;
  };
  for (int i = 0; i < 6000 && !leader_exited(); ++i) {  // at most a minute
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(leader_exited()) << status;
  EXPECT_THAT(CheckCaseUserAlone(*user).message(), HasSubstr("'nobody' already runs pid"));
  threads.Signal(SIGKILL);
  threads.Wait(60'000);
}

TEST(CaseUserTest, CallgrindCountsTheCaseUsersRun) {
  REQUIRE_NOBODY(user);
  if (!FindValgrind().ok()) GTEST_SKIP() << "no valgrind";
  v1::CaseSpec spec = ShellCase("counted", "id -u");
  spec.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  CaseRunOptions options;
  options.user = &*user;
  v1::CaseResult r = RunCase(spec, ProbeHost(), options);
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error() << r.stderr_tail();
  bool counted = false;
  for (const Series& s : CollectSeries(r)) counted |= s.metric == kCallgrindInstructions && s.values.at(0) > 0;
  EXPECT_TRUE(counted);
}

// A case spawned by fork (to attach a counter) switches users as the vfork path does.
TEST(CaseUserTest, BothSpawnPathsSwitchUsers) {
  REQUIRE_NOBODY(user);
  for (bool count : {false, true}) {
    ExecSpec spec;
    spec.argv = {"/usr/bin/id", "-u"};
    spec.user = &*user;
    spec.count_instructions = count;
    ExecResult r = Execute(spec);
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    EXPECT_EQ(r.out, absl::StrCat(user->uid, "\n")) << "count_instructions " << count;
  }
}

// A fork bomb in a pull request's case would take the host's pids from the
// agent and a coordinator beside it; as a case user it stops at its limit.
TEST(CaseUserTest, ACaseUsersForksStopAtItsTaskLimit) {
  REQUIRE_NOBODY(user);
  constexpr char kForks[] =  // forks 64 children that wait, counts those started, then kills them
      "import os, signal\n"
      "kids = []\n"
      "for _ in range(64):\n"
      "    try: pid = os.fork()\n"
      "    except BlockingIOError: break\n"
      "    if pid == 0: signal.pause()\n"
      "    kids.append(pid)\n"
      "for pid in kids: os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)\n"
      "print(len(kids))\n";
  for (uint64_t limit : {uint64_t{8}, uint64_t{0}}) {
    CaseUser limited = *user;
    limited.max_tasks = limit;
    ExecSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", kForks};
    spec.user = &limited;
    ExecResult r = Execute(spec);
    ASSERT_TRUE(r.ok()) << r.Describe() << r.err;
    if (limit) {
      EXPECT_LT(std::stoi(r.out), 8) << "the case itself counts among its tasks";
    } else {
      EXPECT_EQ(r.out, "64\n") << "0: no limit";
    }
  }
}

// The removal of what earlier cases left is the agent's work: it runs
// `find`, `sh` and `rm` at once, and under a case's task limit of one it
// could never start, and every later case failed.
TEST(CaseUserTest, LeftoversAreRemovedWhateverTheCasesTaskLimit) {
  REQUIRE_NOBODY(user);
  CaseUser one_task = *user;
  one_task.max_tasks = 1;
  const std::string left = absl::StrCat("/tmp/perfgate-test-left-under-a-limit-", getpid());
  CaseRunOptions options;
  options.user = &one_task;
  v1::CaseSpec leave;  // touch itself, no shell: a shell's fork would fail under the limit
  leave.set_name("leave");
  for (const std::string& arg : {std::string("/usr/bin/touch"), left}) leave.add_argv(arg);
  leave.set_repeats(1);
  leave.set_timeout_ms(60'000);
  const v1::CaseResult first = RunCase(leave, ProbeHost(), options);
  ASSERT_EQ(first.outcome(), v1::CaseResult::OUTCOME_OK) << first.error() << first.stderr_tail();
  ASSERT_TRUE(std::filesystem::exists(left));
  const v1::CaseResult next = RunCase(leave, ProbeHost(), options);
  ASSERT_EQ(next.outcome(), v1::CaseResult::OUTCOME_OK) << next.error() << next.stderr_tail();
  EXPECT_THAT(absl::StrJoin(next.notes(), "\n"), HasSubstr(left));
  std::filesystem::remove(left);
}

TEST(CaseUserTest, TheFlagRunsCasesAsTheUserAndRefusesWhatCannotWork) {
  REQUIRE_NOBODY(user);
  const std::string check = "[ $(id -u) = " + std::to_string(user->uid) + " ]";
  const std::vector<std::string> run = {PerfgateBinary(), "run", "--repeats", "1", "--warmup", "0"};
  const std::string left = "/tmp/perfgate-test-left-by-the-flag-" + std::to_string(getpid());
  std::vector<std::string> as_user = run;
  for (const std::string& arg : {std::string("--case-user"), user->name, std::string("--"), std::string("/bin/sh"),
                                 std::string("-c"), check + " && touch " + left}) {
    as_user.push_back(arg);
  }
  const testing::CommandResult passed = RunCommand(as_user);
  EXPECT_EQ(passed.exit_code, kExitPassed) << passed.output;
  const testing::CommandResult again = RunCommand(as_user);
  EXPECT_EQ(again.exit_code, kExitPassed) << again.output;
  EXPECT_THAT(again.output, HasSubstr("Note: removed what earlier cases of 'nobody' left before this one started: "
                                      "1 file or folder (" +
                                      left + ")"));
  std::vector<std::string> as_agent = run;
  for (const char* arg : {"--", "/bin/sh", "-c"}) as_agent.push_back(arg);
  as_agent.push_back(check);
  EXPECT_EQ(RunCommand(as_agent).exit_code, kExitGateFailed);

  const testing::CommandResult unknown = RunCommand({PerfgateBinary(), "agent", "--coordinator", "127.0.0.1:1",
                                                     "--insecure", "--case-user", "no-such-perfgate-user"});
  EXPECT_EQ(unknown.exit_code, kExitBadInput);
  EXPECT_THAT(unknown.output, HasSubstr("--case-user 'no-such-perfgate-user': no such user"));
  const testing::CommandResult limit_alone =
      RunCommand({PerfgateBinary(), "run", "--case-max-tasks", "64", "--", "/bin/true"});
  EXPECT_EQ(limit_alone.exit_code, kExitBadInput);
  EXPECT_THAT(limit_alone.output, HasSubstr("--case-max-tasks requires --case-user"));

  // Without control groups a leftover of one case (setsid) would live on, as the user, into the next.
  std::vector<std::string> no_groups = as_user;
  no_groups.insert(no_groups.begin() + 2, {"--cgroup-root", "none"});
  const testing::CommandResult ungrouped = RunCommand(no_groups);
  EXPECT_EQ(ungrouped.exit_code, kExitBadInput);
  EXPECT_THAT(ungrouped.output, HasSubstr("needs control groups, so that every process a case leaves is killed"));

  testing::TempDir dir;
  chmod(dir.path().c_str(), 0755);
  const std::string token = dir.Write("agent.token", "secret\n");
  chmod(token.c_str(), 0644);
  const testing::CommandResult readable = RunCommand({PerfgateBinary(), "agent", "--coordinator", "127.0.0.1:1",
                                                      "--insecure", "--token-file", token, "--case-user", user->name});
  EXPECT_EQ(readable.exit_code, kExitBadInput);
  EXPECT_THAT(readable.output, HasSubstr("chmod 600 " + token));
}

// Cases of one user can signal, trace and read each other: two perfgate
// processes on a host must not run cases as the same user.
TEST(CaseUserTest, TwoProcessesCannotShareACaseUser) {
  // Not nobody: the test above claims nobody in its perfgate processes, and ctest may run both at once.
  absl::StatusOr<CaseUser> user = LookUpCaseUser("daemon");
  if (!user.ok()) GTEST_SKIP() << user.status();
  // It claims the user before it names its first case, and then sleeps in it until killed.
  testing::Subprocess holder({PerfgateBinary(), "run", "--repeats", "1", "--warmup", "0", "--case-user", user->name,
                              "--", "/bin/sleep", "600"});
  ASSERT_TRUE(holder.WaitForLine("[1/1]", 60'000)) << holder.output();
  const testing::CommandResult second = RunCommand(
      {PerfgateBinary(), "run", "--repeats", "1", "--warmup", "0", "--case-user", user->name, "--", "/bin/true"});
  EXPECT_EQ(second.exit_code, kExitBadInput) << second.output;
  EXPECT_THAT(second.output, HasSubstr("another perfgate process on this host runs its cases as '" + user->name));
}

// An admin reads in the agent's first lines whom its cases run as.
TEST(CaseUserTest, TheAgentSaysWhomCasesRunAs) {
  // Its own user: the tests above claim theirs in perfgate processes that ctest may run beside this one.
  absl::StatusOr<CaseUser> user = LookUpCaseUser("sys");
  if (!user.ok()) GTEST_SKIP() << user.status();
  testing::Subprocess agent({PerfgateBinary(), "agent", "--coordinator", "127.0.0.1:1", "--insecure", "--id",
                             "says-who", "--case-user", user->name});
  auto line = agent.WaitForLine("cases run as", 60'000);
  ASSERT_TRUE(line) << agent.output();
  EXPECT_THAT(*line, HasSubstr(absl::StrCat("cases run as user '", user->name, "' (uid ", user->uid, ", gid ",
                                            user->gid)));
  EXPECT_THAT(*line, HasSubstr(absl::StrCat("at most ", kDefaultCaseMaxTasks, " tasks each")));
}

}  // namespace
}  // namespace perfgate
