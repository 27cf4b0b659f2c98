// Result ingestion in the coordinator: a CompleteLeaseRequest built from
// fuzz bytes is handed to Scheduler::Complete for leases really granted
// (SQLite store in memory; the session holds four, so that further results
// and leases held ahead are reached too), and the run it lands in is
// reported as JSON, as `perfgate gate` would. Neither may crash, and the
// run stays deliverable.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "core/policy.h"
#include "core/judge.h"
#include "core/time_source.h"
#include "fuzz/fuzz_check.h"

namespace perfgate {
namespace {

void Ingest(const v1::CompleteLeaseRequest& fuzzed) {
  auto store = OpenSqliteStore(":memory:");
  if (!store.ok()) fuzz::Fail("in-memory store", std::string(store.status().message()));
  SimulatedTimeSource clock;
  Scheduler scheduler(store->get(), &clock);
  if (!scheduler.Recover().ok()) fuzz::Fail("recover", "");

  v1::RegisterRequest hello;
  hello.set_agent_id("fuzz-agent");
  auto session = scheduler.Register(hello);
  if (!session.ok()) fuzz::Fail("register", std::string(session.status().message()));
  v1::SubmitRunRequest submit;
  submit.mutable_suite()->set_name("fuzz");
  auto* spec = submit.mutable_suite()->add_cases();
  spec->set_name("case");
  spec->add_argv("/bin/true");
  for (int i = 1; i < 40; ++i) *submit.mutable_suite()->add_cases() = *spec;
  for (int i = 1; i < 40; ++i) submit.mutable_suite()->mutable_cases(i)->set_name("case" + std::to_string(i));
  auto run = scheduler.Submit(submit);
  if (!run.ok()) fuzz::Fail("submit", std::string(run.status().message()));
  v1::WorkItem item;
  auto wait = scheduler.NextWorkItem(session->session_id(), 0, &item);
  if (!wait.ok() || *wait != Scheduler::Wait::kItem || !item.has_lease()) fuzz::Fail("no lease granted", "");

  // The first case's result asks to hold four leases, as an agent with short cases does.
  v1::CompleteLeaseRequest first;
  first.set_session_id(session->session_id());
  first.set_lease_id(item.lease().lease_id());
  first.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  first.set_leases_wanted(4);
  auto held = scheduler.Complete(first);
  if (!held.ok() || !held->has_next_lease() || held->more_leases_size() != 3) fuzz::Fail("no leases held ahead", "");
  std::vector<std::string> ids = {held->next_lease().lease_id()};
  for (const auto& l : held->more_leases()) ids.push_back(l.lease_id());

  // Ids the fuzzer cannot guess are filled in when it leaves them empty, so
  // most inputs reach the counting path; the others test foreign ids.
  v1::CompleteLeaseRequest request = fuzzed;
  if (request.session_id().empty()) request.set_session_id(session->session_id());
  if (request.lease_id().empty()) request.set_lease_id(ids[0]);
  for (int i = 0; i < request.more_results_size(); ++i) {
    auto* more = request.mutable_more_results(i);
    if (more->lease_id().empty()) more->set_lease_id(ids[static_cast<size_t>(i + 1) % ids.size()]);
  }
  auto answer = scheduler.Complete(request);
  if (!answer.ok()) fuzz::CheckErrorText(answer.status());
  (void)scheduler.Complete(request);  // the idempotent repeat

  auto done = scheduler.GetRun(run->run_id());
  if (!done.ok()) fuzz::Fail("run lost", std::string(done.status().message()));
  fuzz::CheckDeliverable(*done);
  std::ostringstream json;
  JsonReporter().Write(BuildGateReport(*done, Baselines{}, Policy{}), json);
  scheduler.Shutdown();
}

}  // namespace
}  // namespace perfgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  perfgate::v1::CompleteLeaseRequest request;
  // Bytes that gRPC would refuse to parse never reach the scheduler.
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  perfgate::Ingest(request);
  return 0;
}
