// The coordinator at fleet scale: every row of issue #11's table, measured
// against a coordinator in its own process (so its CPU and memory are its
// own, read from /proc), driven over loopback gRPC.
//
//   load       64 load-agent sessions (bench/load_agent.h: the real protocol,
//              no process spawned) complete --runs runs of --cases cases on
//              branch main: leases/s, coordinator CPU per lease, its peak
//              RSS during the first and during the last run (VmHWM, reset
//              before the last), store bytes per case, and the WAL's
//              largest size while load agents ran (this part and the
//              first half of the next).
//   history    --history-runs more such runs (8), submitted at once, while a
//              second client fetches the history of every key of the run in
//              a loop: lease rate inside those calls against outside, and
//              the longest gap in which no session got a lease. Then the
//              same with --e2e-agents real `perfgate agent` processes on the
//              same store, timed from inside the cases (each stamps its own
//              start and end: bench_cases/src/stamp.cc): case starts inside
//              the calls against outside, and the longest moment in which
//              no case ran on any agent. Beside each longest gap, the part's
//              rate and the longest gap that as many starts at random times
//              at that rate would give (it grows with ln N).
//   e2e        --e2e-agents real `perfgate agent` processes run
//              --e2e-cases trivial cases (/bin/true): cases/s and the
//              coordinator's share of all CPU spent (agents and cases
//              included); then its CPU per bare call (a Heartbeat) when
//              calls come one at a time, as each agent's do.
//   next       one real agent runs cases that print their own start time;
//              gap between consecutive starts beyond a bare spawn-exit cycle
//              of the same command (its p50, from cycles run half before the
//              agent's cases and half after), beside that cycle's own p99
//              beyond its p50: the p99 an agent that added nothing would read.
//   makespan   8 load sessions, cases of simulated duration with the two
//              long ones last in the file; the second run (with history)
//              against max(longest case, total work / agents).
//
//   dispatch [--cases N] [--agents N] [--runs N] [--e2e-agents N]
//            [--e2e-cases N] [--next-cases N] [--history-runs N] [--samples N] [--json FILE] [--perfgate PATH]
//            [--before PATH]   (another perfgate binary, measured beside it part by part)
//            [--only-next]     (only the `next` part: fast iteration on the agent's hot path)
//            [--stamp-case PATH] (the history part's case instead of bench_cases/stamp: any program
//                               printing "START END", its first and last CLOCK_MONOTONIC ns, on stdout)
//            [--stamps FILE]   (every stamped case of the history part: agent, start ns, end ns;
//                               and each history call, as agent "history-call"; FILE.load: the
//                               same for the load sessions' leases, as agent "lease")
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/executor.h"
#include "bench/load_agent.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "perfgate/v1/gate.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = perfgate::v1;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

// utime + stime (and, with children, what its reaped children used) of a live process, seconds.
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

// A field of /proc/PID/status in kB ("VmRSS:", "VmHWM:"), as MB.
double StatusMb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::atof(line.c_str() + std::strlen(field)) / 1024;
  }
  return 0;
}

double RssMb(pid_t pid) { return StatusMb(pid, "VmRSS:"); }

// The most resident memory the process held since it started or since the
// last ResetPeakRss (VmHWM): a snapshot of VmRSS swings by a tenth with the
// number of gRPC threads alive at that instant, the peak does not.
double PeakRssMb(pid_t pid) { return StatusMb(pid, "VmHWM:"); }

// Starts a new peak (proc(5): writing 5 to clear_refs resets VmHWM to VmRSS).
// False where the kernel refused: the peak then counts from the start, an upper bound.
bool ResetPeakRss(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

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
  void Sample() {
    while (!stop_) {
      std::error_code error;
      const uintmax_t size = std::filesystem::file_size(path_, error);
      if (!error) peak_ = std::max(peak_, size);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  const std::string path_;
  std::atomic<bool> stop_{false};
  uintmax_t peak_ = 0;  // written by the thread until joined
  std::thread thread_;
};

double LoadAverage() {
  double l = 0;
  std::ifstream("/proc/loadavg") >> l;
  return l;
}

// A child process whose stdout we read for its first line.
struct Child {
  pid_t pid = -1;
  std::string first_line;
};

// Children not stopped yet: killed if the bench exits early (a failed part
// calls std::exit), so no coordinator or agent outlives it.
std::mutex g_children_mu;
std::set<pid_t> g_children;

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

struct Coordinator {
  Child process;
  std::string address;
  std::string db;
};

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

struct RunTimes {
  std::string run_id;
  double seconds = 0;
};

std::unique_ptr<v1::GateService::Stub> GateStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return v1::GateService::NewStub(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

v1::Suite TrivialSuite(const std::string& name, int cases, const std::string& program) {
  v1::Suite suite;
  suite.set_name(name);
  for (int i = 0; i < cases; ++i) {
    auto* c = suite.add_cases();
    c->set_name(absl::StrCat("case", i));
    c->add_argv(program);
    c->set_repeats(1);
    c->set_warmup(0);
    c->set_timeout_ms(30'000);
  }
  return suite;
}

// Submits and waits for the run to finish (watching without results).
RunTimes SubmitAndWait(v1::GateService::Stub& stub, const v1::Suite& suite, const std::string& branch) {
  v1::SubmitRunRequest request;
  *request.mutable_suite() = suite;
  request.set_branch(branch);
  request.set_commit("bench");
  const auto start = Clock::now();
  grpc::ClientContext submit;
  v1::SubmitRunResponse submitted;
  if (auto s = stub.SubmitRun(&submit, request, &submitted); !s.ok()) {
    std::fprintf(stderr, "dispatch: submit: %s\n", s.error_message().c_str());
    std::exit(3);
  }
  grpc::ClientContext watch_context;
  v1::WatchRunRequest watch;
  watch.set_run_id(submitted.run_id());
  watch.set_without_results(true);
  auto reader = stub.WatchRun(&watch_context, watch);
  v1::RunEvent event;
  bool finished = false;
  while (!finished && reader->Read(&event)) {
    finished = event.has_run_finished() ||
               (event.has_snapshot() && event.snapshot().state() != v1::RUN_STATE_RUNNING);
  }
  watch_context.TryCancel();
  reader->Finish().IgnoreError();
  if (!finished) {
    std::fprintf(stderr, "dispatch: lost the watch of %s\n", submitted.run_id().c_str());
    std::exit(3);
  }
  return {submitted.run_id(), std::chrono::duration<double>(Clock::now() - start).count()};
}

v1::Run FetchRun(v1::GateService::Stub& stub, const std::string& run_id) {
  grpc::ClientContext context;
  v1::GetRunRequest get;
  get.set_run_id(run_id);
  v1::Run run;
  if (auto s = stub.GetRun(&context, get, &run); !s.ok()) {
    std::fprintf(stderr, "dispatch: get run: %s\n", s.error_message().c_str());
    std::exit(3);
  }
  return run;
}

nlohmann::json Figure(double value, int agents, int cases, int runs) {
  return {{"value", value}, {"agents", agents}, {"cases", cases}, {"runs", runs}};
}

struct Options {
  int cases = 1000;
  int agents = 64;
  int runs = 10;
  int e2e_agents = 16;
  int e2e_cases = 2000;
  // A p99 from 300 gaps rests on its three largest; from 1,000, on ten.
  int next_cases = 1000;
  int history_runs = 8;  // runs at once while history is fetched
  // Samples per load-agent result; 1 is what the real agent sends for a `repeats: 1` case.
  int samples = 1;
  std::string json_path;
  std::string stamps_path;  // the history part's case and history call spans, a line each, for a closer look at gaps
  std::string stamp_case = PERFGATE_STAMP_CASE;  // the history part's case: prints "START END" (CLOCK_MONOTONIC ns)
  std::string perfgate = PERFGATE_BINARY;
  // Another perfgate binary (the code before a change) measured beside it, part by part.
  std::string before;
  bool only_next = false;
};

// Work while history calls were in flight against outside them, and the
// longest moment with nothing going on.
struct HistoryFigures {
  double rate_ratio = 0;
  double idle_max_ms = 0;
  double idle_max_at_ms = 0;  // when it began, after the part's first lease or case start
  // The same moment when no history call was in flight: what the machine does anyway.
  double idle_max_outside_ms = 0;
  double call_ms_p50 = 0;
  int calls = 0;
  // What chance alone gives: the part's starts (leases or case starts) a
  // second, and the longest gap expected among as many starts at random
  // times at that rate (exponential gaps: the harmonic number of the gaps
  // over the rate). The longest gap grows with ln N, so a longer part reads
  // longer moments on the same machine; beside the figure, this tells how
  // much of it the coordinator and agents add.
  double starts_per_s = 0;
  double chance_max_ms = 0;
};

using Spans = std::vector<std::pair<int64_t, int64_t>>;  // [begin, end], monotonic ns

// Whether any span overlaps (lo, hi).
bool Overlaps(const Spans& spans, int64_t lo, int64_t hi) {
  for (const auto& [b, e] : spans) {
    if (b < hi && e > lo) return true;
  }
  return false;
}

// Every key of the load suite's cases (the metrics a trivial case reports).
v1::HistoryRequest AllKeys(const Options& o) {
  v1::HistoryRequest request;
  request.set_branch("main");
  request.set_max_runs(30);
  for (int i = 0; i < o.cases; ++i) {
    for (const char* metric : {"wall_time", "user_cpu_time", "sys_cpu_time", "peak_rss"}) {
      auto* key = request.add_keys();
      key->set_pool("load");
      key->set_benchmark(absl::StrCat("case", i));
      key->set_metric(metric);
      key->set_source(std::string(metric) == "wall_time" ? "agent:clock"
                      : std::string(metric) == "peak_rss" ? "agent:cgroup"
                                                          : "agent:rusage");
    }
  }
  return request;
}

// Returns once the coordinator has written the history of every run that
// ended (a history call waits for those summaries): a run's memory includes
// its summary's (the first run's creates its series), so the RSS peaks of
// the first run and the last are each taken after it.
void WaitForSummaries(v1::GateService::Stub& stub) {
  Options first_case;
  first_case.cases = 1;
  const v1::HistoryRequest one = AllKeys(first_case);
  grpc::ClientContext context;
  v1::HistoryResponse response;
  if (!stub.GetHistory(&context, one, &response).ok()) std::fprintf(stderr, "dispatch: a history call failed\n");
}

// Another gate's client: fetches the history of every key in a loop, half
// the time in a call and half outside, so that both rates are measured.
class HistoryFetcher {
 public:
  HistoryFetcher(const std::string& address, v1::HistoryRequest request)
      : thread_([this, address, request = std::move(request)] {
          auto history = GateStub(address);
          while (!done_) {
            grpc::ClientContext context;
            v1::HistoryResponse response;
            const int64_t begin = NowNs();
            history->GetHistory(&context, request, &response).IgnoreError();
            calls_.emplace_back(begin, NowNs());
            std::this_thread::sleep_for(std::chrono::nanoseconds(calls_.back().second - begin));
          }
        }) {}
  // The calls made, once the one in flight has returned.
  Spans Stop() {
    done_ = true;
    thread_.join();
    return calls_;
  }

 private:
  std::atomic<bool> done_{false};
  Spans calls_;  // written by thread_ until Stop joins it
  std::thread thread_;
};

// Rate of `times` (sorted) inside the calls against outside them, over the span they cover.
double RateRatio(const std::vector<int64_t>& times, const Spans& calls) {
  if (times.size() < 2 || calls.empty()) return 0;
  const int64_t first = times.front(), last = times.back();
  double inside_ns = 0, inside_n = 0;
  for (const auto& [b, e] : calls) {
    const int64_t lo = std::max(b, first), hi = std::min(e, last);
    if (hi <= lo) continue;
    inside_ns += static_cast<double>(hi - lo);
    inside_n += static_cast<double>(std::upper_bound(times.begin(), times.end(), hi) -
                                    std::lower_bound(times.begin(), times.end(), lo));
  }
  const double outside_ns = static_cast<double>(last - first) - inside_ns;
  const double outside_n = static_cast<double>(times.size()) - inside_n;
  if (inside_ns <= 0 || outside_ns <= 0 || outside_n <= 0) return 0;
  return (inside_n / inside_ns) / (outside_n / outside_ns);
}

// REQUIRES: starts sorted.
void SetChance(const std::vector<int64_t>& starts, HistoryFigures* f) {
  if (starts.size() < 2 || starts.back() == starts.front()) return;
  const double gaps = static_cast<double>(starts.size() - 1);
  const double rate = gaps / ((starts.back() - starts.front()) / 1e9);
  constexpr double kEulerGamma = 0.5772156649;
  const double harmonic = std::log(gaps) + kEulerGamma + 1 / (2 * gaps);
  f->starts_per_s = rate;
  f->chance_max_ms = harmonic / rate * 1e3;
}

double CallP50Ms(const Spans& calls) {
  std::vector<double> ms;
  for (const auto& [b, e] : calls) ms.push_back((e - b) / 1e6);
  return Percentile(ms, 0.5);
}

// Load agents: the lease rate inside history calls against outside, and the
// longest gap between two leases reaching any session (a load session
// completes at once, so that gap is the coordinator's).
HistoryFigures LeaseFigures(std::vector<int64_t> arrivals, const Spans& calls) {
  std::sort(arrivals.begin(), arrivals.end());
  HistoryFigures f;
  f.calls = static_cast<int>(calls.size());
  f.rate_ratio = RateRatio(arrivals, calls);
  SetChance(arrivals, &f);
  for (size_t i = 1; i < arrivals.size(); ++i) {
    const double gap_ms = (arrivals[i] - arrivals[i - 1]) / 1e6;
    if (gap_ms > f.idle_max_ms) f.idle_max_at_ms = (arrivals[i - 1] - arrivals.front()) / 1e6;
    f.idle_max_ms = std::max(f.idle_max_ms, gap_ms);
    if (!Overlaps(calls, arrivals[i - 1], arrivals[i])) f.idle_max_outside_ms = std::max(f.idle_max_outside_ms, gap_ms);
  }
  f.call_ms_p50 = CallP50Ms(calls);
  return f;
}

// Real agents: cases as they stamped themselves. The start rate inside
// history calls against outside, and the longest moment in which no case
// ran on any agent (a gap in the union of the cases' spans).
HistoryFigures CaseFigures(Spans cases, const Spans& calls) {
  std::sort(cases.begin(), cases.end());
  HistoryFigures f;
  f.calls = static_cast<int>(calls.size());
  std::vector<int64_t> starts;
  for (const auto& c : cases) starts.push_back(c.first);
  f.rate_ratio = RateRatio(starts, calls);
  SetChance(starts, &f);
  int64_t running_until = cases.empty() ? 0 : cases.front().second;
  for (size_t i = 1; i < cases.size(); ++i) {
    if (cases[i].first > running_until) {
      const double gap_ms = (cases[i].first - running_until) / 1e6;
      if (gap_ms > f.idle_max_ms) f.idle_max_at_ms = (running_until - cases.front().first) / 1e6;
      f.idle_max_ms = std::max(f.idle_max_ms, gap_ms);
      if (!Overlaps(calls, running_until, cases[i].first)) {
        f.idle_max_outside_ms = std::max(f.idle_max_outside_ms, gap_ms);
      }
    }
    running_until = std::max(running_until, cases[i].second);
  }
  f.call_ms_p50 = CallP50Ms(calls);
  return f;
}

// Submits `runs` runs of `suite` at once and waits for them all: the agents
// never run dry between them, so a gap is the coordinator's. Their run ids.
std::vector<std::string> SubmitTogether(const std::string& address, const v1::Suite& suite, int runs) {
  std::vector<std::string> ids(static_cast<size_t>(runs));
  std::vector<std::thread> threads;
  for (int r = 0; r < runs; ++r) {
    threads.emplace_back([&, r] {
      auto stub = GateStub(address);
      ids[static_cast<size_t>(r)] = SubmitAndWait(*stub, suite, "main").run_id;
    });
  }
  for (auto& t : threads) t.join();
  return ids;
}

// The load part's leases as they reached their sessions, as zero-length
// spans of agent "lease", and the history calls, in the --stamps format.
void WriteLeaseStamps(const std::string& path, const std::vector<int64_t>& arrivals, const Spans& calls) {
  std::ofstream out(path);
  for (const int64_t t : arrivals) out << "lease " << t << ' ' << t << '\n';
  for (const auto& [begin, end] : calls) out << "history-call " << begin << ' ' << end << '\n';
}

HistoryFigures MeasureLeasesBesideHistory(const Coordinator& coordinator, perfgate::LoadAgent& load,
                                          const Options& o) {
  HistoryFetcher fetcher(coordinator.address, AllKeys(o));
  const size_t before = load.LeaseArrivals().size();
  SubmitTogether(coordinator.address, TrivialSuite("dispatch-load", o.cases, "/bin/true"), o.history_runs);
  const Spans calls = fetcher.Stop();
  std::vector<int64_t> arrivals = load.LeaseArrivals();
  arrivals.erase(arrivals.begin(), arrivals.begin() + static_cast<long>(before));
  if (!o.stamps_path.empty()) WriteLeaseStamps(o.stamps_path + ".load", arrivals, calls);
  return LeaseFigures(std::move(arrivals), calls);
}

// Enough for the bare cycle's own p99 to rest on five periods.
constexpr int kBareCycles = 500;

// Periods of n bare spawn-exit cycles of `argv` run back to back, in ms:
// the period between starts with no coordinator.
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

std::vector<Child> StartAgents(const Options& o, const Coordinator& c, int n, const std::string& pool) {
  std::vector<Child> agents;
  for (int i = 0; i < n; ++i) {
    agents.push_back(
        Spawn({o.perfgate, "agent", "--coordinator", c.address, "--id", absl::StrCat(pool, "-", i), "--pool", pool},
              false));
  }
  return agents;
}

// Waits until `n` sessions of `pool` are registered, through the history reply's pool list.
void WaitForPool(v1::GateService::Stub& stub, const std::string& pool) {
  for (int i = 0; i < 600; ++i) {
    grpc::ClientContext context;
    v1::HistoryRequest request;
    v1::HistoryResponse response;
    if (stub.GetHistory(&context, request, &response).ok()) {
      for (const auto& p : response.known_pools()) {
        if (p == pool) return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Runs small warm-up suites until `n` distinct agents have run a case, so
// every agent has finished its start-up and registered.
void WaitUntilEveryAgentWorks(v1::GateService::Stub& stub, int n) {
  std::set<std::string> seen;
  for (int i = 0; i < 120 && static_cast<int>(seen.size()) < n; ++i) {
    const RunTimes warm = SubmitAndWait(stub, TrivialSuite("dispatch-warmup", 4 * n, "/bin/true"), "warmup");
    const v1::Run run = FetchRun(stub, warm.run_id);
    for (const auto& c : run.cases()) {
      if (!c.agent_id().empty()) seen.insert(c.agent_id());
    }
  }
  if (static_cast<int>(seen.size()) < n) {
    std::fprintf(stderr, "dispatch: only %zu of %d agents ran a warm-up case\n", seen.size(), n);
    std::exit(3);
  }
}

// Real agents beside history calls, timed from inside the cases: the store
// holds the load part's runs (`db`), --e2e-agents `perfgate agent`
// processes join the load pool, and --history-runs runs of cases that stamp
// their own start and end are submitted at once while another client
// fetches history.
HistoryFigures MeasureCasesBesideHistory(const Options& o, const std::string& db) {
  Coordinator c = StartCoordinator(o.perfgate, db);
  auto stub = GateStub(c.address);
  std::vector<Child> agents = StartAgents(o, c, o.e2e_agents, "load");
  WaitForPool(*stub, "load");
  WaitUntilEveryAgentWorks(*stub, o.e2e_agents);
  HistoryFetcher fetcher(c.address, AllKeys(o));
  const std::vector<std::string> runs =
      SubmitTogether(c.address, TrivialSuite("dispatch-load", o.cases, o.stamp_case), o.history_runs);
  const Spans calls = fetcher.Stop();
  for (auto& a : agents) Stop(a);
  Spans cases;
  std::ofstream stamps;
  if (!o.stamps_path.empty()) stamps.open(o.stamps_path);
  for (const auto& id : runs) {
    const v1::Run run = FetchRun(*stub, id);
    for (const auto& cs : run.cases()) {
      int64_t start = 0, end = 0;
      if (std::sscanf(cs.result().stdout_tail().c_str(), "%ld %ld", &start, &end) != 2) continue;
      cases.emplace_back(start, end);
      if (stamps) stamps << cs.agent_id() << ' ' << start << ' ' << end << '\n';
    }
  }
  for (const auto& [begin, end] : calls) {
    if (stamps) stamps << "history-call " << begin << ' ' << end << '\n';
  }
  Stop(c.process);
  if (cases.size() < static_cast<size_t>(o.cases) * o.history_runs) {
    std::fprintf(stderr, "dispatch: only %zu of %d cases stamped their times\n", cases.size(), o.cases * o.history_runs);
  }
  return CaseFigures(std::move(cases), calls);
}

// Every figure of one coordinator binary.
struct Figures {
  double leases_per_s = 0, cpu_ms_per_lease = 0, db_bytes_per_case = 0;
  double wal_mb_max = 0;  // the store's WAL at its largest while load agents ran
  // Peak RSS during the first run and during the last; the snapshots after each beside them.
  double rss_first = 0, rss_last = 0, rss_after_first = 0, rss_after_last = 0;
  bool rss_last_reset = false;  // whether the last run's peak is its own (else since the start)
  std::vector<double> rss_peaks;  // each run's own peak, where the kernel allowed a reset before it
  HistoryFigures history;        // load agents: leases
  HistoryFigures agent_history;  // real agents: cases timed from inside
  double e2e_rate = 0, share = 0;
  double call_floor_ms = 0;  // coordinator CPU per Heartbeat, one call at a time
  double next_p50 = 0, next_p99 = 0, bare_ms = 0, bare_p99_over_p50_ms = 0;
  double makespan_ratio = 0, first_ratio = 0;
};

// load + history: one coordinator, load agents only.
bool MeasureLoad(const Options& o, const std::string& perfgate, const std::string& dir, Figures* f) {
  Coordinator a = StartCoordinator(perfgate, dir + "/load.db");
  FileSizePeak wal(a.db + "-wal");
  perfgate::LoadAgentOptions lo;
  lo.coordinator = a.address;
  lo.sessions = o.agents;
  lo.samples_per_result = o.samples;
  perfgate::LoadAgent load(lo);
  if (auto s = load.Start(); !s.ok()) {
    std::fprintf(stderr, "dispatch: %s\n", std::string(s.message()).c_str());
    return false;
  }
  auto stub_a = GateStub(a.address);
  const v1::Suite load_suite = TrivialSuite("dispatch-load", o.cases, "/bin/true");
  double load_s = 0;
  const double cpu_a0 = ProcCpuSeconds(a.process.pid, false);
  bool every_peak_own = true;
  for (int r = 0; r < o.runs; ++r) {
    // The first run's peak is its own: it counts from the coordinator's start.
    const bool reset = r == 0 || ResetPeakRss(a.process.pid);
    every_peak_own = every_peak_own && reset;
    if (r == o.runs - 1) f->rss_last_reset = reset;
    load_s += SubmitAndWait(*stub_a, load_suite, "main").seconds;
    if (r == 0 || r == o.runs - 1) WaitForSummaries(*stub_a);
    if (every_peak_own) f->rss_peaks.push_back(PeakRssMb(a.process.pid));
    if (r == 0) {
      f->rss_first = PeakRssMb(a.process.pid);
      f->rss_after_first = RssMb(a.process.pid);
    }
  }
  if (!every_peak_own) f->rss_peaks.clear();
  const double cpu_a = ProcCpuSeconds(a.process.pid, false) - cpu_a0;
  f->rss_last = PeakRssMb(a.process.pid);
  f->rss_after_last = RssMb(a.process.pid);
  const double leases = static_cast<double>(o.cases) * o.runs;
  f->leases_per_s = leases / load_s;
  f->cpu_ms_per_lease = cpu_a * 1e3 / leases;
  f->history = MeasureLeasesBesideHistory(a, load, o);
  load.Stop();
  f->wal_mb_max = static_cast<double>(wal.Stop()) / (1 << 20);
  Stop(a.process);  // closing checkpoints the WAL into the database file
  f->db_bytes_per_case =
      static_cast<double>(std::filesystem::file_size(a.db)) / (static_cast<double>(o.cases) * (o.runs + o.history_runs));
  Options with = o;
  with.perfgate = perfgate;
  f->agent_history = MeasureCasesBesideHistory(with, a.db);
  return true;
}

// The coordinator's CPU per gRPC call when calls come one at a time, as each
// agent's do: a session's Heartbeat (a lookup, no store write), 2,000 times.
// What a case's one CompleteLease costs before any of its own work.
double CallFloorMs(const Coordinator& c) {
  auto stub = v1::AgentService::NewStub(grpc::CreateChannel(c.address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::RegisterRequest hello;
  hello.set_agent_id("floor");
  hello.set_pool("floor");
  hello.set_instance("floor");
  v1::RegisterResponse session;
  if (!stub->Register(&context, hello, &session).ok()) return 0;
  constexpr int kCalls = 2000;
  const double cpu0 = ProcCpuSeconds(c.process.pid, false);
  for (int i = 0; i < kCalls; ++i) {
    grpc::ClientContext call;
    v1::HeartbeatRequest beat;
    beat.set_session_id(session.session_id());
    v1::HeartbeatResponse renewed;
    if (!stub->Heartbeat(&call, beat, &renewed).ok()) return 0;
  }
  return (ProcCpuSeconds(c.process.pid, false) - cpu0) * 1e3 / kCalls;
}

// e2e: --e2e-agents real agents run trivial cases; the coordinator's share of all CPU.
void MeasureE2E(const Options& o, const Coordinator& b, v1::GateService::Stub* stub_b, Figures* f) {
  std::vector<Child> agents = StartAgents(o, b, o.e2e_agents, "e2e");
  WaitForPool(*stub_b, "e2e");
  // Each agent probes its host (callgrind start-up: about a second of CPU)
  // before it registers; measured, that probe would count as agent CPU and
  // shrink the coordinator's share.
  WaitUntilEveryAgentWorks(*stub_b, o.e2e_agents);
  auto agents_cpu = [&] {
    double s = 0;
    for (const auto& c : agents) s += ProcCpuSeconds(c.pid, true);
    return s;
  };
  const double cb0 = ProcCpuSeconds(b.process.pid, false), ag0 = agents_cpu();
  const RunTimes e2e = SubmitAndWait(*stub_b, TrivialSuite("dispatch-e2e", o.e2e_cases, "/bin/true"), "e2e");
  const double cpu_b = ProcCpuSeconds(b.process.pid, false) - cb0, cpu_agents = agents_cpu() - ag0;
  for (auto& c : agents) Stop(c);
  f->call_floor_ms = CallFloorMs(b);
  f->e2e_rate = o.e2e_cases / e2e.seconds;
  f->share = cpu_b / (cpu_b + cpu_agents);
}

// next: one real agent, cases stamp their own start.
void MeasureNext(const Options& o, const Coordinator& b, v1::GateService::Stub* stub_b, Figures* f) {
  std::vector<Child> one = StartAgents(o, b, 1, "next");
  WaitForPool(*stub_b, "next");
  // Half the bare cycles before the agent's cases and half after: this
  // machine's speed drifts within a minute (the bare p50 read 1.8 ms in
  // one part and 2.1 ms in the next), and the reference spans the part.
  const std::vector<std::string> bare_argv = {"/bin/date", "+%s%N"};
  std::vector<double> bare = BareCyclesMs(bare_argv, kBareCycles / 2);
  v1::Suite next_suite = TrivialSuite("dispatch-next", o.next_cases, "/bin/date");
  // The e2e agents have stopped: only this one takes work.
  for (auto& c : *next_suite.mutable_cases()) c.add_argv("+%s%N");
  const RunTimes next_run = SubmitAndWait(*stub_b, next_suite, "next");
  for (auto& c : one) Stop(c);
  const v1::Run next = FetchRun(*stub_b, next_run.run_id);
  std::vector<int64_t> starts;
  for (const auto& c : next.cases()) {
    if (c.result().outcome() == v1::CaseResult::OUTCOME_OK) starts.push_back(std::atoll(c.result().stdout_tail().c_str()));
  }
  std::sort(starts.begin(), starts.end());
  const std::vector<double> after = BareCyclesMs(bare_argv, kBareCycles - kBareCycles / 2);
  bare.insert(bare.end(), after.begin(), after.end());
  f->bare_ms = Percentile(bare, 0.5);
  // What an agent that added nothing would read at p99: the bare cycle's own spread.
  f->bare_p99_over_p50_ms = Percentile(bare, 0.99) - f->bare_ms;
  std::vector<double> over;
  for (size_t i = 1; i < starts.size(); ++i) over.push_back((starts[i] - starts[i - 1]) / 1e6 - f->bare_ms);
  f->next_p50 = Percentile(over, 0.5);
  f->next_p99 = Percentile(over, 0.99);
}

// e2e: real agent processes; next: one real agent, cases stamp their own start.
void MeasureAgents(const Options& o, const std::string& perfgate, const std::string& dir, Figures* f) {
  Options with = o;
  with.perfgate = perfgate;
  Coordinator b = StartCoordinator(perfgate, dir + "/e2e.db");
  auto stub_b = GateStub(b.address);
  if (!o.only_next) MeasureE2E(with, b, stub_b.get(), f);
  MeasureNext(with, b, stub_b.get(), f);
  Stop(b.process);
}

constexpr int kMakespanSessions = 8, kShortCases = 30;

// makespan: simulated durations, the long cases last.
bool MeasureMakespan(const std::string& perfgate, const std::string& dir, Figures* f) {
  Coordinator m = StartCoordinator(perfgate, dir + "/makespan.db");
  perfgate::LoadAgentOptions mo;
  mo.coordinator = m.address;
  mo.sessions = kMakespanSessions;
  mo.pool = "makespan";
  mo.id_prefix = "mk";
  perfgate::LoadAgent sim(mo);
  if (auto s = sim.Start(); !s.ok()) {
    std::fprintf(stderr, "dispatch: %s\n", std::string(s.message()).c_str());
    return false;
  }
  v1::Suite mk;
  mk.set_name("dispatch-makespan");
  const double short_s = 0.1, long_s = 1.0;
  for (int i = 0; i < kShortCases + 2; ++i) {
    auto* c = mk.add_cases();
    c->set_name(absl::StrCat("sim", i));
    c->add_argv("sleep");
    c->add_argv(i < kShortCases ? absl::StrCat(short_s) : absl::StrCat(long_s));
    c->set_repeats(1);
  }
  auto stub_m = GateStub(m.address);
  const double ideal_s = std::max(long_s, (kShortCases * short_s + 2 * long_s) / mo.sessions);
  f->first_ratio = SubmitAndWait(*stub_m, mk, "main").seconds / ideal_s;
  f->makespan_ratio = SubmitAndWait(*stub_m, mk, "main").seconds / ideal_s;
  sim.Stop();
  Stop(m.process);
  return true;
}

// Each part runs for the --before binary (if any) and then for the current
// one, back to back, so both columns see the same load.
bool MeasureAll(const Options& o, const std::vector<std::string>& binaries, const std::string& dir,
                std::vector<Figures>* out) {
  out->assign(binaries.size(), Figures());
  for (size_t i = 0; i < binaries.size(); ++i) {
    if (!o.only_next && !MeasureLoad(o, binaries[i], absl::StrCat(dir, "/", i), &(*out)[i])) return false;
  }
  for (size_t i = 0; i < binaries.size(); ++i) MeasureAgents(o, binaries[i], absl::StrCat(dir, "/", i), &(*out)[i]);
  for (size_t i = 0; i < binaries.size(); ++i) {
    if (!o.only_next && !MeasureMakespan(binaries[i], absl::StrCat(dir, "/", i), &(*out)[i])) return false;
  }
  return true;
}

void PrintTable(const Options& o, const std::vector<Figures>& f, double load_before, double load_after) {
  const bool two = f.size() == 2;
  std::printf("dispatch: coordinator in its own process (perfgate coordinator, SQLite on disk), loopback gRPC\n");
  std::printf("load average %.2f before, %.2f after (2-core machine shared with other work)\n", load_before,
              load_after);
  if (two) std::printf("before: %s\nnow:    %s\n", o.before.c_str(), o.perfgate.c_str());
  std::printf("\n%-56s %s%12s  %s\n", "figure", two ? "      before" : "", "now", "(agents, cases, runs)");
  auto row = [&](const char* what, double Figures::*field, const char* unit, int ag, int cs, int rn) {
    std::printf("%-56s ", what);
    if (two) std::printf("%12.3f", f[0].*field);
    std::printf("%12.3f %-4s (%d, %d, %d)\n", f.back().*field, unit, ag, cs, rn);
  };
  auto hrow = [&](const char* what, HistoryFigures Figures::*part, double HistoryFigures::*field, const char* unit,
                  int agents) {
    std::printf("%-56s ", what);
    if (two) std::printf("%12.3f", (f[0].*part).*field);
    std::printf("%12.3f %-4s (%d, %d, %d)\n", (f.back().*part).*field, unit, agents, o.cases, o.history_runs);
  };
  row("load agents: leases granted and completed per second", &Figures::leases_per_s, "/s", o.agents, o.cases, o.runs);
  row("coordinator CPU per lease", &Figures::cpu_ms_per_lease, "ms", o.agents, o.cases, o.runs);
  row("end to end, process agents, trivial cases", &Figures::e2e_rate, "/s", o.e2e_agents, o.e2e_cases, 1);
  row("  coordinator's share of all CPU spent", &Figures::share, "", o.e2e_agents, o.e2e_cases, 1);
  row("  (coordinator CPU per bare call, one at a time)", &Figures::call_floor_ms, "ms", 1, 2000, 1);
  row("one agent: next start beyond bare cycle, p50", &Figures::next_p50, "ms", 1, o.next_cases, 1);
  row("one agent: next start beyond bare cycle, p99", &Figures::next_p99, "ms", 1, o.next_cases, 1);
  row("  (bare spawn-exit cycle of /bin/date)", &Figures::bare_ms, "ms", 1, kBareCycles, 1);
  row("  (the bare cycle's own p99, beyond its p50)", &Figures::bare_p99_over_p50_ms, "ms", 1, kBareCycles, 1);
  const auto agents = &Figures::agent_history, leases = &Figures::history;
  hrow("process agents: case starts during history calls / outside", agents, &HistoryFigures::rate_ratio, "",
       o.e2e_agents);
  hrow("longest moment with no case running on any agent", agents, &HistoryFigures::idle_max_ms, "ms", o.e2e_agents);
  hrow("  (when it began, after the first case start)", agents, &HistoryFigures::idle_max_at_ms, "ms", o.e2e_agents);
  hrow("  (longest such moment outside history calls)", agents, &HistoryFigures::idle_max_outside_ms, "ms",
       o.e2e_agents);
  hrow("  (case starts a second in this part)", agents, &HistoryFigures::starts_per_s, "/s", o.e2e_agents);
  hrow("  (longest gap chance gives: as many starts, random times)", agents, &HistoryFigures::chance_max_ms, "ms",
       o.e2e_agents);
  hrow("  (history call of all keys, p50)", agents, &HistoryFigures::call_ms_p50, "ms", o.e2e_agents);
  std::printf("  (history calls of %d keys over %d stored runs: %d now)\n", o.cases * 4, o.runs + o.history_runs,
              f.back().agent_history.calls);
  hrow("load agents: lease rate during history calls / outside", leases, &HistoryFigures::rate_ratio, "", o.agents);
  hrow("  longest moment with no lease granted to anyone", leases, &HistoryFigures::idle_max_ms, "ms", o.agents);
  hrow("  (when it began, after the first lease)", leases, &HistoryFigures::idle_max_at_ms, "ms", o.agents);
  hrow("  (longest such moment outside history calls)", leases, &HistoryFigures::idle_max_outside_ms, "ms", o.agents);
  hrow("  (leases a second in this part)", leases, &HistoryFigures::starts_per_s, "/s", o.agents);
  hrow("  (longest gap chance gives: as many leases, random times)", leases, &HistoryFigures::chance_max_ms, "ms",
       o.agents);
  row("makespan / ideal, second run", &Figures::makespan_ratio, "x", kMakespanSessions, kShortCases + 2, 2);
  row("  (first run, no history)", &Figures::first_ratio, "x", kMakespanSessions, kShortCases + 2, 1);
  row("coordinator peak RSS during the first run", &Figures::rss_first, "MB", o.agents, o.cases, 1);
  row("coordinator peak RSS during the last run", &Figures::rss_last, "MB", o.agents, o.cases, o.runs);
  row("  (RSS after the first run)", &Figures::rss_after_first, "MB", o.agents, o.cases, 1);
  row("  (RSS after the last run)", &Figures::rss_after_last, "MB", o.agents, o.cases, o.runs);
  if (!f.back().rss_last_reset) std::printf("  (the kernel refused a peak reset: the last run's peak counts from the start)\n");
  for (const Figures& each : f) {
    if (each.rss_peaks.empty()) continue;
    std::printf("  (each run's peak, MB:");
    for (double mb : each.rss_peaks) std::printf(" %.1f", mb);
    std::printf(")\n");
  }
  row("store bytes per case", &Figures::db_bytes_per_case, "B", o.agents, o.cases, o.runs + o.history_runs);
  std::printf("  (%d sample(s) of 4 metrics per load-agent result)\n", o.samples);
  row("  (the store's WAL at its largest)", &Figures::wal_mb_max, "MB", o.agents, o.cases, o.runs + o.history_runs);
}

nlohmann::json Json(const Options& o, const std::vector<Figures>& all, double load_before, double load_after) {
  nlohmann::json doc = {{"benchmark", "dispatch"}};
  const Figures& f = all.back();
  doc["load_average_before"] = load_before;
  doc["load_average_after"] = load_after;
  doc["load_leases_per_s"] = Figure(f.leases_per_s, o.agents, o.cases, o.runs);
  doc["coordinator_cpu_ms_per_lease"] = Figure(f.cpu_ms_per_lease, o.agents, o.cases, o.runs);
  doc["e2e_cases_per_s"] = Figure(f.e2e_rate, o.e2e_agents, o.e2e_cases, 1);
  doc["coordinator_cpu_share"] = Figure(f.share, o.e2e_agents, o.e2e_cases, 1);
  doc["coordinator_cpu_share"]["bare_call_cpu_ms"] = f.call_floor_ms;
  doc["next_start_over_bare_p50_ms"] = Figure(f.next_p50, 1, o.next_cases, 1);
  doc["next_start_over_bare_p99_ms"] = Figure(f.next_p99, 1, o.next_cases, 1);
  doc["next_start_over_bare_p99_ms"]["bare_cycle_p99_over_p50_ms"] = f.bare_p99_over_p50_ms;
  // Timed from inside the cases of real agents; the load agents' lease figures beside them.
  doc["start_rate_during_history_ratio"] =
      Figure(f.agent_history.rate_ratio, o.e2e_agents, o.cases, o.history_runs);
  doc["start_rate_during_history_ratio"]["history_calls"] = f.agent_history.calls;
  doc["start_rate_during_history_ratio"]["load_agents_lease_rate_ratio"] = f.history.rate_ratio;
  doc["all_agents_idle_max_ms"] = Figure(f.agent_history.idle_max_ms, o.e2e_agents, o.cases, o.history_runs);
  doc["all_agents_idle_max_ms"]["outside_history_calls_ms"] = f.agent_history.idle_max_outside_ms;
  doc["all_agents_idle_max_ms"]["began_after_first_start_ms"] = f.agent_history.idle_max_at_ms;
  doc["all_agents_idle_max_ms"]["load_agents_no_lease_max_ms"] = f.history.idle_max_ms;
  doc["all_agents_idle_max_ms"]["case_starts_per_s"] = f.agent_history.starts_per_s;
  doc["all_agents_idle_max_ms"]["chance_max_ms_at_that_rate"] = f.agent_history.chance_max_ms;
  doc["makespan_ratio"] = Figure(f.makespan_ratio, kMakespanSessions, kShortCases + 2, 2);
  // Peaks (VmHWM) during the run; the VmRSS snapshot after it beside each.
  doc["rss_mb_first_run"] = Figure(f.rss_first, o.agents, o.cases, 1);
  doc["rss_mb_first_run"]["measure"] = "peak during the run (VmHWM)";
  doc["rss_mb_first_run"]["after_run_mb"] = f.rss_after_first;
  doc["rss_mb_last_run"] = Figure(f.rss_last, o.agents, o.cases, o.runs);
  doc["rss_mb_last_run"]["each_run_peak_mb"] = f.rss_peaks;
  doc["rss_mb_last_run"]["measure"] =
      f.rss_last_reset ? "peak during the run (VmHWM)" : "peak since the start (VmHWM; the reset was refused)";
  doc["rss_mb_last_run"]["after_run_mb"] = f.rss_after_last;
  doc["db_bytes_per_case"] = Figure(f.db_bytes_per_case, o.agents, o.cases, o.runs + o.history_runs);
  doc["db_bytes_per_case"]["samples_per_case"] = o.samples;
  doc["db_bytes_per_case"]["wal_mb_max"] = f.wal_mb_max;
  if (all.size() == 2) {
    // The same figures of the --before binary, measured beside these.
    const Figures& b = all.front();
    doc["before"] = {{"perfgate", o.before},
                     {"load_leases_per_s", b.leases_per_s},
                     {"coordinator_cpu_ms_per_lease", b.cpu_ms_per_lease},
                     {"e2e_cases_per_s", b.e2e_rate},
                     {"coordinator_cpu_share", b.share},
                     {"bare_call_cpu_ms", b.call_floor_ms},
                     {"next_start_over_bare_p50_ms", b.next_p50},
                     {"next_start_over_bare_p99_ms", b.next_p99},
                     {"start_rate_during_history_ratio", b.agent_history.rate_ratio},
                     {"all_agents_idle_max_ms", b.agent_history.idle_max_ms},
                     {"load_agents_lease_rate_ratio", b.history.rate_ratio},
                     {"load_agents_no_lease_max_ms", b.history.idle_max_ms},
                     {"makespan_ratio", b.makespan_ratio},
                     {"rss_mb_first_run", b.rss_first},
                     {"rss_mb_last_run", b.rss_last},
                     {"db_bytes_per_case", b.db_bytes_per_case},
                     {"wal_mb_max", b.wal_mb_max}};
  }
  return doc;
}

}  // namespace

int main(int argc, char** argv) {
  std::atexit(KillChildren);
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](int* v) { *v = std::atoi(argv[++i]); };
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--cases") && more) next(&o.cases);
    else if (!std::strcmp(argv[i], "--agents") && more) next(&o.agents);
    else if (!std::strcmp(argv[i], "--runs") && more) next(&o.runs);
    else if (!std::strcmp(argv[i], "--e2e-agents") && more) next(&o.e2e_agents);
    else if (!std::strcmp(argv[i], "--e2e-cases") && more) next(&o.e2e_cases);
    else if (!std::strcmp(argv[i], "--next-cases") && more) next(&o.next_cases);
    else if (!std::strcmp(argv[i], "--history-runs") && more) next(&o.history_runs);
    else if (!std::strcmp(argv[i], "--samples") && more) next(&o.samples);
    else if (!std::strcmp(argv[i], "--json") && more) o.json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--perfgate") && more) o.perfgate = argv[++i];
    else if (!std::strcmp(argv[i], "--before") && more) o.before = argv[++i];
    else if (!std::strcmp(argv[i], "--only-next")) o.only_next = true;
    else if (!std::strcmp(argv[i], "--stamps") && more) o.stamps_path = argv[++i];
    else if (!std::strcmp(argv[i], "--stamp-case") && more) o.stamp_case = argv[++i];
    else {
      const bool help = !std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h");
      const Options defaults;
      std::fprintf(help ? stdout : stderr,
                   "usage: dispatch [--cases N] [--agents N] [--runs N] [--e2e-agents N] [--e2e-cases N] "
                   "[--next-cases N] [--history-runs N] [--samples N] [--json FILE] [--perfgate PATH] [--before PATH] "
                   "[--only-next] [--stamps FILE] [--stamp-case PATH]\n"
                   "  defaults: --cases %d --agents %d --runs %d --e2e-agents %d --e2e-cases %d --next-cases %d "
                   "--history-runs %d --samples %d\n"
                   "  --stamp-case PATH: the history part's case, a program that prints its first and last moment "
                   "as CLOCK_MONOTONIC nanoseconds, \"START END\", on stdout (default: the bundled stamp)\n"
                   "exit codes: 0 measured, 2 bad usage, 3 a part failed (its error above)\n",
                   defaults.cases, defaults.agents, defaults.runs, defaults.e2e_agents, defaults.e2e_cases,
                   defaults.next_cases, defaults.history_runs, defaults.samples);
      return help ? 0 : 2;
    }
  }
  if (o.cases < 1 || o.agents < 1 || o.runs < 1 || o.e2e_agents < 1 || o.e2e_cases < 1 || o.next_cases < 2 || o.samples < 1 ||
      o.history_runs < 1) {
    std::fprintf(stderr, "dispatch: every count must be at least 1 (--next-cases at least 2)\n");
    return 2;
  }
  if (access(o.stamp_case.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "dispatch: --stamp-case %s: %s (give a program this user may run)\n", o.stamp_case.c_str(),
                 std::strerror(errno));
    return 2;
  }
  const std::string dir =
      std::filesystem::temp_directory_path() / ("perfgate-dispatch-" + std::to_string(getpid()));
  std::vector<std::string> binaries;
  if (!o.before.empty()) binaries.push_back(o.before);
  binaries.push_back(o.perfgate);
  for (size_t i = 0; i < binaries.size(); ++i) std::filesystem::create_directories(absl::StrCat(dir, "/", i));
  const double load_before = LoadAverage();
  std::vector<Figures> figures;
  if (!MeasureAll(o, binaries, dir, &figures)) return 3;
  std::filesystem::remove_all(dir);
  const double load_after = LoadAverage();
  PrintTable(o, figures, load_before, load_after);
  if (!o.json_path.empty()) {
    std::ofstream(o.json_path) << Json(o, figures, load_before, load_after).dump(2) << "\n";
    std::printf("wrote %s\n", o.json_path.c_str());
  }
  return 0;
}
