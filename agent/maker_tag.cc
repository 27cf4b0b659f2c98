#include "agent/maker_tag.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace perfgate {
namespace {

// What /proc/PID/stat says of a process, as far as MakerGone needs.
struct ProcessStart {
  bool exited = false;            // no such process, or a zombie its parent has not reaped yet
  std::optional<uint64_t> ticks;  // when it started, in clock ticks since boot; nullopt if unreadable
};

ProcessStart StartOf(pid_t pid) {
  ProcessStart out;
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    out.exited = true;
    return out;
  }
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text;
  if (!std::getline(in, text)) return out;
  const size_t name_end = text.rfind(')');  // the name may hold spaces and parentheses
  if (name_end == std::string::npos) return out;
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(text).substr(name_end + 1), ' ', absl::SkipEmpty());
  if (!fields.empty() && (fields[0] == "Z" || fields[0] == "X")) out.exited = true;
  uint64_t ticks;  // field 22 of proc(5)'s stat, the 20th after the name
  if (fields.size() >= 20 && absl::SimpleAtoi(fields[19], &ticks)) out.ticks = ticks;
  return out;
}

uint64_t OwnPidNamespace() {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

// Whether the live process `pid` reads start times on this process's clock:
// /proc shows a process's start shifted by the reader's time namespace
// (unshare --time --boottime), so in another one a live maker's start reads
// differently, as if its pid had been reused. A kernel without time
// namespaces has none to differ. False where it cannot tell (another user's
// process, to a reader without the rights): its leftovers then stay.
bool SameTimeNamespace(pid_t pid) {
  struct stat own, theirs;
  if (stat("/proc/self/ns/time", &own) != 0) return errno == ENOENT;
  return stat(absl::StrCat("/proc/", pid, "/ns/time").c_str(), &theirs) == 0 && own.st_ino == theirs.st_ino &&
         own.st_dev == theirs.st_dev;
}

}  // namespace

const MakerTag& OwnMakerTag() {
  static const MakerTag tag{OwnPidNamespace(), getpid(), StartOf(getpid()).ticks.value_or(0)};
  return tag;
}

std::string ToString(const MakerTag& tag) {
  return absl::StrCat(tag.pid_namespace, "-", tag.pid, "-", tag.start_ticks);
}

std::optional<MakerTag> ParseMakerTag(absl::string_view text, absl::string_view* rest) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('-', 3));
  MakerTag tag;
  if (parts.size() < 3 || !absl::SimpleAtoi(parts[0], &tag.pid_namespace) || !absl::SimpleAtoi(parts[1], &tag.pid) ||
      !absl::SimpleAtoi(parts[2], &tag.start_ticks) || tag.pid <= 0) {
    return std::nullopt;
  }
  *rest = parts.size() == 4 ? parts[3] : absl::string_view();
  return tag;
}

bool MakerGone(const MakerTag& tag) {
  if (tag.pid_namespace == 0 || tag.pid_namespace != OwnMakerTag().pid_namespace) return false;
  const ProcessStart now = StartOf(tag.pid);
  return now.exited || (now.ticks && *now.ticks != tag.start_ticks && SameTimeNamespace(tag.pid));
}

bool NameMakerGone(absl::string_view tagged) {
  absl::string_view rest;
  if (std::optional<MakerTag> maker = ParseMakerTag(tagged, &rest)) return !rest.empty() && MakerGone(*maker);
  const std::vector<absl::string_view> parts = absl::StrSplit(tagged, absl::MaxSplits('-', 1));
  pid_t pid = 0;
  return parts.size() == 2 && !parts[1].empty() && absl::SimpleAtoi(parts[0], &pid) && pid > 0 && pid != getpid() &&
         StartOf(pid).exited;
}

}  // namespace perfgate
