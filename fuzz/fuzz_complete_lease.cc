// Result ingestion in the coordinator: a CompleteLeaseRequest built from
// fuzz bytes is handed to Scheduler::Complete for a lease really granted
// (SQLite store in memory), and the run it lands in is reported as JSON,
// as `perfgate gate` would. Neither may crash, and the run stays deliverable.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

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
  auto run = scheduler.Submit(submit);
  if (!run.ok()) fuzz::Fail("submit", std::string(run.status().message()));
  v1::WorkItem item;
  auto wait = scheduler.NextWorkItem(session->session_id(), 0, &item);
  if (!wait.ok() || *wait != Scheduler::Wait::kItem || !item.has_lease()) fuzz::Fail("no lease granted", "");

  // Ids the fuzzer cannot guess are filled in when it leaves them empty, so
  // most inputs reach the counting path; the others test foreign ids.
  v1::CompleteLeaseRequest request = fuzzed;
  if (request.session_id().empty()) request.set_session_id(session->session_id());
  if (request.lease_id().empty()) request.set_lease_id(item.lease().lease_id());
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
