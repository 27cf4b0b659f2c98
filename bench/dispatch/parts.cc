#include "bench/dispatch/parts.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "bench/dispatch/gate_calls.h"
#include "bench/dispatch/processes.h"
#include "bench/load_agent.h"
#include "perfgate/v1/agent.grpc.pb.h"

namespace perfgate::dispatch {
namespace {

// The load part's leases as they reached their sessions, as zero-length
// spans of agent "lease", and the history calls, in the --stamps format.
void WriteLeaseStamps(const std::string& path, const std::vector<int64_t>& arrivals, const Spans& calls) {
  std::ofstream out(path);
  for (const int64_t t : arrivals) out << "lease " << t << ' ' << t << '\n';
  for (const auto& [begin, end] : calls) out << "history-call " << begin << ' ' << end << '\n';
}

HistoryFigures MeasureLeasesBesideHistory(const Coordinator& coordinator, perfgate::LoadAgent& load, const Options& o) {
  HistoryFetcher fetcher(coordinator.address, AllKeys(o.cases));
  const size_t before = load.LeaseArrivals().size();
  SubmitTogether(coordinator.address, TrivialSuite("dispatch-load", o.cases, "/bin/true"), o.history_runs);
  const Spans calls = fetcher.Stop();
  std::vector<int64_t> arrivals = load.LeaseArrivals();
  arrivals.erase(arrivals.begin(), arrivals.begin() + static_cast<long>(before));
  if (!o.stamps_path.empty()) WriteLeaseStamps(o.stamps_path + ".load", arrivals, calls);
  return LeaseFigures(std::move(arrivals), calls);
}

// Real agents beside history calls, timed from inside the cases: the store
// holds the load part's runs (`db`), --e2e-agents `perfgate agent`
// processes join the load pool, and --history-runs runs of cases that stamp
// their own start and end are submitted at once while another client
// fetches history.
HistoryFigures MeasureCasesBesideHistory(const Options& o, const std::string& db) {
  Coordinator c = StartCoordinator(o.perfgate, db);
  auto stub = GateStub(c.address);
  std::vector<Child> agents = StartAgents(o.perfgate, c, o.e2e_agents, "load");
  WaitForPool(*stub, "load");
  WaitUntilEveryAgentWorks(*stub, o.e2e_agents);
  HistoryFetcher fetcher(c.address, AllKeys(o.cases));
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
    std::fprintf(stderr, "dispatch: only %zu of %d cases stamped their times\n", cases.size(),
                 o.cases * o.history_runs);
  }
  return CaseFigures(std::move(cases), calls);
}

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
  f->db_bytes_per_case = static_cast<double>(std::filesystem::file_size(a.db)) /
                         (static_cast<double>(o.cases) * (o.runs + o.history_runs));
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
  std::vector<Child> agents = StartAgents(o.perfgate, b, o.e2e_agents, "e2e");
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
  std::vector<Child> one = StartAgents(o.perfgate, b, 1, "next");
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
    if (c.result().outcome() == v1::CaseResult::OUTCOME_OK)
      starts.push_back(std::atoll(c.result().stdout_tail().c_str()));
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

}  // namespace

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

}  // namespace perfgate::dispatch
