// The processes a dispatch part drives, and what /proc says of them: the
// coordinator and agents it starts (killed if the bench exits early), their
// CPU and memory, and a bare spawn-exit cycle to compare an agent with.
#ifndef PERFGATE_BENCH_DISPATCH_PROCESSES_H_
#define PERFGATE_BENCH_DISPATCH_PROCESSES_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace perfgate::dispatch {

// CLOCK_MONOTONIC (steady_clock), ns: the clock the stamping cases print.
int64_t NowNs();

// utime + stime (and, with children, what its reaped children used) of a live process, seconds.
double ProcCpuSeconds(pid_t pid, bool children);

double RssMb(pid_t pid);

// The most resident memory the process held since it started or since the
// last ResetPeakRss (VmHWM): a snapshot of VmRSS swings by a tenth with the
// number of gRPC threads alive at that instant, the peak does not.
double PeakRssMb(pid_t pid);

// Starts a new peak (proc(5): writing 5 to clear_refs resets VmHWM to VmRSS).
// False where the kernel refused: the peak then counts from the start, an upper bound.
bool ResetPeakRss(pid_t pid);

double LoadAverage();

// The largest size a file reached while this lived, read every 10 ms on a
// thread of its own (0 while the file is missing): the store's WAL, which
// SQLite starts over and cuts back, so its size at the end says nothing.
class FileSizePeak {
 public:
  explicit FileSizePeak(std::string path) : path_(std::move(path)), thread_([this] { Sample(); }) {}
  ~FileSizePeak() { Stop(); }
  // Stops sampling; the largest size seen.
  uintmax_t Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  void Sample();

  const std::string path_;
  std::atomic<bool> stop_{false};
  uintmax_t peak_ = 0;  // written by the thread until joined
  std::thread thread_;
};

// A child process whose stdout we read for its first line.
struct Child {
  pid_t pid = -1;
  std::string first_line;
};

// Kills every child not stopped yet: for std::atexit, so that no
// coordinator or agent outlives a bench that failed part way.
void KillChildren();

// Starts argv[0] with argv; with read_first_line, waits for its first line of
// stdout, else its output goes to /dev/null.
Child Spawn(const std::vector<std::string>& argv, bool read_first_line);

// SIGTERM, then waits for it.
void Stop(Child& child);

struct Coordinator {
  Child process;
  std::string address;
  std::string db;
};

// `perfgate coordinator` on a free loopback port with its store at `db`;
// exits the bench (3) if it does not start.
Coordinator StartCoordinator(const std::string& perfgate, const std::string& db);

// `n` `perfgate agent` processes of `pool`, ids POOL-0 .. POOL-(n-1).
std::vector<Child> StartAgents(const std::string& perfgate, const Coordinator& c, int n, const std::string& pool);

// Enough for the bare cycle's own p99 to rest on five periods.
constexpr int kBareCycles = 500;

// Periods of n bare spawn-exit cycles of `argv` run back to back, in ms:
// the period between starts with no coordinator.
std::vector<double> BareCyclesMs(const std::vector<std::string>& argv, int n);

}  // namespace perfgate::dispatch

#endif  // PERFGATE_BENCH_DISPATCH_PROCESSES_H_
