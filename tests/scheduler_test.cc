// The lease state machine with simulated time and a real SQLite store.
#include "coordinator/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "coordinator/process_priority.h"
#include "tests/forwarding_store.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    scheduler_.reset();
    store_.reset();
    auto store = OpenSqliteStore(dir_.File("perfgate.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    options_.lease_ttl_ms = 10'000;
    options_.session_ttl_ms = 15'000;
    options_.max_attempts = 2;
    options_.no_agent_grace_ms = 30'000;
    scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
    ASSERT_TRUE(scheduler_->Recover().ok());
  }

  std::string Register(const std::string& agent_id, bool gpu = false, const std::string& pool = "") {
    v1::RegisterRequest request;
    request.set_agent_id(agent_id);
    request.set_pool(pool);
    if (gpu) {
      auto* g = request.mutable_host()->add_gpus();
      g->set_name("H100");
      g->set_memory_bytes(80ull << 30);
      g->set_compute_capability(90);
    }
    auto response = scheduler_->Register(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->session_id();
  }

  // A registration from one agent process (instance) of the id.
  absl::StatusOr<v1::RegisterResponse> RegisterInstance(const std::string& agent_id, const std::string& instance) {
    v1::RegisterRequest request;
    request.set_agent_id(agent_id);
    request.set_instance(instance);
    return scheduler_->Register(request);
  }

  std::string Submit(int cases, bool gpu = false) {
    v1::SubmitRunRequest request;
    request.mutable_suite()->set_name("s");
    for (int i = 0; i < cases; ++i) {
      auto* c = request.mutable_suite()->add_cases();
      c->set_name("case" + std::to_string(i));
      c->add_argv("/bin/true");
      if (gpu) c->mutable_requirements()->set_device(v1::Requirements::DEVICE_GPU);
    }
    auto response = scheduler_->Submit(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->run_id();
  }

  // The next item for a session, without blocking.
  std::optional<v1::WorkItem> Next(const std::string& session) {
    v1::WorkItem item;
    auto wait = scheduler_->NextWorkItem(session, 0, &item);
    if (!wait.ok() || *wait != Scheduler::Wait::kItem) return std::nullopt;
    return item;
  }

  v1::CompleteLeaseResponse::Disposition Complete(const std::string& session, const std::string& lease,
                                                  v1::CaseResult::Outcome outcome = v1::CaseResult::OUTCOME_OK) {
    v1::CompleteLeaseRequest request;
    request.set_session_id(session);
    request.set_lease_id(lease);
    request.mutable_result()->set_outcome(outcome);
    auto* value = request.mutable_result()->add_samples()->add_values();
    value->set_benchmark("case");
    value->set_metric("wall_time");
    value->set_value(1.0);
    auto response = scheduler_->Complete(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->disposition();
  }

  // A completion of `lease` by `session`, with a result of `outcome` and no samples.
  static v1::CompleteLeaseRequest Completion(const std::string& session, const std::string& lease,
                                             v1::CaseResult::Outcome outcome) {
    v1::CompleteLeaseRequest request;
    request.set_session_id(session);
    request.set_lease_id(lease);
    request.mutable_result()->set_outcome(outcome);
    return request;
  }

  // A completion that asks for the next lease in its reply, as the agent sends it.
  v1::CompleteLeaseResponse CompleteAndAskNext(const std::string& session, const std::string& lease) {
    v1::CompleteLeaseRequest request;
    request.set_session_id(session);
    request.set_lease_id(lease);
    request.set_want_next_lease(true);
    request.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
    auto response = scheduler_->Complete(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::CompleteLeaseResponse();
  }

  // One call carrying the results of `leases` (all OK, each case busy for
  // `busy_us`; 0: not said), asking to hold `wanted` leases after it.
  absl::StatusOr<v1::CompleteLeaseResponse> CompleteSeveral(const std::string& session,
                                                            const std::vector<std::string>& leases, uint32_t wanted,
                                                            uint64_t busy_us = 0) {
    v1::CompleteLeaseRequest request;
    request.set_session_id(session);
    request.set_leases_wanted(wanted);
    for (size_t i = 0; i < leases.size(); ++i) {
      v1::CaseResult result;
      result.set_outcome(v1::CaseResult::OUTCOME_OK);
      result.set_busy_us(busy_us);
      if (i == 0) {
        request.set_lease_id(leases[i]);
        *request.mutable_result() = result;
      } else {
        auto* more = request.add_more_results();
        more->set_lease_id(leases[i]);
        *more->mutable_result() = result;
      }
    }
    return scheduler_->Complete(request);
  }

  // The ids of the leases a reply carries, in order.
  static std::vector<std::string> LeaseIds(const v1::CompleteLeaseResponse& reply) {
    std::vector<std::string> ids;
    if (reply.has_next_lease()) ids.push_back(reply.next_lease().lease_id());
    for (const auto& l : reply.more_leases()) ids.push_back(l.lease_id());
    return ids;
  }

  // A session takes its first case on the Work stream and then asks, with
  // its result, to hold four: the leases its reply carried.
  // REQUIRES: a suite of at least 20 cases pending (Submit(20)), so that
  // none of the four is among the queue's last ones.
  std::vector<std::string> HoldFour(const std::string& session) {
    auto first = Next(session);
    EXPECT_TRUE(first && first->has_lease());
    if (!first || !first->has_lease()) return {};
    auto reply = CompleteSeveral(session, {first->lease().lease_id()}, 4);
    EXPECT_TRUE(reply.ok()) << reply.status();
    std::vector<std::string> held = reply.ok() ? LeaseIds(*reply) : std::vector<std::string>{};
    EXPECT_EQ(held.size(), 4u);
    return held;
  }

  // A suite of `cases` cases, each expected to take `expected_ms` (0: never seen).
  std::string SubmitExpected(int cases, uint64_t expected_ms) {
    v1::SubmitRunRequest request;
    request.mutable_suite()->set_name("timed");
    for (int i = 0; i < cases; ++i) {
      auto* c = request.mutable_suite()->add_cases();
      c->set_name("case" + std::to_string(i));
      c->add_argv("/bin/true");
      c->set_expected_duration_ms(expected_ms);
    }
    auto response = scheduler_->Submit(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->run_id();
  }

  absl::StatusOr<v1::HeartbeatResponse> Beat(const std::string& session, const std::string& lease) {
    v1::HeartbeatRequest request;
    request.set_session_id(session);
    request.add_lease_ids(lease);
    return scheduler_->Heartbeat(request);
  }

  // A heartbeat with no lease: the agent is alive.
  void KeepAlive(const std::string& session) {
    v1::HeartbeatRequest request;
    request.set_session_id(session);
    ASSERT_TRUE(scheduler_->Heartbeat(request).ok());
  }

  v1::Run Run(const std::string& id) {
    auto run = scheduler_->GetRun(id);
    EXPECT_TRUE(run.ok()) << run.status();
    return *run;
  }

  testing::TempDir dir_;
  SimulatedTimeSource clock_;
  SchedulerOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, OneLeaseAtATimePerAgentAndRunFinishesWhenAllCasesComplete) {
  const std::string session = Register("a1");
  const std::string run = Submit(2);
  auto first = Next(session);
  ASSERT_TRUE(first && first->has_lease());
  EXPECT_EQ(first->lease().attempt(), 1u);
  EXPECT_FALSE(Next(session)) << "no second lease while the first is held";
  EXPECT_EQ(Complete(session, first->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  auto second = Next(session);
  ASSERT_TRUE(second && second->has_lease());
  EXPECT_NE(second->lease().spec().name(), first->lease().spec().name());
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_RUNNING);
  Complete(session, second->lease().lease_id());
  v1::Run done = Run(run);
  EXPECT_EQ(done.state(), v1::RUN_STATE_FINISHED);
  for (const auto& c : done.cases()) {
    EXPECT_EQ(c.state(), v1::CASE_STATE_DONE);
    EXPECT_EQ(c.result().outcome(), v1::CaseResult::OUTCOME_OK);
  }
}

TEST_F(SchedulerTest, HeartbeatsExtendTheLease) {
  const std::string session = Register("a1");
  Submit(1);
  auto item = Next(session);
  ASSERT_TRUE(item);
  const std::string lease = item->lease().lease_id();
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(8'000);  // under the 10 s TTL each time, 40 s in all
    auto beat = Beat(session, lease);
    ASSERT_TRUE(beat.ok());
    EXPECT_EQ(beat->expires_at_ms().at(lease), clock_.NowMs() + 10'000);
    scheduler_->Sweep();
  }
  EXPECT_EQ(Complete(session, lease), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(scheduler_->Stats().leases_lost, 0u);
}

TEST_F(SchedulerTest, ExpiredLeaseIsLostRequeuedWithNextAttemptAndLateResultIsStale) {
  const std::string s1 = Register("a1");
  const std::string s2 = Register("a2");
  const std::string run = Submit(1);
  auto item = Next(s1);
  ASSERT_TRUE(item);
  const std::string lease1 = item->lease().lease_id();

  clock_.Advance(9'999);
  scheduler_->Sweep();
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_RUNNING) << "not lost before expiry";
  KeepAlive(s2);  // keep a2's session alive
  clock_.Advance(1);
  scheduler_->Sweep();
  v1::Run after = Run(run);
  EXPECT_EQ(after.cases(0).state(), v1::CASE_STATE_PENDING);
  EXPECT_THAT(after.cases(0).error(), HasSubstr("attempt 1 on a1 lost: lease expired"));

  auto cancel = Next(s1);  // the slow agent is told to stop
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->cancel_lease_id(), lease1);
  auto retry = Next(s2);
  ASSERT_TRUE(retry && retry->has_lease());
  EXPECT_EQ(retry->lease().attempt(), 2u);

  EXPECT_EQ(Complete(s1, lease1), v1::CompleteLeaseResponse::DISPOSITION_STALE);
  EXPECT_EQ(Complete(s2, retry->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).cases(0).attempts(), 2u);
  EXPECT_EQ(Run(run).cases(0).agent_id(), "a2");
  auto stats = scheduler_->Stats();
  EXPECT_EQ(stats.results_counted, 1u);
  EXPECT_EQ(stats.results_stale, 1u);
}

// A frozen agent (SIGSTOP, swapping) back before its session ends took the
// case whose lease it had just lost, a second attempt of three on the
// agent that froze. It takes another case; the lost one goes elsewhere.
TEST_F(SchedulerTest, AnAgentBackFromAFreezeTakesAnotherCaseThanTheOneItLost) {
  const std::string frozen = Register("frozen");
  const std::string run = Submit(2);
  auto first = Next(frozen);
  ASSERT_TRUE(first && first->has_lease());
  EXPECT_EQ(first->lease().spec().name(), "case0");
  clock_.Advance(10'000);
  scheduler_->Sweep();  // the lease expired; the session (15 s) lives on
  ASSERT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_PENDING);
  auto cancel = Next(frozen);
  ASSERT_TRUE(cancel && cancel->cancel_lease_id() == first->lease().lease_id());
  auto next = Next(frozen);
  ASSERT_TRUE(next && next->has_lease());
  EXPECT_EQ(next->lease().spec().name(), "case1") << "not its own lost case again";
  const std::string other = Register("other");
  auto retry = Next(other);
  ASSERT_TRUE(retry && retry->has_lease());
  EXPECT_EQ(retry->lease().spec().name(), "case0");
  EXPECT_EQ(retry->lease().attempt(), 2u);
}

// Its lost case is all there is: it takes it, rather than nothing.
TEST_F(SchedulerTest, AnAgentTakesTheCaseItLostWhenNothingElseIsPending) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  clock_.Advance(10'000);
  scheduler_->Sweep();
  ASSERT_TRUE(Next(s));  // told to stop the lost lease
  auto again = Next(s);
  ASSERT_TRUE(again && again->has_lease());
  EXPECT_EQ(again->lease().attempt(), 2u);
}

// A lab whose agents are all restarting must not end every case of a run
// submitted meanwhile: they wait the grace, as when capable agents leave.
// The gate said nothing for the whole grace; the submit's answer now says what the cases wait for.
TEST_F(SchedulerTest, ASubmitWhileNoAgentIsRegisteredSaysHowLongItsCasesWait) {
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("s");
  request.mutable_suite()->add_cases()->set_name("a");
  request.mutable_suite()->mutable_cases(0)->add_argv("/bin/true");
  auto alone = scheduler_->Submit(request);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->waiting(),
            "no agent is registered; the cases wait up to 30.0 s for one, then end as no capable agent");
  Register("a1");
  auto served = scheduler_->Submit(request);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->waiting(), "");
}

TEST_F(SchedulerTest, ARunSubmittedWhileNoAgentIsRegisteredWaitsTheGrace) {
  const std::string run = Submit(2);
  scheduler_->Sweep();  // the coordinator sweeps every 100 ms: the grace starts here
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_PENDING);
  clock_.Advance(options_.no_agent_grace_ms - 1);
  scheduler_->Sweep();
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_PENDING);
  clock_.Advance(1);
  scheduler_->Sweep();
  const v1::Run ended = Run(run);
  EXPECT_EQ(ended.state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(ended.cases(1).state(), v1::CASE_STATE_NO_CAPABLE_AGENT);
  EXPECT_THAT(ended.cases(1).error(), HasSubstr("no agent is registered"));

  const std::string late = Submit(1);  // an agent comes back within the grace: the case runs
  const std::string s = Register("a1");
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  EXPECT_EQ(Complete(s, item->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(late).cases(0).state(), v1::CASE_STATE_DONE);
}

// A queue per set of requirements, kept while an unfinished run has cases
// in it: a label per case in every submit left a queue each for good, and
// every grant scanned them all.
TEST_F(SchedulerTest, QueuesGoWithTheLastUnfinishedRunThatUsesThem) {
  std::string s = Register("a1");
  for (int r = 0; r < 3; ++r) {
    v1::SubmitRunRequest request;
    request.mutable_suite()->set_name("labels");
    for (int i = 0; i < 20; ++i) {
      auto* c = request.mutable_suite()->add_cases();
      c->set_name("case" + std::to_string(i));
      c->add_argv("/bin/true");
      c->mutable_requirements()->add_labels("label-" + std::to_string(r) + "-" + std::to_string(i));
    }
    ASSERT_TRUE(scheduler_->Submit(request).ok());
  }
  scheduler_->Sweep();
  clock_.Advance(options_.no_agent_grace_ms);
  scheduler_->Sweep();  // no agent has those labels: every case ends, and its run
  EXPECT_EQ(scheduler_->Stats().queues, 0u);

  // Two runs share a queue: it stays while either is unfinished, and a case
  // of the one still running can go back to it (its lease lost).
  s = Register("a2");  // a1's session expired meanwhile
  const std::string other = Register("a3");
  const std::string first = Submit(1), second = Submit(1);
  auto a = Next(s);
  ASSERT_TRUE(a && a->has_lease());
  ASSERT_EQ(a->lease().run_id(), first);
  clock_.Advance(options_.lease_ttl_ms - 1);
  KeepAlive(other);
  clock_.Advance(1);
  scheduler_->Sweep();  // a2's lease lost: its case back in the queue
  auto again = Next(other);
  ASSERT_TRUE(again && again->has_lease());
  ASSERT_EQ(again->lease().run_id(), first);
  EXPECT_EQ(Complete(other, again->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(scheduler_->Stats().queues, 1u) << "the second run still has a case in it";
  s = other;
  auto b = Next(s);
  ASSERT_TRUE(b && b->has_lease());
  EXPECT_EQ(Complete(s, b->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(second).state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(scheduler_->Stats().queues, 0u);
}

TEST_F(SchedulerTest, GivesUpAfterMaxAttemptsWithAReason) {
  const std::string s = Register("a1");
  const std::string run2 = Submit(1);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto item = Next(s);
    ASSERT_TRUE(item && item->has_lease()) << attempt;
    EXPECT_EQ(item->lease().attempt(), static_cast<uint32_t>(attempt));
    clock_.Advance(10'000);
    KeepAlive(s);
    scheduler_->Sweep();
    Next(s);  // drain the cancellation
  }
  v1::Run done = Run(run2);
  EXPECT_EQ(done.state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(done.cases(0).state(), v1::CASE_STATE_ERROR);
  EXPECT_THAT(done.cases(0).error(), HasSubstr("gave up after 2 attempts"));
}

TEST_F(SchedulerTest, CompletionIsIdempotent) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item);
  const std::string lease = item->lease().lease_id();
  EXPECT_EQ(Complete(s, lease, v1::CaseResult::OUTCOME_OK), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  // A retry (lost acknowledgement) with a different body gets the same answer; the first result stands.
  EXPECT_EQ(Complete(s, lease, v1::CaseResult::OUTCOME_FAILED), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  EXPECT_EQ(scheduler_->Stats().results_counted, 1u);
  EXPECT_EQ(scheduler_->Stats().results_duplicate, 1u);
}

TEST_F(SchedulerTest, ReRegisteringFencesTheOldSession) {
  const std::string old_session = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(old_session);
  ASSERT_TRUE(item);
  const std::string new_session = Register("a1");
  auto beat = Beat(old_session, item->lease().lease_id());
  ASSERT_FALSE(beat.ok());
  EXPECT_EQ(beat.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(beat.status().message()), HasSubstr("stale session"));
  v1::WorkItem ignored;
  EXPECT_FALSE(scheduler_->NextWorkItem(old_session, 0, &ignored).ok());
  // The fenced session's lease was lost and the case goes to the new session.
  EXPECT_EQ(Complete(old_session, item->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_STALE);
  auto again = Next(new_session);
  ASSERT_TRUE(again && again->has_lease());
  EXPECT_EQ(again->lease().attempt(), 2u);
  Complete(new_session, again->lease().lease_id());
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
}

TEST_F(SchedulerTest, GpuCaseWithOnlyCpuAgentsIsRefusedAtSubmit) {
  Register("cpu1");
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("s");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("gpu_case");
  c->add_argv("/bin/true");
  c->mutable_requirements()->set_device(v1::Requirements::DEVICE_GPU);
  auto response = scheduler_->Submit(request);
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(response->unsatisfiable_size(), 1);
  EXPECT_THAT(response->unsatisfiable(0), HasSubstr("gpu_case: no registered agent can run it (cpu1: needs a GPU"));
  v1::Run run = Run(response->run_id());
  EXPECT_EQ(run.state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(run.cases(0).state(), v1::CASE_STATE_NO_CAPABLE_AGENT);
}

// A confirmation re-measures where the first run measured: its cases name
// that pool, and only an agent of it may take them.
TEST_F(SchedulerTest, ACaseThatNamesAPoolGoesOnlyToAnAgentOfIt) {
  const std::string h100 = Register("h100-1", /*gpu=*/false, "h100");
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("s");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("again");
  c->add_argv("/bin/true");
  c->mutable_requirements()->set_pool("xeon");
  auto refused = scheduler_->Submit(request);
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(refused->unsatisfiable_size(), 1);
  EXPECT_THAT(refused->unsatisfiable(0), HasSubstr("needs pool 'xeon', is in pool 'h100'"));

  const std::string xeon = Register("xeon-1", /*gpu=*/false, "xeon");
  auto submitted = scheduler_->Submit(request);
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(submitted->unsatisfiable_size(), 0);
  EXPECT_FALSE(Next(h100));
  auto item = Next(xeon);
  ASSERT_TRUE(item && item->has_lease());
}

TEST_F(SchedulerTest, GpuCaseGoesOnlyToAGpuAgent) {
  const std::string cpu = Register("cpu1");
  const std::string gpu = Register("gpu1", /*gpu=*/true);
  Submit(1, /*gpu=*/true);
  EXPECT_FALSE(Next(cpu));
  auto item = Next(gpu);
  ASSERT_TRUE(item && item->has_lease());
}

TEST_F(SchedulerTest, PendingCaseWhoseCapableAgentsVanishEndsAfterGrace) {
  const std::string gpu = Register("gpu1", /*gpu=*/true);
  const std::string cpu = Register("cpu1");
  const std::string run = Submit(1, /*gpu=*/true);
  clock_.Advance(16'000);  // gpu1 silent past its session TTL; cpu1 keeps beating
  KeepAlive(cpu);
  scheduler_->Sweep();
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_PENDING);
  clock_.Advance(14'000);
  KeepAlive(cpu);
  scheduler_->Sweep();
  clock_.Advance(14'000);
  KeepAlive(cpu);
  scheduler_->Sweep();
  clock_.Advance(2'000);
  KeepAlive(cpu);
  scheduler_->Sweep();
  v1::Run done = Run(run);
  EXPECT_EQ(done.cases(0).state(), v1::CASE_STATE_NO_CAPABLE_AGENT);
  EXPECT_THAT(done.cases(0).error(), HasSubstr("needs a GPU"));
}

TEST_F(SchedulerTest, CancelReachesTheAgentAndEndsTheRun) {
  const std::string s = Register("a1");
  const std::string run = Submit(3);
  auto item = Next(s);
  ASSERT_TRUE(item);
  auto state = scheduler_->Cancel(run);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, v1::RUN_STATE_CANCELLED);
  auto cancel = Next(s);
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->cancel_lease_id(), item->lease().lease_id());
  auto beat = Beat(s, item->lease().lease_id());
  ASSERT_TRUE(beat.ok());
  EXPECT_THAT(beat->cancel_lease_ids(), ::testing::ElementsAre(item->lease().lease_id()));
  EXPECT_FALSE(Next(s)) << "nothing more to do";
  v1::Run done = Run(run);
  for (const auto& c : done.cases()) EXPECT_EQ(c.state(), v1::CASE_STATE_CANCELLED);
  EXPECT_EQ(Complete(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_CANCELLED),
            v1::CompleteLeaseResponse::DISPOSITION_STALE);
}

TEST_F(SchedulerTest, RestartKeepsFinishedResultsAndReleasesInFlightWork) {
  const std::string s = Register("a1");
  const std::string run = Submit(2);
  auto first = Next(s);
  ASSERT_TRUE(first);
  Complete(s, first->lease().lease_id());
  auto second = Next(s);
  ASSERT_TRUE(second);
  // "Crash": drop the scheduler without any shutdown, open a new one on the same file.
  Open();
  v1::Run recovered = Run(run);
  EXPECT_EQ(recovered.state(), v1::RUN_STATE_RUNNING);
  EXPECT_EQ(recovered.cases(0).state(), v1::CASE_STATE_DONE);
  EXPECT_EQ(recovered.cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  ASSERT_EQ(recovered.cases(0).result().samples_size(), 1);
  EXPECT_EQ(recovered.cases(0).result().samples(0).values(0).metric(), "wall_time");
  EXPECT_EQ(recovered.cases(1).state(), v1::CASE_STATE_RUNNING);
  // The agent's session and lease survive: it can renew and complete.
  auto beat = Beat(s, second->lease().lease_id());
  ASSERT_TRUE(beat.ok()) << beat.status();
  EXPECT_EQ(beat->cancel_lease_ids_size(), 0);
  EXPECT_EQ(Complete(s, second->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
}

// A case re-queued by a restart (its lease's session did not survive) has
// lost an attempt like any other lost lease: once its attempts are spent it
// ends as an error instead of running again after every restart.
TEST_F(SchedulerTest, ACaseReQueuedByRestartsKeepsToItsAttemptLimit) {
  const std::string run = Submit(1);
  for (uint32_t attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    const std::string s = Register("a" + std::to_string(attempt));
    auto item = Next(s);
    ASSERT_TRUE(item && item->has_lease()) << "attempt " << attempt;
    EXPECT_EQ(item->lease().attempt(), attempt);
    // A crash that took the session and left its lease active.
    ASSERT_TRUE(testing::ExecSql(dir_.File("perfgate.db"), "DELETE FROM sessions"));
    Open();
  }
  const v1::Run after = Run(run);
  EXPECT_EQ(after.cases(0).state(), v1::CASE_STATE_ERROR);
  EXPECT_THAT(after.cases(0).error(), HasSubstr("gave up after 2 attempts"));
  EXPECT_THAT(after.cases(0).error(), HasSubstr("coordinator restart"));
  EXPECT_EQ(after.state(), v1::RUN_STATE_FINISHED);
  EXPECT_FALSE(Next(Register("later"))) << "nothing is left to run";
}

TEST_F(SchedulerTest, RestartThenSilentAgentLosesLeaseAndCaseIsRetried) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item);
  Open();
  const std::string s2 = Register("a2");
  clock_.Advance(10'000);
  KeepAlive(s2);
  scheduler_->Sweep();
  auto retry = Next(s2);
  ASSERT_TRUE(retry && retry->has_lease());
  EXPECT_EQ(retry->lease().attempt(), 2u);
  Complete(s2, retry->lease().lease_id());
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
}

// A completion's reply can be lost with the leases it carried. The agent
// repeats the call; once the completed case's run has left memory, the
// repeat must still carry them, or each would wait out its TTL and be lost.
TEST_F(SchedulerTest, ARepeatAfterItsRunLeftMemoryStillCarriesTheLeasesTheFirstReplyCarried) {
  const std::string s = Register("a1");
  Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  const std::string next_run = Submit(2);
  const v1::CompleteLeaseResponse reply = CompleteAndAskNext(s, item->lease().lease_id());
  ASSERT_TRUE(reply.has_next_lease());
  ASSERT_EQ(reply.next_lease().run_id(), next_run);
  scheduler_->Sweep();  // the finished run leaves memory (finished_runs_in_memory 0)

  const v1::CompleteLeaseResponse repeat = CompleteAndAskNext(s, item->lease().lease_id());
  EXPECT_EQ(repeat.disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  ASSERT_TRUE(repeat.has_next_lease()) << "the repeat carries the lease the lost reply carried";
  EXPECT_EQ(repeat.next_lease().lease_id(), reply.next_lease().lease_id());
  EXPECT_EQ(repeat.next_lease().spec().name(), reply.next_lease().spec().name());

  // Once that lease has ended, the kept answer goes; a repeat is answered from the store.
  Complete(s, reply.next_lease().lease_id());
  scheduler_->Sweep();
  const v1::CompleteLeaseResponse late = CompleteAndAskNext(s, item->lease().lease_id());
  EXPECT_EQ(late.disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_FALSE(late.has_next_lease());
  EXPECT_EQ(Run(next_run).cases(0).state(), v1::CASE_STATE_DONE);
}

// Watches Flush(0), the call that waits for earlier commits to reach the disk.
class FlushWatchingStore : public testing::ForwardingStore {
 public:
  FlushWatchingStore(Store* target, std::function<void()> on_flush_earlier)
      : ForwardingStore(target), on_flush_earlier_(std::move(on_flush_earlier)) {}
  absl::Status Flush(uint64_t group) override {
    if (group == 0) on_flush_earlier_();
    return ForwardingStore::Flush(group);
  }

 private:
  std::function<void()> on_flush_earlier_;
};

// A store with --sync-commits whose syncs can be held: once Hold() is
// called, the next sync waits until Release(). Its mutex and condition
// guard the tests' own flags too.
class HeldSyncStore {
 public:
  explicit HeldSyncStore(const std::string& path) {
    auto opened = OpenSqliteStore(path, 5'000, CommitDurability::kPowerLoss, [this](int fd) {
      std::unique_lock lock(mu);
      if (hold_) {
        hold_ = false;
        holding_ = true;
        cv.notify_all();
        cv.wait(lock, [&] { return released_; });
      }
      const int r = fdatasync(fd);
      ++syncs_done;
      return r;
    });
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (opened.ok()) store = *std::move(opened);
  }
  void Hold() {
    std::lock_guard lock(mu);
    hold_ = true;
  }
  // Returns once the held sync has begun, with mu held by `lock`.
  void AwaitHolding(std::unique_lock<std::mutex>& lock) {
    cv.wait(lock, [&] { return holding_; });
  }
  // REQUIRES: mu held.
  void Release() {
    released_ = true;
    cv.notify_all();
  }
  bool released() const { return released_; }  // REQUIRES: mu held

  std::unique_ptr<Store> store;
  std::mutex mu;
  std::condition_variable cv;
  int syncs_done = 0;  // guarded by mu

 private:
  bool hold_ = false, holding_ = false, released_ = false;
};

// With --sync-commits a result is acknowledged only once it is on disk. A
// repeat of a completion whose first answer is committed but not yet synced
// (the first reply lost or late) must wait for that sync as well: the agent
// drops its copy of the result on the repeat's answer.
TEST_F(SchedulerTest, WithSyncedCommitsARepeatIsAnsweredOnlyOnceTheFirstResultIsOnDisk) {
  HeldSyncStore synced(dir_.File("synced.db"));
  ASSERT_TRUE(synced.store);
  bool repeat_waits = false, repeat_answered = false;
  FlushWatchingStore store(synced.store.get(), [&] {
    std::lock_guard lock(synced.mu);
    repeat_waits = true;
    synced.cv.notify_all();
  });
  scheduler_ = std::make_unique<Scheduler>(&store, &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  const std::string s = Register("a1");
  Submit(2);  // the result does not finish the run (see the next test for a run's end)
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  const v1::CompleteLeaseRequest completion = Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_OK);
  synced.Hold();  // the first completion's sync waits until released
  std::thread first([&] { EXPECT_TRUE(scheduler_->Complete(completion).ok()); });
  int syncs_before = 0;
  {
    std::unique_lock lock(synced.mu);
    synced.AwaitHolding(lock);
    syncs_before = synced.syncs_done;
  }
  int syncs_at_answer = -1;
  std::thread repeat([&] {
    auto answer = scheduler_->Complete(completion);
    EXPECT_TRUE(answer.ok()) << answer.status();
    if (answer.ok()) EXPECT_EQ(answer->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
    std::lock_guard lock(synced.mu);
    syncs_at_answer = synced.syncs_done;
    repeat_answered = true;
    synced.cv.notify_all();
  });
  {
    std::unique_lock lock(synced.mu);
    synced.cv.wait(lock, [&] { return repeat_waits || repeat_answered; });
    synced.Release();
  }
  first.join();
  repeat.join();
  EXPECT_GT(syncs_at_answer, syncs_before) << "the repeat was answered before the first result's sync ended";
  scheduler_.reset();  // before the stores it uses
}

// With --sync-commits, the write of a run's end under the scheduler's lock
// synced there: every agent's call waited for the disk (300-700 ms at the
// tail on a shared disk) whenever a run finished. The sync now comes after
// the lock is let go, still before the completion is acknowledged.
TEST_F(SchedulerTest, WithSyncedCommitsARunsEndIsSyncedOutsideTheSchedulersLock) {
  HeldSyncStore synced(dir_.File("synced.db"));
  ASSERT_TRUE(synced.store);
  scheduler_ = std::make_unique<Scheduler>(synced.store.get(), &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  synced.Hold();
  bool answered_before_release = false, beaten = false;
  std::thread last([&] {
    auto answer = scheduler_->Complete(Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_OK));
    EXPECT_TRUE(answer.ok()) << answer.status();
    std::lock_guard lock(synced.mu);
    answered_before_release = !synced.released();
  });
  {
    std::unique_lock lock(synced.mu);
    synced.AwaitHolding(lock);
  }
  std::thread beat([&] {
    KeepAlive(s);  // takes the scheduler's lock
    std::lock_guard lock(synced.mu);
    beaten = true;
    synced.cv.notify_all();
  });
  bool beaten_while_syncing = false;
  {
    std::unique_lock lock(synced.mu);
    // Bounded only so that a failure ends the test instead of hanging it.
    beaten_while_syncing = synced.cv.wait_for(lock, std::chrono::seconds(60), [&] { return beaten; });
    synced.Release();
  }
  last.join();
  beat.join();
  EXPECT_TRUE(beaten_while_syncing) << "a heartbeat waited for the sync of a run's end";
  EXPECT_FALSE(answered_before_release) << "the completion was acknowledged before its sync";
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
  scheduler_.reset();
}

TEST_F(SchedulerTest, FinishedRunsLeaveMemoryButNotTheStore) {
  options_.finished_runs_in_memory = 1;
  scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  const std::string s = Register("a1");
  std::vector<std::string> runs, leases;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(Submit(1));
    auto item = Next(s);
    ASSERT_TRUE(item);
    leases.push_back(item->lease().lease_id());
    Complete(s, leases.back());
  }
  // The oldest runs were evicted; they still read back, complete, from the store.
  v1::Run old = Run(runs[0]);
  EXPECT_EQ(old.state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(old.cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  // A very late repeat of an evicted lease's report gets the answer the
  // first one got (a lost acknowledgement), and is not counted again.
  v1::CompleteLeaseRequest late;
  late.set_session_id(s);
  late.set_lease_id(leases[0]);
  auto repeat = scheduler_->Complete(late);
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_EQ(repeat->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM results WHERE counted = 1"), 3);
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM results"), 3);
  late.set_lease_id("lease-never-granted");
  EXPECT_EQ(scheduler_->Complete(late).status().code(), absl::StatusCode::kNotFound);
}

// A result that comes without a host ran on the host its session registered
// with (the coordinator says so in RegisterResponse, and the agent leaves it
// out): the run, its events and the store all give that host back. A result
// that names a host of its own keeps it.
TEST_F(SchedulerTest, AResultWithoutAHostGetsItsSessionsHostWhereverItIsRead) {
  v1::RegisterRequest hello;
  hello.set_agent_id("a1");
  hello.mutable_host()->set_hostname("lab-17");
  hello.mutable_host()->set_kernel("6.18");
  auto registered = scheduler_->Register(hello);
  ASSERT_TRUE(registered.ok()) << registered.status();
  EXPECT_TRUE(registered->results_imply_host());
  const std::string s = registered->session_id();
  const std::string run_id = Submit(2);
  size_t cursor = 0;
  ASSERT_TRUE(scheduler_->Snapshot(run_id, &cursor).ok());
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  EXPECT_EQ(Complete(s, first->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  auto second = Next(s);
  ASSERT_TRUE(second && second->has_lease());
  v1::CompleteLeaseRequest own;
  own.set_session_id(s);
  own.set_lease_id(second->lease().lease_id());
  own.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  own.mutable_result()->mutable_host()->set_hostname("elsewhere");
  ASSERT_TRUE(scheduler_->Complete(own).ok());
  const int implied = first->lease().spec().name() == "case0" ? 0 : 1;

  auto expect_hosts = [&](const v1::Run& run, const char* where) {
    ASSERT_EQ(run.cases_size(), 2) << where;
    EXPECT_EQ(run.cases(implied).result().host().SerializeAsString(), hello.host().SerializeAsString()) << where;
    EXPECT_EQ(run.cases(1 - implied).result().host().hostname(), "elsewhere") << where;
  };
  expect_hosts(Run(run_id), "in memory");
  std::vector<v1::RunEvent> events;
  ASSERT_TRUE(scheduler_->WaitRunEvents(run_id, &cursor, 0, &events).ok());
  int with_results = 0;
  for (const auto& e : events) {
    if (!e.has_case_changed() || !e.case_changed().has_result()) continue;
    ++with_results;
    const std::string want = e.case_changed().name() == first->lease().spec().name() ? "lab-17" : "elsewhere";
    EXPECT_EQ(e.case_changed().result().host().hostname(), want);
  }
  EXPECT_EQ(with_results, 2);
  scheduler_->Sweep();  // finished_runs_in_memory 0: the run leaves memory
  auto stored = store_->LoadRun(run_id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  expect_hosts(*stored, "from the store");
}

// A run leaves memory a piece of its leases at a time (mu_ is released
// between pieces), and all of it within one sweep.
TEST_F(SchedulerTest, ARunWithMoreLeasesThanAPieceLeavesMemoryWithinOneSweep) {
  const std::string s = Register("a1");
  const int cases = static_cast<int>(Scheduler::kLeasesEvictedPerLock) + 44;
  const std::string run = Submit(cases);
  std::vector<std::string> leases;
  for (int i = 0; i < cases; ++i) {
    auto item = Next(s);
    ASSERT_TRUE(item && item->has_lease());
    leases.push_back(item->lease().lease_id());
    Complete(s, leases.back());
  }
  size_t cursor = 0;
  std::vector<v1::RunEvent> events;
  ASSERT_TRUE(scheduler_->WaitRunEvents(run, &cursor, 0, &events).ok());
  EXPECT_GT(events.size(), static_cast<size_t>(cases));  // the log in memory
  scheduler_->Sweep();
  cursor = 0;
  events.clear();
  ASSERT_TRUE(scheduler_->WaitRunEvents(run, &cursor, 0, &events).ok());
  ASSERT_EQ(events.size(), 1u);  // read from the store: the run left memory
  EXPECT_EQ(events[0].run_finished(), v1::RUN_STATE_FINISHED);
  // Leases of the first piece and of the last are answered from the store.
  for (const std::string& lease : {leases.front(), leases.back()}) {
    v1::CompleteLeaseRequest again;
    again.set_session_id(s);
    again.set_lease_id(lease);
    auto repeat = scheduler_->Complete(again);
    ASSERT_TRUE(repeat.ok()) << repeat.status();
    EXPECT_EQ(repeat->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  }
  EXPECT_EQ(Run(run).cases_size(), cases);
}

TEST_F(SchedulerTest, ALateResultAfterItsRunLeftMemoryIsKeptAsStale) {
  // An agent frozen past its lease delivers after the case was re-run
  // elsewhere, the run finished and left memory (finished_runs_in_memory 0):
  // the result is kept, not counted, and not lost.
  const std::string frozen = Register("frozen");
  const std::string awake = Register("awake");
  const std::string run = Submit(1);
  auto first = Next(frozen);
  ASSERT_TRUE(first && first->has_lease());
  clock_.Advance(options_.lease_ttl_ms);
  KeepAlive(awake);
  scheduler_->Sweep();
  auto retry = Next(awake);
  ASSERT_TRUE(retry && retry->has_lease());
  EXPECT_EQ(Complete(awake, retry->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  scheduler_->Sweep();  // evicts the finished run
  ASSERT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);

  // Another session may not report it ...
  v1::CompleteLeaseRequest forged;
  forged.set_session_id(awake);
  forged.set_lease_id(first->lease().lease_id());
  EXPECT_EQ(scheduler_->Complete(forged).status().code(), absl::StatusCode::kPermissionDenied);
  // ... its holder's result is kept as stale, once, however often it is sent.
  EXPECT_EQ(Complete(frozen, first->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_STALE);
  EXPECT_EQ(Complete(frozen, first->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_STALE);
  const std::string db = dir_.File("perfgate.db");
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 0"), 1);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 1"), 1);
  EXPECT_EQ(Run(run).cases(0).agent_id(), "awake") << "the counted result stands";
  EXPECT_EQ(scheduler_->Stats().results_stale, 1u);
}

TEST_F(SchedulerTest, SubmitRejectsMalformedSuites) {
  v1::SubmitRunRequest request;
  EXPECT_EQ(scheduler_->Submit(request).status().code(), absl::StatusCode::kInvalidArgument);
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("x");
  c->add_argv("true");
  EXPECT_THAT(std::string(scheduler_->Submit(request).status().message()), HasSubstr("suite name must not be empty"));
  request.mutable_suite()->set_name("s");
  request.mutable_suite()->clear_cases();
  c = request.mutable_suite()->add_cases();
  c->set_name("x");
  EXPECT_THAT(std::string(scheduler_->Submit(request).status().message()), HasSubstr("case 'x' has no command"));
  c->add_argv("true");
  *request.mutable_suite()->add_cases() = *c;
  EXPECT_THAT(std::string(scheduler_->Submit(request).status().message()), HasSubstr("duplicate case name 'x'"));
}

TEST_F(SchedulerTest, IdsAre128RandomBitsInHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const std::string session = Register("a" + std::to_string(i));
    EXPECT_THAT(session, MatchesRegex("session-[0-9a-f]{32}"));
    const std::string run = Submit(1);
    EXPECT_THAT(run, MatchesRegex("run-[0-9a-f]{32}"));
    auto item = Next(session);
    ASSERT_TRUE(item && item->has_lease());
    EXPECT_THAT(item->lease().lease_id(), MatchesRegex("lease-[0-9a-f]{32}"));
    seen.insert({session, run, item->lease().lease_id()});
  }
  EXPECT_EQ(seen.size(), 60u);
}

TEST_F(SchedulerTest, ForgedCompletionFromAnotherSessionIsRefusedAndTheRightfulOneCounts) {
  const std::string owner = Register("a1");
  const std::string intruder = Register("intruder");
  const std::string run = Submit(1);
  auto item = Next(owner);
  ASSERT_TRUE(item && item->has_lease());
  const std::string lease = item->lease().lease_id();

  v1::CompleteLeaseRequest forged;
  forged.set_session_id(intruder);
  forged.set_lease_id(lease);
  forged.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_FAILED);
  auto refused = scheduler_->Complete(forged);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("is not held by session '" + intruder + "'"));
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM results"), 0) << "nothing recorded";
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_RUNNING);
  // The intruder cannot renew it either.
  auto beat = Beat(intruder, lease);
  ASSERT_TRUE(beat.ok());
  EXPECT_THAT(beat->cancel_lease_ids(), ::testing::ElementsAre(lease));
  EXPECT_EQ(beat->expires_at_ms().count(lease), 0u);

  EXPECT_EQ(Complete(owner, lease, v1::CaseResult::OUTCOME_OK), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  // Nor can it learn the answer afterwards.
  EXPECT_EQ(scheduler_->Complete(forged).status().code(), absl::StatusCode::kPermissionDenied);
  const auto stats = scheduler_->Stats();
  EXPECT_EQ(stats.results_counted, 1u);
  EXPECT_EQ(stats.results_refused, 2u);
  EXPECT_EQ(stats.results_duplicate, 0u);
}

// A session dropped while its id was still a key of the map being erased
// from: the store was told to delete freed memory, so fenced sessions' rows
// piled up (and a restart revived them all), and now and then the
// coordinator died of the bad read.
TEST_F(SchedulerTest, RegisteringAgainDeletesTheFencedSessionsRow) {
  for (int i = 0; i < 50; ++i) Register("a1");
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM sessions"), 1);
  Open();  // a restart revives only the live one
  EXPECT_EQ(scheduler_->Stats().sessions_by_pool[""], 1u);
}

TEST_F(SchedulerTest, AnotherProcessCannotTakeAnIdWhoseHolderIsConnected) {
  auto first = RegisterInstance("a1", "process-1");
  ASSERT_TRUE(first.ok()) << first.status();
  bool connected = true;
  auto stream = scheduler_->OpenStream(first->session_id(), {"ipv4:10.1.2.3:5000", [&] { return connected; }});
  ASSERT_TRUE(stream.ok()) << stream.status();

  auto second = RegisterInstance("a1", "process-2");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("agent id 'a1' is in use by a live agent at ipv4:10.1.2.3:5000; give this agent another --id"));
  KeepAlive(first->session_id());  // the holder was not fenced
  EXPECT_EQ(scheduler_->Stats().registrations_refused, 1u);

  // The same process registering again (a lost answer, say) replaces its own session.
  auto again = RegisterInstance("a1", "process-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(scheduler_->Heartbeat([&] {
                 v1::HeartbeatRequest r;
                 r.set_session_id(first->session_id());
                 return r;
               }())
                   .ok());
  scheduler_->CloseStream(first->session_id(), *stream);
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM sessions"), 1);
}

TEST_F(SchedulerTest, ARestartedAgentTakesOverItsDeadPredecessorsIdAtOnce) {
  auto dead = RegisterInstance("a1", "process-1");
  ASSERT_TRUE(dead.ok()) << dead.status();
  const std::string run = Submit(1);
  auto item = Next(dead->session_id());
  ASSERT_TRUE(item && item->has_lease());
  bool connected = true;
  auto stream = scheduler_->OpenStream(dead->session_id(), {"ipv4:127.0.0.1:5000", [&] { return connected; }});
  ASSERT_TRUE(stream.ok());
  connected = false;  // the process died: its kernel closed the stream; no time passes

  auto successor = RegisterInstance("a1", "process-2");
  ASSERT_TRUE(successor.ok()) << successor.status();
  v1::WorkItem ignored;
  EXPECT_FALSE(scheduler_->NextWorkItem(dead->session_id(), 0, &ignored).ok()) << "the old session is fenced";
  auto retry = Next(successor->session_id());
  ASSERT_TRUE(retry && retry->has_lease()) << "the dead one's case goes to its successor";
  EXPECT_EQ(retry->lease().attempt(), 2u);
  EXPECT_EQ(Complete(successor->session_id(), retry->lease().lease_id()),
            v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
  scheduler_->CloseStream(dead->session_id(), *stream);  // the handler's late exit is harmless

  // A session with no Work stream open (one that never opened one) is taken over too.
  EXPECT_TRUE(RegisterInstance("a1", "process-3").ok());
}

// The store refuses writes: a second connection holds its write lock past the busy timeout.
TEST_F(SchedulerTest, AFailedStoreWriteFailsTheRpcAndLosesNothing) {
  scheduler_.reset();
  auto store = OpenSqliteStore(dir_.File("perfgate.db"), /*busy_timeout_ms=*/1);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());

  sqlite3* locker = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("perfgate.db").c_str(), &locker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(locker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);

  v1::CompleteLeaseRequest request;
  request.set_session_id(s);
  request.set_lease_id(item->lease().lease_id());
  request.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  auto* value = request.mutable_result()->add_samples()->add_values();
  value->set_benchmark("case");
  value->set_metric("wall_time");
  auto failed = scheduler_->Complete(request);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << "the agent retries on UNAVAILABLE";
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("could not store the result"));
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("locked"));
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_RUNNING) << "nothing changed";
  v1::RegisterRequest other;
  other.set_agent_id("a2");
  EXPECT_EQ(scheduler_->Register(other).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(scheduler_->Stats().sessions_by_pool[""], 1u) << "no session the store does not have";
  EXPECT_GE(scheduler_->Stats().store_errors, 2u);

  ASSERT_EQ(sqlite3_exec(locker, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(locker);
  auto retried = scheduler_->Complete(request);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  Open();  // restart from the file: the result the agent was told counts is there
  EXPECT_EQ(Run(run).cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM results WHERE counted = 1"), 1);
}

// An agent token holder registered 3,000 pools of 60 KB names: 912 MB of
// coordinator memory, 180 MB of known pools in every history reply (over
// its 64 MiB limit, so every gate failed, for good).
TEST_F(SchedulerTest, RegistrationNamesAndKnownPoolsAreBounded) {
  const auto refusal = [&](const v1::RegisterRequest& r) { return scheduler_->Register(r).status(); };
  v1::RegisterRequest long_pool;
  long_pool.set_agent_id("a1");
  long_pool.set_pool(std::string(60'000, 'P'));
  EXPECT_EQ(refusal(long_pool).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refusal(long_pool).message()), HasSubstr("an agent's pool must be 1 to 128 letters"));
  v1::RegisterRequest odd_id;
  odd_id.set_agent_id("a\n1");
  EXPECT_THAT(std::string(refusal(odd_id).message()), HasSubstr("an agent's id must be"));
  v1::RegisterRequest labels;
  labels.set_agent_id("a1");
  for (int i = 0; i < 65; ++i) labels.add_labels("l" + std::to_string(i));
  EXPECT_THAT(std::string(refusal(labels).message()), HasSubstr("at most 64 labels, not 65"));
  labels.mutable_labels()->DeleteSubrange(0, 1);
  EXPECT_TRUE(refusal(labels).ok());
  EXPECT_EQ(scheduler_->Stats().sessions_by_pool.count(std::string(60'000, 'P')), 0u);

  for (int64_t i = 1; i < kMaxKnownPools; ++i) Register("p" + std::to_string(i), false, "pool-" + std::to_string(i));
  Register("one-more-of-a-known-pool", false, "pool-7");
  v1::RegisterRequest past;
  past.set_agent_id("past");
  past.set_pool("pool-new");
  EXPECT_TRUE(refusal(past).ok()) << "pool number 1000";
  past.set_agent_id("past-2");
  past.set_pool("pool-newer");
  EXPECT_EQ(refusal(past).code(), absl::StatusCode::kFailedPrecondition) << "not what a full thread pool says";
  EXPECT_THAT(std::string(refusal(past).message()), HasSubstr("knows 1000 pools already"));
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM sessions WHERE agent_id = 'past-2'"), 0);
}

// One agent token's holder registered 1,500 sessions of 1 MiB fingerprints
// and took the coordinator to 2.97 GB.
TEST_F(SchedulerTest, FingerprintsAndLiveSessionsAreBounded) {
  options_.max_sessions = 2;
  scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  v1::RegisterRequest big;
  big.set_agent_id("big");
  big.mutable_host()->set_gpu_note(std::string(Scheduler::kMaxHostFingerprintBytes, 'x'));
  auto refused = scheduler_->Register(big);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("a host fingerprint may be at most 65536 bytes"));

  Register("a");
  Register("b");
  v1::RegisterRequest third;
  third.set_agent_id("c");
  auto full = scheduler_->Register(third);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("at most 2 agent sessions at once"));
  v1::RegisterRequest again;
  again.set_agent_id("a");  // the same agent registering again takes its own place
  EXPECT_TRUE(scheduler_->Register(again).ok());
  clock_.Advance(options_.session_ttl_ms + 1);
  scheduler_->Sweep();
  EXPECT_TRUE(scheduler_->Register(third).ok()) << "once sessions end";
}

TEST_F(SchedulerTest, RunsAndResultsOverTheLimitsAreRefusedSayingWhy) {
  options_.max_cases_per_run = 3;
  options_.max_samples_per_result = 4;
  scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  v1::SubmitRunRequest big;
  big.mutable_suite()->set_name("s");
  for (int i = 0; i < 4; ++i) {
    auto* c = big.mutable_suite()->add_cases();
    c->set_name("c" + std::to_string(i));
    c->add_argv("/bin/true");
  }
  auto refused = scheduler_->Submit(big);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("the suite has 4 cases; a run takes at most 3"));

  big.mutable_suite()->mutable_cases()->RemoveLast();
  big.mutable_suite()->mutable_cases(1)->set_repeats(3);
  big.mutable_suite()->mutable_cases(1)->add_variants()->set_name("base");
  big.mutable_suite()->mutable_cases(1)->add_variants()->set_name("head");
  refused = scheduler_->Submit(big);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("case 'c1' asks for 6 samples (repeats x variants); a result holds at most 4"));

  const std::string s = Register("a1");
  Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item);
  v1::CompleteLeaseRequest flood;
  flood.set_session_id(s);
  flood.set_lease_id(item->lease().lease_id());
  for (int i = 0; i < 5; ++i) flood.mutable_result()->add_samples();
  auto too_many = scheduler_->Complete(flood);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_many.status().message()), HasSubstr("has 5 samples; at most 4 are taken"));
  EXPECT_EQ(scheduler_->Stats().results_counted, 0u);
}

// Names reach labels, keys and reports: SubmitRun and CompleteLease take
// only what the suite loader and the agent's readers would (a raw client
// gave ten case names of a megabyte each, and the exporter held 1.2 GB).
TEST_F(SchedulerTest, NamesBeyondTheRulesAreRefusedAtSubmitAndInResults) {
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("s");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name(std::string(1'000'000, 'x'));
  c->add_argv("/bin/true");
  auto refused = scheduler_->Submit(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("a case name must be 1 to 200"));
  c->set_name(std::string("nul\0inside", 10));
  EXPECT_EQ(scheduler_->Submit(request).status().code(), absl::StatusCode::kInvalidArgument);
  c->set_name("fine");
  request.mutable_suite()->set_name("two\nlines");
  EXPECT_THAT(std::string(scheduler_->Submit(request).status().message()), HasSubstr("control characters"));

  const std::string s = Register("a1");
  Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item);
  v1::CompleteLeaseRequest completion = Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_OK);
  auto* value = completion.mutable_result()->add_samples()->add_values();
  value->set_benchmark(std::string(10'000, 'b'));
  value->set_metric("instruction_count");
  auto long_name = scheduler_->Complete(completion);
  EXPECT_EQ(long_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(long_name.status().message()), HasSubstr("a benchmark name must be at most 512 bytes"));
  value->set_benchmark("a");
  value->set_metric("b,instruction_count");
  EXPECT_THAT(std::string(scheduler_->Complete(completion).status().message()), HasSubstr("comma"));
  EXPECT_EQ(scheduler_->Stats().results_counted, 0u);
}

// A NaN passes every limit it is compared with: a lying agent's NaN or
// infinity is refused, in the first result and in a batched one alike.
TEST_F(SchedulerTest, AResultWithANonFiniteValueIsRefusedSayingWhere) {
  const std::string s = Register("a1");
  Submit(2);
  auto first = Next(s);
  ASSERT_TRUE(first);
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    v1::CompleteLeaseRequest lie;
    lie.set_session_id(s);
    lie.set_lease_id(first->lease().lease_id());
    lie.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
    auto* value = lie.mutable_result()->add_samples()->add_values();
    value->set_benchmark("b");
    value->set_metric("wall_time");
    value->set_value(bad);
    auto refused = scheduler_->Complete(lie);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("for b,wall_time in sample 0; every value must be a finite number"));
    // The same lie behind an honest first result.
    v1::CompleteLeaseRequest batched;
    batched.set_session_id(s);
    batched.set_lease_id(first->lease().lease_id());
    batched.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
    auto* more = batched.add_more_results();
    more->set_lease_id(lie.lease_id());
    *more->mutable_result() = lie.result();
    EXPECT_EQ(scheduler_->Complete(batched).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(scheduler_->Stats().results_counted, 0u);
}

// A count or a value the agent measures is never below zero: a lying
// agent's -1e308 instructions passed as an improvement and was offered as
// the new expected row. A case's own metric may go below zero.
TEST_F(SchedulerTest, ANegativeCountOrMeasuredValueIsRefused) {
  const std::string s = Register("a1");
  Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  auto with_value = [&](const std::string& metric, const std::string& unit, const std::string& source) {
    v1::CompleteLeaseRequest request = Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_OK);
    request.mutable_result()->clear_samples();
    auto* value = request.mutable_result()->add_samples()->add_values();
    value->set_benchmark("b");
    value->set_metric(metric);
    value->set_unit(unit);
    value->set_source(source);
    value->set_value(-1e308);
    return request;
  };
  for (const auto& [metric, unit, source] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"wall_time", "s", "agent:clock"},
                                                                      {"instructions", "count", "case:pytorch"},
                                                                      {"cache_misses", "count", "case:gbench"}}) {
    auto refused = scheduler_->Complete(with_value(metric, unit, source));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << metric;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("never below zero")) << metric;
  }
  auto taken = scheduler_->Complete(with_value("speedup_delta", "", "case:pytorch"));
  ASSERT_TRUE(taken.ok()) << taken.status();
}

// An agent that heartbeats a lease and never completes it (a lying agent, or
// one whose case thread is wedged) held its gate for ever. Past the longest
// its case can take, the lease is lost and the case queued again.
TEST_F(SchedulerTest, ALeaseHeartbeatenPastTheLongestItsCaseCanTakeIsLost) {
  const std::string s = Register("a1");
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("s");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("short");
  c->add_argv("/bin/true");
  c->set_timeout_ms(1'000);
  c->set_repeats(1);
  auto submitted = scheduler_->Submit(request);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  const std::optional<int64_t> longest = LongestLeaseSpanMs(*c);
  ASSERT_TRUE(longest.has_value());
  bool cancelled = false;
  int64_t held_ms = 0;
  while (!cancelled && held_ms <= *longest + options_.lease_ttl_ms) {
    clock_.Advance(options_.lease_ttl_ms / 2);
    held_ms += options_.lease_ttl_ms / 2;
    auto beat = Beat(s, item->lease().lease_id());
    ASSERT_TRUE(beat.ok()) << beat.status();
    cancelled = beat->cancel_lease_ids_size() == 1;
  }
  EXPECT_TRUE(cancelled);
  EXPECT_GT(held_ms, *longest) << "renewed until then";
  const v1::Run run = Run(submitted->run_id());
  EXPECT_EQ(run.cases(0).state(), v1::CASE_STATE_PENDING);
  EXPECT_THAT(run.cases(0).error(), HasSubstr("past the longest its case can take"));
  EXPECT_EQ(scheduler_->Stats().leases_lost, 1u);

  // The bound grows with what the case runs, and a case without a timeout has none.
  v1::CaseSpec counted = *c;
  counted.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  EXPECT_GT(*LongestLeaseSpanMs(counted), *longest + 2 * 100 * 1'000);
  counted.set_timeout_ms(0);
  EXPECT_FALSE(LongestLeaseSpanMs(counted).has_value());
}

// A result that names no pool or agent is its lease's: the gate keys expected
// files on the pool a result names, and a result of none judged nothing.
TEST_F(SchedulerTest, AResultNamingNoPoolOrAgentIsItsLeases) {
  const std::string s = Register("a1", /*gpu=*/false, "xeon");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  v1::CompleteLeaseRequest request = Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_OK);
  request.mutable_result()->clear_pool();
  request.mutable_result()->clear_agent_id();
  auto taken = scheduler_->Complete(request);
  ASSERT_TRUE(taken.ok()) << taken.status();
  const v1::Run stored = Run(run);
  EXPECT_EQ(stored.cases(0).result().pool(), "xeon");
  EXPECT_EQ(stored.cases(0).result().agent_id(), "a1");
}

// What the scheduler tells /metrics, recorded.
struct RecordingListener final : SchedulerListener {
  void OnLeaseGranted(const std::string&) override {}
  void OnLeaseLost(const std::string&) override {}
  void OnResult(const std::string&, const std::string&, const std::string&, const std::string& disposition,
                const std::string& case_name, const v1::CaseResult&, double) override {
    if (disposition == "counted") counted_cases.push_back(case_name);
  }
  void OnRunFinished(const std::string&, v1::RunState) override {}
  void OnVerdict(const std::string&, const v1::ReportVerdictRequest& verdict) override { verdicts.push_back(verdict); }
  std::vector<std::string> counted_cases;
  std::vector<v1::ReportVerdictRequest> verdicts;
};

// Names from a submitter or an agent become metric labels: only the run's
// own case names, each once, and a run's verdict is counted once however
// often it is reported (a submitter could grow /metrics without bound).
TEST_F(SchedulerTest, MetricLabelsComeFromTheRunNotFromWhatAClientSays) {
  RecordingListener listener;
  scheduler_->SetListener(&listener);
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  v1::CompleteLeaseRequest done;
  done.set_session_id(s);
  done.set_lease_id(item->lease().lease_id());
  done.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  done.mutable_result()->set_case_name("label-from-the-agent");
  ASSERT_TRUE(scheduler_->Complete(done).ok());
  EXPECT_THAT(listener.counted_cases, ::testing::ElementsAre(Run(run).cases(0).name()));

  v1::ReportVerdictRequest verdict;
  verdict.set_run_id(run);
  verdict.set_passed(true);
  verdict.add_cases()->set_case_name("invented");
  auto refused = scheduler_->ReportVerdict(verdict);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("names case 'invented', which run"));
  verdict.mutable_cases(0)->set_case_name(Run(run).cases(0).name());
  *verdict.add_cases() = verdict.cases(0);
  EXPECT_THAT(std::string(scheduler_->ReportVerdict(verdict).message()), HasSubstr("twice"));
  verdict.mutable_cases()->RemoveLast();
  EXPECT_TRUE(scheduler_->ReportVerdict(verdict).ok());
  EXPECT_TRUE(scheduler_->ReportVerdict(verdict).ok()) << "a retried report is no error";
  EXPECT_EQ(listener.verdicts.size(), 1u) << "and is counted once";
  scheduler_->SetListener(nullptr);
}

// The coordinator was down for three lease TTLs (no sweeps ran): on restart
// the agent's lease is resumed with a fresh TTL, in memory and in the store,
// so the agent that kept running its case can still deliver it.
TEST_F(SchedulerTest, RestartAfterThreeTtlsResumesLeasesWithAFreshDeadline) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  const std::string lease = item->lease().lease_id();
  clock_.Advance(30'000);
  Open();
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"),
                              // The store keeps the id's 16 random bytes.
                              "SELECT expires_at_ms FROM leases WHERE hex(lease_id) = upper('" + lease.substr(6) + "')"),
            clock_.NowMs() + 10'000);
  clock_.Advance(9'999);
  scheduler_->Sweep();
  EXPECT_EQ(Complete(s, lease), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_DONE);
  EXPECT_EQ(Run(run).cases(0).attempts(), 1u);
}

// The sweep checks only active leases for expiry (Scheduler::active_leases_):
// one resumed by a restart is among them, though it was never granted here.
TEST_F(SchedulerTest, ALeaseResumedAfterARestartExpiresWhenItsLiveAgentStopsRenewingIt) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  const std::string lease = item->lease().lease_id();
  Open();
  // The session stays alive (heartbeats naming no lease) past the lease's TTL.
  clock_.Advance(options_.lease_ttl_ms / 2);
  KeepAlive(s);
  scheduler_->Sweep();
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_RUNNING);
  clock_.Advance(options_.lease_ttl_ms / 2);
  KeepAlive(s);
  scheduler_->Sweep();
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_PENDING);
  EXPECT_EQ(Complete(s, lease), v1::CompleteLeaseResponse::DISPOSITION_STALE);
}

// The next lease for a session, skipping cancellations in its outbox.
std::optional<v1::Lease> NextLease(Scheduler& scheduler, const std::string& session) {
  for (;;) {
    v1::WorkItem item;
    auto wait = scheduler.NextWorkItem(session, 0, &item);
    if (!wait.ok() || *wait != Scheduler::Wait::kItem) return std::nullopt;
    if (item.has_lease()) return item.lease();
  }
}

TEST_F(SchedulerTest, UnrequestedCancelledResultIsALostAttemptNeverACancelledCase) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto first = NextLease(*scheduler_, s);
  ASSERT_TRUE(first);
  // Nobody cancelled the run: the agent stopped the case on its own.
  EXPECT_EQ(Complete(s, first->lease_id(), v1::CaseResult::OUTCOME_CANCELLED),
            v1::CompleteLeaseResponse::DISPOSITION_STALE);
  v1::Run now = Run(run);
  EXPECT_EQ(now.state(), v1::RUN_STATE_RUNNING);
  EXPECT_EQ(now.cases(0).state(), v1::CASE_STATE_PENDING);
  EXPECT_THAT(now.cases(0).error(), HasSubstr("stopped the case without being asked"));
  // Re-run with the next attempt; its measurement is what counts.
  auto second = NextLease(*scheduler_, s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt(), 2u);
  EXPECT_EQ(Complete(s, second->lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_DONE);
  EXPECT_EQ(Run(run).cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  const std::string db = dir_.File("perfgate.db");
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 1"), 1);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 0"), 1);
}

TEST_F(SchedulerTest, UnrequestedCancelsThatSpendEveryAttemptEndAsAnErrorNotCancelled) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  for (uint32_t attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    auto lease = NextLease(*scheduler_, s);
    ASSERT_TRUE(lease);
    Complete(s, lease->lease_id(), v1::CaseResult::OUTCOME_CANCELLED);
  }
  v1::Run done = Run(run);
  EXPECT_EQ(done.state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(done.cases(0).state(), v1::CASE_STATE_ERROR);
  EXPECT_THAT(done.cases(0).error(), HasSubstr("gave up after 2 attempts"));
}

// Completes the session's next lease with one sample per (variant, value).
void CompleteWithSamples(Scheduler& scheduler, const std::string& session,
                         const std::vector<std::pair<std::string, double>>& samples) {
  auto lease = NextLease(scheduler, session);
  ASSERT_TRUE(lease);
  v1::CompleteLeaseRequest request;
  request.set_session_id(session);
  request.set_lease_id(lease->lease_id());
  request.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  for (const auto& [variant, value] : samples) {
    auto* sample = request.mutable_result()->add_samples();
    sample->set_variant(variant);
    auto* v = sample->add_values();
    v->set_benchmark("case0");
    v->set_metric("wall_time");
    v->set_source("agent");
    v->set_value(value);
  }
  auto response = scheduler.Complete(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
}

TEST_F(SchedulerTest, HistoryHoldsHeadAndPlainMainBranchSamplesNeverTheBaseSide) {
  const std::string s = Register("a1");
  std::vector<std::string> runs;
  auto submit = [&](const std::string& branch) {
    v1::SubmitRunRequest request;
    request.set_branch(branch);
    request.mutable_suite()->set_name("s");
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("case0");
    c->add_argv("/bin/true");
    auto submitted = scheduler_->Submit(request);
    ASSERT_TRUE(submitted.ok());
    runs.push_back(submitted->run_id());
    clock_.Advance(1'000);
  };
  submit("main");  // plain
  CompleteWithSamples(*scheduler_, s, {{"", 10}, {"", 12}});
  submit("main");  // A/B: the base side (old code) is far slower than the head
  CompleteWithSamples(*scheduler_, s, {{"base", 100}, {"head", 20}, {"head", 22}, {"base", 100}});
  submit("main#confirm");
  CompleteWithSamples(*scheduler_, s, {{"", 1000}});
  submit("feature");
  CompleteWithSamples(*scheduler_, s, {{"", 1000}});

  v1::HistoryRequest request;
  request.set_branch("main");
  auto* key = request.add_keys();
  key->set_benchmark("case0");
  key->set_metric("wall_time");
  key->set_source("agent");
  v1::HistoryResponse history;
  ASSERT_TRUE(scheduler_->History(request, &history).ok());
  ASSERT_EQ(history.series_size(), 1);
  EXPECT_THAT(history.series(0).run_medians(), ::testing::ElementsAre(21, 11));
  // The base side is kept with its result for the record, only left out of history.
  const v1::Run ab = Run(runs[1]);
  int base_samples = 0;
  for (const auto& sample : ab.cases(0).result().samples()) base_samples += sample.variant() == "base";
  EXPECT_EQ(base_samples, 2);
}

// Longest first: a suite's expected_duration orders the queue, a case without
// one whose duration history does not know goes first (it may be long). A
// duration beyond int64 (a hostile or broken client) is the longest known,
// not a negative one that would put it last.
TEST_F(SchedulerTest, CasesAreLeasedLongestExpectedFirst) {
  const std::string s = Register("a1");
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("lpt");
  for (const auto& [name, ms] : std::vector<std::pair<std::string, uint64_t>>{
           {"short", 100}, {"long", 5'000}, {"unknown", 0}, {"middle", 1'000}, {"endless", ~uint64_t{0}}}) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name(name);
    c->add_argv("/bin/true");
    c->set_expected_duration_ms(ms);
  }
  ASSERT_TRUE(scheduler_->Submit(request).ok());
  std::vector<std::string> order;
  while (auto item = Next(s)) {
    order.push_back(item->lease().spec().name());
    Complete(s, item->lease().lease_id());
  }
  EXPECT_THAT(order, ::testing::ElementsAre("unknown", "endless", "long", "middle", "short"));
}

// Without expected_duration the second run of a suite starts the case that
// took longest in the first, even when it is last in the file.
TEST_F(SchedulerTest, DurationHistoryPutsTheLongCaseFirstInTheNextRun) {
  const std::string s = Register("a1");
  Submit(3);
  for (int i = 0; i < 3; ++i) {
    auto item = Next(s);
    ASSERT_TRUE(item && item->has_lease());
    EXPECT_EQ(item->lease().spec().name(), "case" + std::to_string(i)) << "never seen: file order";
    clock_.Advance(item->lease().spec().name() == "case2" ? 9'000 : 100);
    KeepAlive(s);
    Complete(s, item->lease().lease_id());
  }
  Submit(3);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  EXPECT_EQ(first->lease().spec().name(), "case2");
}

// A GPU agent takes the pending GPU case before CPU work it could also run.
TEST_F(SchedulerTest, GpuAgentTakesGpuCasesBeforeCpuWork) {
  const std::string gpu = Register("gpu-agent", /*gpu=*/true);
  Submit(2);             // CPU (any device), submitted first
  Submit(1, /*gpu=*/true);
  auto item = Next(gpu);
  ASSERT_TRUE(item && item->has_lease());
  EXPECT_EQ(item->lease().spec().requirements().device(), v1::Requirements::DEVICE_GPU);
  Complete(gpu, item->lease().lease_id());
  // A CPU-only agent never gets the GPU case, and CPU work goes on.
  const std::string cpu = Register("cpu-agent");
  auto cpu_item = Next(cpu);
  ASSERT_TRUE(cpu_item && cpu_item->has_lease());
  EXPECT_NE(cpu_item->lease().spec().requirements().device(), v1::Requirements::DEVICE_GPU);
}

// History is read through its own connection: a writer holding the store
// (an open batch, as during a lease grant) does not hold it up. (A history
// read does wait for the medians of runs that ended before it, which are
// written in the background: the first read here.)
TEST_F(SchedulerTest, HistoryDoesNotWaitForTheStoresWriter) {
  const std::string s = Register("a1");
  Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item);
  Complete(s, item->lease().lease_id());
  v1::HistoryRequest request;
  request.set_branch("");
  auto* key = request.add_keys();
  key->set_benchmark("case");
  key->set_metric("wall_time");
  google::protobuf::Arena arena;
  ASSERT_TRUE(store_->History(request, &arena, [] {}).ok());
  ASSERT_TRUE(store_->BeginBatch().ok());  // this thread holds the write side now
  absl::StatusOr<v1::HistoryResponse*> history = nullptr;
  std::thread reader([&] { history = store_->History(request, &arena, [] {}); });
  reader.join();  // would never return if History took the write mutex
  ASSERT_TRUE(store_->CommitBatch().ok());
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_THAT((*history)->series(0).run_medians(), ::testing::ElementsAre(1.0));
}

// A write that fails inside a batch undoes the whole batch: nothing of a
// lease grant or a result is half on disk.
TEST_F(SchedulerTest, AFailedWriteUndoesItsWholeBatch) {
  ASSERT_TRUE(store_->BeginBatch().ok());
  v1::Run run;
  run.set_run_id("run-x");
  run.add_cases()->set_name("c");
  ASSERT_TRUE(store_->InsertRun(run, v1::Suite()).ok());
  EXPECT_FALSE(store_->InsertRun(run, v1::Suite()).ok()) << "duplicate run id";
  EXPECT_FALSE(store_->CommitBatch().ok());
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM runs WHERE run_id = 'run-x'"), 0);
}

// A finished run leaves memory at the next sweep; a watcher still waiting
// on it is told it finished, and GetRun reads it whole from the store.
TEST_F(SchedulerTest, WatcherOfAnEvictedRunGetsItsEnd) {
  options_.finished_runs_in_memory = 0;
  scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  size_t cursor = 0;
  ASSERT_TRUE(scheduler_->Snapshot(run, &cursor).ok());
  auto item = Next(s);
  ASSERT_TRUE(item);
  Complete(s, item->lease().lease_id());
  scheduler_->Sweep();
  std::vector<v1::RunEvent> events;
  ASSERT_TRUE(scheduler_->WaitRunEvents(run, &cursor, 0, &events).ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().run_finished(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(Run(run).cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
}

// An agent that asks gets its next case in the completion's reply, granted in
// the result's commit: a restart right after the reply finds both on disk.
TEST_F(SchedulerTest, ACompletionThatAsksCarriesTheNextLeaseDurably) {
  const std::string s = Register("a1");
  const std::string run = Submit(2);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  const v1::CompleteLeaseResponse reply = CompleteAndAskNext(s, first->lease().lease_id());
  EXPECT_EQ(reply.disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  ASSERT_TRUE(reply.has_next_lease());
  EXPECT_EQ(reply.next_lease().spec().name(), "case1");
  EXPECT_EQ(reply.next_lease().run_id(), run);
  EXPECT_EQ(reply.next_lease().attempt(), 1u);
  EXPECT_FALSE(Next(s)) << "the Work stream has nothing more: the session holds its lease";
  Open();  // "crash" just after the reply
  v1::Run recovered = Run(run);
  EXPECT_EQ(recovered.cases(0).state(), v1::CASE_STATE_DONE);
  EXPECT_EQ(recovered.cases(1).state(), v1::CASE_STATE_RUNNING);
  auto beat = Beat(s, reply.next_lease().lease_id());
  ASSERT_TRUE(beat.ok()) << beat.status();
  EXPECT_EQ(beat->cancel_lease_ids_size(), 0) << "the lease in the reply is the session's";
  EXPECT_EQ(Complete(s, reply.next_lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
}

// Group commit: completions from many agents at once share commits, and each
// reply still comes only after its result is on disk: a fresh connection
// counts at least every result acknowledged so far.
TEST_F(SchedulerTest, EveryAcknowledgedResultIsOnDiskWhileCompletionsShareCommits) {
  constexpr int kAgents = 8, kEach = 20;
  std::vector<std::string> sessions;
  for (int a = 0; a < kAgents; ++a) sessions.push_back(Register(absl::StrCat("agent-", a)));
  const std::string run = Submit(kAgents * kEach);
  const std::string db = dir_.File("perfgate.db");
  std::atomic<int64_t> acknowledged{0};
  std::vector<std::thread> agents;
  for (const auto& s : sessions) {
    agents.emplace_back([&, s] {
      auto item = Next(s);
      ASSERT_TRUE(item && item->has_lease());
      std::string lease = item->lease().lease_id();
      while (!lease.empty()) {
        const v1::CompleteLeaseResponse reply = CompleteAndAskNext(s, lease);
        ASSERT_EQ(reply.disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
        const int64_t now_acknowledged = ++acknowledged;
        EXPECT_GE(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 1"), now_acknowledged);
        lease = reply.next_lease().lease_id();
      }
    });
  }
  for (auto& t : agents) t.join();
  EXPECT_EQ(acknowledged.load(), kAgents * kEach);
  EXPECT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
}

// A group commit that fails (here: the WAL may not grow, as on a full disk)
// leaves the scheduler's memory ahead of its database: neither the result
// nor its repetition is acknowledged, so the agent keeps the result for the
// restarted coordinator.
TEST_F(SchedulerTest, NoResultIsAcknowledgedOnceTheStoreLostACommit) {
  const std::string s = Register("a1");
  const std::string run = Submit(2);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  v1::CompleteLeaseRequest request;
  request.set_session_id(s);
  request.set_lease_id(item->lease().lease_id());
  request.set_want_next_lease(true);
  request.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);

  absl::StatusOr<v1::CompleteLeaseResponse> first;
  {
    testing::FileSizeLimit no_growth(std::filesystem::file_size(dir_.File("perfgate.db") + "-wal"));
    ASSERT_TRUE(no_growth.ok());
    first = scheduler_->Complete(request);
  }
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << "the agent retries on UNAVAILABLE";
  auto again = scheduler_->Complete(request);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable) << "a repetition is not acknowledged from memory";

  Open();  // the restart the coordinator exits for
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_RUNNING) << "the database as it was";
  EXPECT_EQ(Complete(s, item->lease().lease_id()), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED)
      << "the kept result counts on the restarted coordinator";
}

// An agent that does not ask (an older agent) gets its next lease on the Work stream only.
TEST_F(SchedulerTest, ACompletionThatDoesNotAskCarriesNoLease) {
  const std::string s = Register("a1");
  Submit(2);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  v1::CompleteLeaseRequest request;
  request.set_session_id(s);
  request.set_lease_id(first->lease().lease_id());
  request.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  auto reply = scheduler_->Complete(request);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_FALSE(reply->has_next_lease());
  auto second = Next(s);
  ASSERT_TRUE(second && second->has_lease());
  EXPECT_EQ(second->lease().spec().name(), "case1");
}

// The reply may be lost: the agent sends the completion again and gets the
// same next lease, not a second one, while its session holds it.
TEST_F(SchedulerTest, ARepeatedCompletionGetsTheSameNextLeaseAgain) {
  const std::string s = Register("a1");
  const std::string run = Submit(3);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  const v1::CompleteLeaseResponse reply = CompleteAndAskNext(s, first->lease().lease_id());
  ASSERT_TRUE(reply.has_next_lease());
  const v1::CompleteLeaseResponse again = CompleteAndAskNext(s, first->lease().lease_id());
  EXPECT_EQ(again.disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  ASSERT_TRUE(again.has_next_lease());
  EXPECT_EQ(again.next_lease().lease_id(), reply.next_lease().lease_id());
  EXPECT_EQ(scheduler_->Stats().leases_granted, 2u);
  EXPECT_EQ(Run(run).cases(2).state(), v1::CASE_STATE_PENDING);
  // Once that lease is completed, a third repeat carries nothing.
  Complete(s, reply.next_lease().lease_id());
  EXPECT_FALSE(CompleteAndAskNext(s, first->lease().lease_id()).has_next_lease());
}

// Nothing pending: the reply carries no lease and the session is free, so
// the next run's case reaches it on the Work stream.
TEST_F(SchedulerTest, WithNothingPendingTheReplyIsEmptyAndTheStreamServesLater) {
  const std::string s = Register("a1");
  Submit(1);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  EXPECT_FALSE(CompleteAndAskNext(s, first->lease().lease_id()).has_next_lease());
  Submit(1);
  auto later = Next(s);
  ASSERT_TRUE(later && later->has_lease());
}

// The lease in a reply is chosen as the Work stream would choose it:
// longest expected first, capabilities respected.
TEST_F(SchedulerTest, TheNextLeaseInAReplyFollowsTheQueueOrder) {
  const std::string s = Register("a1");
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("lpt");
  for (const auto& [name, ms] : std::vector<std::pair<std::string, uint64_t>>{
           {"short", 100}, {"gpu", 9'000}, {"long", 5'000}, {"middle", 1'000}}) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name(name);
    c->add_argv("/bin/true");
    c->set_expected_duration_ms(ms);
    if (name == "gpu") c->mutable_requirements()->set_device(v1::Requirements::DEVICE_GPU);
  }
  Register("gpu-agent", /*gpu=*/true);  // so the GPU case is accepted, and waits for it
  ASSERT_TRUE(scheduler_->Submit(request).ok());
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  std::vector<std::string> order{item->lease().spec().name()};
  for (v1::CompleteLeaseResponse reply = CompleteAndAskNext(s, item->lease().lease_id()); reply.has_next_lease();
       reply = CompleteAndAskNext(s, reply.next_lease().lease_id())) {
    order.push_back(reply.next_lease().spec().name());
  }
  EXPECT_THAT(order, ::testing::ElementsAre("long", "middle", "short"));
}

// A watcher without results gets case events without them; the log keeps
// them for a watcher that wants them.
TEST_F(SchedulerTest, AWatcherWithoutResultsGetsEventsWithoutThemAndOthersStillDo) {
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  size_t bare = 0, full = 0;
  ASSERT_TRUE(scheduler_->Snapshot(run, &bare).ok());
  full = bare;
  auto item = Next(s);
  ASSERT_TRUE(item);
  Complete(s, item->lease().lease_id());
  auto last_case_event = [](const std::vector<v1::RunEvent>& events) {
    v1::CaseStatus last;
    for (const auto& e : events) {
      if (e.has_case_changed()) last = e.case_changed();
    }
    return last;
  };
  std::vector<v1::RunEvent> without, with;
  ASSERT_TRUE(scheduler_->WaitRunEvents(run, &bare, 0, &without, /*without_results=*/true).ok());
  ASSERT_TRUE(scheduler_->WaitRunEvents(run, &full, 0, &with).ok());
  EXPECT_EQ(last_case_event(without).state(), v1::CASE_STATE_DONE);
  EXPECT_FALSE(last_case_event(without).has_result());
  EXPECT_EQ(last_case_event(with).result().outcome(), v1::CaseResult::OUTCOME_OK);
  EXPECT_EQ(without.size(), with.size());
}

// A result of `metrics` values, each named as the real agent names them.
v1::CaseResult ResultOf(int metrics) {
  v1::CaseResult result;
  result.set_outcome(v1::CaseResult::OUTCOME_OK);
  auto* sample = result.add_samples();
  for (int i = 0; i < metrics; ++i) {
    auto* value = sample->add_values();
    value->set_benchmark("case1234");
    value->set_metric(absl::StrCat("metric_", i));
    value->set_value(0.0004 + i);
    value->set_unit("s");
    value->set_source("agent:rusage");
  }
  return result;
}

// While its run is in memory, a counted result costs the scheduler about
// its serialized size: one block. Kept as the parsed message, a trivial
// result of four metrics took 1,455 bytes in some 25 blocks.
TEST_F(SchedulerTest, ACountedResultIsHeldInAboutItsSerializedSize) {
  constexpr int kCases = 1000;
  const std::string s = Register("a1");
  int runs = 0;
  // The bytes malloc holds more after a run of kCases cases, all but the
  // last counted with a result of `metrics` values; the last one leased to a
  // session that keeps it, so that the run stays open and in memory.
  auto held_by_run = [&](int metrics) {
    const struct mallinfo2 before = mallinfo2();
    Submit(kCases);
    for (int i = 0; i + 1 < kCases; ++i) {
      auto item = Next(s);
      EXPECT_TRUE(item && item->has_lease());
      if (!item || !item->has_lease()) return 0.0;
      v1::CompleteLeaseRequest request;
      request.set_session_id(s);
      request.set_lease_id(item->lease().lease_id());
      *request.mutable_result() = ResultOf(metrics);
      EXPECT_TRUE(scheduler_->Complete(request).ok());
    }
    EXPECT_TRUE(Next(Register(absl::StrCat("holder", ++runs))));
    const struct mallinfo2 after = mallinfo2();
    return static_cast<double>(after.uordblks + after.hblkhd) - static_cast<double>(before.uordblks + before.hblkhd);
  };
  // The store's page cache and the scheduler's tables fill first: the
  // bytes held by a run level off from the fourth run on.
  for (int i = 0; i < 4; ++i) held_by_run(4);
  const double with = held_by_run(4), without = held_by_run(0);
  // The whole case: its spec and status, its lease, the answer kept for a
  // repeated completion, its events and its result. 2,760-2,850 bytes
  // here, 3,900 with the result parsed.
  EXPECT_LT(with / (kCases - 1), 3'000.0);
  // The result alone, which also holds the store's share of the larger
  // results: 516 bytes here for 197 serialized.
  const size_t serialized = ResultOf(4).ByteSizeLong();
  EXPECT_LT((with - without) / (kCases - 1), 3.0 * static_cast<double>(serialized))
      << serialized << " bytes serialized";
}

// A watcher without results gets its first snapshot without them too (not
// copied under the lock); the run keeps them for everyone else.
TEST_F(SchedulerTest, ASnapshotWithoutResultsLeavesTheRunItsResults) {
  const std::string s = Register("a1");
  const std::string run = Submit(2);
  auto item = Next(s);
  ASSERT_TRUE(item);
  Complete(s, item->lease().lease_id());
  size_t cursor = 0;
  auto bare = scheduler_->Snapshot(run, &cursor, /*without_results=*/true);
  ASSERT_TRUE(bare.ok()) << bare.status();
  auto full = scheduler_->Snapshot(run, &cursor);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(bare->cases_size(), 2);
  ASSERT_EQ(full->cases_size(), 2);
  int done = 0;
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(bare->cases(i).has_result());
    EXPECT_EQ(bare->cases(i).state(), full->cases(i).state());
    EXPECT_EQ(bare->cases(i).name(), full->cases(i).name());
    if (full->cases(i).state() == v1::CASE_STATE_DONE) {
      ++done;
      EXPECT_EQ(full->cases(i).result().outcome(), v1::CaseResult::OUTCOME_OK);
    }
  }
  EXPECT_EQ(done, 1);
  EXPECT_EQ(Run(run).cases(0).has_result() + Run(run).cases(1).has_result(), 1);
}

// An agent that holds leases ahead reports several results in one call: all
// counted, in one commit, and the reply tops its leases up to what it asked.
TEST_F(SchedulerTest, OneCallTakesSeveralResultsAndGrantsLeasesAheadUpToWhatTheAgentHolds) {
  const std::string s = Register("a1");
  const std::string run = Submit(20);
  const std::vector<std::string> held = HoldFour(s);
  ASSERT_EQ(held.size(), 4u);  // idle after the result: four to hold, one to run and three ahead
  EXPECT_EQ(Run(run).cases(4).state(), v1::CASE_STATE_RUNNING);
  EXPECT_EQ(Run(run).cases(5).state(), v1::CASE_STATE_PENDING);
  // /metrics' running cases are those the run shows running, held ahead too
  // (it counted agents with a lease: 1 here).
  EXPECT_EQ(scheduler_->Stats().running_cases, 4u);
  EXPECT_EQ(scheduler_->Stats().pending_cases, 15u);

  // Three of them reported together, the fourth still held: three more granted.
  auto reply = CompleteSeveral(s, {held[0], held[1], held[2]}, 4);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_THAT(reply->more_dispositions(), ::testing::ElementsAre(v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED,
                                                                  v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED));
  EXPECT_EQ(LeaseIds(*reply).size(), 3u);
  const v1::Run now = Run(run);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(now.cases(c).state(), v1::CASE_STATE_DONE) << c;
  EXPECT_EQ(scheduler_->Stats().results_counted, 4u);
  EXPECT_EQ(scheduler_->Stats().running_cases, 4u);  // the cases the run shows running: one, three held ahead
  // On disk: four leases ended with their results (state 2, completed), four held.
  const std::string db = dir_.File("perfgate.db");
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM leases WHERE state = 2 AND counted = 1"), 4);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM leases WHERE state = 1 AND counted IS NULL"), 4);
}

// Leases ahead wait behind the agent's current case, so none is granted
// where that could keep the run waiting: a case known to be long, the
// queue's last kLastCasesPerSession cases per agent, an agent with a GPU.
TEST_F(SchedulerTest, NoLeaseIsHeldAheadForCasesKnownToBeLong) {
  const std::string s = Register("a1");
  SubmitExpected(30, Scheduler::kAheadMaxExpectedMs + 1);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  auto reply = CompleteSeveral(s, {first->lease().lease_id()}, 4);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(LeaseIds(*reply).size(), 1u);
}

// A short case held ahead waits behind the cases before it, and its result
// for the report that carries it: its lease lives longer than
// kAheadMaxExpectedMs. The next run holds it ahead again, as its duration
// is the time its agent was busy with it (CaseResult.busy_us).
TEST_F(SchedulerTest, ShortCasesHeldAheadAreHeldAheadAgainInTheNextRun) {
  const std::string s = Register("a1");
  const std::string run = Submit(20);
  auto first = Next(s);
  ASSERT_TRUE(first && first->has_lease());
  std::vector<std::string> held = {first->lease().lease_id()};
  while (!held.empty()) {
    clock_.Advance(Scheduler::kAheadMaxExpectedMs + 10);
    auto reply = CompleteSeveral(s, held, 4, /*busy_us=*/1'000);
    ASSERT_TRUE(reply.ok()) << reply.status();
    held = LeaseIds(*reply);
  }
  ASSERT_EQ(Run(run).state(), v1::RUN_STATE_FINISHED);
  Submit(20);
  EXPECT_EQ(HoldFour(s).size(), 4u);
}

TEST_F(SchedulerTest, NoLeaseIsHeldAheadForTheQueuesLastCases) {
  const std::string a = Register("a"), b = Register("b"), c = Register("c");
  const int last_ones = 3 * static_cast<int>(Scheduler::kLastCasesPerSession);
  SubmitExpected(last_ones + 3, Scheduler::kAheadMaxExpectedMs);
  auto first = Next(a);
  ASSERT_TRUE(first && first->has_lease());
  auto reply = CompleteSeveral(a, {first->lease().lease_id()}, 4);
  ASSERT_TRUE(reply.ok()) << reply.status();
  // The one to run, one ahead, then the queue holds its last ones: they go one at a time.
  EXPECT_EQ(LeaseIds(*reply).size(), 2u);
  EXPECT_TRUE(Next(b) && Next(c));
}

TEST_F(SchedulerTest, NoLeaseIsHeldAheadOnAnAgentWithAGpu) {
  const std::string g = Register("gpu", /*gpu=*/true);
  Submit(30);
  auto first = Next(g);
  ASSERT_TRUE(first && first->has_lease());
  auto reply = CompleteSeveral(g, {first->lease().lease_id()}, 4);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(LeaseIds(*reply).size(), 1u);
}

// A result that cannot be taken ends the call's results: the reply answers
// those before it, and the agent sends it and the rest again.
TEST_F(SchedulerTest, AResultThatCannotBeTakenEndsTheCallsResultsAndThoseAfterItAreNotTaken) {
  const std::string s = Register("a1");
  const std::string run = Submit(20);
  const std::vector<std::string> held = HoldFour(s);
  ASSERT_EQ(held.size(), 4u);
  auto reply = CompleteSeveral(s, {held[0], "lease-unknown", held[1]}, 1);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->more_dispositions_size(), 0);
  const v1::Run now = Run(run);
  EXPECT_EQ(now.cases(1).state(), v1::CASE_STATE_DONE);
  EXPECT_EQ(now.cases(2).state(), v1::CASE_STATE_RUNNING) << "taken after a result that was not";
  EXPECT_TRUE(LeaseIds(*reply).empty()) << "it still holds three";
}

// The reply to several results may be lost: sent again, the call gets the
// same answers and the same leases, and nothing is granted twice.
TEST_F(SchedulerTest, ARepeatedCallOfSeveralResultsGetsTheSameAnswersAndLeasesAgain) {
  const std::string s = Register("a1");
  Submit(20);
  const std::vector<std::string> held = HoldFour(s);
  ASSERT_EQ(held.size(), 4u);
  auto once = CompleteSeveral(s, {held[0], held[1]}, 4);
  ASSERT_TRUE(once.ok()) << once.status();
  auto twice = CompleteSeveral(s, {held[0], held[1]}, 4);
  ASSERT_TRUE(twice.ok()) << twice.status();
  EXPECT_EQ(twice->more_dispositions_size(), 1);
  EXPECT_EQ(LeaseIds(*twice), LeaseIds(*once));
  EXPECT_EQ(scheduler_->Stats().leases_granted, 7u);
  EXPECT_EQ(scheduler_->Stats().results_duplicate, 2u);
}

// An agent that dies holding leases ahead loses them all with its session:
// every case it held is queued again, none waits for a lease to expire.
TEST_F(SchedulerTest, ASessionDroppedWithLeasesAheadRequeuesEveryCaseItHeld) {
  const std::string s = Register("a1");
  const std::string run = Submit(20);
  ASSERT_EQ(HoldFour(s).size(), 4u);
  clock_.Advance(options_.session_ttl_ms + 1);
  scheduler_->Sweep();
  const v1::Run now = Run(run);
  for (int c = 1; c <= 4; ++c) {
    EXPECT_EQ(now.cases(c).state(), v1::CASE_STATE_PENDING) << c;
    EXPECT_EQ(now.cases(c).attempts(), 1u) << c;
  }
  EXPECT_EQ(scheduler_->Stats().leases_lost, 4u);
}

// A store that notes the calling thread's nice value as it reads a suite's
// durations (a submit) and a history.
// The gate picks a result's expected file (and a confirmation's pool) by the
// pool the result names: an agent may not name another than its lease's.
TEST_F(SchedulerTest, AResultNamingAnotherPoolOrAgentThanItsLeaseIsRefused) {
  const std::string s = Register("a1", /*gpu=*/false, "xeon");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  v1::CompleteLeaseRequest request = Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_OK);
  request.mutable_result()->set_pool("h100");
  auto refused = scheduler_->Complete(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("of pool 'h100'; the lease is agent 'a1''s of pool 'xeon'"));
  request.mutable_result()->set_pool("xeon");
  request.mutable_result()->set_agent_id("a2");
  EXPECT_EQ(scheduler_->Complete(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.mutable_result()->set_agent_id("a1");
  auto taken = scheduler_->Complete(request);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  EXPECT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_DONE);
}

// A store whose every write fails once it has stored a stale result, as if
// the coordinator were killed between that commit and the lease's end.
class DiesAfterStaleResultStore : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool armed = false;
  bool dead = false;
  absl::Status Dead() { return absl::InternalError("process killed"); }
  absl::Status BeginBatch() override { return dead ? Dead() : ForwardingStore::BeginBatch(); }
  absl::Status InsertResult(const LeaseRecord& lease, ResultDisposition disposition, const v1::CaseResult& result,
                            int64_t received_at_ms) override {
    if (dead) return Dead();
    absl::Status s = ForwardingStore::InsertResult(lease, disposition, result, received_at_ms);
    if (armed && disposition == ResultDisposition::kStale) dead = true;
    return s;
  }
  absl::Status UpdateLease(const std::string& id, LeaseState state, int64_t expires) override {
    return dead ? Dead() : ForwardingStore::UpdateLease(id, state, expires);
  }
  absl::Status UpdateCase(const std::string& run_id, int index, const v1::CaseStatus& status) override {
    return dead ? Dead() : ForwardingStore::UpdateCase(run_id, index, status);
  }
  absl::Status UpdateRunState(const std::string& run_id, v1::RunState state, int64_t at) override {
    return dead ? Dead() : ForwardingStore::UpdateRunState(run_id, state, at);
  }
};

// An agent that stopped its case itself reports CANCELLED on an active
// lease: kept as stale, and the attempt lost. Killed between the two, the
// restarted coordinator refused the report again ("already has a result")
// for as long as the agent retried, renewing the lease: the case never ended.
TEST_F(SchedulerTest, AnUnaskedCancelStoredBeforeARestartStillLosesTheAttempt) {
  scheduler_.reset();
  DiesAfterStaleResultStore dying(store_.get());
  scheduler_ = std::make_unique<Scheduler>(&dying, &clock_, options_);
  ASSERT_TRUE(scheduler_->Recover().ok());
  const std::string s = Register("a1");
  const std::string run = Submit(1);
  auto item = Next(s);
  ASSERT_TRUE(item && item->has_lease());
  const v1::CompleteLeaseRequest request = Completion(s, item->lease().lease_id(), v1::CaseResult::OUTCOME_CANCELLED);
  dying.armed = true;
  scheduler_->Complete(request).IgnoreError();  // killed before its reply leaves
  ASSERT_TRUE(dying.dead);
  Open();  // restarted on the database the killed process left
  ASSERT_EQ(Run(run).cases(0).state(), v1::CASE_STATE_RUNNING);
  auto again = scheduler_->Complete(request);  // the agent offers its report again
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->disposition(), v1::CompleteLeaseResponse::DISPOSITION_STALE);
  const v1::Run now = Run(run);
  EXPECT_EQ(now.cases(0).state(), v1::CASE_STATE_PENDING);
  EXPECT_THAT(now.cases(0).error(), HasSubstr("stopped the case without being asked"));
}

class NiceRecordingStore : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<std::map<std::string, int64_t>> CaseDurations(const std::string& suite_name) override {
    durations_nice = ThreadNice();
    return ForwardingStore::CaseDurations(suite_name);
  }
  absl::StatusOr<v1::HistoryResponse*> History(const v1::HistoryRequest& request, google::protobuf::Arena* arena,
                                               const std::function<void()>& pace) override {
    history_nice = ThreadNice();
    return ForwardingStore::History(request, arena, pace);
  }
  int durations_nice = 99;  // 99: not read
  int history_nice = 99;

 private:
  static int ThreadNice() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }
};

// Preparing a suite (its durations read, its cases copied and ordered) took
// 7 ms of CPU for 2,000 cases; a dozen submitted at once, each on a gRPC
// thread at the coordinator's raised priority, held both cores while agents
// on the same machine started almost nothing.
TEST_F(SchedulerTest, SubmittedSuitesArePreparedAtTheStartingPriority) {
  testing::OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(3);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    ASSERT_NE(change.after, change.before) << "started at the highest priority: nothing to lower";
    NiceRecordingStore store(store_.get());
    auto scheduler = std::make_unique<Scheduler>(&store, &clock_, options_);
    v1::SubmitRunRequest request;
    request.mutable_suite()->set_name("s");
    request.mutable_suite()->add_cases()->set_name("only");
    request.mutable_suite()->mutable_cases(0)->add_argv("/bin/true");
    EXPECT_TRUE(scheduler->Submit(request).ok());
    EXPECT_EQ(store.durations_nice, change.before) << "prepared below the agents' priority";
    EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), change.after) << "raised again after";
    scheduler.reset();
    RaiseThreadPriority(0);  // later tests: nothing raised in this process
  });
}

// A history read runs at its caller's priority, the serving one. Each read
// takes locks that the lease path takes too (a malloc arena's, SQLite's
// mutex over the database file's locks); on a thread at nice 19 it was
// preempted holding them (traced), and bench/dispatch runs with it had
// moments of up to 342 ms inside history calls in which no lease was granted.
TEST_F(SchedulerTest, HistoryIsReadAtTheCallersPriority) {
  testing::OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(3);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    NiceRecordingStore store(store_.get());
    auto scheduler = std::make_unique<Scheduler>(&store, &clock_, options_);
    v1::HistoryRequest request;
    request.set_branch("main");
    auto* key = request.add_keys();
    key->set_benchmark("b");
    key->set_metric("wall_time");
    v1::HistoryResponse history;
    EXPECT_TRUE(scheduler->History(request, &history).ok());
    EXPECT_EQ(store.history_nice, change.after) << "read below the serving priority";
    EXPECT_EQ(history.series_size(), 1);
    scheduler.reset();
    RaiseThreadPriority(0);  // later tests: nothing raised in this process
  });
}

}  // namespace
}  // namespace perfgate
