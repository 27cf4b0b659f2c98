#include "bench/dispatch/gate_calls.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"

namespace perfgate::dispatch {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

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
    finished = event.has_run_finished() || (event.has_snapshot() && event.snapshot().state() != v1::RUN_STATE_RUNNING);
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

v1::HistoryRequest AllKeys(int cases) {
  v1::HistoryRequest request;
  request.set_branch("main");
  request.set_max_runs(30);
  for (int i = 0; i < cases; ++i) {
    for (const char* metric : {"wall_time", "user_cpu_time", "sys_cpu_time", "peak_rss"}) {
      auto* key = request.add_keys();
      key->set_pool("load");
      key->set_benchmark(absl::StrCat("case", i));
      key->set_metric(metric);
      key->set_source(std::string(metric) == "wall_time"  ? "agent:clock"
                      : std::string(metric) == "peak_rss" ? "agent:cgroup"
                                                          : "agent:rusage");
    }
  }
  return request;
}

void WaitForSummaries(v1::GateService::Stub& stub) {
  const v1::HistoryRequest one = AllKeys(1);
  grpc::ClientContext context;
  v1::HistoryResponse response;
  if (!stub.GetHistory(&context, one, &response).ok()) std::fprintf(stderr, "dispatch: a history call failed\n");
}

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

}  // namespace perfgate::dispatch
