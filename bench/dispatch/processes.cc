#include "bench/dispatch/processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/executor.h"

namespace perfgate::dispatch {
namespace {

using Clock = std::chrono::steady_clock;

// A field of /proc/PID/status in kB ("VmRSS:", "VmHWM:"), as MB.
double StatusMb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::atof(line.c_str() + std::strlen(field)) / 1024;
  }
  return 0;
}

// Children not stopped yet: killed if the bench exits early (a failed part
// calls std::exit), so no coordinator or agent outlives it.
std::mutex g_children_mu;
std::set<pid_t> g_children;

}  // namespace

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double ProcCpuSeconds(pid_t pid, bool children) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(all.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  // Fields from 3 (state) on: utime is field 14, i.e. index 11 here.
  if (f.size() < 15) return 0;
  double ticks = std::stod(f[11]) + std::stod(f[12]);
  if (children) ticks += std::stod(f[13]) + std::stod(f[14]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RssMb(pid_t pid) { return StatusMb(pid, "VmRSS:"); }

double PeakRssMb(pid_t pid) { return StatusMb(pid, "VmHWM:"); }

bool ResetPeakRss(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

void FileSizePeak::Sample() {
  while (!stop_) {
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(path_, error);
    if (!error) peak_ = std::max(peak_, size);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

double LoadAverage() {
  double l = 0;
  std::ifstream("/proc/loadavg") >> l;
  return l;
}

void KillChildren() {
  std::lock_guard lock(g_children_mu);
  for (pid_t pid : g_children) kill(pid, SIGKILL);
}

Child Spawn(const std::vector<std::string>& argv, bool read_first_line) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  Child child;
  child.pid = fork();
  if (child.pid == 0) {
    dup2(fds[1], 1);
    if (!read_first_line) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
    }
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  if (child.pid > 0) {
    std::lock_guard lock(g_children_mu);
    g_children.insert(child.pid);
  }
  if (read_first_line) {
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') child.first_line += c;
  }
  close(fds[0]);
  return child;
}

void Stop(Child& child) {
  if (child.pid <= 0) return;
  kill(child.pid, SIGTERM);
  waitpid(child.pid, nullptr, 0);
  std::lock_guard lock(g_children_mu);
  g_children.erase(child.pid);
  child.pid = -1;
}

Coordinator StartCoordinator(const std::string& perfgate, const std::string& db) {
  Coordinator c;
  c.db = db;
  c.process = Spawn({perfgate, "coordinator", "--listen", "127.0.0.1:0", "--db", db}, true);
  // "perfgate coordinator: listening on HOST:PORT (db ...)"
  const std::string marker = "listening on ";
  const size_t at = c.process.first_line.find(marker);
  if (at == std::string::npos) {
    std::fprintf(stderr, "dispatch: coordinator did not start: %s\n", c.process.first_line.c_str());
    std::exit(3);
  }
  const std::string rest = c.process.first_line.substr(at + marker.size());
  c.address = rest.substr(0, rest.find(' '));
  return c;
}

std::vector<Child> StartAgents(const std::string& perfgate, const Coordinator& c, int n, const std::string& pool) {
  std::vector<Child> agents;
  for (int i = 0; i < n; ++i) {
    agents.push_back(Spawn(
        // --insecure: the loopback port the bench's own coordinator holds (TCP, as every figure in
        // docs/performance-log.md was measured).
        {perfgate, "agent", "--coordinator", c.address, "--insecure", "--id", absl::StrCat(pool, "-", i), "--pool",
         pool},
        false));
  }
  return agents;
}

std::vector<double> BareCyclesMs(const std::vector<std::string>& argv, int n) {
  perfgate::ExecSpec spec;
  spec.argv = argv;
  std::vector<double> periods;
  auto previous = Clock::now();
  for (int i = 0; i <= n; ++i) {
    perfgate::Execute(spec);
    const auto now = Clock::now();
    if (i > 0) periods.push_back(std::chrono::duration<double, std::milli>(now - previous).count());
    previous = now;
  }
  return periods;
}

}  // namespace perfgate::dispatch
