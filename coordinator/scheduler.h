// The coordinator's state machine: agent sessions, the queue of case
// attempts, leases and their expiry, runs and their events.
//
// Thread-safe. Every transition is written to the Store before it is
// visible, so a restarted coordinator (Recover) continues where it stopped.
// Time comes from a TimeSource so expiry is tested with simulated time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "coordinator/background_queue.h"
#include "coordinator/scheduler_listener.h"
#include "coordinator/store.h"
#include "core/suite.h"
#include "core/time_source.h"
#include "perfgate/v1/agent.pb.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

struct SchedulerOptions {
  int64_t lease_ttl_ms = 10'000;
  int64_t heartbeat_interval_ms = 2'000;
  // An agent silent this long loses its session (and with it, its leases).
  int64_t session_ttl_ms = 15'000;
  // Attempts per case before it ends as an error; lost attempts count.
  uint32_t max_attempts = 3;
  // A pending case that no live agent could run for this long ends as
  // NO_CAPABLE_AGENT instead of waiting forever.
  int64_t no_agent_grace_ms = 30'000;
  // Finished runs kept in memory past the next sweep; the others are read
  // from the store on demand, so memory does not grow with runs served.
  size_t finished_runs_in_memory = 0;
  // Bounds on what one caller can make the coordinator hold and store.
  size_t max_cases_per_run = 10'000;
  size_t max_samples_per_result = kMaxSamplesPerResult;
  // Live agent sessions at once: a fleet is hundreds of agents, and each
  // keeps its session's state and store row.
  size_t max_sessions = 10'000;
};

// The longest an honest agent can hold a lease of `spec`: every run it makes
// (warm-ups, repeats, instruction-count runs under valgrind at 100 times the
// timeout, per variant) at its timeout with room for each spawn and kill,
// ten minutes for its artifacts, and all of that twice. nullopt for a case
// without a timeout. A lease renewed past it is lost: an agent that went on
// heartbeating a lease and never completed it held its gate for ever.
std::optional<int64_t> LongestLeaseSpanMs(const v1::CaseSpec& spec);

// Counters for /metrics and tests.
struct SchedulerStats {
  uint64_t leases_granted = 0;
  // Of those, granted in a CompleteLease reply (the others went out on Work streams).
  uint64_t leases_in_replies = 0;
  uint64_t leases_lost = 0;
  // CompleteLease calls taken; an agent holding leases ahead sends several results in one.
  uint64_t completion_calls = 0;
  uint64_t results_counted = 0;
  uint64_t results_stale = 0;
  uint64_t results_duplicate = 0;
  // Completions refused because the caller's session does not hold the lease.
  uint64_t results_refused = 0;
  // Registrations refused because another live process holds the agent id.
  uint64_t registrations_refused = 0;
  // Failed writes to the store, each logged; the RPC fails where it must be retried.
  uint64_t store_errors = 0;
  std::map<std::string, size_t> sessions_by_pool;  // live sessions
  size_t pending_cases = 0;
  size_t running_cases = 0;  // leased: running on an agent or held ahead there, as the gate shows them
  size_t queues = 0;  // sets of requirements that unfinished runs have cases of
};

class Scheduler {
 public:
  // REQUIRES: store and clock outlive the scheduler.
  Scheduler(Store* store, const TimeSource* clock, SchedulerOptions options = {});
  ~Scheduler();

  // Events go to `listener` from now on. REQUIRES: before serving; it outlives the scheduler.
  void SetListener(SchedulerListener* listener) { listener_ = listener; }

  // Loads unfinished runs, active leases and sessions from the store.
  // REQUIRES: called once, before any other call.
  absl::Status Recover();

  // --- agent side -------------------------------------------------------
  // A new session for the agent id. The id's current session is fenced if it
  // is the same agent process (same instance) or its Work streams are all
  // gone; a different process holding it live gets ALREADY_EXISTS.
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request);

  // An open Work stream of a session: where its client is, and whether it is
  // still connected. While one is connected the session is live.
  struct WorkStream {
    std::string peer;
    // REQUIRES: callable from any thread until CloseStream returns.
    std::function<bool()> connected;
  };
  absl::StatusOr<uint64_t> OpenStream(const std::string& session_id, WorkStream stream);
  void CloseStream(const std::string& session_id, uint64_t stream_id);

  enum class Wait { kItem, kTimeout, kClosed };
  // Next work item for the session: a cancellation, or a new lease when the
  // session holds none and a matching case is pending. Blocks up to wait_ms.
  // kClosed: the session was fenced or the scheduler is shutting down.
  absl::StatusOr<Wait> NextWorkItem(const std::string& session_id, int64_t wait_ms, v1::WorkItem* item);
  // A lease that could not be delivered goes back to the queue, attempt not spent.
  void ReleaseUndelivered(const std::string& lease_id);
  // Renews the leases the session holds; others come back as cancel_lease_ids.
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // Only the session holding the lease may complete it (PERMISSION_DENIED
  // otherwise, nothing recorded). UNAVAILABLE when the result could not be
  // stored: nothing changed, the agent retries. More results (more_results)
  // are taken in order after the first; the reply answers those it took.
  // With want_next_lease or leases_wanted, the reply carries the session's
  // next leases, committed with the results: no Work stream round trip
  // between two cases. Beyond the first lease a session holds, a lease is
  // held ahead only where MayHoldAhead allows.
  absl::StatusOr<v1::CompleteLeaseResponse> Complete(const v1::CompleteLeaseRequest& request);
  // A host fingerprint is a few hundred bytes (eight GPUs: some 2 KB); each
  // live session keeps its own, and its store row. At 1 MiB each, 1,500
  // sessions of one agent token took the coordinator to 2.97 GB.
  static constexpr size_t kMaxHostFingerprintBytes = 64 << 10;
  // Most results one call may carry, and most leases one session may hold.
  static constexpr int kMaxResultsPerCall = 64;
  static constexpr uint32_t kMaxLeasesHeld = 16;
  // The queue's last cases, this many per session, are never held ahead.
  static constexpr size_t kLastCasesPerSession = 4;
  // A case known to take longer than this is never held ahead: the round
  // trip a held lease saves is nothing beside it, and while it waits
  // behind another case an idle agent could have run it.
  static constexpr int64_t kAheadMaxExpectedMs = 50;
  // A finished run leaves memory this many leases per hold of the scheduler's lock.
  static constexpr size_t kLeasesEvictedPerLock = 256;

  // --- gate side --------------------------------------------------------
  absl::StatusOr<v1::SubmitRunResponse> Submit(const v1::SubmitRunRequest& request);
  absl::StatusOr<v1::Run> GetRun(const std::string& run_id);
  absl::StatusOr<v1::RunState> Cancel(const std::string& run_id);
  // Records the gate's verdict on a finished run.
  absl::Status ReportVerdict(const v1::ReportVerdictRequest& request);
  // The run now, and the cursor of its event log at that moment.
  // without_results: its cases come without their results, never copied
  // (under the lock, a run of thousands of results took milliseconds).
  absl::StatusOr<v1::Run> Snapshot(const std::string& run_id, size_t* cursor, bool without_results = false);
  // Events after *cursor, waiting up to wait_ms for one; advances *cursor.
  // without_results: case events come without their results, never copied.
  absl::Status WaitRunEvents(const std::string& run_id, size_t* cursor, int64_t wait_ms,
                             std::vector<v1::RunEvent>* events, bool without_results = false);
  // Returns after wait_ms, or sooner once the run has ended (or left
  // memory, or the scheduler shuts down); no case event wakes it. A
  // watcher's pause between batches of events.
  void WaitRunEnd(const std::string& run_id, int64_t wait_ms);

  // History baseline data into *out, straight from the store's reader:
  // never under mu_, on the calling thread, paced to kHistoryCpuShare of a
  // core while leases are granted, so that lease grants and completions
  // rarely wait for a core while it runs. The response is built on a
  // protobuf arena and *out is copied from it here, in one burst at the
  // end, so that the paced read makes few heap allocations (each takes a
  // glibc arena lock the lease path's threads take too). Built straight
  // into *out, three default runs had 27-35 moments over 5 ms with no case
  // running inside calls; on the arena two had 11 and 21: no difference
  // beyond the noise, so it stays as it was.
  absl::Status History(const v1::HistoryRequest& request, v1::HistoryResponse* out);

  // --- housekeeping -----------------------------------------------------
  // Expires leases (lost, re-queued or given up) and silent sessions, and
  // ends pending cases that no live agent can run.
  void Sweep();
  // Wakes every waiter; later waits return kClosed.
  void Shutdown();
  // Blocks until at least n sessions are live or timeout; true if they are.
  bool WaitForAgents(size_t n, int64_t timeout_ms);
  SchedulerStats Stats() const;

 private:
  struct Session {
    SessionRecord record;
    // record.host, shared by the results that imply it (they came without
    // one: RegisterResponse.results_imply_host); nullptr if it is empty.
    std::shared_ptr<const v1::HostFingerprint> host;
    std::string instance;  // the agent process's nonce; empty when unknown
    // The leases it holds, in the order granted: the case it runs, then
    // any held ahead. Empty: the session is idle.
    std::vector<std::string> lease_ids;
    std::deque<v1::WorkItem> outbox;
    std::map<uint64_t, WorkStream> streams;  // open Work streams, by id
    // Its Work streams wait here, so an event wakes the sessions it concerns
    // and not every agent. Shared: a waiter outlives a session dropped meanwhile.
    std::shared_ptr<std::condition_variable> wake = std::make_shared<std::condition_variable>();
  };
  // Where a pending case stands in its queue: runs in submission order, then
  // the longest expected first, then file order.
  struct QueueKey {
    uint64_t run_seq;
    int64_t expected_ms;  // INT64_MAX for a case never seen: it may be long
    int index;
    bool operator<(const QueueKey& o) const {
      if (run_seq != o.run_seq) return run_seq < o.run_seq;
      if (expected_ms != o.expected_ms) return expected_ms > o.expected_ms;
      return index < o.index;
    }
  };
  // The pending cases of one set of requirements: an agent checks each queue
  // once, not each case.
  struct Queue {
    std::string key;  // its key in queues_
    v1::Requirements requirements;
    bool gpu = false;  // needs a GPU: first on an agent that has one
    std::set<QueueKey> pending;
    int64_t unmatched_since_ms = 0;  // no live agent could run them since
    // Unfinished runs with cases in it. A queue goes with the last of them:
    // a set of requirements per submit (a label per case, say) kept a queue
    // each for good, and every grant scanned them all.
    int runs = 0;
  };
  struct CaseEntry {
    v1::CaseSpec spec;
    v1::CaseStatus status;  // never with a result: that is kept in `result`
    // The counted result, serialized (a v1::CaseResult): one block, held
    // until its run leaves memory. Parsed, a trivial result of four metrics
    // took 1,455 bytes in some 25 blocks; serialized, 516 (scheduler_test).
    std::optional<std::string> result;
    // The host of the result when it came without one: its session's, kept
    // once for all of that agent's results and put back wherever the
    // result leaves (CopyResult). A host is a thousand bytes in seven
    // allocations, as much as the rest of a trivial result.
    std::shared_ptr<const v1::HostFingerprint> implied_host;
    std::string lease_id;  // active lease
    // The agent whose lease of it was lost last: others take it first.
    std::string lost_by;
    Queue* queue = nullptr;
    int64_t expected_ms = 0;
    int64_t pending_since_ms = 0;
  };
  // A run's event as watchers get it, less the case's result: a result is
  // most of an event's bytes and never changes once set, so the log refers
  // to the case's own instead of holding a second copy.
  struct LoggedEvent {
    v1::RunEvent event;
    int result_of_case = -1;  // the case whose result the event carries; -1: none
  };
  struct RunEntry {
    v1::Run meta;  // without cases
    uint64_t seq = 0;
    std::vector<CaseEntry> cases;
    std::vector<LoggedEvent> events;
    std::vector<std::string> lease_ids;  // every lease granted for it
    size_t leases_evicted = 0;           // lease_ids before this have left leases_ (EvictFinishedRuns)
    // From PlaceCases to Enqueue: case indexes by serialized requirements, in queue order.
    std::vector<std::pair<std::string, std::vector<int>>> placement;
    // Every case before this index is final. A final state is never left, so
    // the check for the run's end resumes here: O(cases) per run, not per result.
    size_t first_open = 0;
    bool final = false;
  };

  Session* LiveSession(const std::string& session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether an active `lease` was held past LongestLeaseSpanMs of its case;
  // if so it is lost (its case queued again, or an error once its attempts
  // are spent).
  bool HeldPastItsCase(const LeaseRecord& lease, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A stored run back in memory and its pending cases queued (Recover).
  void RecoverRun(const v1::Run& run, const v1::Suite& suite) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A lease active at the restart: resumed with a fresh TTL if its session
  // and running case came back, else marked lost (Recover re-queues its case).
  void RecoverLease(LeaseRecord& lease, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the session under its id and its agent's. REQUIRES: none with its id.
  void AddSession(Session session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The case's status as it leaves the scheduler: with its result, if any.
  static v1::CaseStatus WithResult(const CaseEntry& c);
  // c's result into *result, with its implied host.
  // REQUIRES: c.result.
  static void CopyResult(const CaseEntry& c, v1::CaseResult* result);
  // The id is held by another process that is still connected.
  absl::Status CheckIdFree(const Session& holder, const v1::RegisterRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What the session lacks to run a case with `requirements` (its pool, a
  // label, a GPU), in words; empty if nothing.
  std::string Unmet(const Session& session, const v1::Requirements& requirements) const;
  bool Matches(const Session& session, const v1::Requirements& requirements) const;
  // Names, commands and sizes: what Submit refuses before taking the lock.
  absl::Status CheckSuite(const v1::Suite& suite) const;
  bool AnyCapable(const v1::Requirements& requirements, std::string* why) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Works out, before mu_ is taken, what Enqueue needs: each case's
  // expected time, and the cases by set of requirements, each set in queue
  // order (run.placement). Done under mu_, serializing the requirements and
  // finding the durations took 1.1-1.9 ms for 2,000 cases, and a dozen
  // suites submitted at once made the agents wait for all of them.
  static void PlaceCases(RunEntry& run, const std::map<std::string, int64_t>& durations);
  // A run's cases joined to their queues, pending ones enqueued.
  // REQUIRES: PlaceCases(run) done.
  void Enqueue(RunEntry& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The best pending case the session can run, and its queue; nullptr if none.
  Queue* BestQueueFor(const Session& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A lease chosen for a session: stored (StoreGrant), then applied.
  struct Grant {
    LeaseRecord lease;
    v1::CaseStatus running;  // the case's status once leased
    RunEntry* run = nullptr;
  };
  std::optional<v1::WorkItem> GrantLease(Session& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The session's next case; with `ahead` (it holds a lease already), only
  // one MayHoldAhead allows.
  std::optional<Grant> ChooseLease(const Session& session, bool ahead = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first of `queue`'s pending cases whose lease `agent_id` did not
  // lose last, among its first kLostCasesPassed; else its first.
  // REQUIRES: queue.pending not empty.
  static constexpr int kLostCasesPassed = 8;
  QueueKey FirstNotLostBy(const Queue& queue, const std::string& agent_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A lease held ahead waits behind the session's current case, so it is
  // granted only where that cannot keep others waiting: the agent has no
  // GPU (a GPU case must never wait behind CPU work there), the case is not
  // known to be long (kAheadMaxExpectedMs), and its queue holds more than
  // kLastCasesPerSession cases for every session: the last ones go one at a
  // time, so agents run out of work together and the makespan does not suffer.
  bool MayHoldAhead(const Session& session, const Queue& queue, const QueueKey& key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants the session leases, in the reply, until it holds `wanted`.
  // REQUIRES: inside Complete, before its group is flushed.
  void GrantInReply(Session& session, uint32_t wanted, v1::CompleteLeaseResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease and the case's new state in one batch, before anything changes
  // in memory: a lease the store lost would make its result unreportable
  // after a restart, so a failed write grants nothing. commit_now: committed
  // before it returns; else in the open group (Store::CommitBatchLater).
  absl::Status StoreGrant(const Grant& grant, bool commit_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After the batch committed: the lease is the session's, in memory too.
  v1::Lease ApplyGrant(Session& session, Grant grant) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease as an agent receives it: its ids and its case's spec.
  v1::Lease LeaseMessage(const LeaseRecord& lease) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A lease a repeated completion gets again: one its first reply carried,
  // while the session still holds it. Added as next_lease, then more_leases.
  void RepeatNextLease(const std::string& lease_id, const std::string& session_id,
                       v1::CompleteLeaseResponse* response) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Where a lease granted in a reply goes in it: next_lease, then more_leases.
  static void AddLease(v1::Lease lease, v1::CompleteLeaseResponse* response);
  // One result of a completion, in its steps: which lease (and may this
  // session report it), then a result for an ended lease, or the counted
  // one. A repeated result's answer is the first one's, and the leases
  // that reply carried go into `response` again.
  absl::StatusOr<v1::CompleteLeaseResponse::Disposition> CompleteLocked(const std::string& session_id,
                                                                        const std::string& lease_id,
                                                                        const v1::CaseResult& result,
                                                                        v1::CompleteLeaseResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every result of the call, and the leases it asks for.
  // An error only when the first result cannot be taken.
  absl::StatusOr<v1::CompleteLeaseResponse> CompleteAllLocked(const v1::CompleteLeaseRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LeaveCompleting();
  // Returns once the store's `group` (Store::CommitBatchLater) is committed,
  // with the completions on their way in it.
  absl::Status AwaitGroup(uint64_t group);
  // REQUIRES: lock holds completing_mu_; it is released.
  absl::Status LeadGroup(uint64_t group, std::unique_lock<std::mutex>& lock);
  absl::Status FollowGroup(uint64_t group);
  absl::StatusOr<LeaseRecord*> LeaseToComplete(const std::string& session_id, const std::string& lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct Completion;
  // A repeated completion gets its first answer, with the leases that
  // answer carried that are still active. Counted in results_duplicate.
  v1::CompleteLeaseResponse::Disposition RepeatCompletion(const Completion& done, const std::string& pool,
                                                          const std::string& session_id, const v1::CaseResult& result,
                                                          v1::CompleteLeaseResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CarriesActiveLease(const Completion& done) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completions kept past their run's eviction go once no lease they carried is active.
  void ForgetKeptCompletions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Only the session holding a lease may report it (counted in results_refused otherwise).
  absl::Status CheckHolder(const LeaseRecord& lease, const std::string& session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A result for a lease no longer in memory: its run finished and left
  // memory, or finished before a restart. Kept as stale if it is the lease's
  // first; a repeat gets the answer the first one got.
  absl::StatusOr<v1::CompleteLeaseResponse::Disposition> TakeLateResult(const std::string& session_id,
                                                                        const std::string& lease_id,
                                                                        const v1::CaseResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores a result that does not count, and counts and reports it as stale.
  absl::Status KeepStale(const LeaseRecord& lease, const v1::CaseResult& result, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the store already holds a stale result for the lease (taken before a restart).
  bool StoredStale(const std::string& lease_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::CompleteLeaseResponse::Disposition> TakeStaleResult(LeaseRecord& lease,
                                                                         const v1::CaseResult& result,
                                                                         bool unrequested_cancel, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The session is not woken when this leaves it idle: Complete may grant it
  // leases in the reply, and wakes it only if it stays idle.
  absl::StatusOr<v1::CompleteLeaseResponse::Disposition> TakeCountedResult(LeaseRecord& lease,
                                                                           const v1::CaseResult& result, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The case's state and error a counted result leaves.
  std::pair<v1::CaseState, std::string> OutcomeOf(const LeaseRecord& lease, const v1::CaseResult& result) const;
  // EndLease writes the lease's end; ForgetLease only updates memory, and
  // wakes the session's Work streams if that leaves it idle (wake_idle).
  void EndLease(LeaseRecord& lease, LeaseState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLease(LeaseRecord& lease, LeaseState state, bool wake_idle = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // EndLease, and tell the agent holding it (if live) to stop the case.
  void StopLease(LeaseRecord& lease, LeaseState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Both take ids by value: callers pass references into maps these erase from.
  void LoseLease(std::string lease_id, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A case whose attempt was lost runs again, or ends as an error once
  // options_.max_attempts are spent. REQUIRES: the case has no active lease.
  void RetryOrGiveUp(RunEntry& run, int index, const std::string& what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropSession(std::string session_id, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SetCase writes the case's new status; ApplyCase only updates memory (its
  // queue and its run's event log).
  void SetCase(RunEntry& run, int index, v1::CaseState state, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyCase(RunEntry& run, int index, v1::CaseState state, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndUnrunnableCases(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the Work streams of sessions holding no lease: there is work.
  void WakeIdleSessions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinish(RunEntry& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A finished run's cases leave their queues, and queues no unfinished run uses go.
  void LeaveQueues(RunEntry& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The run as the gate sees it; without_results, its cases' results are not copied.
  static v1::Run BuildRun(const RunEntry& run, bool without_results = false);
  // Finished runs past finished_runs_in_memory leave the maps, with their
  // leases and completions (moved out, not freed); the caller frees them
  // with ReleaseEvicted once mu_ is released: freeing a run of thousands of
  // cases and handing the memory back to the system takes milliseconds in
  // which no agent would get a lease. Erasing eight runs' 8,000 leases under
  // mu_ took the sweeper 9.5 ms, in a 22 ms moment with no lease granted.
  // At most `leases` leases move out per call (a run leaves once all of its
  // have): at 1.5-2 us each (cold nodes, three hash tables), a run of 2,000
  // took 3-4.5 ms of CPU under mu_, and 10-20 ms of wall time on a busy
  // machine. A run whose leases are partly out is final; a late or repeated
  // completion of a lease already out is answered from the store, as it is
  // once the run is gone (TakeLateResult).
  struct EvictedRuns;
  EvictedRuns EvictFinishedRuns(size_t leases) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts every finished run past the limit, a piece at a time, taking mu_
  // for each piece and releasing it (ReleaseEvicted) after.
  // REQUIRES: mu_ not held.
  void EvictInPieces();
  // The runs are freed on releaser_. Handing freed memory back to the
  // system (malloc_trim) holds each malloc arena's lock for milliseconds
  // (2-11 ms here), in which no gRPC thread of that arena can allocate: at
  // most once per kTrimIntervalMs, not after every run, and on the caller's
  // thread, whose priority no thread waiting for that lock outruns.
  // REQUIRES: mu_ not held.
  void ReleaseEvicted(EvictedRuns runs);
  static constexpr int64_t kTrimIntervalMs = 30'000;
  // On releaser_: the runs a piece at a time, held to kReleaseCpuShare of a
  // core while leases are granted (CpuPacer). At the agents' priority, a
  // freeing was still 4.3 ms of a 10.5 ms moment in which no case started
  // anywhere (32 agents on 2 cores, traced).
  void FreeEvicted(EvictedRuns& runs);
  static constexpr double kReleaseCpuShare = 0.25;
  static constexpr size_t kEntriesPerFree = 128;
  // A new run's entry from the request: ids, cases pending. No lock needed.
  RunEntry NewRunEntry(const v1::SubmitRunRequest& request);
  // Cases no registered agent can run are marked so, and listed in
  // `response`; with no agent registered at all, they wait the grace instead.
  void MarkUnsatisfiable(RunEntry& run, v1::SubmitRunResponse* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A logged event as a watcher gets it: with its case's result unless
  // without_results (a gate watches without them).
  static v1::RunEvent Unlogged(const RunEntry& run, const LoggedEvent& logged, bool without_results);
  // Logs and counts a failed store write.
  void LogIfError(const absl::Status& status, const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // LogIfError, and the error an RPC answers so that its caller retries.
  absl::Status StoreFailed(const absl::Status& status, const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* store_;
  const TimeSource* clock_;
  SchedulerListener* listener_ = nullptr;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable changed_;    // runs' events and registrations; Work streams wait on their session's
  std::condition_variable run_ended_;  // a run ended, or shutdown (WaitRunEnd)
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_stream_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_run_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);           // by session id
  std::map<std::string, std::string> agent_session_ ABSL_GUARDED_BY(mu_);  // agent id -> session id
  // Of the runs in memory. Hashed: a sweep that evicts a run looks up each of
  // its leases, under mu_; in ordered maps of 24,000 leases (12 runs of 2,000
  // cases) that took 11 ms at p90, up to 30 ms.
  using LeaseMap = std::unordered_map<std::string, LeaseRecord>;
  LeaseMap leases_ ABSL_GUARDED_BY(mu_);
  // The leases of leases_ that are active: what a sweep checks for expiry.
  // Runs in memory hold ten times as many ended ones (24,000 with 12 runs of
  // 2,000 cases), and walking them all took milliseconds under mu_.
  std::unordered_set<LeaseRecord*> active_leases_ ABSL_GUARDED_BY(mu_);
  // The first answer to a completion, repeated to that session only.
  struct Completion {
    v1::CompleteLeaseResponse::Disposition disposition;
    std::vector<std::string> next_lease_ids;  // granted in the reply, if any
  };
  // By (lease, session).
  using CompletionKey = std::pair<std::string, std::string>;
  using CompletionMap = std::unordered_map<CompletionKey, Completion, absl::Hash<CompletionKey>>;
  CompletionMap completed_ ABSL_GUARDED_BY(mu_);
  // Of completed_, those whose run left memory (EvictFinishedRuns): at most
  // one per lease still active, since a lease is granted in one reply.
  std::vector<CompletionKey> kept_completions_ ABSL_GUARDED_BY(mu_);
  struct EvictedRuns {
    std::vector<std::map<std::string, RunEntry>::node_type> runs;
    std::vector<LeaseMap::node_type> leases;
    std::vector<CompletionMap::node_type> completions;
    bool empty() const { return runs.empty() && leases.empty() && completions.empty(); }
  };
  std::map<std::string, RunEntry> runs_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, RunEntry*> run_by_seq_ ABSL_GUARDED_BY(mu_);
  // By serialized requirements.
  std::map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> finished_order_ ABSL_GUARDED_BY(mu_);
  SchedulerStats stats_ ABSL_GUARDED_BY(mu_);
  // A history read keeps to this share of a core while leases are granted
  // (ActivityPacer): unpaced, a call of 4,000 keys cost the agents a quarter
  // of their lease rate on 2 cores. It runs on the calling thread, at the
  // serving priority, not on a thread below it: every read takes locks the
  // lease path takes too (a malloc arena's; SQLite's mutex over the database
  // file's locks, held across an fcntl), and on a thread at nice 19 it was
  // preempted holding them (traced), in runs with 120 and 322 ms in which
  // no case started or no lease was granted (256 load sessions, 64 agents).
  // At this priority it gets its share, and the unpaced rest of a call (the
  // reply's copy and encoding, the client's decoding) comes on top: at a
  // twentieth of a core, case starts inside 4,000-key calls fell to 0.89 of
  // the rate outside; at a fortieth they read 0.95-0.98, and such a call
  // takes 0.7-1.2 s (1.3-4.6 s at nice 19 beside it).
  static constexpr double kHistoryCpuShare = 0.025;
  // Leases granted, read without mu_ by a history read to tell whether it runs beside lease work.
  std::atomic<uint64_t> grants_{0};
  std::atomic<int64_t> last_trim_ms_{0};  // when ReleaseEvicted last trimmed
  // Frees evicted runs below the agents' priority: a run of 1,000 cases took
  // 5-7 ms of CPU to free, and at their priority that came out of a moment
  // in which no case started anywhere. Each free holds a malloc arena's lock
  // for a moment only; with two arenas no cost to the lease path showed.
  // (Whole-run protobuf arenas instead of frees cost 15-18% CPU per lease.)
  BackgroundQueue releaser_{"releaser", BackgroundQueue::Priority::kStarting};
  // Submitted suites are prepared one at a time, below the agents' priority
  // (Submit): reading a suite's durations and copying its cases took 5 ms
  // of CPU for 2,000 of them (3.4 and 1.8 ms), and a dozen submitted at
  // once, each on its own gRPC thread at the raised priority, held both
  // cores for tens of milliseconds in which the agents started almost
  // nothing.
  std::mutex prepare_mu_;
  // Group commit (AwaitGroup): completions between their start and their
  // reply; the newest group with a leader and how many completions joined it.
  static constexpr int kMaxGroup = 16;
  // A leader waits this long at most. While completions keep arriving, one
  // is always on its way, and an unbounded wait lasted until kMaxGroup had
  // joined: on 2 saturated cores, 30-170 ms for some replies (a commit costs
  // well under a millisecond; with this bound, at most 55-68 ms, and those
  // from threads waiting for a core).
  static constexpr std::chrono::milliseconds kMaxLeaderWait{1};
  std::atomic<int> completing_{0};
  std::mutex completing_mu_;
  uint64_t led_group_ ABSL_GUARDED_BY(completing_mu_) = 0;
  int joined_ ABSL_GUARDED_BY(completing_mu_) = 0;
  std::condition_variable leader_cv_;
  // Followers wait on flushes_ (a count of leaders' flushes) until
  // committed_group_ reaches theirs, or a flush failed.
  std::atomic<uint64_t> committed_group_{0};
  std::atomic<bool> flush_failed_{false};
  std::atomic<uint32_t> flushes_{0};
};

}  // namespace perfgate
