// Maker tags (agent/maker_tag.h) on real processes: a name's maker is gone
// once it has exited, whether the name carries a whole tag or, from agents
// before tags, a bare pid; a live maker, this process, another pid
// namespace and names of other shapes never count as gone.
#include "agent/maker_tag.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

// Field 22 of /proc/PID/stat: when the process started, in clock ticks.
uint64_t StartTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command's closing parenthesis, from field 3 on.
  std::istringstream after(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && after >> field; ++i) {
  }
  return std::stoull(field);
}

// The tag of a child of this process that has exited and been reaped. (A
// child cannot tell its own: OwnMakerTag is its parent's, copied by fork.)
MakerTag ChildThatHasExited() {
  int go[2];
  EXPECT_EQ(pipe(go), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(go[1]);
    (void)!read(go[0], &c, 1);
    _exit(0);
  }
  close(go[0]);
  const MakerTag tag{OwnMakerTag().pid_namespace, pid, StartTicks(pid)};
  close(go[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  return tag;
}

TEST(MakerTagTest, ATagReadsBackAsWritten) {
  absl::string_view rest;
  auto tag = ParseMakerTag(absl::StrCat(ToString(OwnMakerTag()), "-7"), &rest);
  ASSERT_TRUE(tag.has_value());
  EXPECT_EQ(tag->pid, getpid());
  EXPECT_EQ(tag->pid_namespace, OwnMakerTag().pid_namespace);
  EXPECT_EQ(tag->start_ticks, OwnMakerTag().start_ticks);
  EXPECT_EQ(rest, "7");
  EXPECT_NE(OwnMakerTag().pid_namespace, 0u);
}

TEST(MakerTagTest, ANamesMakerIsGoneOnceItExitedTaggedOrByPid) {
  const MakerTag child = ChildThatHasExited();
  EXPECT_TRUE(MakerGone(child));
  EXPECT_TRUE(NameMakerGone(absl::StrCat(ToString(child), "-1")));
  EXPECT_TRUE(NameMakerGone(absl::StrCat(child.pid, "-AbC123")));  // a name from before tags
}

TEST(MakerTagTest, ALiveMakerAndThisProcessAreNeverGone) {
  EXPECT_FALSE(MakerGone(OwnMakerTag()));
  EXPECT_FALSE(NameMakerGone(absl::StrCat(ToString(OwnMakerTag()), "-1")));
  EXPECT_FALSE(NameMakerGone(absl::StrCat(getpid(), "-1")));
  EXPECT_FALSE(NameMakerGone(absl::StrCat(getppid(), "-1")));  // the test's parent is alive
  // Its pid now holds a later process: the start tells them apart.
  MakerTag earlier = OwnMakerTag();
  earlier.start_ticks -= 1;
  EXPECT_TRUE(MakerGone(earlier));
}

TEST(MakerTagTest, AnotherPidNamespaceOrAnotherShapeOfNameCountsAsAlive) {
  MakerTag elsewhere = ChildThatHasExited();
  elsewhere.pid_namespace += 1;
  EXPECT_FALSE(MakerGone(elsewhere));
  EXPECT_FALSE(NameMakerGone(absl::StrCat(ToString(elsewhere), "-1")));
  const MakerTag child = ChildThatHasExited();
  EXPECT_FALSE(NameMakerGone(ToString(child)));               // nothing after the tag
  EXPECT_FALSE(NameMakerGone(absl::StrCat(child.pid)));       // a bare pid, nothing after it
  EXPECT_FALSE(NameMakerGone(absl::StrCat(child.pid, "-")));  // an empty rest
  EXPECT_FALSE(NameMakerGone("x-1"));
  EXPECT_FALSE(NameMakerGone("0-1"));
  EXPECT_FALSE(NameMakerGone("-5-1"));
  EXPECT_FALSE(NameMakerGone(""));
}

}  // namespace
}  // namespace perfgate
