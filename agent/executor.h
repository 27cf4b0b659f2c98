// Runs one process and measures it: the agent's instrument.
//
// The child is spawned vfork-style (forked only when a hardware counter must
// be attached before exec), gets default signal dispositions, its own process
// group, stdin from /dev/null, PR_SET_PDEATHSIG, and captured
// stdout/stderr capped at a byte limit (the rest is read, dropped and
// counted, so a case that prints gigabytes never grows the agent). Waiting
// is on events (pidfd, pipes, a cancel eventfd), never busy polling.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/case_user.h"
#include "agent/cgroup.h"

namespace perfgate {

class RunSupplies;

// Lets another thread stop an Execute() in progress. Thread-safe.
class CancelToken {
 public:
  CancelToken();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;
  void Cancel();
  bool cancelled() const;
  // Readable once Cancel() was called; for poll().
  int fd() const { return fd_; }

 private:
  int fd_;
};

struct ExecSpec {
  std::vector<std::string> argv;           // REQUIRES: non-empty
  std::map<std::string, std::string> env;  // overlaid on the agent's environment
  std::string cwd;                         // empty: the agent's
  uint64_t timeout_ms = 0;                 // 0: no timeout
  uint64_t kill_grace_ms = 2000;           // SIGTERM to SIGKILL
  uint64_t output_limit_bytes = 8 << 20;   // per stream
  // Count user-space instructions of the process tree with perf_event_open.
  bool count_instructions = false;
  // Where the run's control groups go; nullptr: DefaultCgroupParent().
  const CgroupParent* cgroups = nullptr;
  // Where the run's groups come from (made ahead) and go (removed later);
  // nullptr: made and removed by Execute. When set, its parent is used.
  RunSupplies* supplies = nullptr;
  // Whom the child runs as (agent/case_user.h); nullptr: the agent's user.
  // REQUIRES: the agent is root, and cwd and the program are open to that user.
  const CaseUser* user = nullptr;
  // Called on the calling thread once the child has exec'd (not when it
  // could not): what the caller held back until the case was off, e.g. a
  // report that would otherwise take a core from the spawn.
  std::function<void()> started;
};

struct ExecResult {
  enum class End { kExited, kSignaled, kTimedOut, kCancelled, kSpawnFailed };
  End end = End::kSpawnFailed;
  int exit_code = -1;
  int signal = 0;           // the signal that ended it (kSignaled), or 0
  std::string spawn_error;  // kSpawnFailed: why
  double wall_s = 0;
  double user_cpu_s = 0;
  double sys_cpu_s = 0;
  // The case's peak memory, and which instrument measured it: its cgroup's
  // peak where it has one, else rusage (which then holds the agent's RSS).
  uint64_t peak_rss_bytes = 0;
  MemorySource memory_source = MemorySource::kRusage;
  std::string out;       // first output_limit_bytes of stdout
  std::string err;       // first output_limit_bytes of stderr
  std::string out_tail;  // last few KiB of each, for error reports
  std::string err_tail;
  uint64_t out_dropped = 0;
  uint64_t err_dropped = 0;
  // Processes the case left running when it ended, killed then: what they
  // would still have done or written is in no result.
  size_t leftovers_killed = 0;
  std::optional<uint64_t> instructions;  // when count_instructions and the counter opened
  std::string instructions_error;        // why not, when it did not

  bool ok() const { return end == End::kExited && exit_code == 0; }
  // "exit 3", "killed by SIGSEGV", "timed out", "cancelled", "could not start: ...".
  std::string Describe() const;
};

// Runs spec to completion, timeout or cancellation. Never throws; spawn
// problems come back as End::kSpawnFailed. Leftover processes are killed
// and reaped when the child ends: all of the run's cgroup where it has one
// (setsid escapees included), else the child's process group.
ExecResult Execute(const ExecSpec& spec, const CancelToken* cancel = nullptr);

// Whether `name` is one of the variables that carry a client's credentials
// (PERFGATE_TOKEN, PERFGATE_TOKEN_FILE, PERFGATE_TLS_KEY). A case never sees
// them in its environment, nor through ${NAME}: with the agent's token, the
// code of any pull request could register as an agent and report results
// for other people's runs.
bool IsCredentialVariable(std::string_view name);

// For the agent, once it has read its credentials: blanks the values of the
// credential variables in place, where /proc/<agent>/environ shows them to
// any process of its user (its cases included), and makes the agent
// non-dumpable, so that such a process cannot read its memory either. The
// names stay (unsetenv is not safe beside threads that read the
// environment), with empty values that no case is given anyway.
void HideCredentialsFromCases();

// Where argv[0] resolves with PATH from `path_env`; empty if nowhere.
std::string ResolveProgram(const std::string& program, const std::string& path_env);

}  // namespace perfgate
