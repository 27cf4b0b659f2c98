// The gate's side of a dispatch part, over loopback gRPC: suites of trivial
// cases submitted and watched to their end, history fetched in a loop by a
// second client, and waits until agents have registered and worked.
#ifndef PERFGATE_BENCH_DISPATCH_GATE_CALLS_H_
#define PERFGATE_BENCH_DISPATCH_GATE_CALLS_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/dispatch/gaps.h"
#include "bench/dispatch/processes.h"
#include "perfgate/v1/gate.grpc.pb.h"

namespace perfgate::dispatch {

struct RunTimes {
  std::string run_id;
  double seconds = 0;
};

std::unique_ptr<v1::GateService::Stub> GateStub(const std::string& address);

// `cases` cases named case0.., each running `program` once.
v1::Suite TrivialSuite(const std::string& name, int cases, const std::string& program);

// Submits and waits for the run to finish (watching without results); exits
// the bench (3) if the coordinator refuses or the watch is lost.
RunTimes SubmitAndWait(v1::GateService::Stub& stub, const v1::Suite& suite, const std::string& branch);

// The run with its results; exits the bench (3) on an error.
v1::Run FetchRun(v1::GateService::Stub& stub, const std::string& run_id);

// Submits `runs` runs of `suite` at once and waits for them all: the agents
// never run dry between them, so a gap is the coordinator's. Their run ids.
std::vector<std::string> SubmitTogether(const std::string& address, const v1::Suite& suite, int runs);

// Every key of a load suite of `cases` cases (the metrics a trivial case reports).
v1::HistoryRequest AllKeys(int cases);

// Returns once the coordinator has written the history of every run that
// ended (a history call waits for those summaries): a run's memory includes
// its summary's (the first run's creates its series), so the RSS peaks of
// the first run and the last are each taken after it.
void WaitForSummaries(v1::GateService::Stub& stub);

// Waits (up to 30 s) until an agent of `pool` has registered, through the history reply's pool list.
void WaitForPool(v1::GateService::Stub& stub, const std::string& pool);

// Runs small warm-up suites until `n` distinct agents have run a case, so
// every agent has finished its start-up and registered; exits the bench (3) if they do not.
void WaitUntilEveryAgentWorks(v1::GateService::Stub& stub, int n);

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

}  // namespace perfgate::dispatch

#endif  // PERFGATE_BENCH_DISPATCH_GATE_CALLS_H_
