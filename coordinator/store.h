// The coordinator's system of record. One interface; SQLite is the embedded
// default. Every scheduler transition is written through before it is
// acknowledged, so a coordinator killed at any point restarts from here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/wal_syncer.h"
#include "google/protobuf/arena.h"
#include "perfgate/v1/agent.pb.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

enum class LeaseState { kActive = 1, kCompleted = 2, kLost = 3, kCancelled = 4, kReleased = 5 };

struct LeaseRecord {
  std::string lease_id;
  std::string run_id;
  int case_index = 0;
  uint32_t attempt = 0;
  std::string agent_id;
  std::string session_id;
  std::string pool;  // the agent's testbed
  LeaseState state = LeaseState::kActive;
  int64_t granted_at_ms = 0;
  int64_t expires_at_ms = 0;
};

struct SessionRecord {
  std::string session_id;
  std::string agent_id;
  std::string pool;
  std::vector<std::string> labels;
  v1::HostFingerprint host;
  int64_t last_seen_ms = 0;
};

// How a received result was taken.
enum class ResultDisposition { kCounted = 1, kStale = 2 };

// A lease as the store holds it, and how its result was taken, if one came.
struct StoredLease {
  LeaseRecord lease;
  std::optional<ResultDisposition> result;
};

// What a restarted coordinator needs: runs not yet final (with their cases),
// their active leases, and the live agent sessions.
struct RecoveredState {
  std::vector<v1::Run> runs;      // cases carry their counted results
  std::vector<v1::Suite> suites;  // parallel to runs: the specs
  std::vector<LeaseRecord> active_leases;
  std::vector<SessionRecord> sessions;
};

// The newest counted result of a case on one testbed (LatestResults).
struct LatestResult {
  std::string suite;
  std::string pool;
  v1::CaseResult result;  // with its samples
  std::string case_name;  // the run's, whatever name the agent put in `result`
  // Metric -> unit, as the newest stored run of the suite on the branch declares them (`metrics:`).
  std::map<std::string, std::string> declared_units;
};

// Pools a store keeps (each named by some agent's Register).
inline constexpr int64_t kMaxKnownPools = 1'000;

class Store {
 public:
  virtual ~Store() = default;

  // The writes this thread makes from BeginBatch to CommitBatch are stored
  // (as CommitDurability says) all or none, in one commit (with any open
  // group's batches). Other threads' writes wait until the batch ends. CommitBatch fails (and undoes
  // the batch) if any write in it failed. REQUIRES: batches do not nest.
  virtual absl::Status BeginBatch() = 0;
  virtual absl::Status CommitBatch() = 0;
  virtual void AbortBatch() = 0;

  // Group commit. CommitBatchLater ends the batch like CommitBatch (a
  // failed write undoes this batch alone) but leaves it in an open group
  // transaction that later batches join, and returns the group's number. The
  // group is stored at Flush(group), at any CommitBatch, or before any
  // write outside a batch, whichever comes first. Nothing that depends on the
  // batch may be acknowledged before Flush(group) returns OK.
  // If a group that holds deferred batches fails to commit, the store takes
  // no more writes (every write returns that error, Lost() says so): the
  // caller's state is then ahead of the database, and only a restart, which
  // reads the database again, makes them agree.
  virtual absl::StatusOr<uint64_t> CommitBatchLater() = 0;
  // Flush(0) stores nothing new: it returns once every group committed so
  // far is on disk (with CommitDurability::kPowerLoss; at once otherwise).
  virtual absl::Status Flush(uint64_t group) = 0;
  // The open group's number, 0 when none is open.
  virtual uint64_t OpenGroup() = 0;
  virtual absl::Status Lost() = 0;
  // With CommitDurability::kPowerLoss, a write outside a batch returns once
  // it is on disk. While the calling thread defers syncs, it returns once
  // committed: for writes made under a lock that every other caller waits
  // for (a sync there held every agent for as long as the disk took). The
  // caller calls Flush(0) after letting its lock go, before it
  // acknowledges anything those writes hold.
  virtual void DeferSyncsOnThisThread(bool defer) = 0;

  virtual absl::Status InsertRun(const v1::Run& run, const v1::Suite& suite) = 0;
  // A final state also has the run's history medians written, in the
  // background (see History).
  virtual absl::Status UpdateRunState(const std::string& run_id, v1::RunState state, int64_t finished_at_ms) = 0;
  // "passed" or "failed", as the gate judged it; a run keeps its first.
  // Returns whether this call recorded it (false: the run had one already).
  virtual absl::StatusOr<bool> SetRunVerdict(const std::string& run_id, const std::string& verdict) = 0;
  // Writes the case's state, attempts, error and agent (not its result).
  virtual absl::Status UpdateCase(const std::string& run_id, int case_index, const v1::CaseStatus& status) = 0;

  virtual absl::Status InsertLease(const LeaseRecord& lease) = 0;
  // Any lease ever granted, by id, with how its result was taken; nullopt if
  // the store never saw it. For results that arrive after their run left memory.
  virtual absl::StatusOr<std::optional<StoredLease>> LoadLease(const std::string& lease_id) = 0;
  virtual absl::Status UpdateLease(const std::string& lease_id, LeaseState state, int64_t expires_at_ms) = 0;

  // Keeps a result and its raw samples. Counted results are what the run
  // reports; stale ones are kept for the record only. A counted result also
  // gives its case's duration on the pool (received_at_ms less the lease's
  // grant), written with the run's history medians when the run ends. A lease takes one
  // result: a second fails. It reads back byte for byte as it came, though
  // what the store already holds (the host, the lease's names) is kept once.
  // The lease's row takes the record's state too: a counted result's lease
  // comes with its end (kCompleted), one write for both.
  virtual absl::Status InsertResult(const LeaseRecord& lease, ResultDisposition disposition,
                                    const v1::CaseResult& result, int64_t received_at_ms) = 0;

  // The longest recorded duration of each case of the suite over all pools,
  // by case name: of each pool, how long the case's newest counted lease
  // took (InsertResult): the agent's busy time (CaseResult.busy_us), at most
  // the lease's span, from runs that ended before the call.
  virtual absl::StatusOr<std::map<std::string, int64_t>> CaseDurations(const std::string& suite_name) = 0;

  // Records the session and its pool among the known pools. A pool that
  // would be known pool number kMaxKnownPools + 1 is refused with
  // FAILED_PRECONDITION, and nothing is written: pools are kept for ever, and
  // every history reply lists them.
  virtual absl::Status UpsertSession(const SessionRecord& session) = 0;
  virtual absl::Status DeleteSession(const std::string& session_id) = 0;

  virtual absl::StatusOr<RecoveredState> Recover() = 0;
  // Per-run medians of counted samples for each key, on runs of
  // request.branch, newest first (see GateService.GetHistory). Only plain
  // samples and the head side of A/B runs: the base side measured other code.
  // Read from per-run summaries through a read-only connection: its cost
  // does not grow with the runs stored, and it never waits for writers.
  // A run is in it once it has ended (UpdateRunState to a final state): its
  // summary is written then, off the results' path, and History waits for
  // the summaries of runs that ended before the call.
  // The response is made on `arena`, so that the reading thread makes few
  // heap allocations (Scheduler::History says why that matters). `pace` is
  // called between keys and may sleep (the reader's share of a core).
  // REQUIRES: arena outlives the response.
  virtual absl::StatusOr<v1::HistoryResponse*> History(const v1::HistoryRequest& request,
                                                       google::protobuf::Arena* arena,
                                                       const std::function<void()>& pace) = 0;
  // Any run, final or not, with counted results; NotFound if unknown.
  virtual absl::StatusOr<v1::Run> LoadRun(const std::string& run_id) = 0;
  // The newest counted OK result of each case of each suite on each testbed,
  // on runs of `branch`: what /metrics shows again after a restart.
  virtual absl::StatusOr<std::vector<LatestResult>> LatestResults(const std::string& branch) = 0;
};

// Where a write is when the store returns from it (and a batch's commit).
enum class CommitDurability {
  // Committed to the operating system: it survives the coordinator's death
  // (tested with SIGKILL), not the machine's. The log reaches the disk at
  // each checkpoint.
  kProcessCrash,
  // Also on disk (WalSyncer): it survives a power cut or a kernel crash, and
  // each acknowledgement waits for the disk.
  kPowerLoss,
};

// Opens (creating and migrating as needed) the SQLite store at `path`. A
// write waits up to busy_timeout_ms for another connection's lock, then fails.
// With kPowerLoss, the log is synced with `sync_wal` (fdatasync when empty;
// tests count calls).
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, int busy_timeout_ms = 5'000,
    CommitDurability durability = CommitDurability::kProcessCrash, WalSyncer::SyncFile sync_wal = {});

// Store::DeferSyncsOnThisThread for a scope.
class SyncsDeferred {
 public:
  explicit SyncsDeferred(Store* store) : store_(store) { store_->DeferSyncsOnThisThread(true); }
  ~SyncsDeferred() { store_->DeferSyncsOnThisThread(false); }
  SyncsDeferred(const SyncsDeferred&) = delete;
  SyncsDeferred& operator=(const SyncsDeferred&) = delete;

 private:
  Store* store_;
};

}  // namespace perfgate
