// The gate's side of the coordinator, as a hostile gate client reaches it:
// a SubmitRunRequest built from fuzz bytes goes to GateServiceImpl::SubmitRun
// itself (request size limit, the artifact store's suite check, then
// Scheduler::Submit, then the pin: services.cc's order, not a copy of it),
// over a scheduler with simulated time, a fresh SQLite store and two agents,
// one with a GPU. If the run is taken, the agents run a few of its cases
// with plausible results, the gate cancels what is left, reads the run back
// (from the store once it has left memory; whole and in pages), asks for its
// history, renders the JSON report and reports its verdict. Nothing may
// crash, every error is UTF-8, and every message handed back can be delivered.
//
// The store is a file in tmpfs, not ":memory:" as in fuzz_complete_lease:
// history and finished runs are read through connections of their own, and
// each ":memory:" connection is a database of its own, empty, so those reads
// would only ever answer "no such table".
#include <grpcpp/server_context.h>
#include <stdlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/artifact_store.h"
#include "coordinator/auth.h"
#include "coordinator/grpc_status.h"
#include "coordinator/scheduler.h"
#include "coordinator/services.h"
#include "coordinator/store.h"
#include "core/artifact_tree.h"
#include "core/judge.h"
#include "core/policy.h"
#include "core/time_source.h"
#include "fuzz/fuzz_check.h"
#include "gate/requests.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

// The one tree the artifact store holds: fuzz/seeds/submit_run/artifacts.txtpb
// names it by its manifest's digest, so inputs from that seed get past the
// suite check and have their run pinned.
constexpr char kTreeFile[] = "#!/bin/sh\necho fuzz\n";

void CheckAnswer(const grpc::Status& status) {
  if (!status.ok()) fuzz::CheckErrorText(FromGrpc(status));
}

void Upload(ArtifactStore& store, const std::string& bytes) {
  auto upload = store.BeginUpload(DigestOfBytes(bytes), bytes.size());
  if (!upload.ok()) fuzz::Fail("artifact upload", std::string(upload.status().message()));
  if (!(*upload)->Append(bytes).ok() || !(*upload)->Finish().ok()) fuzz::Fail("artifact upload", "");
}

// The process's scratch folder, removed at exit: in tmpfs where there is
// one, as the store and the artifact pins are fsynced. Never destroyed: the
// exit handler runs after the function's statics are gone.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    auto* made = new std::string((base / "perfgate-fuzz-submit-XXXXXX").string());
    if (!mkdtemp(made->data())) fuzz::Fail("scratch folder", *made);
    return made;
  }();
  static const bool removed_at_exit = std::atexit([] {
                                        std::error_code ec;
                                        fs::remove_all(*dir, ec);
                                      }) == 0;
  (void)removed_at_exit;
  return *dir;
}

// One input's database, gone with it.
struct InputDb {
  const std::string dir = ScratchDir() + "/db";
  InputDb() { fs::create_directories(dir); }
  ~InputDb() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// One artifact store for the whole process: opening one per input would
// upload the tree again each time. Pins outlive their input only until its
// end (CollectGarbage), and the tree is never collected: simulated time
// never reaches its grace period.
ArtifactStore& SharedArtifacts() {
  static ArtifactStore* store = [] {
    static SimulatedTimeSource clock;
    ArtifactStoreOptions options;
    options.dir = ScratchDir() + "/artifacts";
    options.keep_runs_ms = 0;
    auto opened = ArtifactStore::Open(options, &clock, [](const std::string&) { return false; });
    if (!opened.ok()) fuzz::Fail("artifact store", std::string(opened.status().message()));
    Upload(**opened, kTreeFile);
    v1::ArtifactManifest manifest;
    auto* file = manifest.add_files();
    file->set_path("bench");
    file->set_digest(DigestOfBytes(kTreeFile));
    file->set_size(sizeof kTreeFile - 1);
    file->set_executable(true);
    Upload(**opened, SerializeManifest(manifest));
    return opened->release();
  }();
  return *store;
}

struct Agent {
  v1::RegisterRequest hello;
  std::string session_id;
};

Agent Register(Scheduler& scheduler, const std::string& id, bool gpu) {
  Agent agent;
  agent.hello.set_agent_id(id);
  agent.hello.set_pool(gpu ? "gpu-pool" : "cpu-pool");
  agent.hello.add_labels("fuzz");
  agent.hello.mutable_host()->set_hostname(id);
  agent.hello.mutable_host()->set_cpu_cores(8);
  if (gpu) {
    agent.hello.add_labels("gpu");
    auto* card = agent.hello.mutable_host()->add_gpus();
    card->set_name("fuzz gpu");
    card->set_memory_bytes(80ull << 30);
    card->set_compute_capability(90);
  }
  auto session = scheduler.Register(agent.hello);
  if (!session.ok()) fuzz::Fail("register", std::string(session.status().message()));
  fuzz::CheckDeliverable(*session);
  agent.session_id = session->session_id();
  return agent;
}

// What an agent would report for the lease: one sample per repeat and
// variant (a few at most: the fuzzer's repeats would make one input run
// for minutes), the agent's own metrics plus a value of each judged metric
// as a case reports them. Every fifth result is a failed run instead.
v1::CaseResult PlausibleResult(const v1::Lease& lease, const Agent& agent, int n) {
  const v1::CaseSpec& spec = lease.spec();
  v1::CaseResult result;
  result.set_case_name(spec.name());
  result.set_agent_id(agent.hello.agent_id());
  result.set_pool(agent.hello.pool());
  if (n % 5 == 4) {
    result.set_outcome(v1::CaseResult::OUTCOME_FAILED);
    result.set_exit_code(3);
    result.set_error("exit 3");
    result.set_stderr_tail("bad\377input\n");
    return result;
  }
  result.set_outcome(v1::CaseResult::OUTCOME_OK);
  std::vector<std::string> variants;
  for (const auto& v : spec.variants()) variants.push_back(v.name());
  if (variants.empty()) variants.emplace_back();
  variants.resize(std::min<size_t>(variants.size(), 4));
  const uint32_t repeats = std::clamp<uint32_t>(spec.repeats(), 1, 5);
  uint32_t index = 0;
  for (uint32_t r = 0; r < repeats; ++r) {
    for (size_t v = 0; v < variants.size(); ++v) {
      v1::Sample* sample = result.add_samples();
      sample->set_index(index++);
      sample->set_variant(variants[v]);
      const double jitter = 1.0 + 0.01 * static_cast<double>((r * 7 + v * 3 + static_cast<uint32_t>(n)) % 5);
      AddValue(sample, spec.name(), "wall_time", 0.25 * jitter, "s", "agent:clock");
      AddValue(sample, spec.name(), "peak_rss", 4e6 * jitter, "bytes", "agent:rusage");
      for (int m = 0; m < std::min(spec.judged_metrics_size(), 4); ++m) {
        const std::string& metric = spec.judged_metrics(m);
        if (metric == "wall_time" || metric == "peak_rss") continue;
        AddValue(sample, spec.name(), metric.c_str(), 1e6 * jitter, "count", "case:pytorch");
      }
    }
  }
  result.add_notes("fuzz agent");
  return result;
}

// Cases the agents take and complete per input, and the size of GetRun's
// pages: enough for several pages, few enough that a 10,000-case run does
// not take one per case.
constexpr int kMaxCompletions = 12;
constexpr uint64_t kMinPageBytes = 512;

// GetRun in parts, as a gate with a small receive limit reads it: every
// case comes exactly once, or the reply says why not.
void ReadInPages(GateServiceImpl& gate, const v1::Run& whole) {
  v1::GetRunRequest get;
  get.set_run_id(whole.run_id());
  get.set_max_reply_bytes(std::max<uint64_t>(kMinPageBytes, whole.ByteSizeLong() / 4));
  int cases = 0;
  for (int part = 0; part <= whole.cases_size(); ++part) {
    grpc::ServerContext context;
    v1::Run page;
    grpc::Status s = gate.GetRun(&context, &get, &page);
    if (!s.ok()) {
      CheckAnswer(s);  // a case too big for a page is said so, not cut
      return;
    }
    fuzz::CheckDeliverable(page);
    cases += page.cases_size();
    if (page.next_page_token().empty()) {
      if (cases != whole.cases_size()) fuzz::Fail("pages lost cases", whole.run_id());
      return;
    }
    get.set_page_token(page.next_page_token());
  }
  fuzz::Fail("pages never end", whole.run_id());
}

void Exercise(const v1::SubmitRunRequest& request) {
  InputDb db;  // outlives the store
  auto store = OpenSqliteStore(db.dir + "/perfgate.db");
  if (!store.ok()) fuzz::Fail("store", std::string(store.status().message()));
  SimulatedTimeSource clock;
  Scheduler scheduler(store->get(), &clock);
  if (!scheduler.Recover().ok()) fuzz::Fail("recover", "");
  // No tokens: authentication is off, as on loopback; the size limits are the coordinator's defaults.
  Gatekeeper gatekeeper(RoleTokens{}, MessageLimits{}, nullptr);
  ArtifactStore& artifacts = SharedArtifacts();
  GateServiceImpl gate(&scheduler, &gatekeeper, &artifacts, /*max_watch_streams=*/16);

  // Agents are there before the run, as on a live coordinator: cases neither can run end at once.
  std::vector<Agent> agents = {Register(scheduler, "fuzz-cpu", false), Register(scheduler, "fuzz-gpu", true)};

  v1::SubmitRunResponse submitted;
  {
    grpc::ServerContext context;
    grpc::Status s = gate.SubmitRun(&context, &request, &submitted);
    if (!s.ok()) {
      CheckAnswer(s);
      scheduler.Shutdown();
      return;
    }
  }
  fuzz::CheckDeliverable(submitted);

  // The agents run a few cases, one lease at a time; a lease's spec is the
  // hostile suite's, so it must reach the agent too.
  int completed = 0;
  for (bool progress = true; progress && completed < kMaxCompletions;) {
    progress = false;
    for (const Agent& agent : agents) {
      v1::WorkItem item;
      auto wait = scheduler.NextWorkItem(agent.session_id, 0, &item);
      if (!wait.ok()) {
        fuzz::CheckErrorText(wait.status());
        continue;
      }
      if (*wait != Scheduler::Wait::kItem || !item.has_lease()) continue;
      fuzz::CheckDeliverable(item);
      v1::CompleteLeaseRequest done;
      done.set_session_id(agent.session_id);
      done.set_lease_id(item.lease().lease_id());
      *done.mutable_result() = PlausibleResult(item.lease(), agent, completed++);
      auto answer = scheduler.Complete(done);
      if (answer.ok()) {
        fuzz::CheckDeliverable(*answer);
      } else {
        fuzz::CheckErrorText(answer.status());
      }
      progress = true;
    }
    clock.Advance(100);
  }

  const std::string& run_id = submitted.run_id();
  {
    grpc::ServerContext context;
    v1::CancelRunRequest cancel;
    cancel.set_run_id(run_id);
    v1::CancelRunResponse cancelled;
    grpc::Status s = gate.CancelRun(&context, &cancel, &cancelled);
    CheckAnswer(s);
    if (s.ok()) fuzz::CheckDeliverable(cancelled);
  }
  // The cancellations of leases still held go to their agents.
  for (const Agent& agent : agents) {
    v1::WorkItem item;
    for (int i = 0; i < 4; ++i) {
      auto wait = scheduler.NextWorkItem(agent.session_id, 0, &item);
      if (!wait.ok() || *wait != Scheduler::Wait::kItem) break;
      fuzz::CheckDeliverable(item);
    }
  }

  // The run has ended: a sweep takes it out of memory, so it is read back from the store.
  scheduler.Sweep();
  v1::Run run;
  {
    grpc::ServerContext context;
    v1::GetRunRequest get;
    get.set_run_id(run_id);
    grpc::Status s = gate.GetRun(&context, &get, &run);
    if (!s.ok()) fuzz::Fail("run lost", s.error_message());
  }
  fuzz::CheckDeliverable(run);
  ReadInPages(gate, run);

  // History as the gate asks for it (HistoryRequestFor), but for the run's
  // own branch and with the run itself: it has ended, so its medians are
  // what the store reads back.
  Policy policy;
  v1::HistoryRequest history = HistoryRequestFor(run, policy, clock.NowMs());
  history.set_branch(run.branch());
  history.clear_exclude_run_id();
  history.clear_since_ms();
  Baselines baselines;
  {
    grpc::ServerContext context;
    v1::HistoryResponse answer;
    grpc::Status s = gate.GetHistory(&context, &history, &answer);
    CheckAnswer(s);
    if (s.ok()) {
      fuzz::CheckDeliverable(answer);
      for (const auto& series : answer.series()) {
        const auto& k = series.key();
        baselines.history[{k.pool(), k.benchmark(), k.metric(), k.source()}].assign(series.run_medians().begin(),
                                                                                    series.run_medians().end());
      }
      baselines.known_pools.emplace(answer.known_pools().begin(), answer.known_pools().end());
    }
  }

  GateReport report = BuildGateReport(run, baselines, policy);
  std::ostringstream json;
  JsonReporter().Write(report, json);

  {
    grpc::ServerContext context;
    const v1::ReportVerdictRequest verdict = VerdictRequestFor(report);
    v1::ReportVerdictResponse answer;
    CheckAnswer(gate.ReportVerdict(&context, &verdict, &answer));
  }
  scheduler.Shutdown();
  // This input's pin goes (its run is over): the pins do not pile up across inputs.
  artifacts.CollectGarbage();
}

}  // namespace
}  // namespace perfgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  perfgate::v1::SubmitRunRequest request;
  // Bytes that gRPC would refuse to parse never reach the service.
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  perfgate::Exercise(request);
  return 0;
}
