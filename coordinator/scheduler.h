// The coordinator's state machine: agent sessions, the queue of case
// attempts, leases and their expiry, runs and their events.
//
// Thread-safe. Every transition is written to the Store before it is
// visible, so a restarted coordinator (Recover) continues where it stopped.
// Time comes from a TimeSource so expiry is tested with simulated time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "coordinator/scheduler_listener.h"
#include "coordinator/store.h"
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
  // Finished runs kept in memory for watchers; older ones are read from the store.
  size_t finished_runs_in_memory = 64;
  // Bounds on what one caller can make the coordinator hold and store.
  size_t max_cases_per_run = 10'000;
  size_t max_samples_per_result = 100'000;
};

// Counters for /metrics and tests.
struct SchedulerStats {
  uint64_t leases_granted = 0;
  uint64_t leases_lost = 0;
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
  size_t running_cases = 0;
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
  // stored: nothing changed, the agent retries.
  absl::StatusOr<v1::CompleteLeaseResponse> Complete(const v1::CompleteLeaseRequest& request);

  // --- gate side --------------------------------------------------------
  absl::StatusOr<v1::SubmitRunResponse> Submit(const v1::SubmitRunRequest& request);
  absl::StatusOr<v1::Run> GetRun(const std::string& run_id);
  absl::StatusOr<v1::RunState> Cancel(const std::string& run_id);
  // Records the gate's verdict on a finished run.
  absl::Status ReportVerdict(const v1::ReportVerdictRequest& request);
  // The run now, and the cursor of its event log at that moment.
  absl::StatusOr<v1::Run> Snapshot(const std::string& run_id, size_t* cursor);
  // Events after *cursor, waiting up to wait_ms for one; advances *cursor.
  absl::Status WaitRunEvents(const std::string& run_id, size_t* cursor, int64_t wait_ms,
                             std::vector<v1::RunEvent>* events);

  // History baseline data, straight from the store.
  absl::StatusOr<v1::HistoryResponse> History(const v1::HistoryRequest& request) { return store_->History(request); }

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
    std::string instance;  // the agent process's nonce; empty when unknown
    std::string lease_id;  // the one lease it holds, if any
    std::deque<v1::WorkItem> outbox;
    std::map<uint64_t, WorkStream> streams;  // open Work streams, by id
  };
  struct CaseEntry {
    v1::CaseSpec spec;
    v1::CaseStatus status;
    std::string lease_id;            // active lease
    int64_t unmatched_since_ms = 0;  // pending with no capable agent since
  };
  struct RunEntry {
    v1::Run meta;  // without cases
    std::vector<CaseEntry> cases;
    std::vector<v1::RunEvent> events;
    bool final = false;
  };

  Session* LiveSession(const std::string& session_id);  // REQUIRES: mu_ held
  // The id is held by another process that is still connected. REQUIRES: mu_ held.
  absl::Status CheckIdFree(const Session& holder, const v1::RegisterRequest& request);
  bool Matches(const Session& session, const v1::CaseSpec& spec) const;
  // Names, commands and sizes: what Submit refuses before taking the lock.
  absl::Status CheckSuite(const v1::Suite& suite) const;
  bool AnyCapable(const v1::CaseSpec& spec, std::string* why) const;
  std::optional<v1::WorkItem> GrantLease(Session& session);
  void EndLease(LeaseRecord& lease, LeaseState state);
  // EndLease, and tell the agent holding it (if live) to stop the case.
  void StopLease(LeaseRecord& lease, LeaseState state);
  // Both take ids by value: callers pass references into maps these erase from.
  void LoseLease(std::string lease_id, const std::string& why);
  void DropSession(std::string session_id, const std::string& why);
  void SetCase(RunEntry& run, int index, v1::CaseState state, const std::string& error);
  void MaybeFinish(RunEntry& run);
  v1::Run BuildRun(const RunEntry& run) const;
  void EvictFinishedRuns();
  // Logs and counts a failed store write. REQUIRES: mu_ held.
  void LogIfError(const absl::Status& status, const char* what);
  // LogIfError, and the error an RPC answers so that its caller retries. REQUIRES: mu_ held.
  absl::Status StoreFailed(const absl::Status& status, const char* what);

  Store* store_;
  const TimeSource* clock_;
  SchedulerListener* listener_ = nullptr;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool shutdown_ = false;
  uint64_t next_stream_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Session> sessions_;                                  // by session id
  std::map<std::string, std::string> agent_session_;                         // agent id -> session id
  std::map<std::string, LeaseRecord> leases_;                                // active and recently ended
  // (lease, session) -> the first answer, repeated to that session only.
  std::map<std::pair<std::string, std::string>, v1::CompleteLeaseResponse::Disposition> completed_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, RunEntry> runs_;
  std::deque<std::string> run_order_;  // submission order, for FIFO dispatch
  std::deque<std::string> finished_order_;
  SchedulerStats stats_;
};

}  // namespace perfgate
