// Names that outlive the process that made them (a run's control groups, a
// case's scratch folder) carry a tag of their maker, so that a later agent
// removes what a dead agent left and never what a live one uses.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace perfgate {

// Who made a name. The start tells the maker from a later process that got
// its pid; the pid namespace keeps agents in containers that share a folder
// from judging each other's pids, which mean nothing outside their own.
struct MakerTag {
  uint64_t pid_namespace = 0;  // the inode of /proc/self/ns/pid; 0 if unknown
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // when it started, in clock ticks since boot (proc(5) stat, field 22)
};

// This process's tag.
const MakerTag& OwnMakerTag();

// "NS-PID-START", as names carry it.
std::string ToString(const MakerTag& tag);

// The tag that `text` starts with ("NS-PID-START", then nothing or a dash),
// and in `rest` what follows that dash; nullopt if it starts with none.
std::optional<MakerTag> ParseMakerTag(absl::string_view text, absl::string_view* rest);

// Whether the maker is gone: it exited, is a zombie its parent has not yet
// reaped, or its pid belongs to a later process. A tag of another pid
// namespace, a process at its pid in another time namespace (its start
// reads differently there), or one /proc cannot tell about, counts as
// alive: what it made stays.
bool MakerGone(const MakerTag& tag);

// Whether the maker of a name is gone, `tagged` being the name past its
// prefix: "TAG-REST" (MakerGone), or "PID-REST" in names of agents from
// before tags, whose pid is all a later agent can judge (gone once it has
// exited or is a zombie). False for any other text, for an empty REST, and
// for this process's own pid.
bool NameMakerGone(absl::string_view tagged);

}  // namespace perfgate
