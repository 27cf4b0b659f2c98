#include "agent/executor.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/orphans.h"
#include "agent/perf_counter.h"
#include "agent/run_supplies.h"

extern char** environ;

namespace perfgate {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kTailBytes = 4096;

// Rounded up: poll's timeout is in whole milliseconds, and one rounded down
// to 0 in the last millisecond before a deadline would spin until it.
int64_t MsUntil(Clock::time_point deadline) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : ms;
}

// Captures one pipe: keeps the first `limit` bytes and a rolling tail,
// counts the rest.
struct Capture {
  int fd = -1;
  uint64_t limit = 0;
  std::string* head = nullptr;
  std::string* tail = nullptr;
  uint64_t* dropped = nullptr;

  // Reads what is available. Returns false at EOF or error (fd closed).
  bool ReadSome() {
    char buf[65536];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        size_t room = head->size() < limit ? limit - head->size() : 0;
        size_t keep = static_cast<size_t>(n) < room ? static_cast<size_t>(n) : room;
        head->append(buf, keep);
        *dropped += static_cast<uint64_t>(n) - keep;
        tail->append(buf, static_cast<size_t>(n));
        if (tail->size() > 2 * kTailBytes) tail->erase(0, tail->size() - kTailBytes);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      close(fd);
      fd = -1;
      return false;
    }
  }

  // Takes what is already in the pipe, without waiting for EOF (a process
  // that escaped the process group could hold that off forever), and closes it.
  void Drain() {
    if (fd < 0) return;
    ReadSome();
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& overlay) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    if (!overlay.count(name) && !IsCredentialVariable(name)) env.push_back(std::move(entry));
  }
  for (const auto& [k, v] : overlay) env.push_back(k + "=" + v);
  return env;
}

std::string LookupEnv(const std::vector<std::string>& env, const std::string& name) {
  for (const auto& e : env) {
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') {
      return e.substr(name.size() + 1);
    }
  }
  return "";
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

const char* SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? abbrev : "?";
}

// What the child needs, all prepared before fork/clone: after it, only
// async-signal-safe calls are allowed.
struct ChildSetup {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  pid_t parent = 0;
  int go_fd = -1;      // fork path: wait for one byte before exec
  int report_fd = -1;  // fork path: where a failure is written
  // cgroup.procs (v2) or tasks (v1) of the run's groups: the child moves itself in before exec.
  const int* join_fds = nullptr;
  size_t join_count = 0;
  // The one of join_fds the child skips: it was born in that group (clone3 CLONE_INTO_CGROUP); -1 if none.
  int born_in_fd = -1;
  // Whom the case runs as (ExecSpec::user); switched to after the joins, which need the agent's rights.
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t group_count = 0;
  rlim_t max_tasks = 0;  // RLIMIT_NPROC set before the switch; 0: none
  // vfork path: the child writes its failure straight into the parent's memory.
  volatile int child_errno = 0;
  volatile char failed_step = 0;  // 'g' cgroup, 'l' task limit, 'u' user, 'k' keyring filter, 'c' chdir, 'e' exec
  // vfork path: when the child is about to exec, so the clock leaves out
  // the spawn and the cgroup join (the agent's costs, not the case's).
  Clock::time_point exec_at;
};

// The most the kernel allows: the case is the first process its OOM killer picks.
constexpr char kCaseOomScoreAdj[] = "1000";

constexpr unsigned kCloseRangeCloexec = 1u << 2;  // CLOSE_RANGE_CLOEXEC (Linux 5.11), absent from older headers

// Becomes the case's user: groups first, while the process may still change
// them. Raw system calls: glibc's setuid() and friends would change every
// thread of the process, and after clone(CLONE_VM) glibc's idea of "the
// process" is the agent's, threads and all. The kernel changes only this task.
bool SwitchUser(const ChildSetup& s) {
  return syscall(SYS_setgroups, s.group_count, s.groups) == 0 && syscall(SYS_setresgid, s.gid, s.gid, s.gid) == 0 &&
         syscall(SYS_setresuid, s.uid, s.uid, s.uid) == 0;
}

// A case user's case may not use the kernel's keyrings (keyctl, add_key,
// request_key fail with EPERM), as Docker's default seccomp profile has it:
// keys outlive processes (the user's keyrings, the persistent keyring kept
// three days), so one pull request's case could leave keys for the next,
// read the agent's session keyring it inherits, fill the user's key quota,
// or make the user's keyrings unwritable. Installing the filter as that
// user needs no_new_privs, which also keeps set-user-ID programs from
// raising the case's rights. On x86-64 only (the filter names its system
// call numbers, i386's and x32's included); elsewhere nothing is filtered.
#if defined(__x86_64__)
constexpr uint32_t kX32Bit = 0x40000000;
constexpr uint32_t kI386AddKey = 286, kI386RequestKey = 287, kI386Keyctl = 288;
const sock_filter kNoKeyrings[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 7, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),  // else: allow
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~kX32Bit),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_add_key, 8, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_request_key, 7, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_keyctl, 6, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),  // i386
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kI386AddKey, 0, 2),
    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, kI386Keyctl, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),  // x86-64 and x32: the three above
};
static_assert(kI386RequestKey == kI386AddKey + 1 && kI386Keyctl == kI386AddKey + 2);
#endif

// Installs kNoKeyrings on this task; false (errno set) if it could not be.
bool ForbidKeyrings() {
#if defined(__x86_64__)
  const sock_fprog program{static_cast<unsigned short>(std::size(kNoKeyrings)), const_cast<sock_filter*>(kNoKeyrings)};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
#else
  return true;
#endif
}

// The child's side of a spawn. Runs after fork, or in the agent's own memory
// after clone(CLONE_VM | CLONE_VFORK): no allocation, no locks, no handlers.
[[noreturn]] void ChildExec(ChildSetup* s) {
  // A session of its own, not only a process group: a session leader cannot
  // move to another group (setpgid into a group its child made took it out
  // of reach of every killpg, timeout and cancel alike), and the case gets
  // no controlling terminal, so it cannot read what is typed at an agent
  // started from a shell, nor write to it.
  if (setsid() < 0) setpgid(0, 0);
  // No ambient capabilities: the packaged unit gives the agent CAP_PERFMON
  // (it attaches the counters itself), and ambient ones pass through exec
  // to a case of the agent's own user.
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  // The case dies with the agent thread that started it, rather than running
  // on unwatched (and disturbing the next agent's numbers).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != s->parent) _exit(127);  // the agent died before prctl
  // A case starts with default signal dispositions, whatever the agent set;
  // in the vfork case no agent handler may ever run on this stack.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa;
    if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL) {
      sa.sa_handler = SIG_DFL;
      sa.sa_flags = 0;
      sigaction(sig, &sa, nullptr);
    }
  }
  dup2(s->stdin_fd, 0);
  dup2(s->stdout_fd, 1);
  dup2(s->stderr_fd, 2);
  int err = 0;
  char step = 0;
  // "0" moves the writer; with CLONE_VM the agent's memory stays charged to
  // the agent (the mm's owner), and the case's own mm starts at exec.
  for (size_t i = 0; i < s->join_count && !step; ++i) {
    if (s->join_fds[i] != s->born_in_fd && write(s->join_fds[i], "0", 1) != 1) {
      err = errno;
      step = 'g';
    }
  }
  // Should the host run out of memory, the kernel kills the case first, not
  // the agent (which would lose its lease and every later case) or a
  // coordinator on the same host; as a CI runner does for a job's processes.
  // Raising the score needs no privilege; done before any change of user.
  if (const int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); adj >= 0) {
    [[maybe_unused]] ssize_t n = write(adj, kCaseOomScoreAdj, sizeof kCaseOomScoreAdj - 1);
    close(adj);
  }
  if (s->go_fd >= 0) {
    char go;
    while (read(s->go_fd, &go, 1) < 0 && errno == EINTR) {
    }
  }
  // After the go-ahead: the agent attaches the counter to a process of its
  // own user (another user's needs CAP_PERFMON), and enable_on_exec leaves
  // the switch out of the count.
  if (!step && s->max_tasks) {
    const struct rlimit tasks = {s->max_tasks, s->max_tasks};
    if (setrlimit(RLIMIT_NPROC, &tasks) != 0) {
      err = errno;
      step = 'l';
    }
  }
  if (!step && s->switch_user) {
    if (!SwitchUser(*s)) {
      err = errno;
      step = 'u';
    } else {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a change of user clears it
      if (getppid() != s->parent) _exit(127);
      if (!ForbidKeyrings()) {
        err = errno;
        step = 'k';
      }
    }
  }
  // Descriptors the agent holds without close-on-exec (inherited from
  // whoever started it) are not the case's; closed at exec, so that the
  // failure report (report_fd) still works until then.
  syscall(SYS_close_range, 3u, ~0u, kCloseRangeCloexec);
  sigset_t none;
  sigemptyset(&none);
  if (!step && s->cwd && chdir(s->cwd) != 0) {
    err = errno;
    step = 'c';
  }
  if (!step) {
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (s->go_fd < 0) s->exec_at = Clock::now();  // clock_gettime: async-signal-safe
    execve(s->program, s->argv, s->envp);
    err = errno;
    step = 'e';
  }
  if (s->report_fd >= 0) {
    char report[1 + sizeof(int)];
    report[0] = step;
    memcpy(report + 1, &err, sizeof err);
    [[maybe_unused]] ssize_t n = write(s->report_fd, report, sizeof report);
  } else {
    s->child_errno = err;
    s->failed_step = step;
  }
  _exit(127);
}

int ChildMain(void* setup) { ChildExec(static_cast<ChildSetup*>(setup)); }

struct Spawned {
  pid_t pid = -1;  // -1: nothing was started (see error)
  std::string error;
  int child_errno = 0;   // the child started but could not exec
  char failed_step = 0;  // 'c' chdir, 'e' exec, 0 ok
};

#if defined(__x86_64__) && defined(SYS_clone3)
// struct clone_args of <linux/sched.h> up to `cgroup` (CLONE_ARGS_SIZE_VER2);
// that header's CLONE_* macros clash with <sched.h>'s.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

// clone3 that runs fn(arg) in the child on the stack in *args, as glibc's
// clone() does for clone(2) (glibc has no clone3 wrapper): the system call
// returns in the child on a new, empty stack, where no compiled code of this
// function may run. fn must not return. -1 with errno if no child was made.
pid_t Clone3(CloneArgs* args, int (*fn)(void*), void* arg) {
  long ret;
  register long fn_reg asm("r12") = reinterpret_cast<long>(fn);
  register long arg_reg asm("r13") = reinterpret_cast<long>(arg);
  asm volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xorl %%ebp, %%ebp\n\t"  // the child: outermost frame on its own stack
      "movq %%r13, %%rdi\n\t"
      "callq *%%r12\n\t"
      "movl %%eax, %%edi\n\t"
      "movl $60, %%eax\n\t"  // SYS_exit, should fn ever return
      "syscall\n\t"
      "hlt\n"
      "1:\n\t"
      : "=a"(ret)
      : "0"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof(CloneArgs)), "r"(fn_reg), "r"(arg_reg)
      : "rcx", "r11", "memory");
  if (ret < 0) {
    errno = static_cast<int>(-ret);
    return -1;
  }
  return static_cast<pid_t>(ret);
}
#endif

// The vfork-style child, born in the run's v2 group where the kernel allows:
// joining by a cgroup.procs write takes the global cgroup_threadgroup_rwsem
// for writing, which waits for an RCU grace period whenever that lock was
// idle (8-17 ms at times here, between one case's end and the next one's start).
pid_t CloneVfork(ChildSetup& setup, char* stack, size_t stack_bytes, const RunCgroup* group) {
#if defined(__x86_64__) && defined(SYS_clone3)
  if (group && group->v2_folder_fd() >= 0) {
    setup.born_in_fd = group->v2_join_fd();
    CloneArgs args{};
    args.flags = CLONE_VM | CLONE_VFORK | kCloneIntoCgroup;
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<uint64_t>(stack);
    args.stack_size = stack_bytes;
    args.cgroup = static_cast<uint64_t>(group->v2_folder_fd());
    const pid_t pid = Clone3(&args, ChildMain, &setup);
    if (pid >= 0) return pid;
    setup.born_in_fd = -1;  // no clone3 here (ENOSYS, a seccomp filter): the child joins by writing
  }
#else
  (void)group;
#endif
  return clone(ChildMain, stack + stack_bytes, CLONE_VM | CLONE_VFORK | SIGCHLD, &setup);
}

// clone(CLONE_VM | CLONE_VFORK): the agent thread waits until the child has
// exec'd (or failed), as posix_spawn does. *start is when the child was about to exec.
Spawned SpawnVfork(ChildSetup& setup, const RunCgroup* group, Clock::time_point* start) {
  Spawned out;
  // The child's stack, left uninitialised: zeroing 256 KiB per run is work for nothing.
  constexpr size_t kStackBytes = 256 * 1024;
  std::unique_ptr<char[]> stack(new char[kStackBytes]);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);  // no signal may reach the child before it resets handlers
  out.pid = CloneVfork(setup, stack.get(), kStackBytes, group);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (out.pid < 0) {
    out.error = absl::StrCat("clone: ", std::strerror(clone_errno));
    return out;
  }
  out.child_errno = setup.child_errno;
  out.failed_step = setup.failed_step;
  *start = setup.exec_at == Clock::time_point{} ? Clock::now() : setup.exec_at;  // unset: it never got to exec
  return out;
}

// fork, attach the instruction counter, then let the child exec.
// *start is taken after the counter is attached, just before the go-ahead.
Spawned SpawnWithCounter(ChildSetup& setup, int* counter_fd, std::string* counter_error, Clock::time_point* start) {
  Spawned out;
  int go_pipe[2], report_pipe[2];
  if (pipe2(go_pipe, O_CLOEXEC) || pipe2(report_pipe, O_CLOEXEC)) {
    out.error = absl::StrCat("pipe: ", std::strerror(errno));
    return out;
  }
  setup.go_fd = go_pipe[0];
  setup.report_fd = report_pipe[1];
  out.pid = fork();
  if (out.pid == 0) ChildExec(&setup);
  const int fork_errno = errno;
  close(go_pipe[0]);
  close(report_pipe[1]);
  if (out.pid < 0) {
    out.error = absl::StrCat("fork: ", std::strerror(fork_errno));
    close(go_pipe[1]);
    close(report_pipe[0]);
    return out;
  }
  // No setpgid here: the child's setsid (before it waits for the go-ahead)
  // would fail in a group it already leads. Its session exists by the time
  // this returns, since that waits for the exec.
  auto fd = OpenInstructionCounter(out.pid);
  if (fd.ok())
    *counter_fd = *fd;
  else
    *counter_error = std::string(fd.status().message());
  *start = Clock::now();
  [[maybe_unused]] ssize_t n = write(go_pipe[1], "g", 1);
  close(go_pipe[1]);
  // The report pipe closes on a successful exec (CLOEXEC) or carries the failure.
  char report[1 + sizeof(int)];
  ssize_t got;
  while ((got = read(report_pipe[0], report, sizeof report)) < 0 && errno == EINTR) {
  }
  close(report_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof report)) {
    out.failed_step = report[0];
    memcpy(&out.child_errno, report + 1, sizeof(int));
  }
  return out;
}

// The child's end as wait4 reported it: how it ended, its times and rusage peak.
void RecordExit(int status, const rusage& usage, Clock::time_point start, ExecResult* result) {
  result->wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  result->user_cpu_s = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
  result->sys_cpu_s = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
  result->peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  if (WIFEXITED(status)) {
    result->end = ExecResult::End::kExited;
    result->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result->end = ExecResult::End::kSignaled;
    result->signal = WTERMSIG(status);
  }
}

// Kills and reaps whatever the child left behind: the whole run's cgroup
// (then its peak memory is the case's) or, without one, the child's process
// group. Adds the CPU times of what it reaped, and of `reaped` (the orphans
// reaped while the case ran), to the case's.
void KillLeftovers(RunCgroup* group, const CgroupParent& cgroups, pid_t pid, CpuTimes reaped, ExecResult* result) {
  if (group) {
    result->leftovers_killed = group->KillAndReap(&reaped);
    if (auto peak = group->PeakMemoryBytes()) {
      result->peak_rss_bytes = *peak;
      result->memory_source = cgroups.memory_source();
    }
  } else {
    killpg(pid, SIGKILL);
    for (;;) {
      struct rusage usage {};
      int status = 0;
      if (wait4(-pid, &status, 0, &usage) > 0) {
        reaped.Add(usage);
        // Those that had exited by themselves are zombies, not leftovers.
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++result->leftovers_killed;
      } else if (errno != EINTR) {
        break;
      }
    }
  }
  // Orphans that had exited before the kill: a zombie is in no group's
  // cgroup.procs (in v1 hierarchies /proc shows it in the root group).
  ReapOrphans(&reaped);
  result->user_cpu_s += reaped.user_s;
  result->sys_cpu_s += reaped.sys_s;
}

// How the wait ended: `stopped` when perfgate ended the child (timeout or
// cancel, `why`), not the child itself.
struct Supervised {
  bool stopped = false;
  ExecResult::End why = ExecResult::End::kExited;
};

// How often a case's exited orphans are reaped while it runs (agent/orphans.h):
// every 100 ms while a reap finds some, less often (up to every 1.6 s) while
// none do. Each wake costs the agent about 0.1 ms of CPU here: at a steady
// 100 ms, 1 ms a second beside a case that left nothing (9 ms a second
// with timeouts rounded down, below), against 0.3 ms for a case of 1 s now.
constexpr int64_t kReapOrphansFirstMs = 100;
constexpr int64_t kReapOrphansMostMs = 1600;

// Waits for the child to exit, reading its output meanwhile; at the timeout
// or on cancel its process group gets SIGTERM, and SIGKILL after the grace
// period. Records the exit in `result`. Reaps the case's orphans that
// exited meanwhile (kReapOrphansFirstMs), adding their CPU times to *reaped.
Supervised Supervise(const ExecSpec& spec, const CancelToken* cancel, pid_t pid, int pidfd, Clock::time_point start,
                     Capture* out, Capture* err, ExecResult* result, CpuTimes* reaped) {
  bool exited = false;
  int64_t reap_every_ms = kReapOrphansFirstMs;
  Clock::time_point reap_at = start + std::chrono::milliseconds(reap_every_ms);
  bool term_sent = false, kill_sent = false;
  ExecResult::End forced_end = ExecResult::End::kExited;
  Clock::time_point deadline =
      spec.timeout_ms ? start + std::chrono::milliseconds(spec.timeout_ms) : Clock::time_point::max();
  Clock::time_point kill_at = Clock::time_point::max();

  auto stop_group = [&](ExecResult::End why) {
    if (term_sent) return;
    forced_end = why;
    killpg(pid, SIGTERM);
    term_sent = true;
    kill_at = Clock::now() + std::chrono::milliseconds(spec.kill_grace_ms);
  };

  while (!exited) {
    pollfd fds[4];
    int nfds = 0;
    int pid_slot = -1, out_slot = -1, err_slot = -1, cancel_slot = -1;
    if (pidfd >= 0) fds[pid_slot = nfds++] = {pidfd, POLLIN, 0};
    if (out->fd >= 0) fds[out_slot = nfds++] = {out->fd, POLLIN, 0};
    if (err->fd >= 0) fds[err_slot = nfds++] = {err->fd, POLLIN, 0};
    if (cancel && !term_sent) fds[cancel_slot = nfds++] = {cancel->fd(), POLLIN, 0};

    Clock::time_point next = std::min(term_sent ? kill_at : deadline, reap_at);
    int64_t wait_ms = next == Clock::time_point::max() ? -1 : MsUntil(next);
    if (pidfd < 0 && (wait_ms < 0 || wait_ms > 50)) wait_ms = 50;  // no pidfd (old kernel): reap by polling
    int ready = poll(fds, nfds, static_cast<int>(wait_ms));
    if (ready < 0 && errno != EINTR) break;

    if (out_slot >= 0 && (fds[out_slot].revents & (POLLIN | POLLHUP | POLLERR))) out->ReadSome();
    if (err_slot >= 0 && (fds[err_slot].revents & (POLLIN | POLLHUP | POLLERR))) err->ReadSome();
    if (cancel_slot >= 0 && (fds[cancel_slot].revents & POLLIN)) stop_group(ExecResult::End::kCancelled);

    if ((pid_slot >= 0 && (fds[pid_slot].revents & POLLIN)) || pidfd < 0) {
      int status = 0;
      rusage usage{};
      pid_t r = wait4(pid, &status, pidfd < 0 ? WNOHANG : 0, &usage);
      if (r == pid) {
        exited = true;
        RecordExit(status, usage, start, result);
        break;
      }
    }
    Clock::time_point now = Clock::now();
    if (now >= reap_at) {
      reap_every_ms = ReapOrphans(reaped) ? kReapOrphansFirstMs : std::min(2 * reap_every_ms, kReapOrphansMostMs);
      reap_at = now + std::chrono::milliseconds(reap_every_ms);
    }
    if (!term_sent && now >= deadline) stop_group(ExecResult::End::kTimedOut);
    if (term_sent && !kill_sent && now >= kill_at) {
      killpg(pid, SIGKILL);
      if (pidfd >= 0)
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);  // the case itself, whatever its group
      kill_sent = true;
      kill_at = Clock::time_point::max();
    }
  }
  return {term_sent, forced_end};
}

// The case's stdout and stderr pipes; none left open if either cannot be made.
absl::Status OpenPipes(int out_pipe[2], int err_pipe[2]) {
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

// Where the child starts: its folder, its standard streams and the run's groups to join.
void SetChildContext(const ExecSpec& spec, int stdout_fd, int stderr_fd, const RunCgroup* group, ChildSetup* setup) {
  setup->cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  // Opened once per process: every case reads the same empty stdin (-1 if it cannot be opened: the case then
  // keeps the agent's, as it did when each case opened its own).
  static const int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  setup->stdin_fd = dev_null;
  setup->stdout_fd = stdout_fd;
  setup->stderr_fd = stderr_fd;
  setup->parent = getpid();
  if (group) {
    setup->join_fds = group->join_fds().data();
    setup->join_count = group->join_fds().size();
  }
  if (spec.user) {
    setup->switch_user = true;
    setup->uid = spec.user->uid;
    setup->gid = spec.user->gid;
    setup->groups = spec.user->groups.data();
    setup->group_count = spec.user->groups.size();
    setup->max_tasks = spec.user->max_tasks;
  }
}

// The cgroup hierarchy a case is run under: its run's supplies', the spec's, or the machine's.
const CgroupParent& CgroupsOf(const ExecSpec& spec) {
  if (spec.supplies) return spec.supplies->cgroups();
  return spec.cgroups ? *spec.cgroups : DefaultCgroupParent();
}

// The case's own group, where the hierarchy makes groups; null where it does not.
absl::StatusOr<std::unique_ptr<RunCgroup>> GroupFor(const ExecSpec& spec, const CgroupParent& cgroups) {
  if (!cgroups.makes_groups()) return std::unique_ptr<RunCgroup>();
  return spec.supplies ? spec.supplies->TakeGroup() : RunCgroup::Create(cgroups);
}

// " as --case-user 'NAME'" when the case runs as one: the likeliest cause of EACCES.
std::string AsUser(const ExecSpec& spec) {
  return spec.user ? absl::StrCat(" (as --case-user '", spec.user->name, "')") : "";
}

// What the child could not do before exec, in words.
std::string ChildFailure(const Spawned& spawned, const ExecSpec& spec, const std::string& program) {
  const char* why = std::strerror(spawned.child_errno);
  switch (spawned.failed_step) {
    case 'g':
      return absl::StrCat("cannot join the run's cgroup: ", why);
    case 'l':
      return absl::StrCat("cannot limit the case's tasks to --case-max-tasks ", spec.user ? spec.user->max_tasks : 0,
                          ": ", why);
    case 'u':
      return absl::StrCat("cannot become the case's user '", spec.user ? spec.user->name : "?", "': ", why);
    case 'k':
      return absl::StrCat("cannot keep the case from the kernel's keyrings (seccomp): ", why);
    case 'c':
      return absl::StrCat("cannot enter working directory '", spec.cwd, "': ", why, AsUser(spec));
    default:
      return absl::StrCat("cannot execute '", program, "': ", why, AsUser(spec));
  }
}

// Only the last kTailBytes of each stream are kept as its tail.
void KeepTails(ExecResult* result) {
  for (std::string* tail : {&result->out_tail, &result->err_tail}) {
    if (tail->size() > kTailBytes) tail->erase(0, tail->size() - kTailBytes);
  }
}

void ReadCounter(int counter_fd, ExecResult* result) {
  absl::StatusOr<uint64_t> count = ReadAndCloseCounter(counter_fd);
  if (count.ok()) {
    result->instructions = *count;
  } else {
    result->instructions_error = std::string(count.status().message());
  }
}

}  // namespace

CancelToken::CancelToken() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
CancelToken::~CancelToken() { close(fd_); }
void CancelToken::Cancel() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
}
bool CancelToken::cancelled() const {
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

std::string ResolveProgram(const std::string& program, const std::string& path_env) {
  if (program.find('/') != std::string::npos) return program;
  for (const auto& dir : absl::StrSplit(path_env.empty() ? "/usr/bin:/bin" : path_env, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ExecResult::Describe() const {
  switch (end) {
    case End::kExited:
      return absl::StrCat("exit ", exit_code);
    case End::kSignaled:
      return absl::StrCat("killed by SIG", SignalName(signal));
    case End::kTimedOut:
      return "timed out";
    case End::kCancelled:
      return "cancelled";
    case End::kSpawnFailed:
      return absl::StrCat("could not start: ", spawn_error);
  }
  return "?";
}

// The variables a client's credentials come from (transport/, cli/security_flags.cc).
constexpr const char* kCredentialVariables[] = {"PERFGATE_TOKEN", "PERFGATE_TOKEN_FILE", "PERFGATE_TLS_KEY"};

bool IsCredentialVariable(std::string_view name) {
  return std::find(std::begin(kCredentialVariables), std::end(kCredentialVariables), name) !=
         std::end(kCredentialVariables);
}

void HideCredentialsFromCases() {
  for (const char* name : kCredentialVariables) {
    if (char* value = std::getenv(name)) std::memset(value, 0, std::strlen(value));
  }
  prctl(PR_SET_DUMPABLE, 0);
}

ExecResult Execute(const ExecSpec& spec, const CancelToken* cancel) {
  // Orphans of a case are re-parented to us, not to init, so they can be
  // killed and reaped with their group.
  static std::once_flag subreaper;
  std::call_once(subreaper, [] { prctl(PR_SET_CHILD_SUBREAPER, 1); });
  ExecResult result;
  if (spec.argv.empty()) {
    result.spawn_error = "empty command";
    return result;
  }
  // Everything the child needs is built before fork: after it, the child of
  // a multi-threaded process may only make async-signal-safe calls.
  std::vector<std::string> env = MergedEnvironment(spec.env);
  const std::string program = ResolveProgram(spec.argv[0], LookupEnv(env, "PATH"));
  if (program.empty()) {
    result.spawn_error = absl::StrCat("'", spec.argv[0], "' not found in PATH");
    return result;
  }
  std::vector<std::string> argv_storage = spec.argv;
  std::vector<char*> argv = CStrings(argv_storage);
  std::vector<char*> envp = CStrings(env);

  const CgroupParent& cgroups = CgroupsOf(spec);
  absl::StatusOr<std::unique_ptr<RunCgroup>> group = GroupFor(spec, cgroups);
  if (!group.ok()) {
    result.spawn_error = std::string(group.status().message());
    return result;
  }

  int out_pipe[2], err_pipe[2];
  if (absl::Status pipes = OpenPipes(out_pipe, err_pipe); !pipes.ok()) {
    result.spawn_error = std::string(pipes.message());
    return result;
  }
  ChildSetup setup;
  setup.program = program.c_str();
  setup.argv = argv.data();
  setup.envp = envp.data();
  SetChildContext(spec, out_pipe[1], err_pipe[1], group->get(), &setup);

  // A hardware counter must be attached between fork and exec, so counted
  // runs fork and wait for a go-ahead; all others spawn vfork-style, which
  // costs far less for a large agent (no copy of its page tables to tear down).
  int counter_fd = -1;
  Clock::time_point start;
  std::unique_lock own_children = OwnChildren::Hold();
  Spawned spawned = spec.count_instructions ? SpawnWithCounter(setup, &counter_fd, &result.instructions_error, &start)
                                            : SpawnVfork(setup, group->get(), &start);
  if (spawned.pid > 0) OwnChildren::Add(spawned.pid, own_children);
  own_children.unlock();
  for (int fd : {out_pipe[1], err_pipe[1]}) close(fd);
  const pid_t pid = spawned.pid;
  if (pid < 0) {
    result.spawn_error = spawned.error;
    close(out_pipe[0]);
    close(err_pipe[0]);
    if (counter_fd >= 0) close(counter_fd);
    return result;
  }
  const bool spawn_failed = spawned.failed_step != 0;
  if (spawn_failed) result.spawn_error = ChildFailure(spawned, spec, program);

  if (!spawn_failed && spec.started) spec.started();
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
  Capture out{out_pipe[0], spec.output_limit_bytes, &result.out, &result.out_tail, &result.out_dropped};
  Capture err{err_pipe[0], spec.output_limit_bytes, &result.err, &result.err_tail, &result.err_dropped};

  CpuTimes reaped;
  const Supervised supervised = Supervise(spec, cancel, pid, pidfd, start, &out, &err, &result, &reaped);
  // Whatever the child left behind (daemons, stuck grandchildren) goes with
  // it, and is reaped before we return: the next sample must not share the
  // machine with leftovers. As a subreaper we inherit those orphans. The
  // run's cgroup holds them all, setsid or not; without one, only the
  // child's process group can be found. Then take what is already in the
  // pipes without waiting for EOF, which a process that escaped the process
  // group could hold off forever.
  KillLeftovers(group->get(), cgroups, pid, reaped, &result);
  OwnChildren::Forget(pid);  // reaped by now, by Supervise or with its group
  // Empty now: its removal (a slow rmdir in the v1 memory hierarchy) can wait for the supplier's Tidy().
  if (*group && spec.supplies) spec.supplies->RetireGroup(*std::move(group));
  for (Capture* c : {&out, &err}) c->Drain();
  if (pidfd >= 0) close(pidfd);
  KeepTails(&result);
  if (counter_fd >= 0) ReadCounter(counter_fd, &result);
  if (spawn_failed) {
    result.end = ExecResult::End::kSpawnFailed;
    result.instructions.reset();
  } else if (supervised.stopped) {
    result.end = supervised.why;
  }
  return result;
}

}  // namespace perfgate
