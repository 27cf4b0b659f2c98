// The SQLite store on real files: what a stored case costs, that results read
// back exactly as they came, and that a database of schema version 5 converts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "coordinator/scheduler.h"
#include "coordinator/sqlite_migrations.h"
#include "coordinator/store.h"
#include "core/series.h"
#include "core/time_source.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// A host as a real agent describes itself: the notes make it most of a result's bytes.
v1::HostFingerprint LabHost(const std::string& name) {
  v1::HostFingerprint host;
  host.set_hostname(name);
  host.set_cpu_model("AMD EPYC 9654 96-Core Processor");
  host.set_cpu_cores(2);
  host.set_kernel("Linux 6.1.0-18-amd64");
  host.set_memory_bytes(8ull << 30);
  host.set_gpu_note("no usable GPU: cudaErrorInsufficientDriver (CUDA driver version is insufficient for CUDA runtime "
                    "version); CUDA runtime 13.0, no driver");
  host.set_instruction_counter_note(
      "hardware counters unavailable (perf_event_open: No such file or directory); callgrind fallback available");
  host.set_memory_note("peak memory: agent:cgroup-v1 memory.max_usage_in_bytes of a group per run in "
                       "/sys/fs/cgroup/memory/perfgate (no v2 memory controller delegated); leftover processes: "
                       "cgroup.kill of a v2 group per run in /sys/fs/cgroup/unified/perfgate");
  host.set_region_counter_note("callgrind runs libtorch's start-up (probed /usr/lib/x86_64-linux-gnu/libhwy.so.1)");
  return host;
}

// What the agent sends for a trivial case run once: 1 sample of its 4 metrics.
v1::CaseResult AgentResult(const std::string& case_name, const std::string& agent, const std::string& pool,
                           double wall_s) {
  v1::CaseResult r;
  r.set_case_name(case_name);
  r.set_outcome(v1::CaseResult::OUTCOME_OK);
  r.set_agent_id(agent);
  r.set_pool(pool);
  *r.mutable_host() = LabHost(agent + ".lab");
  auto* sample = r.add_samples();
  AddValue(sample, case_name, "wall_time", wall_s, "s", "agent:clock");
  AddValue(sample, case_name, "user_cpu_time", 0.0002, "s", "agent:rusage");
  AddValue(sample, case_name, "sys_cpu_time", 0.0003, "s", "agent:rusage");
  AddValue(sample, case_name, "peak_rss", 1'400'000, "bytes", "agent:cgroup");
  return r;
}

v1::SubmitRunRequest TrivialRun(int cases) {
  v1::SubmitRunRequest request;
  request.set_branch("main");
  request.set_commit("abc123");
  request.mutable_suite()->set_name("trivial");
  for (int i = 0; i < cases; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name(absl::StrCat("case", i));
    c->add_argv("/bin/true");
  }
  return request;
}

TEST(StoreTest, AStoredCaseWithOneSampleOfFourMetricsTakesAtMost700Bytes) {
  testing::TempDir dir;
  const std::string db = dir.File("perfgate.db");
  const int runs = 5, cases = 200, agents = 8;
  {
    auto store = OpenSqliteStore(db);
    ASSERT_TRUE(store.ok()) << store.status();
    SimulatedTimeSource clock;
    Scheduler scheduler(store->get(), &clock);
    ASSERT_TRUE(scheduler.Recover().ok());
    std::vector<std::string> sessions;
    for (int a = 0; a < agents; ++a) {
      v1::RegisterRequest hello;
      hello.set_agent_id(absl::StrCat("agent-", a));
      hello.set_pool("lab");
      *hello.mutable_host() = LabHost(hello.agent_id() + ".lab");
      auto session = scheduler.Register(hello);
      ASSERT_TRUE(session.ok()) << session.status();
      sessions.push_back(session->session_id());
    }
    for (int r = 0; r < runs; ++r) {
      ASSERT_TRUE(scheduler.Submit(TrivialRun(cases)).ok());
      for (int done = 0; done < cases;) {
        for (int a = 0; a < agents && done < cases; ++a, ++done) {
          v1::WorkItem item;
          auto wait = scheduler.NextWorkItem(sessions[a], 0, &item);
          ASSERT_TRUE(wait.ok() && *wait == Scheduler::Wait::kItem && item.has_lease());
          clock.Advance(1);
          v1::CompleteLeaseRequest complete;
          complete.set_session_id(sessions[a]);
          complete.set_lease_id(item.lease().lease_id());
          *complete.mutable_result() =
              AgentResult(item.lease().spec().name(), absl::StrCat("agent-", a), "lab", 0.0004 + 1e-6 * done);
          auto answer = scheduler.Complete(complete);
          ASSERT_TRUE(answer.ok()) << answer.status();
          ASSERT_EQ(answer->disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
        }
      }
    }
    scheduler.Shutdown();
  }  // closing the store checkpoints its WAL into the file
  const double per_case = static_cast<double>(std::filesystem::file_size(db)) / (runs * cases);
  EXPECT_LE(per_case, 700) << "bytes per stored case";
}

class StoreRoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.File("perfgate.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Closes the store, ends every run behind its back (as if the coordinator
  // stopped between a run's end and its summary) and opens it again.
  void ReopenWithEveryRunEndedUnsummarized() {
    store_.reset();
    ASSERT_TRUE(testing::ExecSql(dir_.File("perfgate.db"),
                                 absl::StrCat("UPDATE runs SET state = ", v1::RUN_STATE_FINISHED,
                                              "; INSERT INTO pending_summaries (run_seq) SELECT seq FROM runs")));
    auto reopened = OpenSqliteStore(dir_.File("perfgate.db"));
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    store_ = *std::move(reopened);
  }

  // A running run of `names`, its run id.
  std::string InsertRun(const std::vector<std::string>& names) {
    v1::Run run;
    run.set_run_id(absl::StrCat("run-", std::string(32, 'a' + static_cast<char>(runs_++))));
    run.set_suite_name("s");
    run.set_branch("main");
    run.set_state(v1::RUN_STATE_RUNNING);
    run.set_created_at_ms(1000 + runs_);
    v1::Suite suite;
    suite.set_name("s");
    for (const auto& n : names) {
      run.add_cases()->set_name(n);
      suite.add_cases()->set_name(n);
    }
    EXPECT_TRUE(store_->InsertRun(run, suite).ok());
    return run.run_id();
  }

  LeaseRecord Lease(const std::string& run_id, int index, const std::string& lease_id, const std::string& agent) {
    LeaseRecord l;
    l.lease_id = lease_id;
    l.run_id = run_id;
    l.case_index = index;
    l.attempt = 1;
    l.agent_id = agent;
    l.session_id = "session-0123456789abcdef0123456789abcdef";
    l.pool = "lab";
    l.granted_at_ms = 5;
    l.expires_at_ms = 10'005;
    EXPECT_TRUE(store_->InsertLease(l).ok());
    return l;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  int runs_ = 0;
};

TEST_F(StoreRoundTripTest, ResultsReadBackByteForByteWhateverTheyRepeat) {
  const std::string run_id = InsertRun({"plain", "foreign", "bare"});
  // Everything the store keeps once: names equal to the lease's, the host.
  const v1::CaseResult plain = AgentResult("plain", "agent-1", "lab", 0.5);
  // Nothing it can take out: other names, a benchmark of the case's own, no host.
  v1::CaseResult foreign = AgentResult("someone-else", "agent-9", "other-pool", 0.25);
  foreign.clear_host();
  foreign.mutable_samples(0)->mutable_values(1)->set_benchmark("torch_add");
  // Empty fields stay empty, an empty host stays present.
  v1::CaseResult bare;
  bare.set_outcome(v1::CaseResult::OUTCOME_FAILED);
  bare.mutable_host();
  bare.add_samples()->add_values()->set_metric("wall_time");
  const v1::CaseResult sent[] = {plain, foreign, bare};
  for (int i = 0; i < 3; ++i) {
    // The second lease id is not one the scheduler makes: it is kept as it is.
    LeaseRecord l = Lease(run_id, i, i == 1 ? "lease-made-elsewhere" : absl::StrCat("lease-", std::string(31, 'c'), i),
                          "agent-1");
    ASSERT_TRUE(store_->InsertResult(l, ResultDisposition::kCounted, sent[i], 20).ok());
  }
  auto run = store_->LoadRun(run_id);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->cases_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run->cases(i).result().SerializeAsString(), sent[i].SerializeAsString()) << "case " << i;
  }
  auto latest = store_->LatestResults("main");
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_EQ(latest->size(), 2u) << "the OK results";
  std::sort(latest->begin(), latest->end(),
            [](const LatestResult& a, const LatestResult& b) { return a.result.case_name() < b.result.case_name(); });
  EXPECT_EQ((*latest)[0].result.SerializeAsString(), plain.SerializeAsString());
  EXPECT_EQ((*latest)[1].result.SerializeAsString(), foreign.SerializeAsString());
  // The host is kept once however many results carry it.
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM hosts"), 2);
}

// A suite is written in several commits (other runs' results go in between);
// one whose submit stopped half way is removed at the next start.
TEST_F(StoreRoundTripTest, ALargeSuiteReadsBackWholeAndAHalfWrittenOneIsRemoved) {
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) names.push_back(absl::StrCat("case", i));
  const std::string whole = InsertRun(names);
  const std::string half = InsertRun(names);
  auto loaded = store_->LoadRun(whole);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->cases_size(), 300);
  EXPECT_EQ(loaded->cases(299).name(), "case299");
  EXPECT_EQ(loaded->state(), v1::RUN_STATE_RUNNING);
  // As InsertRun leaves a run until its last cases are written.
  ASSERT_TRUE(store_->UpdateRunState(half, v1::RUN_STATE_UNSPECIFIED, 0).ok());
  const std::string db = dir_.File("perfgate.db");

  auto recovered = store_->Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ASSERT_EQ(recovered->runs.size(), 1u);
  EXPECT_EQ(recovered->runs[0].run_id(), whole);
  EXPECT_EQ(recovered->runs[0].cases_size(), 300);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM runs"), 1);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM cases"), 300) << "the half-written run's cases are gone too";
}

// A history read paced to its share of a core lasts seconds on a busy
// coordinator; reading a finished run or a suite's durations (a gate's
// GetRun, a submit) must not wait for it.
TEST_F(StoreRoundTripTest, RunsAndDurationsAreReadWhileAHistoryReadPauses) {
  const std::string run_id = InsertRun({"a", "b"});
  v1::HistoryRequest request;
  request.set_branch("main");
  for (int i = 0; i < 64; ++i) request.add_keys()->set_benchmark(absl::StrCat("key", i));  // paces at least once
  std::mutex mu;
  std::condition_variable cv;
  bool paused = false, read_meanwhile = false, released_in_time = true;
  google::protobuf::Arena arena;
  std::thread history([&] {
    auto read = store_->History(request, &arena, [&] {
      std::unique_lock lock(mu);
      paused = true;
      cv.notify_all();
      // A generous bound, so that the old code (one connection, one lock) fails rather than hangs.
      if (!read_meanwhile) released_in_time = cv.wait_for(lock, std::chrono::seconds(30), [&] { return read_meanwhile; });
    });
    EXPECT_TRUE(read.ok()) << read.status();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return paused; });
  }
  auto run = store_->LoadRun(run_id);
  auto durations = store_->CaseDurations("s");
  {
    std::lock_guard lock(mu);
    read_meanwhile = true;
  }
  cv.notify_all();
  history.join();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->cases_size(), 2);
  EXPECT_TRUE(durations.ok()) << durations.status();
  EXPECT_TRUE(released_in_time) << "the run and the durations were read only after the history read ended";
}

// While a paced history read sleeps it holds no snapshot, so the WAL can be
// checkpointed whole and start over (a call takes seconds; under the agents'
// commits a snapshot held throughout let the WAL grow past 100 MB).
TEST_F(StoreRoundTripTest, AHistoryReadHoldsNoSnapshotWhileItPauses) {
  InsertRun({"a", "b"});  // frames in the WAL
  v1::HistoryRequest request;
  request.set_branch("main");
  for (int i = 0; i < 64; ++i) request.add_keys()->set_benchmark(absl::StrCat("key", i));  // paces at least once
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("perfgate.db").c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 10'000);  // waits out the store's own checkpointer; a held snapshot is never released
  int paces = 0, busy = -1, logged = -1, backfilled = -2;
  google::protobuf::Arena arena;
  auto read = store_->History(request, &arena, [&] {
    if (paces++ > 0) return;
    sqlite3_stmt* checkpoint = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(other, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &checkpoint, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(checkpoint), SQLITE_ROW);
    busy = sqlite3_column_int(checkpoint, 0);
    logged = sqlite3_column_int(checkpoint, 1);
    backfilled = sqlite3_column_int(checkpoint, 2);
    sqlite3_finalize(checkpoint);
  });
  sqlite3_close(other);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_GT(paces, 0);
  EXPECT_EQ(busy, 0) << "a reader kept the checkpoint from finishing";
  EXPECT_EQ(logged, backfilled);
}

// History of the wall time of benchmark "a" on branch main, pool lab.
v1::HistoryResponse* HistoryOfA(Store& store, google::protobuf::Arena* arena) {
  v1::HistoryRequest request;
  request.set_branch("main");
  auto* key = request.add_keys();
  key->set_pool("lab");
  key->set_benchmark("a");
  key->set_metric("wall_time");
  key->set_source("agent:clock");
  auto history = store.History(request, arena, [] {});
  EXPECT_TRUE(history.ok()) << history.status();
  return history.ok() ? *history : google::protobuf::Arena::CreateMessage<v1::HistoryResponse>(arena);
}

// A run's medians and its cases' durations are written when it ends, off
// the results' path: a history read sees a run once it has ended, with the
// median of every value its cases reported for a series.
TEST_F(StoreRoundTripTest, ARunIsInHistoryAndDurationsFromItsEndWithTheMedianOfAllItsValues) {
  const std::string run_id = InsertRun({"a", "b"});
  LeaseRecord first = Lease(run_id, 0, "lease-00000000000000000000000000000001", "agent-1");
  LeaseRecord second = Lease(run_id, 1, "lease-00000000000000000000000000000002", "agent-2");
  // Case b reports benchmark a too (three samples): the median is of 1, 2,
  // 4 and 5 (3), not of the two results' medians (2.5).
  v1::CaseResult b = AgentResult("a", "agent-2", "lab", 2);
  AddValue(b.add_samples(), "a", "wall_time", 4, "s", "agent:clock");
  AddValue(b.add_samples(), "a", "wall_time", 5, "s", "agent:clock");
  ASSERT_TRUE(store_->InsertResult(first, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 1), 20).ok());
  ASSERT_TRUE(store_->InsertResult(second, ResultDisposition::kCounted, b, 30).ok());
  google::protobuf::Arena arena;
  EXPECT_THAT(HistoryOfA(*store_, &arena)->series(0).run_medians(), ElementsAre()) << "the run has not ended";
  EXPECT_THAT(*store_->CaseDurations("s"), ElementsAre());
  ASSERT_TRUE(store_->UpdateRunState(run_id, v1::RUN_STATE_FINISHED, 40).ok());
  EXPECT_THAT(HistoryOfA(*store_, &arena)->series(0).run_medians(), ElementsAre(3));
  // Granted at 5 ms, received at 20 and 30.
  EXPECT_THAT(*store_->CaseDurations("s"), ElementsAre(Pair("a", 15), Pair("b", 25)));
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM pending_summaries"), 0);
}

// A run that ended before its medians were written (the coordinator
// stopped) gets them, from its stored results, when the store opens again.
TEST_F(StoreRoundTripTest, ARunThatEndedUnsummarizedIsSummarizedOnTheNextOpen) {
  const std::string run_id = InsertRun({"a"});
  LeaseRecord lease = Lease(run_id, 0, "lease-00000000000000000000000000000001", "agent-1");
  ASSERT_TRUE(store_->InsertResult(lease, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 3), 20).ok());
  ASSERT_NO_FATAL_FAILURE(ReopenWithEveryRunEndedUnsummarized());
  google::protobuf::Arena arena;
  EXPECT_THAT(HistoryOfA(*store_, &arena)->series(0).run_medians(), ElementsAre(3));
  EXPECT_THAT(*store_->CaseDurations("s"), ElementsAre(Pair("a", 15)));
}

// A case's duration is the time its agent says it was busy with it, not its
// lease's span: a lease held ahead waits behind the cases before it, and a
// result waits for its report. No agent may claim more than its lease
// lived; one that says nothing gets the span.
class CaseDurationTest : public StoreRoundTripTest {
 protected:
  // Cases a, b, c of one run, granted at 5 ms and received at 100: a says
  // it was busy 1.2 ms, b 500 ms, c says nothing.
  std::string RunBusyCases() {
    const std::string run_id = InsertRun({"a", "b", "c"});
    const uint64_t busy_us[] = {1'200, 500'000, 0};
    for (int i = 0; i < 3; ++i) {
      const std::string name(1, static_cast<char>('a' + i));
      v1::CaseResult result = AgentResult(name, "agent-1", "lab", 1);
      result.set_busy_us(busy_us[i]);
      LeaseRecord lease = Lease(run_id, i, absl::StrCat("lease-0000000000000000000000000000000", i + 1), "agent-1");
      EXPECT_TRUE(store_->InsertResult(lease, ResultDisposition::kCounted, result, 100).ok());
    }
    return run_id;
  }
};

TEST_F(CaseDurationTest, IsTheAgentsBusyTimeRoundedUpAndAtMostTheLeasesSpan) {
  const std::string run_id = RunBusyCases();
  ASSERT_TRUE(store_->UpdateRunState(run_id, v1::RUN_STATE_FINISHED, 110).ok());
  EXPECT_THAT(*store_->CaseDurations("s"), ElementsAre(Pair("a", 2), Pair("b", 95), Pair("c", 95)));
}

// The same when the summary reads the results back (the run ended while the
// coordinator was down).
TEST_F(CaseDurationTest, IsTheAgentsBusyTimeWhenReadBackFromStoredResults) {
  RunBusyCases();
  ASSERT_NO_FATAL_FAILURE(ReopenWithEveryRunEndedUnsummarized());
  EXPECT_THAT(*store_->CaseDurations("s"), ElementsAre(Pair("a", 2), Pair("b", 95), Pair("c", 95)));
}

// Values kept in memory are gone after a restart: a run that ends after one
// gets the medians of all its results, read back from the store.
TEST_F(StoreRoundTripTest, ARunThatEndsAfterARestartHasTheMediansOfItsResultsFromBefore) {
  const std::string run_id = InsertRun({"a", "b"});
  LeaseRecord first = Lease(run_id, 0, "lease-00000000000000000000000000000001", "agent-1");
  ASSERT_TRUE(store_->InsertResult(first, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 1), 20).ok());
  store_.reset();
  auto reopened = OpenSqliteStore(dir_.File("perfgate.db"));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  store_ = *std::move(reopened);
  LeaseRecord second = Lease(run_id, 1, "lease-00000000000000000000000000000002", "agent-2");
  ASSERT_TRUE(store_->InsertResult(second, ResultDisposition::kCounted, AgentResult("a", "agent-2", "lab", 3), 30).ok());
  ASSERT_TRUE(store_->UpdateRunState(run_id, v1::RUN_STATE_FINISHED, 40).ok());
  google::protobuf::Arena arena;
  EXPECT_THAT(HistoryOfA(*store_, &arena)->series(0).run_medians(), ElementsAre(2)) << "the median of 1 and 3";
  EXPECT_THAT(*store_->CaseDurations("s"), ElementsAre(Pair("a", 15), Pair("b", 25)));
}

TEST_F(StoreRoundTripTest, ALeaseTakesOneResult) {
  const std::string run_id = InsertRun({"a"});
  LeaseRecord l = Lease(run_id, 0, "lease-0123456789abcdef0123456789abcdef", "agent-1");
  ASSERT_TRUE(store_->InsertResult(l, ResultDisposition::kStale, AgentResult("a", "agent-1", "lab", 1), 20).ok());
  auto again = store_->InsertResult(l, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 2), 30);
  EXPECT_THAT(again.message(), ::testing::HasSubstr("already has a result"));
  auto run = store_->LoadRun(run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(run->cases(0).has_result()) << "the stale result never counts";
}

// Group commit: deferred batches share one transaction that nobody else can
// read until it is flushed; a failed batch in it is undone alone; a write
// outside a batch commits the group first, so it is on disk when it returns.
TEST_F(StoreRoundTripTest, GroupedBatchesReachDiskTogetherAndAFailedOneIsUndoneAlone) {
  const std::string path = dir_.File("perfgate.db");
  const std::string run_id = InsertRun({"a", "b", "c"});
  LeaseRecord a = Lease(run_id, 0, "lease-a0000000000000000000000000000000", "agent-1");
  LeaseRecord b = Lease(run_id, 1, "lease-b0000000000000000000000000000000", "agent-1");
  LeaseRecord c = Lease(run_id, 2, "lease-c0000000000000000000000000000000", "agent-1");
  ASSERT_TRUE(store_->InsertResult(b, ResultDisposition::kCounted, AgentResult("b", "agent-1", "lab", 1), 20).ok());
  const std::string counted = "SELECT COUNT(*) FROM leases WHERE state = 2";
  auto complete = [&](const LeaseRecord& l, double value) {
    EXPECT_TRUE(store_->BeginBatch().ok());
    store_->InsertResult(l, ResultDisposition::kCounted, AgentResult(l.agent_id, "agent-1", "lab", value), 30)
        .IgnoreError();
    store_->UpdateLease(l.lease_id, LeaseState::kCompleted, l.expires_at_ms).IgnoreError();
    return store_->CommitBatchLater();
  };
  auto first = complete(a, 2);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(store_->OpenGroup(), *first);
  auto failed = complete(b, 3);  // b already has a result
  EXPECT_THAT(failed.status().message(), ::testing::HasSubstr("already has a result"));
  auto third = complete(c, 4);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(*third, *first) << "one group";
  EXPECT_EQ(testing::QueryInt(path, counted), 0) << "nothing is on disk before the flush";

  ASSERT_TRUE(store_->Flush(*first).ok());
  EXPECT_EQ(store_->OpenGroup(), 0u);
  EXPECT_EQ(testing::QueryInt(path, counted), 2) << "a and c, not the failed b";
  EXPECT_TRUE(store_->Flush(*first).ok()) << "a flushed group flushes again at no cost";

  LeaseRecord d = Lease(run_id, 2, "lease-d0000000000000000000000000000000", "agent-1");
  auto fourth = complete(d, 5);
  ASSERT_TRUE(fourth.ok());
  EXPECT_GT(*fourth, *first);
  ASSERT_TRUE(store_->UpdateRunState(run_id, v1::RUN_STATE_FINISHED, 99).ok());
  EXPECT_EQ(testing::QueryInt(path, counted), 3) << "a write outside a batch commits the open group first";
  EXPECT_EQ(store_->OpenGroup(), 0u);
  EXPECT_TRUE(store_->Lost().ok());
}

// A group that cannot be committed (here: the WAL may not grow, as on a full
// disk) held results its writers had already applied in memory: the store
// takes no more writes, and a restart reads the database as it was.
TEST_F(StoreRoundTripTest, AGroupThatFailsToCommitStopsEveryWriteUntilARestart) {
  const std::string path = dir_.File("perfgate.db");
  const std::string run_id = InsertRun({"a"});
  LeaseRecord a = Lease(run_id, 0, "lease-a0000000000000000000000000000000", "agent-1");
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->InsertResult(a, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 1), 30).ok());
  auto group = store_->CommitBatchLater();
  ASSERT_TRUE(group.ok()) << group.status();

  absl::Status flushed;
  {
    testing::FileSizeLimit no_growth(std::filesystem::file_size(path + "-wal"));
    ASSERT_TRUE(no_growth.ok());
    flushed = store_->Flush(*group);
  }

  ASSERT_FALSE(flushed.ok());
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(flushed.message(), ::testing::HasSubstr("until it is restarted"));
  EXPECT_FALSE(store_->Lost().ok());
  EXPECT_FALSE(store_->UpdateRunState(run_id, v1::RUN_STATE_FINISHED, 99).ok()) << "no write after a lost group";
  EXPECT_FALSE(store_->BeginBatch().ok());
  EXPECT_FALSE(store_->Flush(*group).ok());

  store_.reset();
  auto reopened = OpenSqliteStore(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  store_ = *std::move(reopened);
  EXPECT_TRUE(store_->Lost().ok());
  EXPECT_EQ(testing::QueryInt(path, "SELECT COUNT(*) FROM results"), 0) << "the lost group's result is not there";
  EXPECT_TRUE(store_->UpdateRunState(run_id, v1::RUN_STATE_FINISHED, 99).ok());
}

// A result is acknowledged only once it is on disk, not just handed to the
// operating system: after a sync of the write-ahead log that began once it
// was committed. The sync here records how many completed leases a fresh
// connection sees as it begins.
TEST_F(StoreRoundTripTest, WritesReturnOnlyAfterASyncThatBeganOnceTheyWereCommitted) {
  const std::string path = dir_.File("synced.db");
  const std::string counted = "SELECT COUNT(*) FROM leases WHERE state = 2";
  std::vector<int> seen;  // by each sync, as it began
  auto store = OpenSqliteStore(path, 5'000, CommitDurability::kPowerLoss, [&](int fd) {
    seen.push_back(testing::QueryInt(path, counted));
    return fdatasync(fd);
  });
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  const std::string run_id = InsertRun({"a", "b"});
  ASSERT_FALSE(seen.empty()) << "a submitted run is synced before the submit returns";
  LeaseRecord a = Lease(run_id, 0, "lease-a0000000000000000000000000000000", "agent-1");
  LeaseRecord b = Lease(run_id, 1, "lease-b0000000000000000000000000000000", "agent-1");
  auto complete = [&](const LeaseRecord& l) {
    EXPECT_TRUE(store_->BeginBatch().ok());
    EXPECT_TRUE(
        store_->InsertResult(l, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 1), 30).ok());
    EXPECT_TRUE(store_->UpdateLease(l.lease_id, LeaseState::kCompleted, l.expires_at_ms).ok());
  };

  complete(a);
  seen.clear();
  ASSERT_TRUE(store_->CommitBatch().ok());
  EXPECT_THAT(seen, ElementsAre(1)) << "CommitBatch: one sync, after its commit";

  complete(b);
  auto group = store_->CommitBatchLater();
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(seen.size(), 1u) << "a deferred batch is not synced before its group commits";
  ASSERT_TRUE(store_->Flush(*group).ok());
  EXPECT_THAT(seen, ElementsAre(1, 2)) << "Flush: one sync, after the group's commit";

  seen.clear();
  ASSERT_TRUE(store_->SetRunVerdict(run_id, "passed").ok());
  EXPECT_EQ(seen.size(), 1u) << "a write outside a batch";
  seen.clear();
  ASSERT_TRUE(store_->LoadLease(a.lease_id).ok());
  EXPECT_TRUE(seen.empty()) << "a read changes nothing to sync";
}

// A sync that fails may have lost pages the kernel could not write: the
// write that asked for it fails, and the store takes no more writes.
TEST_F(StoreRoundTripTest, AFailedSyncFailsItsWriteAndStopsEveryLaterOne) {
  const std::string path = dir_.File("unsynced.db");
  bool fail = false;
  auto store = OpenSqliteStore(path, 5'000, CommitDurability::kPowerLoss, [&](int fd) {
    if (!fail) return fdatasync(fd);
    errno = EIO;
    return -1;
  });
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  const std::string run_id = InsertRun({"a"});
  LeaseRecord a = Lease(run_id, 0, "lease-a0000000000000000000000000000000", "agent-1");
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->InsertResult(a, ResultDisposition::kCounted, AgentResult("a", "agent-1", "lab", 1), 30).ok());
  fail = true;
  const absl::Status committed = store_->CommitBatch();
  EXPECT_EQ(committed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(committed.message(), ::testing::HasSubstr("unsynced.db-wal"));
  EXPECT_THAT(committed.message(), ::testing::HasSubstr("Input/output error"));
  EXPECT_FALSE(store_->Lost().ok());
  fail = false;  // a sync that works again does not bring the lost pages back
  EXPECT_FALSE(store_->SetRunVerdict(run_id, "passed").ok());
  EXPECT_FALSE(store_->BeginBatch().ok());
}

// A database as perfgate left it at schema version 5: built by the first
// five migrations, rows written in that version's layout.
void WriteVersion5Database(const std::string& path, const v1::CaseResult& counted, const v1::CaseResult& stale) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto exec = [&](const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
    sqlite3_free(err);
  };
  exec("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (5)");
  for (size_t i = 0; i < 5; ++i) exec(SqliteMigrations()[i]);
  v1::Suite suite;
  suite.set_name("s");
  suite.add_cases()->set_name("done");
  suite.add_cases()->set_name("running");
  auto blob = [](const std::string& bytes) {
    std::string hex;
    for (unsigned char c : bytes) absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
    return absl::StrCat("X'", hex, "'");
  };
  const std::string run = "run-00000000000000000000000000000001";
  const std::string done = "lease-11111111111111111111111111111111";
  const std::string running = "lease-22222222222222222222222222222222";
  const std::string lost = "lease-33333333333333333333333333333333";
  const std::string session = "session-44444444444444444444444444444444";
  exec(absl::StrCat("INSERT INTO runs (run_id, suite_name, commit_sha, branch, state, created_at_ms, suite, seq) "
                    "VALUES ('", run, "', 's', 'abc', 'main', 1, 1000, ", blob(suite.SerializeAsString()), ", 1)"));
  exec(absl::StrCat("INSERT INTO cases (run_id, case_index, name, state, attempts, agent_id) VALUES ('", run,
                    "', 0, 'done', 3, 2, 'agent-1'), ('", run, "', 1, 'running', 2, 1, 'agent-2')"));
  exec(absl::StrCat("INSERT INTO leases (lease_id, run_id, case_index, attempt, agent_id, session_id, state, "
                    "granted_at_ms, expires_at_ms, pool) VALUES "
                    "('", lost, "', '", run, "', 0, 1, 'agent-1', '", session, "', 3, 10, 20, 'lab'), "
                    "('", done, "', '", run, "', 0, 2, 'agent-1', '", session, "', 2, 30, 40, 'lab'), "
                    "('", running, "', '", run, "', 1, 1, 'agent-2', 'session-other', 1, 50, 60, 'lab')"));
  exec(absl::StrCat("INSERT INTO results (lease_id, run_id, case_index, counted, outcome, received_at_ms, result) "
                    "VALUES ('", lost, "', '", run, "', 0, 0, 1, 25, ", blob(stale.SerializeAsString()), "), ('",
                    done, "', '", run, "', 0, 1, 1, 35, ", blob(counted.SerializeAsString()), ")"));
  exec("INSERT INTO series (series_id, branch, pool, benchmark, metric, source) "
       "VALUES (1, 'main', 'lab', 'done', 'wall_time', 'agent:clock')");
  exec("INSERT INTO run_medians (series_id, created_at_ms, run_seq, median) VALUES (1, 1000, 1, 0.5)");
  sqlite3_close(db);
}

TEST(StoreMigrationTest, AVersion5DatabaseConvertsAndReadsBackAsItWas) {
  testing::TempDir dir;
  const std::string path = dir.File("perfgate.db");
  const v1::CaseResult counted = AgentResult("done", "agent-1", "lab", 0.5);
  const v1::CaseResult stale = AgentResult("done", "agent-1", "lab", 9.0);
  WriteVersion5Database(path, counted, stale);

  auto store = OpenSqliteStore(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(testing::QueryInt(path, "SELECT version FROM schema_version"),
            static_cast<int64_t>(SqliteMigrations().size()));
  EXPECT_EQ(testing::QueryInt(path, "SELECT COUNT(*) FROM leases WHERE typeof(lease_id) = 'blob'"), 3)
      << "ids kept as their 16 bytes";
  EXPECT_EQ(testing::QueryInt(path, "SELECT COUNT(*) FROM hosts"), 1) << "one host for both results";

  auto recovered = (*store)->Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ASSERT_EQ(recovered->runs.size(), 1u);
  const v1::Run& run = recovered->runs[0];
  ASSERT_EQ(run.cases_size(), 2);
  EXPECT_EQ(run.cases(0).name(), "done");
  EXPECT_EQ(run.cases(0).attempts(), 2u);
  EXPECT_EQ(run.cases(0).result().SerializeAsString(), counted.SerializeAsString()) << "the counted result, not the stale";
  EXPECT_FALSE(run.cases(1).has_result());
  ASSERT_EQ(recovered->active_leases.size(), 1u);
  const LeaseRecord active = recovered->active_leases[0];
  EXPECT_EQ(active.lease_id, "lease-22222222222222222222222222222222");
  EXPECT_EQ(active.session_id, "session-other") << "an id not in the scheduler's form stays text";
  EXPECT_EQ(active.run_id, "run-00000000000000000000000000000001");
  EXPECT_EQ(active.case_index, 1);
  EXPECT_EQ(active.pool, "lab");

  v1::HistoryRequest request;
  request.set_branch("main");
  auto* key = request.add_keys();
  key->set_pool("lab");
  key->set_benchmark("done");
  key->set_metric("wall_time");
  key->set_source("agent:clock");
  google::protobuf::Arena arena;
  auto history = (*store)->History(request, &arena, [] {});
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_THAT((*history)->series(0).run_medians(), ElementsAre(0.5));

  // The converted active lease is found by its id: its result counts.
  const v1::CaseResult second = AgentResult("running", "agent-2", "lab", 0.75);
  ASSERT_TRUE((*store)->BeginBatch().ok());
  ASSERT_TRUE((*store)->InsertResult(active, ResultDisposition::kCounted, second, 70).ok());
  ASSERT_TRUE((*store)->UpdateLease(active.lease_id, LeaseState::kCompleted, active.expires_at_ms).ok());
  ASSERT_TRUE((*store)->CommitBatch().ok());
  EXPECT_EQ(testing::QueryInt(path, "SELECT COUNT(*) FROM leases WHERE state = 2"), 2);
  auto loaded = (*store)->LoadRun("run-00000000000000000000000000000001");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->cases(0).result().SerializeAsString(), counted.SerializeAsString());
  EXPECT_EQ(loaded->cases(1).result().SerializeAsString(), second.SerializeAsString());
  history = (*store)->History(request, &arena, [] {});
  ASSERT_TRUE(history.ok());
  EXPECT_THAT((*history)->series(0).run_medians(), ElementsAre(0.5));
}

}  // namespace
}  // namespace perfgate
