// SQLite implementation of Store: WAL, versioned migrations, prepared
// statements, short transactions, portable SQL.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/background_queue.h"
#include "coordinator/cpu_pacer.h"
#include "coordinator/run_summary.h"
#include "coordinator/sqlite_compact.h"
#include "coordinator/sqlite_history.h"
#include "coordinator/sqlite_migrations.h"
#include "coordinator/sqlite_statement.h"
#include "coordinator/store.h"
#include "coordinator/wal_checkpointer.h"
#include "coordinator/wal_syncer.h"

namespace perfgate {

namespace {

// Each connection's page cache (SQLite's default is 2 MiB). A cache fills
// as the database grows, so it is memory that grows over the first runs.
// The writer's 1 MiB holds the pages grants and results write (few, and
// hot). The readers get 128 KiB: a history read scans each page once and
// the other reads are rare, so a larger cache held pages the OS caches
// anyway (bench/dispatch, 128 load agents: peak RSS +14% from the first run
// to the tenth with 1 MiB each, +8% with 64 KiB each). Pages not cached are
// read from the OS's cache.
constexpr char kCacheSize[] = "PRAGMA cache_size=-1024";
constexpr char kReaderCacheSize[] = "PRAGMA cache_size=-128";

// Checkpoint once the WAL holds 8,000 pages (32 MiB): pages written by many
// commits (the cases' and leases' hot pages) are copied back once, not each
// time. On a thread of its own (WalCheckpointer), never in a commit. The
// log starts over at 64 MiB, and is never let past 128 MiB; a log that
// starts over is cut back to 64 MiB on disk (journal_size_limit).
constexpr WalLimits kWalLimits{.checkpoint_pages = 8000, .restart_pages = 16000, .most_pages = 32000};
constexpr int64_t kPageBytes = 4096;  // SQLite's default, which the store keeps

constexpr std::string_view kLeasePrefix = "lease";
constexpr std::string_view kSessionPrefix = "session";

// Lease rows as LeaseFrom reads them, then whether the result counted (NULL:
// no result yet). The literal state (kActive) lets SQLite use the partial
// index of active leases.
static_assert(static_cast<int>(LeaseState::kActive) == 1);
constexpr char kSelectActiveLeases[] =
    "SELECT l.lease_id, r.run_id, l.case_index, l.attempt, l.agent_id, l.session_id, l.state, l.granted_at_ms, "
    "l.expires_at_ms, l.pool, l.counted FROM leases l JOIN runs r ON r.seq = l.run_seq WHERE l.state = 1";
constexpr char kSelectLeaseById[] =
    "SELECT l.lease_id, r.run_id, l.case_index, l.attempt, l.agent_id, l.session_id, l.state, l.granted_at_ms, "
    "l.expires_at_ms, l.pool, l.counted FROM leases l JOIN runs r ON r.seq = l.run_seq WHERE l.lease_id = ?";

LeaseRecord LeaseFrom(const Statement& row) {
  LeaseRecord l;
  l.lease_id = row.Id(0, kLeasePrefix);
  l.run_id = row.Text(1);
  l.case_index = static_cast<int>(row.Int(2));
  l.attempt = static_cast<uint32_t>(row.Int(3));
  l.agent_id = row.Text(4);
  l.session_id = row.Id(5, kSessionPrefix);
  l.state = static_cast<LeaseState>(row.Int(6));
  l.granted_at_ms = row.Int(7);
  l.expires_at_ms = row.Int(8);
  l.pool = row.Text(9);
  return l;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path)
      : db_(db), writes_(std::make_unique<StatementCache>(db)), path_(std::move(path)) {}
  ~SqliteStore() override {
    {
      std::lock_guard lock(mu_);
      CommitGroup().IgnoreError();  // a group nobody flushed: nothing acknowledged waits on it
    }
    summaries_.reset();     // a summary under way writes through the writer
    checkpointer_.reset();  // before the writer it hooks into
    // Statements first: a connection with statements left does not close.
    reads_.reset();
    history_reads_.reset();
    writes_.reset();
    sqlite3_close_v2(reader_);
    sqlite3_close_v2(history_reader_);
    sqlite3_close_v2(db_);
  }

  absl::Status Migrate() {
    // Checkpoints: see kWalLimits (a file store hands them to a
    // WalCheckpointer once migrated; this is the fallback until then).
    if (auto s = Exec(absl::StrCat("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                                   "PRAGMA wal_autocheckpoint=",
                                   kWalLimits.checkpoint_pages,
                                   "; PRAGMA journal_size_limit=", kWalLimits.restart_pages * kPageBytes, ";"));
        !s.ok()) {
      return s;
    }
    if (auto s = Exec(kCacheSize); !s.ok()) return s;
    if (auto s = Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); !s.ok()) return s;
    int64_t version = 0;
    {
      Statement q(*writes_, "SELECT version FROM schema_version");
      if (q.Step() == SQLITE_ROW)
        version = q.Int(0);
      else if (auto s = Exec("INSERT INTO schema_version VALUES (0)"); !s.ok())
        return s;
    }
    const auto migrations = SqliteMigrations();
    const int64_t latest = static_cast<int64_t>(migrations.size());
    if (version > latest) {
      return absl::FailedPreconditionError(absl::StrCat(path_, ": database schema version ", version,
                                                        " is newer than this perfgate knows (", latest,
                                                        "); use a newer perfgate or another --db file"));
    }
    for (; version < latest; ++version) {
      if (auto s = Exec(absl::StrCat("BEGIN; ", migrations[static_cast<size_t>(version)],
                                     "; UPDATE schema_version SET version = ", version + 1, "; COMMIT;"));
          !s.ok()) {
        Exec("ROLLBACK").IgnoreError();  // the migration's own error is the one to report
        return absl::InternalError(
            absl::StrCat(path_, ": migration to schema version ", version + 1, " failed: ", s.message()));
      }
    }
    return absl::OkStatus();
  }

  // The read-only connections finished runs (and durations, latest
  // results) and history are read through. REQUIRES: after Migrate.
  void SetReaders(sqlite3* reader, sqlite3* history_reader) {
    reader_ = reader;
    reads_ = std::make_unique<StatementCache>(reader);
    history_reader_ = history_reader;
    history_reads_ = std::make_unique<StatementCache>(history_reader);
  }
  void SetCheckpointer(std::unique_ptr<WalCheckpointer> checkpointer) { checkpointer_ = std::move(checkpointer); }
  void SetSyncer(std::unique_ptr<WalSyncer> syncer) { syncer_ = std::move(syncer); }

  // For the WAL checkpointer: `f` while no commit can begin, taking its turn
  // as background writes do (LockWrites), after the open group's commit.
  void UnderWriteLock(const std::function<void()>& f) {
    WriteLock lock(this, WriteTurn::kBackground);
    f();
  }

  // Starts the summaries thread, with the runs that ended before a previous
  // process summarized them. REQUIRES: after Migrate, before other calls.
  absl::Status StartSummaries() {
    // At the priority of the threads that serve agents: it writes under the store's write lock.
    summaries_ = std::make_unique<BackgroundQueue>("summaries");
    std::lock_guard lock(mu_);
    Statement q(*writes_, "SELECT run_seq FROM pending_summaries");
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      RunInfo run;
      run.seq = q.Int(0);
      PostSummary(std::move(run));
    }
    if (rc != SQLITE_DONE)
      return absl::InternalError(absl::StrCat(path_, ": pending summaries: ", sqlite3_errmsg(db_)));
    return absl::OkStatus();
  }

  absl::Status BeginBatch() override {
    lease_path_writes_.fetch_add(1, std::memory_order_relaxed);
    LockWrites(WriteTurn::kLeasePath);
    absl::Status begun = !lost_.ok() ? lost_ : group_ ? Savepoint() : Begin();
    if (!begun.ok()) {
      mu_.unlock();
      return begun;
    }
    batch_error_.clear();
    batch_owner_ = std::this_thread::get_id();
    return absl::OkStatus();
  }

  absl::Status CommitBatch() override {
    absl::Status status = EndBatch();
    if (status.ok()) status = CommitGroup();
    const uint64_t ticket = committed_ticket_;
    mu_.unlock();
    return status.ok() ? MakeDurable(ticket) : status;
  }

  absl::StatusOr<uint64_t> CommitBatchLater() override {
    absl::Status status = EndBatch();
    if (status.ok() && !group_) group_ = next_group_++;
    const uint64_t group = group_;
    mu_.unlock();
    if (!status.ok()) return status;
    return group;
  }

  absl::Status Flush(uint64_t group) override {
    if (group == 0 && !syncer_) return absl::OkStatus();  // committed is as durable as it gets
    absl::Status committed;
    uint64_t ticket;
    {
      LockWrites(WriteTurn::kLeasePath);
      std::lock_guard lock(mu_, std::adopt_lock);
      if (group > committed_) committed = group == group_ ? CommitGroup() : lost_;
      ticket = committed_ticket_;
    }
    // Committed by this call or an earlier one, whose sync may not cover it yet.
    return committed.ok() ? MakeDurable(ticket) : committed;
  }

  uint64_t OpenGroup() override {
    LockWrites(WriteTurn::kLeasePath);
    std::lock_guard lock(mu_, std::adopt_lock);
    return group_;
  }

  absl::Status Lost() override {
    LockWrites(WriteTurn::kLeasePath);
    std::lock_guard lock(mu_, std::adopt_lock);
    return lost_;
  }

  void AbortBatch() override {
    batch_owner_ = std::thread::id();
    UndoBatch();
    mu_.unlock();
  }

  // A large suite is written in commits of kCasesPerCommit cases, the write
  // mutex released between them, so that results and grants of other runs
  // are not held up for the whole suite (a 1,000-case submit took 17-100
  // ms, most of it with every agent waiting). The run row is written first in state
  // UNSPECIFIED, which nothing reads (Recover takes RUNNING runs only, and
  // removes such leftovers of a submit that died half way), and gets its
  // state in the commit of its last cases. Inside a batch: one commit.
  absl::Status InsertRun(const v1::Run& run, const v1::Suite& suite) override {
    return Durably([&]() -> absl::Status {
      const std::string suite_bytes = suite.SerializeAsString();
      if (InBatch()) return InsertRunAtOnce(run, suite_bytes);
      RunInfo info{run.suite_name(), run.branch(), run.created_at_ms(), 0, {}, {}, {}, {}, true};
      {
        WriteLock lock(this, WriteTurn::kBackground);
        if (!lock.ok()) return lock.status();
        if (auto s = Begin(); !s.ok()) return s;
        auto seq = InsertRunRow(run, suite_bytes, v1::RUN_STATE_UNSPECIFIED);
        if (!seq.ok()) return seq.status();
        info.seq = *seq;
        if (auto s = Commit(); !s.ok()) return s;
      }
      BackgroundPace pace(this);
      for (int first = 0;; first += kCasesPerCommit) {
        const int end = std::min(run.cases_size(), first + kCasesPerCommit);
        pace();
        WriteLock lock(this, WriteTurn::kBackground);
        if (!lock.ok()) return lock.status();
        if (auto s = Begin(); !s.ok()) return s;
        if (auto s = InsertCases(run, info.seq, first, end, &info.case_names); !s.ok()) return s;
        if (end == run.cases_size()) {
          Statement u(*writes_, "UPDATE runs SET state = ? WHERE seq = ?");
          u.Bind(1, static_cast<int64_t>(run.state())).Bind(2, info.seq);
          if (u.Step() != SQLITE_DONE) return Fail("set run state");
          if (auto s = Commit(); !s.ok()) return s;
          CacheRun(run.run_id(), std::move(info));
          return absl::OkStatus();
        }
        if (auto s = Commit(); !s.ok()) return s;
      }
    });
  }

  absl::Status UpdateRunState(const std::string& run_id, v1::RunState state, int64_t finished_at_ms) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      if (state == v1::RUN_STATE_RUNNING) return SetRunState(run_id, state, finished_at_ms);
      auto cached = RunInfoOf(run_id);
      if (!cached.ok()) return cached.status();
      // A final run takes no more leases or results: its entry goes to its summary.
      RunInfo run = std::move(**cached);
      runs_.erase(run_id);
      // Its end and the note that its medians and durations are due, in one
      // commit: a restart before they are written writes them (StartSummaries).
      if (auto s = BeginUnlessBatched(); !s.ok()) return s;
      if (auto s = SetRunState(run_id, state, finished_at_ms); !s.ok()) return s;
      Statement due(*writes_, "INSERT INTO pending_summaries (run_seq) VALUES (?) ON CONFLICT DO NOTHING");
      due.Bind(1, run.seq);
      if (auto s = Done(due, "note the run's summary"); !s.ok()) return s;
      if (auto s = CommitUnlessBatched(); !s.ok()) return s;
      PostSummary(std::move(run));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<bool> SetRunVerdict(const std::string& run_id, const std::string& verdict) override {
    return Durably([&]() -> absl::StatusOr<bool> {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      Statement u(*writes_, "UPDATE runs SET verdict = ? WHERE run_id = ? AND verdict = ''");
      u.Bind(1, verdict).Bind(2, run_id);
      if (auto s = Done(u, "set run verdict"); !s.ok()) return s;
      return sqlite3_changes(db_) == 1;
    });
  }

  absl::Status UpdateCase(const std::string& run_id, int case_index, const v1::CaseStatus& status) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      auto run = RunInfoOf(run_id);
      if (!run.ok()) return run.status();
      Statement u(
          *writes_,
          "UPDATE cases SET state = ?, attempts = ?, error = ?, agent_id = ? WHERE run_seq = ? AND case_index = ?");
      u.Bind(1, static_cast<int64_t>(status.state())).Bind(2, static_cast<int64_t>(status.attempts()));
      u.Bind(3, status.error())
          .Bind(4, status.agent_id())
          .Bind(5, (*run)->seq)
          .Bind(6, static_cast<int64_t>(case_index));
      return Done(u, "update case");
    });
  }

  absl::Status InsertLease(const LeaseRecord& l) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      auto run = RunInfoOf(l.run_id);
      if (!run.ok()) return run.status();
      Statement ins(*writes_,
                    "INSERT INTO leases (lease_id, run_seq, case_index, attempt, agent_id, session_id, pool, state, "
                    "granted_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      ins.Bind(1, CompactId(kLeasePrefix, l.lease_id)).Bind(2, (*run)->seq).Bind(3, static_cast<int64_t>(l.case_index));
      ins.Bind(4, static_cast<int64_t>(l.attempt)).Bind(5, l.agent_id).Bind(6, CompactId(kSessionPrefix, l.session_id));
      ins.Bind(7, l.pool).Bind(8, static_cast<int64_t>(l.state)).Bind(9, l.granted_at_ms).Bind(10, l.expires_at_ms);
      if (auto s = Done(ins, "insert lease"); !s.ok()) return s;
      if (lease_rows_.size() >= kMaxCachedIds) lease_rows_.clear();
      lease_rows_[l.lease_id] = sqlite3_last_insert_rowid(db_);
      return absl::OkStatus();
    });
  }

  absl::Status UpdateLease(const std::string& lease_id, LeaseState state, int64_t expires_at_ms) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      Statement u(*writes_, "UPDATE leases SET state = ?, expires_at_ms = ? WHERE lease_id = ?");
      u.Bind(1, static_cast<int64_t>(state)).Bind(2, expires_at_ms).Bind(3, CompactId(kLeasePrefix, lease_id));
      return Done(u, "update lease");
    });
  }

  absl::Status InsertResult(const LeaseRecord& lease, ResultDisposition disposition, const v1::CaseResult& result,
                            int64_t received_at_ms) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      if (auto s = BeginUnlessBatched(); !s.ok()) return s;
      auto run = RunInfoOf(lease.run_id);
      if (!run.ok()) return run.status();
      RunInfo& info = **run;
      const std::string_view case_name =
          lease.case_index >= 0 && static_cast<size_t>(lease.case_index) < info.case_names.size()
              ? std::string_view(info.case_names[static_cast<size_t>(lease.case_index)])
              : std::string_view();
      auto lease_key = MarkLeaseRow(lease, info.seq, disposition);
      if (!lease_key.ok()) return lease_key.status();
      // The samples' one copy is the result itself; history reads the per-run medians below.
      StrippedResult stripped = StripResult(result, {case_name, lease.agent_id, lease.pool});
      auto host = stripped.stripped & kStrippedHost ? HostId(stripped.host) : ImpliedHostId(lease.session_id);
      if (!host.ok()) return host.status();
      if (*host) stripped.stripped |= kStrippedHost;  // put back from the hosts table like one that came with it
      Statement ins(*writes_,
                    "INSERT INTO lease_results (lease_key, outcome, received_at_ms, result, stripped, host_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)");
      ins.Bind(1, *lease_key).Bind(2, static_cast<int64_t>(result.outcome())).Bind(3, received_at_ms);
      ins.BindBlob(4, stripped.result).Bind(5, stripped.stripped);
      if (*host) {
        ins.Bind(6, *host);
      } else {
        ins.BindNull(6);
      }
      if (ins.Step() != SQLITE_DONE) return Fail("insert result");
      if (disposition == ResultDisposition::kCounted) {
        KeepRunValues(lease, result, &info);
        info.durations.push_back(
            {lease.case_index, lease.pool, DurationMs(result, received_at_ms - lease.granted_at_ms)});
      }
      return CommitUnlessBatched();
    });
  }

  // Marks the lease's row with whether its result counts and with the
  // record's state, and returns the row's key; a lease takes one result. The row of a lease granted here is
  // known by its rowid; any other (granted before a restart, or lost by the
  // store, which inserts it) is found by id, through a statement whose
  // RETURNING costs a temporary table each time (a tenth of a result's
  // insert, in a profile). REQUIRES: mu_ held, inside a transaction.
  absl::StatusOr<int64_t> MarkLeaseRow(const LeaseRecord& lease, int64_t run_seq, ResultDisposition disposition) {
    const int64_t counted = disposition == ResultDisposition::kCounted ? 1 : 0;
    if (auto it = lease_rows_.find(lease.lease_id); it != lease_rows_.end()) {
      const int64_t rowid = it->second;
      lease_rows_.erase(it);
      Statement mark(*writes_, "UPDATE leases SET counted = ?, state = ? WHERE rowid = ? AND counted IS NULL");
      mark.Bind(1, counted).Bind(2, static_cast<int64_t>(lease.state)).Bind(3, rowid);
      if (mark.Step() != SQLITE_DONE) return Fail("insert result");
      if (sqlite3_changes(db_) == 1) return rowid;
      // Already has a result: the statement below says so.
    }
    Statement lease_row(*writes_,
                        "INSERT INTO leases (lease_id, run_seq, case_index, attempt, agent_id, session_id, pool, "
                        "state, granted_at_ms, expires_at_ms, counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (lease_id) DO UPDATE SET counted = excluded.counted, state = excluded.state "
                        "WHERE leases.counted IS NULL "
                        "RETURNING rowid");
    lease_row.Bind(1, CompactId(kLeasePrefix, lease.lease_id)).Bind(2, run_seq);
    lease_row.Bind(3, static_cast<int64_t>(lease.case_index)).Bind(4, static_cast<int64_t>(lease.attempt));
    lease_row.Bind(5, lease.agent_id).Bind(6, CompactId(kSessionPrefix, lease.session_id)).Bind(7, lease.pool);
    lease_row.Bind(8, static_cast<int64_t>(lease.state)).Bind(9, lease.granted_at_ms).Bind(10, lease.expires_at_ms);
    lease_row.Bind(11, counted);
    if (const int rc = lease_row.Step(); rc == SQLITE_DONE) {
      return FailWith(absl::StrCat(path_, ": insert result: lease ", lease.lease_id, " already has a result"));
    } else if (rc != SQLITE_ROW) {
      return Fail("insert result");
    }
    const int64_t lease_key = lease_row.Int(0);
    if (lease_row.Step() != SQLITE_DONE) return Fail("insert result");
    return lease_key;
  }

  absl::StatusOr<std::optional<StoredLease>> LoadLease(const std::string& lease_id) override {
    WriteLock lock(this);
    if (!lock.ok()) return lock.status();
    Statement q(*writes_, kSelectLeaseById);
    q.Bind(1, CompactId(kLeasePrefix, lease_id));
    const int rc = q.Step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) return Fail("load lease");
    StoredLease stored{LeaseFrom(q), std::nullopt};
    if (!q.IsNull(10)) stored.result = q.Int(10) ? ResultDisposition::kCounted : ResultDisposition::kStale;
    return stored;
  }

  absl::StatusOr<std::map<std::string, int64_t>> CaseDurations(const std::string& suite_name) override {
    summaries_->Drain();  // the durations of every run that ended before the call
    std::lock_guard lock(read_mu_);
    Statement q(*reads_,
                "SELECT case_name, MAX(duration_ms) FROM case_durations WHERE suite_name = ? GROUP BY case_name");
    q.Bind(1, suite_name);
    std::map<std::string, int64_t> out;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) out[q.Text(0)] = q.Int(1);
    if (rc != SQLITE_DONE) return ReadError("case durations");
    return out;
  }

  absl::Status UpsertSession(const SessionRecord& r) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      Statement u(
          *writes_,
          "INSERT INTO sessions (session_id, agent_id, pool, labels, host, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(session_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms");
      if (auto s = CheckRoomForPool(r.pool); !s.ok()) return s;
      u.Bind(1, r.session_id).Bind(2, r.agent_id).Bind(3, r.pool).Bind(4, absl::StrJoin(r.labels, ","));
      u.BindBlob(5, r.host.SerializeAsString()).Bind(6, r.last_seen_ms);
      if (auto s = Done(u, "upsert session"); !s.ok() || r.pool.empty()) return s;
      Statement p(*writes_, "INSERT INTO pools (pool) VALUES (?) ON CONFLICT (pool) DO NOTHING");
      p.Bind(1, r.pool);
      return Done(p, "record pool");
    });
  }

  // REQUIRES: the write lock is held.
  absl::Status CheckRoomForPool(const std::string& pool) {
    if (pool.empty()) return absl::OkStatus();
    Statement q(*writes_, "SELECT EXISTS (SELECT 1 FROM pools WHERE pool = ?), (SELECT COUNT(*) FROM pools)");
    q.Bind(1, pool);
    if (q.Step() != SQLITE_ROW) return Fail("count pools");
    if (q.Int(0) == 1 || q.Int(1) < kMaxKnownPools) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("this coordinator knows ", q.Int(1), " pools already, its most; register with one of them"));
  }

  absl::Status DeleteSession(const std::string& session_id) override {
    return Durably([&]() -> absl::Status {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      session_host_ids_.erase(session_id);
      Statement d(*writes_, "DELETE FROM sessions WHERE session_id = ?");
      d.Bind(1, session_id);
      return Done(d, "delete session");
    });
  }

  absl::StatusOr<RecoveredState> Recover() override {
    return Durably([&]() -> absl::StatusOr<RecoveredState> {
      WriteLock lock(this);
      if (!lock.ok()) return lock.status();
      // Runs whose submit stopped half way (InsertRun): nobody got their id.
      if (auto s = Exec("DELETE FROM cases WHERE run_seq IN (SELECT seq FROM runs WHERE state = 0); "
                        "DELETE FROM runs WHERE state = 0");
          !s.ok()) {
        return s;
      }
      RecoveredState state;
      Statement runs(*writes_, "SELECT run_id FROM runs WHERE state = ? ORDER BY created_at_ms");
      runs.Bind(1, static_cast<int64_t>(v1::RUN_STATE_RUNNING));
      std::vector<std::string> ids;
      while (runs.Step() == SQLITE_ROW) ids.push_back(runs.Text(0));
      for (const auto& id : ids) {
        v1::Suite suite;
        auto run = LoadRunFrom(*writes_, id, &suite);
        if (!run.ok()) return run.status();
        state.runs.push_back(*std::move(run));
        state.suites.push_back(std::move(suite));
      }
      Statement leases(*writes_, kSelectActiveLeases);
      while (leases.Step() == SQLITE_ROW) state.active_leases.push_back(LeaseFrom(leases));
      Statement sessions(*writes_, "SELECT session_id, agent_id, pool, labels, host, last_seen_ms FROM sessions");
      while (sessions.Step() == SQLITE_ROW) {
        SessionRecord r;
        r.session_id = sessions.Text(0);
        r.agent_id = sessions.Text(1);
        r.pool = sessions.Text(2);
        std::string labels = sessions.Text(3);
        if (!labels.empty()) r.labels = absl::StrSplit(labels, ',');
        r.host.ParseFromString(sessions.Blob(4));
        r.last_seen_ms = sessions.Int(5);
        state.sessions.push_back(std::move(r));
      }
      return state;
    });
  }

  absl::StatusOr<v1::HistoryResponse*> History(const v1::HistoryRequest& request, google::protobuf::Arena* arena,
                                               const std::function<void()>& pace) override {
    // Every run that ended before this call is in it.
    summaries_->Drain();
    std::lock_guard lock(history_mu_);
    if (!BeginRead(history_reader_)) return ReadError(history_reader_, "history");
    auto response = ReadHistory(history_reader_, *history_reads_, path_, request, arena, pace);
    sqlite3_exec(history_reader_, "COMMIT", nullptr, nullptr, nullptr);
    return response;
  }

  absl::StatusOr<std::vector<LatestResult>> LatestResults(const std::string& branch) override {
    std::lock_guard lock(read_mu_);
    Statement q(*reads_,
                "SELECT suite_name, pool, result, stripped, agent_id, name, host FROM ("
                "  SELECT r.suite_name AS suite_name, l.pool AS pool, res.result AS result, res.stripped AS stripped,"
                "    l.agent_id AS agent_id, c.name AS name, h.host AS host,"
                "    ROW_NUMBER() OVER (PARTITION BY r.suite_name, c.name, l.pool"
                "                       ORDER BY res.received_at_ms DESC, l.lease_id) AS newest"
                "  FROM leases l"
                "  JOIN lease_results res ON res.lease_key = l.rowid"
                "  JOIN runs r ON r.seq = l.run_seq"
                "  JOIN cases c ON c.run_seq = l.run_seq AND c.case_index = l.case_index"
                "  LEFT JOIN hosts h ON h.host_id = res.host_id"
                "  WHERE l.counted = 1 AND res.outcome = ? AND r.branch = ?"
                ") WHERE newest = 1 ORDER BY suite_name, pool");
    q.Bind(1, static_cast<int64_t>(v1::CaseResult::OUTCOME_OK)).Bind(2, branch);
    std::vector<LatestResult> latest;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      LatestResult r{q.Text(0), q.Text(1), {}, q.Text(5)};
      const std::string agent_id = q.Text(4), name = q.Text(5);
      if (!RestoreResult(q.Blob(2), q.Int(3), {name, agent_id, r.pool}, q.Blob(6), &r.result)) {
        return absl::DataLossError(absl::StrCat(path_, ": an unreadable result of suite ", r.suite));
      }
      latest.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return ReadError("latest results");
    std::map<std::string, std::map<std::string, std::string>> units;  // by suite
    for (auto& r : latest) {
      auto [it, added] = units.try_emplace(r.suite);
      if (added) it->second = DeclaredUnits(r.suite, branch);
      r.declared_units = it->second;
    }
    return latest;
  }

  absl::StatusOr<v1::Run> LoadRun(const std::string& run_id) override {
    std::lock_guard lock(read_mu_);
    if (!BeginRead(reader_)) return ReadError("load run");
    auto run = LoadRunFrom(*reads_, run_id, nullptr);
    sqlite3_exec(reader_, "COMMIT", nullptr, nullptr, nullptr);
    return run;
  }

 private:
  static constexpr int kCasesPerCommit = 128;

  // REQUIRES: this thread's batch is open.
  absl::Status InsertRunAtOnce(const v1::Run& run, const std::string& suite_bytes) {
    WriteLock lock(this);
    if (!lock.ok()) return lock.status();
    auto seq = InsertRunRow(run, suite_bytes, run.state());
    if (!seq.ok()) return seq.status();
    RunInfo info{run.suite_name(), run.branch(), run.created_at_ms(), *seq, {}, {}, {}, {}, true};
    if (auto s = InsertCases(run, info.seq, 0, run.cases_size(), &info.case_names); !s.ok()) return s;
    CacheRun(run.run_id(), std::move(info));
    return absl::OkStatus();
  }

  // REQUIRES: mu_ held, inside a transaction. The new row's seq.
  absl::StatusOr<int64_t> InsertRunRow(const v1::Run& run, const std::string& suite_bytes, v1::RunState state) {
    Statement ins(*writes_,
                  "INSERT INTO runs (run_id, suite_name, commit_sha, branch, state, created_at_ms, suite, seq) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT IFNULL(MAX(seq), 0) + 1 FROM runs)) RETURNING seq");
    ins.Bind(1, run.run_id()).Bind(2, run.suite_name()).Bind(3, run.commit()).Bind(4, run.branch());
    ins.Bind(5, static_cast<int64_t>(state)).Bind(6, run.created_at_ms()).BindBlob(7, suite_bytes);
    if (ins.Step() != SQLITE_ROW) return Fail("insert run");
    const int64_t seq = ins.Int(0);
    if (ins.Step() != SQLITE_DONE) return Fail("insert run");
    return seq;
  }

  // REQUIRES: mu_ held, inside a transaction. Cases [first, end) of the run.
  absl::Status InsertCases(const v1::Run& run, int64_t seq, int first, int end, std::vector<std::string>* names) {
    Statement c(*writes_,
                "INSERT INTO cases (run_seq, case_index, name, state, attempts, error) VALUES (?, ?, ?, ?, ?, ?)");
    for (int i = first; i < end; ++i) {
      const auto& cs = run.cases(i);
      c.Bind(1, seq).Bind(2, static_cast<int64_t>(i)).BindUnowned(3, cs.name());
      c.Bind(4, static_cast<int64_t>(cs.state())).Bind(5, static_cast<int64_t>(cs.attempts()));
      c.BindUnowned(6, cs.error());
      if (c.Step() != SQLITE_DONE) return Fail("insert case");
      c.Reset();
      names->push_back(cs.name());
    }
    return absl::OkStatus();
  }

  // Who goes first when several writers want mu_. A background writer (a
  // run's history summary, a submitted suite's cases: commits of a few
  // hundred rows, one after another) takes mu_ only once no lease-path
  // writer (a batch, a group commit, a run's end) is waiting for it, or
  // after kMaxBackgroundWaitMs. Without that, std::mutex let the writer that
  // had just released it take it again before the waiter it woke could
  // run: traced with 32 agents, a summary written in back-to-back commits
  // held every agent's results for 40 ms while a core stood idle.
  enum class WriteTurn { kLeasePath, kBackground };
  void LockWrites(WriteTurn turn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (turn == WriteTurn::kBackground) {
      std::unique_lock lock(turn_mu_);
      background_writers_waiting_.fetch_add(1);  // before the check: the lease path's notify sees it
      turn_cv_.wait_for(lock, std::chrono::milliseconds(kMaxBackgroundWaitMs),
                        [&] { return lease_writers_waiting_.load() == 0; });
      background_writers_waiting_.fetch_sub(1);
      lock.unlock();
      mu_.lock();
      return;
    }
    lease_writers_waiting_.fetch_add(1);
    mu_.lock();
    // Only while a background writer waits does the lease path take turn_mu_ to wake it.
    if (lease_writers_waiting_.fetch_sub(1) == 1 && background_writers_waiting_.load() > 0) {
      std::lock_guard lock(turn_mu_);  // a background writer between its check and its wait is woken too
      turn_cv_.notify_all();
    }
  }

  // Background writers (a run's summaries, a submitted suite's cases) take
  // turns, one job at a time, and the one at work keeps to
  // kBackgroundCpuShare of a core while the lease path writes (CpuPacer): a
  // run's summaries took 15 ms of CPU at the coordinator's raised priority,
  // and twelve suites submitted at once, each stored on its own thread, took
  // both cores, while every agent waited for one. REQUIRES: constructed
  // before, and destroyed after, the job's WriteLocks; mu_ not held.
  class BackgroundPace {
   public:
    explicit BackgroundPace(SqliteStore* store)
        : turn_(store->background_mu_), pacer_(kBackgroundCpuShare, store->lease_path_writes_) {}
    ~BackgroundPace() { pacer_(); }  // the job's last piece counts before the next job's turn
    // Between two commits.
    void operator()() { pacer_(); }

   private:
    std::lock_guard<std::mutex> turn_;
    ActivityPacer pacer_;
  };

  // The store's write mutex, unless this thread's batch already holds it. A
  // write outside a batch commits the open group first, so that it is on
  // disk when it returns, as before groups. !ok(): the store is lost.
  class WriteLock {
   public:
    explicit WriteLock(SqliteStore* store, WriteTurn turn = WriteTurn::kLeasePath)
        : store_(store), owned_(store->batch_owner_.load() != std::this_thread::get_id()) {
      if (!owned_) return;
      if (turn == WriteTurn::kLeasePath) store_->lease_path_writes_.fetch_add(1, std::memory_order_relaxed);
      store_->LockWrites(turn);
      status_ = store_->CommitGroup();
    }
    ~WriteLock() {
      if (owned_) store_->mu_.unlock();
    }
    bool ok() const { return status_.ok(); }
    const absl::Status& status() const { return status_; }

   private:
    SqliteStore* store_;
    bool owned_;
    absl::Status status_;
  };

  // Runs `write` (which takes the write lock itself) and, with a syncer
  // (CommitDurability::kPowerLoss), returns what it returns once what it
  // committed is on disk (MakeDurable), so that a caller never acknowledges
  // a write a power cut could undo. The sync runs after the lock is let go,
  // so that it holds no writer up. Inside this thread's batch the batch's
  // commit syncs instead. Rows changed by other writers meanwhile only make
  // a sync that was not needed.
  template <typename Write>
  auto Durably(Write write) -> decltype(write()) {
    if (!syncer_ || InBatch() || defer_syncs_) return write();
    const int64_t changes = sqlite3_total_changes64(db_);
    auto result = write();
    if (result.ok() && sqlite3_total_changes64(db_) != changes) {
      if (absl::Status synced = MakeDurable(); !synced.ok()) return synced;
    }
    return result;
  }

  bool InBatch() const { return batch_owner_.load() == std::this_thread::get_id(); }
  void DeferSyncsOnThisThread(bool defer) override { defer_syncs_ = defer; }

  // Returns once the commits `ticket` stands for (committed_ticket_ as a
  // commit left it; 0: every commit so far) are on disk. A failed sync stops
  // the store's writes, as a failed group commit does: what it acknowledged
  // may be gone. REQUIRES: mu_ not held.
  absl::Status MakeDurable(uint64_t ticket = 0) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!syncer_) return absl::OkStatus();  // CommitDurability::kProcessCrash, or an in-memory store
    absl::Status synced = ticket ? syncer_->Sync(ticket) : syncer_->Sync();
    if (synced.ok()) return synced;
    LockWrites(WriteTurn::kLeasePath);
    std::lock_guard lock(mu_, std::adopt_lock);
    if (lost_.ok())
      lost_ = absl::UnavailableError(absl::StrCat(synced.message(),
                                                  "; the store takes no more writes: "
                                                  "restart the coordinator once the disk is sound"));
    return lost_;
  }

  // What writes need of a run that takes leases: its row's key, and what
  // history and stripped results are keyed by.
  // How long a counted lease took, by its case's index, on its pool.
  struct CaseDuration {
    int case_index = 0;
    std::string pool;
    int64_t duration_ms = 0;
  };
  struct RunInfo {
    std::string suite_name;
    std::string branch;
    int64_t created_at_ms = 0;
    int64_t seq = 0;
    std::vector<std::string> case_names;  // by case index
    // Each counted result's median per series (KeepRunValues) and its
    // duration, until the run ends: all of them only if the run was cached
    // from its insert on (`complete`). Otherwise (a restart, a dropped cache)
    // its summary reads them back from its results (ReadRunValues).
    std::vector<std::pair<int64_t, double>> values;
    std::vector<std::pair<std::string, double>> new_series_values;  // by SeriesKey
    std::vector<CaseDuration> durations;  // of its counted leases, in the order their results came
    bool complete = false;
  };

  // REQUIRES: mu_ held.
  absl::Status SetRunState(const std::string& run_id, v1::RunState state, int64_t finished_at_ms) {
    Statement u(*writes_, "UPDATE runs SET state = ?, finished_at_ms = ? WHERE run_id = ?");
    u.Bind(1, static_cast<int64_t>(state)).Bind(2, finished_at_ms).Bind(3, run_id);
    return Done(u, "update run");
  }

  // Queues the summary of an ended run (SummarizeRun); once it is written,
  // History and CaseDurations read it.
  void PostSummary(RunInfo run) {
    summaries_->Post([this, run = std::move(run)]() mutable { SummarizeRun(std::move(run)); });
  }

  // REQUIRES: mu_ held. Running runs are cached from InsertRun until they
  // end; others are read once. The pointer lives until mu_ is released.
  absl::StatusOr<RunInfo*> RunInfoOf(const std::string& run_id) {
    if (auto it = runs_.find(run_id); it != runs_.end()) return &it->second;
    Statement q(*writes_, "SELECT suite_name, branch, created_at_ms, seq FROM runs WHERE run_id = ?");
    q.Bind(1, run_id);
    if (const int rc = q.Step(); rc == SQLITE_DONE) {
      return FailWith(absl::StrCat(path_, ": no run '", run_id, "' is stored"));
    } else if (rc != SQLITE_ROW) {
      return Fail("run of a lease");
    }
    RunInfo info{q.Text(0), q.Text(1), q.Int(2), q.Int(3), {}, {}, {}, {}, false};
    ReadCaseNames(info.seq, &info.case_names);
    return CacheRun(run_id, std::move(info));
  }

  // REQUIRES: mu_ held. By case index.
  void ReadCaseNames(int64_t run_seq, std::vector<std::string>* names) {
    Statement c(*writes_, "SELECT name FROM cases WHERE run_seq = ? ORDER BY case_index");
    c.Bind(1, run_seq);
    while (c.Step() == SQLITE_ROW) names->push_back(c.Text(0));
  }

  // REQUIRES: mu_ held.
  RunInfo* CacheRun(const std::string& run_id, RunInfo info) {
    // Bounded: runs that never end (a coordinator gone before they did) must not take memory for ever.
    if (runs_.size() >= kMaxCachedRuns) runs_.clear();
    // At once, for an agent's 4 metrics a case: grown by doubling, the
    // blocks each run leaves behind fragment the heap (RSS grows over runs).
    if (info.complete) info.values.reserve(4 * info.case_names.size());
    return &(runs_[run_id] = std::move(info));
  }

  // A history series' key as series_ids_ holds it. NUL cannot occur in
  // SQLite text bound from these strings' ends, so it separates them.
  static std::string SeriesKey(const std::string& branch, const std::string& pool, const std::string& benchmark,
                               const std::string& metric, const std::string& source) {
    const absl::string_view sep("\0", 1);
    return absl::StrCat(branch, sep, pool, sep, benchmark, sep, metric, sep, source);
  }

  // REQUIRES: mu_ held. The id of a history series, created on first use.
  absl::StatusOr<int64_t> SeriesId(const std::string& key) {
    if (auto it = series_ids_.find(key); it != series_ids_.end()) return it->second;
    const std::vector<std::string> parts = absl::StrSplit(key, absl::string_view("\0", 1));
    if (parts.size() != 5) return FailWith(absl::StrCat(path_, ": a series key of ", parts.size(), " parts"));
    Statement ins(*writes_,
                  "INSERT INTO series (branch, pool, benchmark, metric, source) VALUES (?, ?, ?, ?, ?) "
                  "ON CONFLICT (branch, pool, benchmark, metric, source) DO NOTHING");
    for (int i = 0; i < 5; ++i) ins.Bind(i + 1, parts[static_cast<size_t>(i)]);
    if (ins.Step() != SQLITE_DONE) return Fail("insert series");
    int64_t id = sqlite3_last_insert_rowid(db_);
    if (sqlite3_changes(db_) != 1) {
      Statement q(*writes_,
                  "SELECT series_id FROM series WHERE branch = ? AND pool = ? AND benchmark = ? AND metric = ? AND "
                  "source = ?");
      for (int i = 0; i < 5; ++i) q.Bind(i + 1, parts[static_cast<size_t>(i)]);
      if (q.Step() != SQLITE_ROW) return Fail("find series");
      id = q.Int(0);
    }
    if (series_ids_.size() >= kMaxCachedIds) series_ids_.clear();
    series_ids_.emplace(key, id);
    return id;
  }

  // REQUIRES: mu_ held. The host a result with none ran on: the one its
  // session registered with (RegisterResponse.results_imply_host). 0: none
  // (the session named no host, or its row is gone).
  absl::StatusOr<int64_t> ImpliedHostId(const std::string& session_id) {
    if (auto it = session_host_ids_.find(session_id); it != session_host_ids_.end()) return it->second;
    Statement q(*writes_, "SELECT host FROM sessions WHERE session_id = ?");
    q.Bind(1, session_id);
    const int step = q.Step();
    if (step != SQLITE_ROW && step != SQLITE_DONE) return Fail("find session's host");
    const std::string host = step == SQLITE_ROW ? q.Blob(0) : std::string();
    auto id = host.empty() ? absl::StatusOr<int64_t>(0) : HostId(host);
    if (!id.ok()) return id.status();
    if (session_host_ids_.size() >= kMaxCachedHosts) session_host_ids_.clear();
    session_host_ids_.emplace(session_id, *id);
    return *id;
  }

  // REQUIRES: mu_ held. The id of a host fingerprint (serialised), kept once.
  absl::StatusOr<int64_t> HostId(const std::string& host) {
    if (auto it = host_ids_.find(host); it != host_ids_.end()) return it->second;
    Statement ins(*writes_, "INSERT INTO hosts (host) VALUES (?) ON CONFLICT (host) DO NOTHING");
    ins.BindBlob(1, host);
    if (ins.Step() != SQLITE_DONE) return Fail("insert host");
    int64_t id = sqlite3_last_insert_rowid(db_);
    if (sqlite3_changes(db_) != 1) {
      Statement q(*writes_, "SELECT host_id FROM hosts WHERE host = ?");
      q.BindBlob(1, host);
      if (q.Step() != SQLITE_ROW) return Fail("find host");
      id = q.Int(0);
    }
    if (host_ids_.size() >= kMaxCachedHosts) host_ids_.clear();
    host_ids_.emplace(host, id);
    return id;
  }

  // REQUIRES: mu_ held. The median of each series in the counted result,
  // kept with its run until the run ends (SummarizeRun): one number per
  // series whatever the samples, so a run's memory is bounded by its cases.
  // By series id when the series is known here, else by key, for the
  // summary to create (a first run's thousands of new series are not
  // written on the results' path).
  void KeepRunValues(const LeaseRecord& lease, const v1::CaseResult& result, RunInfo* run) {
    for (const auto& [key, values] : HistoryValues(result)) {
      const auto& [benchmark, metric, source] = key;
      std::string series = SeriesKey(run->branch, lease.pool, benchmark, metric, source);
      if (auto it = series_ids_.find(series); it != series_ids_.end()) {
        run->values.emplace_back(it->second, Median(values));
      } else {
        run->new_series_values.emplace_back(std::move(series), Median(values));
      }
    }
  }

  // On the summaries thread: an ended run's new series are created, its
  // cases' durations written, and each series gets the median of all the
  // run's values in run_medians; kSeriesPerSummary rows per commit, so that
  // the write mutex is never held long. A run it cannot finish stays in
  // pending_summaries for the next start.
  void SummarizeRun(RunInfo run) {
    absl::Status done = run.complete ? absl::OkStatus() : ReadRunValues(&run);
    BackgroundPace pace(this);
    if (done.ok()) done = NameNewSeries(&run, pace);
    if (done.ok()) done = ReadSharedSeries(&run);
    for (size_t first = 0; done.ok() && first < run.durations.size(); first += kSeriesPerSummary) {
      pace();
      WriteLock lock(this, WriteTurn::kBackground);
      done = lock.ok() ? WriteDurations(run, first, std::min(run.durations.size(), first + kSeriesPerSummary))
                       : lock.status();
    }
    std::vector<std::pair<int64_t, double>> medians =
        done.ok() ? Medians(std::move(run.values)) : std::vector<std::pair<int64_t, double>>();
    for (size_t first = 0; done.ok();) {
      const size_t end = std::min(medians.size(), first + kSeriesPerSummary);
      pace();
      WriteLock lock(this, WriteTurn::kBackground);
      done = lock.ok() ? WriteMedians(run, medians, first, end) : lock.status();
      if (end == medians.size()) break;
      first = end;
    }
    if (!done.ok()) {
      std::fprintf(stderr, "perfgate coordinator: the history medians of run %lld are left for the next start: %s\n",
                   static_cast<long long>(run.seq), std::string(done.message()).c_str());
    }
  }

  // The values kept by series key get their series' id, created where new,
  // kSeriesPerSummary keys per commit.
  absl::Status NameNewSeries(RunInfo* run, BackgroundPace& pace) {
    std::sort(run->new_series_values.begin(), run->new_series_values.end());
    const auto& by_key = run->new_series_values;
    for (size_t first = 0; first < by_key.size();) {
      pace();
      WriteLock lock(this, WriteTurn::kBackground);
      if (!lock.ok()) return lock.status();
      if (auto s = Begin(); !s.ok()) return s;
      for (size_t keys = 0; first < by_key.size() && keys < kSeriesPerSummary; ++keys) {
        auto id = SeriesId(by_key[first].first);
        if (!id.ok()) return id.status();
        for (const std::string& key = by_key[first].first; first < by_key.size() && by_key[first].first == key;
             ++first) {
          run->values.emplace_back(*id, by_key[first].second);
        }
      }
      if (auto s = Commit(); !s.ok()) return s;
    }
    run->new_series_values.clear();
    return absl::OkStatus();
  }

  // A series that several of the run's results reported (two cases with one
  // benchmark) has the median of all their values, not of their medians:
  // those values are read back from the results. REQUIRES: every value by
  // series id (NameNewSeries).
  absl::Status ReadSharedSeries(RunInfo* run) {
    std::sort(run->values.begin(), run->values.end());
    std::set<int64_t> shared;
    for (size_t i = 1; i < run->values.size(); ++i) {
      if (run->values[i].first == run->values[i - 1].first) shared.insert(run->values[i].first);
    }
    if (shared.empty()) return absl::OkStatus();
    std::erase_if(run->values, [&](const auto& v) { return shared.contains(v.first); });
    WriteLock lock(this);
    if (!lock.ok()) return lock.status();
    return ForEachCountedResult(run->seq, [&](const CountedResult& counted) -> absl::Status {
      for (const auto& [key, values] : HistoryValues(counted.result)) {
        const auto& [benchmark, metric, source] = key;
        auto id = SeriesId(SeriesKey(run->branch, counted.pool, benchmark, metric, source));
        if (!id.ok()) return id.status();
        if (!shared.contains(*id)) continue;
        for (double v : values) run->values.emplace_back(*id, v);
      }
      return absl::OkStatus();
    });
  }

  // A counted result of a run as read back for its summary.
  struct CountedResult {
    v1::CaseResult result;  // only its samples are whole: the host and ids are not put back
    std::string pool;
    int case_index = 0;
    int64_t duration_ms = 0;  // DurationMs
  };

  // REQUIRES: mu_ held. fn on each counted result of the run, oldest first,
  // until it fails.
  absl::Status ForEachCountedResult(int64_t run_seq, const std::function<absl::Status(const CountedResult&)>& fn) {
    Statement q(*writes_,
                "SELECT res.result, res.stripped, c.name, l.pool, l.case_index, res.received_at_ms - l.granted_at_ms "
                "FROM leases l "
                "JOIN lease_results res ON res.lease_key = l.rowid "
                "JOIN cases c ON c.run_seq = l.run_seq AND c.case_index = l.case_index "
                "WHERE l.run_seq = ? AND l.counted = 1 ORDER BY res.received_at_ms");
    q.Bind(1, run_seq);
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      CountedResult counted;
      if (!RestoreResult(q.Blob(0), q.Int(1), {q.Text(2), "", ""}, "", &counted.result)) {
        return Fail("unreadable result");
      }
      counted.pool = q.Text(3);
      counted.case_index = static_cast<int>(q.Int(4));
      counted.duration_ms = DurationMs(counted.result, q.Int(5));
      if (auto s = fn(counted); !s.ok()) return s;
    }
    if (rc != SQLITE_DONE) return Fail("results to summarize");
    return absl::OkStatus();
  }

  // Durations [first, end) in one commit, the newest of a case last.
  // REQUIRES: mu_ held, no transaction open.
  absl::Status WriteDurations(const RunInfo& run, size_t first, size_t end) {
    if (auto s = Begin(); !s.ok()) return s;
    for (size_t i = first; i < end; ++i) {
      const CaseDuration& d = run.durations[i];
      if (d.case_index < 0 || static_cast<size_t>(d.case_index) >= run.case_names.size()) continue;
      Statement u(*writes_,
                  "INSERT INTO case_durations (suite_name, case_name, pool, duration_ms) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (suite_name, case_name, pool) DO UPDATE SET duration_ms = excluded.duration_ms");
      u.Bind(1, run.suite_name).Bind(2, run.case_names[static_cast<size_t>(d.case_index)]).Bind(3, d.pool);
      u.Bind(4, d.duration_ms);
      if (u.Step() != SQLITE_DONE) return Fail("record case duration");
    }
    return Commit();
  }

  // Medians [first, end) in one commit; the last commit also takes the run
  // off pending_summaries. REQUIRES: mu_ held, no transaction open.
  absl::Status WriteMedians(const RunInfo& run, const std::vector<std::pair<int64_t, double>>& medians, size_t first,
                            size_t end) {
    if (auto s = Begin(); !s.ok()) return s;
    for (size_t i = first; i < end; ++i) {
      Statement ins(*writes_,
                    "INSERT INTO run_medians (series_id, created_at_ms, run_seq, median) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (series_id, created_at_ms, run_seq) DO UPDATE SET median = excluded.median");
      ins.Bind(1, medians[i].first).Bind(2, run.created_at_ms).Bind(3, run.seq).Bind(4, medians[i].second);
      if (ins.Step() != SQLITE_DONE) return Fail("insert run median");
    }
    if (end == medians.size()) {
      Statement done(*writes_, "DELETE FROM pending_summaries WHERE run_seq = ?");
      done.Bind(1, run.seq);
      if (done.Step() != SQLITE_DONE) return Fail("summary done");
    }
    return Commit();
  }

  // The run's time, its cases' durations and each of its counted results'
  // medians, read back from them (after a restart, or once its cached
  // values were dropped).
  absl::Status ReadRunValues(RunInfo* run) {
    WriteLock lock(this);
    if (!lock.ok()) return lock.status();
    Statement r(*writes_, "SELECT branch, created_at_ms, suite_name FROM runs WHERE seq = ?");
    r.Bind(1, run->seq);
    if (r.Step() != SQLITE_ROW) return Fail("run to summarize");
    // What a run cached since a restart kept is only part of it: start over.
    *run = RunInfo{r.Text(2), r.Text(0), r.Int(1), run->seq, {}, {}, {}, {}, false};
    ReadCaseNames(run->seq, &run->case_names);
    return ForEachCountedResult(run->seq, [&](const CountedResult& counted) {
      run->durations.push_back({counted.case_index, counted.pool, counted.duration_ms});
      for (const auto& [key, values] : HistoryValues(counted.result)) {
        const auto& [benchmark, metric, source] = key;
        run->new_series_values.emplace_back(SeriesKey(run->branch, counted.pool, benchmark, metric, source),
                                            Median(values));
      }
      return absl::OkStatus();
    });
  }

  // The units the newest stored run of `suite` on `branch` declares; none if it cannot be read.
  // REQUIRES: read_mu_ held.
  std::map<std::string, std::string> DeclaredUnits(const std::string& suite, const std::string& branch) {
    Statement q(*reads_, "SELECT suite FROM runs WHERE suite_name = ? AND branch = ? ORDER BY seq DESC LIMIT 1");
    q.Bind(1, suite).Bind(2, branch);
    std::map<std::string, std::string> units;
    v1::Suite parsed;
    if (q.Step() != SQLITE_ROW || !parsed.ParseFromString(q.Blob(0))) return units;
    for (const auto& [metric, d] : parsed.metrics()) {
      if (!d.unit().empty()) units[metric] = d.unit();
    }
    return units;
  }

  absl::StatusOr<v1::Run> LoadRunFrom(StatementCache& cache, const std::string& run_id, v1::Suite* suite_out) {
    Statement q(cache,
                "SELECT suite_name, commit_sha, branch, state, created_at_ms, finished_at_ms, suite, seq FROM runs "
                "WHERE run_id = ?");
    q.Bind(1, run_id);
    if (q.Step() != SQLITE_ROW) return absl::NotFoundError(absl::StrCat("no run '", run_id, "'"));
    v1::Run run;
    run.set_run_id(run_id);
    run.set_suite_name(q.Text(0));
    run.set_commit(q.Text(1));
    run.set_branch(q.Text(2));
    run.set_state(static_cast<v1::RunState>(q.Int(3)));
    run.set_created_at_ms(q.Int(4));
    run.set_finished_at_ms(q.Int(5));
    if (suite_out && !suite_out->ParseFromString(q.Blob(6))) {
      return absl::DataLossError(absl::StrCat(path_, ": run ", run_id, " has an unreadable suite"));
    }
    const int64_t seq = q.Int(7);
    Statement c(cache,
                "SELECT name, state, attempts, error, agent_id FROM cases WHERE run_seq = ? ORDER BY case_index");
    c.Bind(1, seq);
    while (c.Step() == SQLITE_ROW) {
      auto* cs = run.add_cases();
      cs->set_name(c.Text(0));
      cs->set_state(static_cast<v1::CaseState>(c.Int(1)));
      cs->set_attempts(static_cast<uint32_t>(c.Int(2)));
      cs->set_error(c.Text(3));
      cs->set_agent_id(c.Text(4));
    }
    // `counted = 1` as a literal: SQLite then uses the partial index of counted results.
    Statement r(cache,
                "SELECT l.case_index, res.result, res.stripped, l.agent_id, l.pool, h.host FROM leases l "
                "JOIN lease_results res ON res.lease_key = l.rowid LEFT JOIN hosts h ON h.host_id = res.host_id "
                "WHERE l.run_seq = ? AND l.counted = 1");
    r.Bind(1, seq);
    while (r.Step() == SQLITE_ROW) {
      const int index = static_cast<int>(r.Int(0));
      if (index < 0 || index >= run.cases_size()) {
        return absl::DataLossError(absl::StrCat(path_, ": run ", run_id, " has a result of no case"));
      }
      auto* cs = run.mutable_cases(index);
      const std::string agent_id = r.Text(3), pool = r.Text(4);
      if (!RestoreResult(r.Blob(1), r.Int(2), {cs->name(), agent_id, pool}, r.Blob(5), cs->mutable_result())) {
        return absl::DataLossError(absl::StrCat(path_, ": run ", run_id, " has an unreadable result"));
      }
    }
    return run;
  }

  absl::Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err ? err : "unknown error";
      sqlite3_free(err);
      return absl::InternalError(absl::StrCat(path_, ": ", message));
    }
    return absl::OkStatus();
  }
  // A failed write: inside a batch the whole batch is undone at CommitBatch;
  // alone, its transaction (if any) is rolled back now.
  absl::Status Fail(const char* what) { return FailWith(absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_))); }
  absl::Status FailWith(std::string message) {
    if (InBatch()) {
      if (batch_error_.empty()) batch_error_ = message;
    } else if (!sqlite3_get_autocommit(db_)) {
      RollbackQuietly();
    }
    return absl::InternalError(message);
  }
  absl::Status Done(Statement& s, const char* what) {
    if (s.Step() == SQLITE_DONE) return absl::OkStatus();
    return Fail(what);
  }
  absl::Status BeginUnlessBatched() { return InBatch() ? absl::OkStatus() : Begin(); }
  // BEGIN and COMMIT from the statement cache: two per lease, not parsed each time.
  absl::Status Begin() {
    Statement begin(*writes_, "BEGIN");
    if (begin.Step() != SQLITE_DONE) return absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_)));
    return absl::OkStatus();
  }
  absl::Status CommitUnlessBatched() { return InBatch() ? absl::OkStatus() : Commit(); }
  absl::Status Commit() {
    // A COMMIT that fails (locked, disk full) leaves the transaction open; end it so the next BEGIN works.
    Statement commit(*writes_, "COMMIT");
    if (commit.Step() != SQLITE_DONE) {
      absl::Status s = absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_)));
      commit.Reset();
      RollbackQuietly();
      return s;
    }
    if (syncer_) committed_ticket_ = syncer_->NoteWritten();
    return absl::OkStatus();
  }
  // Ends this thread's batch: a failed one is undone (alone, when it joined
  // a group). REQUIRES: mu_ held by this thread's batch.
  absl::Status EndBatch() {
    batch_owner_ = std::thread::id();
    if (batch_error_.empty()) return group_ ? ReleaseSavepoint() : absl::OkStatus();
    UndoBatch();
    // The batch's first failed write says why it failed.
    return absl::InternalError(batch_error_);
  }
  void UndoBatch() {
    if (!group_) {
      RollbackQuietly();
      return;
    }
    Statement undo(*writes_, "ROLLBACK TO batch");
    if (undo.Step() != SQLITE_DONE)
      return LoseGroup(absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_))));
    ForgetIds();
    ReleaseSavepoint().IgnoreError();  // a failed RELEASE has lost the group
  }
  absl::Status Savepoint() {
    Statement savepoint(*writes_, "SAVEPOINT batch");
    if (savepoint.Step() != SQLITE_DONE) return absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_)));
    return absl::OkStatus();
  }
  absl::Status ReleaseSavepoint() {
    Statement release(*writes_, "RELEASE batch");
    if (release.Step() == SQLITE_DONE) return absl::OkStatus();
    LoseGroup(absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_))));
    return lost_;
  }
  // Commits the open group's transaction, if any. REQUIRES: mu_ held.
  absl::Status CommitGroup() {
    if (!lost_.ok()) return lost_;
    // No group: a CommitBatch's own transaction, if any.
    if (!group_) return sqlite3_get_autocommit(db_) ? absl::OkStatus() : Commit();
    // SQLite rolls a transaction back by itself on some errors (disk full, I/O).
    absl::Status committed = sqlite3_get_autocommit(db_)
                                 ? absl::InternalError(absl::StrCat(path_, ": the open transaction was rolled back"))
                                 : Commit();
    if (!committed.ok()) {
      LoseGroup(committed);
      return lost_;
    }
    committed_ = group_;
    group_ = 0;
    return absl::OkStatus();
  }
  void LoseGroup(const absl::Status& why) {
    RollbackQuietly();
    group_ = 0;
    lost_ = absl::UnavailableError(
        absl::StrCat("the database lost a commit of results already applied (", why.message(),
                     "); the coordinator takes no more work until it is restarted, which reads the database again"));
    std::fprintf(stderr, "perfgate coordinator: %s\n", lost_.ToString().c_str());
  }
  void RollbackQuietly() {
    if (!sqlite3_get_autocommit(db_))
      Exec("ROLLBACK").IgnoreError();  // the failed statement's error is the one to report
    ForgetIds();
  }
  // Ids made in an undone transaction may be given again to other rows.
  void ForgetIds() {
    runs_.clear();
    lease_rows_.clear();
    series_ids_.clear();
    host_ids_.clear();
    session_host_ids_.clear();
  }
  absl::Status ReadError(const char* what) { return ReadError(reader_, what); }
  absl::Status ReadError(sqlite3* reader, const char* what) {
    return absl::InternalError(absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(reader)));
  }

  // Writes: one at a time, a batch holds it from BeginBatch to CommitBatch.
  std::mutex mu_;
  static constexpr int64_t kMaxBackgroundWaitMs = 5;   // see LockWrites
  static constexpr double kBackgroundCpuShare = 0.25;  // see BackgroundPace
  std::atomic<uint64_t> lease_path_writes_{0};         // batches and lease-path WriteLocks begun so far
  std::mutex background_mu_;  // one background job at a time (BackgroundPace); taken before mu_
  std::atomic<int> lease_writers_waiting_{0};
  std::atomic<int> background_writers_waiting_{0};
  std::mutex turn_mu_;
  std::condition_variable turn_cv_;  // notified when lease_writers_waiting_ drops to 0
  sqlite3* db_;
  std::unique_ptr<StatementCache> writes_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::thread::id> batch_owner_;
  // Keys writes need, so that a grant or a result is one statement per row
  // it writes, not a look-up each: bounded (cleared when full), dropped on
  // a rollback (their rows may be gone).
  static constexpr size_t kMaxCachedRuns = 1024;
  static constexpr size_t kMaxCachedIds = 1 << 16;
  static constexpr size_t kMaxCachedHosts = 1024;
  std::unordered_map<std::string, RunInfo> runs_ ABSL_GUARDED_BY(mu_);        // by run id
  std::unordered_map<std::string, int64_t> series_ids_ ABSL_GUARDED_BY(mu_);  // by NUL-joined key
  std::unordered_map<std::string, int64_t> host_ids_ ABSL_GUARDED_BY(mu_);    // by serialised fingerprint
  // Host ids by session id (ImpliedHostId); bounded like host_ids_.
  std::unordered_map<std::string, int64_t> session_host_ids_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, int64_t> lease_rows_ ABSL_GUARDED_BY(mu_);  // leases granted here, until their result
  std::string batch_error_ ABSL_GUARDED_BY(mu_);  // the batch's first failed write; empty: none
  // Group commit (CommitBatchLater): the open group's number (0: none),
  // the next one to open, the newest committed, and why writes stopped.
  uint64_t group_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_group_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  // The syncer's ticket of the newest commit of a batch or group (0: none yet).
  uint64_t committed_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status lost_ ABSL_GUARDED_BY(mu_);
  // Reads of finished runs, durations and latest results: a connection of
  // their own, never under mu_.
  std::mutex read_mu_;
  sqlite3* reader_ = nullptr;
  std::unique_ptr<StatementCache> reads_ ABSL_GUARDED_BY(read_mu_);
  // History reads: another, as a paced history call takes seconds on a busy
  // coordinator and a submit (durations) or a gate's GetRun must not wait for it.
  std::mutex history_mu_;
  sqlite3* history_reader_ = nullptr;
  std::unique_ptr<StatementCache> history_reads_ ABSL_GUARDED_BY(history_mu_);
  std::unique_ptr<WalCheckpointer> checkpointer_;
  std::unique_ptr<WalSyncer> syncer_;  // null unless CommitDurability::kPowerLoss
  // Whether this thread's writes outside a batch skip their sync (DeferSyncsOnThisThread).
  inline static thread_local bool defer_syncs_ = false;
  // Ended runs' history summaries, written off the lease path.
  static constexpr size_t kSeriesPerSummary = 256;  // per commit: about a millisecond
  std::unique_ptr<BackgroundQueue> summaries_;
  std::string path_;
};

}  // namespace

// SQLite's memory statistics (on by default) take one process-wide mutex on
// every allocation, and Debian's build has no lookaside, so every row and
// statement step allocates. The history reader, which ran at nice 19 then,
// was preempted while holding that mutex and stalled the writer, and every
// agent with it. Off, allocations go straight to malloc. Only possible before SQLite is
// first used; later (a second store in one process) it is already decided.
namespace {

absl::StatusOr<sqlite3*> OpenReader(const std::string& path, int busy_timeout_ms) {
  sqlite3* reader = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &reader, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(reader, busy_timeout_ms);
  if (rc == SQLITE_OK) rc = sqlite3_exec(reader, kReaderCacheSize, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = reader ? sqlite3_errmsg(reader) : sqlite3_errstr(rc);
    sqlite3_close_v2(reader);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open database for reading: ", message));
  }
  return reader;
}

void DisableSqliteMemoryStatistics() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}
}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, int busy_timeout_ms,
                                                       CommitDurability durability, WalSyncer::SyncFile sync_wal) {
  DisableSqliteMemoryStatistics();
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  // Before anything else: switching to WAL takes a lock another opener may hold for a moment.
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, busy_timeout_ms);
  if (rc == SQLITE_OK) rc = RegisterCompactFunctions(db);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open database: ", message));
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  if (auto s = store->Migrate(); !s.ok()) return s;
  // Finished runs and history are read through connections of their own:
  // under WAL each reads a snapshot while the writer goes on.
  auto reader = OpenReader(path, busy_timeout_ms);
  if (!reader.ok()) return reader.status();
  auto history_reader = OpenReader(path, busy_timeout_ms);
  if (!history_reader.ok()) {
    sqlite3_close_v2(*reader);
    return history_reader.status();
  }
  store->SetReaders(*reader, *history_reader);
  if (auto s = store->StartSummaries(); !s.ok()) return s;
  if (path != ":memory:" && durability == CommitDurability::kPowerLoss) {
    auto syncer = WalSyncer::Open(path + "-wal", std::move(sync_wal));
    if (!syncer.ok()) return syncer.status();
    store->SetSyncer(*std::move(syncer));
  }
  if (path != ":memory:") {
    auto checkpointer = WalCheckpointer::Start(db, path, kWalLimits,
                                               [store = store.get()](const auto& f) { store->UnderWriteLock(f); });
    if (!checkpointer.ok()) return checkpointer.status();
    store->SetCheckpointer(*std::move(checkpointer));
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace perfgate
