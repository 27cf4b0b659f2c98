// SQLite implementation of Store: WAL, versioned migrations, prepared
// statements, short transactions, portable SQL.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/store.h"

namespace perfgate {

const char* LeaseStateName(LeaseState state) {
  switch (state) {
    case LeaseState::kActive:
      return "active";
    case LeaseState::kCompleted:
      return "completed";
    case LeaseState::kLost:
      return "lost";
    case LeaseState::kCancelled:
      return "cancelled";
    case LeaseState::kReleased:
      return "released";
  }
  return "?";
}

namespace {

// Migration N brings the schema from version N to N+1. Append only.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE runs (
  run_id TEXT PRIMARY KEY,
  suite_name TEXT NOT NULL,
  commit_sha TEXT NOT NULL,
  branch TEXT NOT NULL,
  state INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL DEFAULT 0,
  suite BLOB NOT NULL
);
CREATE TABLE cases (
  run_id TEXT NOT NULL REFERENCES runs(run_id),
  case_index INTEGER NOT NULL,
  name TEXT NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  agent_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, case_index)
);
CREATE TABLE leases (
  lease_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  case_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  granted_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX leases_by_state ON leases(state);
CREATE TABLE results (
  lease_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  case_index INTEGER NOT NULL,
  counted INTEGER NOT NULL,
  outcome INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  result BLOB NOT NULL
);
CREATE INDEX results_by_case ON results(run_id, case_index);
CREATE TABLE samples (
  lease_id TEXT NOT NULL,
  sample_index INTEGER NOT NULL,
  benchmark TEXT NOT NULL,
  metric TEXT NOT NULL,
  value REAL NOT NULL,
  unit TEXT NOT NULL,
  source TEXT NOT NULL
);
CREATE INDEX samples_by_key ON samples(benchmark, metric);
CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  pool TEXT NOT NULL,
  labels TEXT NOT NULL,
  host BLOB NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
)sql",
    // 2: leases remember the agent's pool, so history is per testbed.
    R"sql(
ALTER TABLE leases ADD COLUMN pool TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_branch ON runs(branch, created_at_ms);
)sql",
    // 3: the gate's verdict on a run.
    R"sql(
ALTER TABLE runs ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
)sql",
    // 4: a sample's A/B variant ('' for a plain run), so history can leave out the base side.
    R"sql(
ALTER TABLE samples ADD COLUMN variant TEXT NOT NULL DEFAULT '';
)sql",
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool prepared() const { return rc_ == SQLITE_OK; }
  Statement& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  sqlite3_stmt* raw() const { return stmt_; }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::string Blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  absl::Status Migrate() {
    if (auto s = Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"); !s.ok()) {
      return s;
    }
    if (auto s = Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); !s.ok()) return s;
    int64_t version = 0;
    {
      Statement q(db_, "SELECT version FROM schema_version");
      if (q.Step() == SQLITE_ROW)
        version = q.Int(0);
      else if (auto s = Exec("INSERT INTO schema_version VALUES (0)"); !s.ok())
        return s;
    }
    const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
    if (version > latest) {
      return absl::FailedPreconditionError(absl::StrCat(path_, ": database schema version ", version,
                                                        " is newer than this perfgate knows (", latest,
                                                        "); use a newer perfgate or another --db file"));
    }
    for (; version < latest; ++version) {
      if (auto s = Exec(absl::StrCat("BEGIN; ", kMigrations[version],
                                     "; UPDATE schema_version SET version = ", version + 1, "; COMMIT;"));
          !s.ok()) {
        Exec("ROLLBACK").IgnoreError();  // the migration's own error is the one to report
        return absl::InternalError(
            absl::StrCat(path_, ": migration to schema version ", version + 1, " failed: ", s.message()));
      }
    }
    return absl::OkStatus();
  }

  absl::Status InsertRun(const v1::Run& run, const v1::Suite& suite) override {
    std::lock_guard lock(mu_);
    if (auto s = Exec("BEGIN"); !s.ok()) return s;
    Statement ins(db_,
                  "INSERT INTO runs (run_id, suite_name, commit_sha, branch, state, created_at_ms, suite) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)");
    ins.Bind(1, run.run_id()).Bind(2, run.suite_name()).Bind(3, run.commit()).Bind(4, run.branch());
    ins.Bind(5, static_cast<int64_t>(run.state())).Bind(6, run.created_at_ms()).BindBlob(7, suite.SerializeAsString());
    if (ins.Step() != SQLITE_DONE) return Rollback("insert run");
    Statement c(db_, "INSERT INTO cases (run_id, case_index, name, state, attempts, error) VALUES (?, ?, ?, ?, ?, ?)");
    for (int i = 0; i < run.cases_size(); ++i) {
      const auto& cs = run.cases(i);
      c.Bind(1, run.run_id()).Bind(2, static_cast<int64_t>(i)).Bind(3, cs.name());
      c.Bind(4, static_cast<int64_t>(cs.state())).Bind(5, static_cast<int64_t>(cs.attempts())).Bind(6, cs.error());
      if (c.Step() != SQLITE_DONE) return Rollback("insert case");
      c.Reset();
    }
    return Commit();
  }

  absl::Status UpdateRunState(const std::string& run_id, v1::RunState state, int64_t finished_at_ms) override {
    std::lock_guard lock(mu_);
    Statement u(db_, "UPDATE runs SET state = ?, finished_at_ms = ? WHERE run_id = ?");
    u.Bind(1, static_cast<int64_t>(state)).Bind(2, finished_at_ms).Bind(3, run_id);
    return Done(u, "update run");
  }

  absl::Status SetRunVerdict(const std::string& run_id, const std::string& verdict) override {
    std::lock_guard lock(mu_);
    Statement u(db_, "UPDATE runs SET verdict = ? WHERE run_id = ?");
    u.Bind(1, verdict).Bind(2, run_id);
    return Done(u, "set run verdict");
  }

  absl::Status UpdateCase(const std::string& run_id, int case_index, const v1::CaseStatus& status) override {
    std::lock_guard lock(mu_);
    Statement u(
        db_, "UPDATE cases SET state = ?, attempts = ?, error = ?, agent_id = ? WHERE run_id = ? AND case_index = ?");
    u.Bind(1, static_cast<int64_t>(status.state())).Bind(2, static_cast<int64_t>(status.attempts()));
    u.Bind(3, status.error()).Bind(4, status.agent_id()).Bind(5, run_id).Bind(6, static_cast<int64_t>(case_index));
    return Done(u, "update case");
  }

  absl::Status InsertLease(const LeaseRecord& l) override {
    std::lock_guard lock(mu_);
    Statement ins(db_,
                  "INSERT INTO leases (lease_id, run_id, case_index, attempt, agent_id, session_id, state, "
                  "granted_at_ms, expires_at_ms, pool) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.Bind(1, l.lease_id).Bind(2, l.run_id).Bind(3, static_cast<int64_t>(l.case_index));
    ins.Bind(4, static_cast<int64_t>(l.attempt)).Bind(5, l.agent_id).Bind(6, l.session_id);
    ins.Bind(7, static_cast<int64_t>(l.state)).Bind(8, l.granted_at_ms).Bind(9, l.expires_at_ms).Bind(10, l.pool);
    return Done(ins, "insert lease");
  }

  absl::Status UpdateLease(const std::string& lease_id, LeaseState state, int64_t expires_at_ms) override {
    std::lock_guard lock(mu_);
    Statement u(db_, "UPDATE leases SET state = ?, expires_at_ms = ? WHERE lease_id = ?");
    u.Bind(1, static_cast<int64_t>(state)).Bind(2, expires_at_ms).Bind(3, lease_id);
    return Done(u, "update lease");
  }

  absl::Status InsertResult(const LeaseRecord& lease, ResultDisposition disposition, const v1::CaseResult& result,
                            int64_t received_at_ms) override {
    std::lock_guard lock(mu_);
    if (auto s = Exec("BEGIN"); !s.ok()) return s;
    Statement ins(db_,
                  "INSERT INTO results (lease_id, run_id, case_index, counted, outcome, received_at_ms, result) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)");
    ins.Bind(1, lease.lease_id).Bind(2, lease.run_id).Bind(3, static_cast<int64_t>(lease.case_index));
    ins.Bind(4, static_cast<int64_t>(disposition == ResultDisposition::kCounted ? 1 : 0));
    ins.Bind(5, static_cast<int64_t>(result.outcome())).Bind(6, received_at_ms).BindBlob(7, result.SerializeAsString());
    if (ins.Step() != SQLITE_DONE) return Rollback("insert result");
    Statement s(db_,
                "INSERT INTO samples (lease_id, sample_index, benchmark, metric, value, unit, source, variant) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& sample : result.samples()) {
      for (const auto& v : sample.values()) {
        s.Bind(1, lease.lease_id).Bind(2, static_cast<int64_t>(sample.index())).Bind(3, v.benchmark());
        s.Bind(4, v.metric()).Bind(5, v.value()).Bind(6, v.unit()).Bind(7, v.source()).Bind(8, sample.variant());
        if (s.Step() != SQLITE_DONE) return Rollback("insert sample");
        s.Reset();
      }
    }
    return Commit();
  }

  absl::Status UpsertSession(const SessionRecord& r) override {
    std::lock_guard lock(mu_);
    Statement u(
        db_,
        "INSERT INTO sessions (session_id, agent_id, pool, labels, host, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(session_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms");
    u.Bind(1, r.session_id).Bind(2, r.agent_id).Bind(3, r.pool).Bind(4, absl::StrJoin(r.labels, ","));
    u.BindBlob(5, r.host.SerializeAsString()).Bind(6, r.last_seen_ms);
    return Done(u, "upsert session");
  }

  absl::Status DeleteSession(const std::string& session_id) override {
    std::lock_guard lock(mu_);
    Statement d(db_, "DELETE FROM sessions WHERE session_id = ?");
    d.Bind(1, session_id);
    return Done(d, "delete session");
  }

  absl::StatusOr<RecoveredState> Recover() override {
    std::lock_guard lock(mu_);
    RecoveredState state;
    Statement runs(db_, "SELECT run_id FROM runs WHERE state = ? ORDER BY created_at_ms");
    runs.Bind(1, static_cast<int64_t>(v1::RUN_STATE_RUNNING));
    std::vector<std::string> ids;
    while (runs.Step() == SQLITE_ROW) ids.push_back(runs.Text(0));
    for (const auto& id : ids) {
      v1::Suite suite;
      auto run = LoadRunLocked(id, &suite);
      if (!run.ok()) return run.status();
      state.runs.push_back(*std::move(run));
      state.suites.push_back(std::move(suite));
    }
    Statement leases(db_,
                     "SELECT lease_id, run_id, case_index, attempt, agent_id, session_id, state, granted_at_ms, "
                     "expires_at_ms, pool FROM leases WHERE state = ?");
    leases.Bind(1, static_cast<int64_t>(LeaseState::kActive));
    while (leases.Step() == SQLITE_ROW) {
      LeaseRecord l;
      l.lease_id = leases.Text(0);
      l.run_id = leases.Text(1);
      l.case_index = static_cast<int>(leases.Int(2));
      l.attempt = static_cast<uint32_t>(leases.Int(3));
      l.agent_id = leases.Text(4);
      l.session_id = leases.Text(5);
      l.state = static_cast<LeaseState>(leases.Int(6));
      l.granted_at_ms = leases.Int(7);
      l.expires_at_ms = leases.Int(8);
      l.pool = leases.Text(9);
      state.active_leases.push_back(std::move(l));
    }
    Statement sessions(db_, "SELECT session_id, agent_id, pool, labels, host, last_seen_ms FROM sessions");
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
  }

  absl::StatusOr<v1::HistoryResponse> History(const v1::HistoryRequest& request) override {
    std::lock_guard lock(mu_);
    v1::HistoryResponse response;
    Statement q(db_,
                "SELECT res.run_id, s.value FROM samples s "
                "JOIN results res ON res.lease_id = s.lease_id AND res.counted = 1 "
                "JOIN leases l ON l.lease_id = s.lease_id "
                "JOIN runs r ON r.run_id = res.run_id "
                "WHERE r.branch = ? AND r.created_at_ms >= ? AND r.run_id != ? AND l.pool = ? "
                "AND s.benchmark = ? AND s.metric = ? AND s.source = ? "
                // The code the branch holds: a plain run, or the head of an A/B run
                // (its base side measured some other code). Rows from before
                // migration 4 have no variant and count as plain.
                "AND s.variant IN ('', 'head') "
                "ORDER BY r.created_at_ms DESC, r.run_id");
    for (const auto& key : request.keys()) {
      q.Bind(1, request.branch()).Bind(2, request.since_ms()).Bind(3, request.exclude_run_id()).Bind(4, key.pool());
      q.Bind(5, key.benchmark()).Bind(6, key.metric()).Bind(7, key.source());
      auto* series = response.add_series();
      *series->mutable_key() = key;
      std::string current_run;
      std::vector<double> values;
      auto flush = [&] {
        if (values.empty()) return;
        std::sort(values.begin(), values.end());
        const size_t n = values.size();
        series->add_run_medians(n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2);
        values.clear();
      };
      int rc;
      while ((rc = q.Step()) == SQLITE_ROW) {
        std::string run = q.Text(0);
        if (run != current_run) {
          flush();
          if (request.max_runs() && static_cast<uint32_t>(series->run_medians_size()) >= request.max_runs()) break;
          current_run = run;
        }
        values.push_back(sqlite3_column_double(q.raw(), 1));
      }
      if (request.max_runs() == 0 || static_cast<uint32_t>(series->run_medians_size()) < request.max_runs()) flush();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return absl::InternalError(absl::StrCat(path_, ": history query: ", sqlite3_errmsg(db_)));
      }
      q.Reset();
    }
    if (auto s = AddKnownPools(&response); !s.ok()) return s;
    return response;
  }

  // REQUIRES: mu_ held. Sessions of agents now registered, and the pools of
  // every lease ever granted (a session ends, its leases stay).
  absl::Status AddKnownPools(v1::HistoryResponse* response) {
    Statement q(db_,
                "SELECT pool FROM sessions WHERE pool != '' UNION SELECT pool FROM leases WHERE pool != '' ORDER BY 1");
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) response->add_known_pools(q.Text(0));
    if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat(path_, ": known pools: ", sqlite3_errmsg(db_)));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<LatestResult>> LatestResults(const std::string& branch) override {
    std::lock_guard lock(mu_);
    Statement q(db_,
                "SELECT suite_name, pool, result FROM ("
                "  SELECT r.suite_name AS suite_name, l.pool AS pool, res.result AS result,"
                "    ROW_NUMBER() OVER (PARTITION BY r.suite_name, c.name, l.pool"
                "                       ORDER BY res.received_at_ms DESC, res.lease_id) AS newest"
                "  FROM results res"
                "  JOIN runs r ON r.run_id = res.run_id"
                "  JOIN cases c ON c.run_id = res.run_id AND c.case_index = res.case_index"
                "  JOIN leases l ON l.lease_id = res.lease_id"
                "  WHERE res.counted = 1 AND res.outcome = ? AND r.branch = ?"
                ") WHERE newest = 1 ORDER BY suite_name, pool");
    q.Bind(1, static_cast<int64_t>(v1::CaseResult::OUTCOME_OK)).Bind(2, branch);
    std::vector<LatestResult> latest;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      LatestResult r{q.Text(0), q.Text(1), {}};
      if (!r.result.ParseFromString(q.Blob(2))) {
        return absl::DataLossError(absl::StrCat(path_, ": an unreadable result of suite ", r.suite));
      }
      latest.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat(path_, ": latest results: ", sqlite3_errmsg(db_)));
    return latest;
  }

  absl::StatusOr<v1::Run> LoadRun(const std::string& run_id) override {
    std::lock_guard lock(mu_);
    return LoadRunLocked(run_id, nullptr);
  }

 private:
  absl::StatusOr<v1::Run> LoadRunLocked(const std::string& run_id, v1::Suite* suite_out) {
    Statement q(db_,
                "SELECT suite_name, commit_sha, branch, state, created_at_ms, finished_at_ms, suite FROM runs "
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
    Statement c(db_, "SELECT name, state, attempts, error, agent_id FROM cases WHERE run_id = ? ORDER BY case_index");
    c.Bind(1, run_id);
    while (c.Step() == SQLITE_ROW) {
      auto* cs = run.add_cases();
      cs->set_name(c.Text(0));
      cs->set_state(static_cast<v1::CaseState>(c.Int(1)));
      cs->set_attempts(static_cast<uint32_t>(c.Int(2)));
      cs->set_error(c.Text(3));
      cs->set_agent_id(c.Text(4));
    }
    Statement r(db_, "SELECT case_index, result FROM results WHERE run_id = ? AND counted = 1");
    r.Bind(1, run_id);
    while (r.Step() == SQLITE_ROW) {
      int index = static_cast<int>(r.Int(0));
      if (index < 0 || index >= run.cases_size() ||
          !run.mutable_cases(index)->mutable_result()->ParseFromString(r.Blob(1))) {
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
  absl::Status Done(Statement& s, const char* what) {
    if (s.Step() == SQLITE_DONE) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_)));
  }
  absl::Status Rollback(const char* what) {
    std::string message = sqlite3_errmsg(db_);
    Exec("ROLLBACK").IgnoreError();  // the statement's error is the one to report
    return absl::InternalError(absl::StrCat(path_, ": ", what, ": ", message));
  }
  absl::Status Commit() {
    // A COMMIT that fails (locked, disk full) leaves the transaction open; end it so the next BEGIN works.
    if (auto s = Exec("COMMIT"); !s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
    return absl::OkStatus();
  }

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  // Before anything else: switching to WAL takes a lock another opener may hold for a moment.
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, busy_timeout_ms);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open database: ", message));
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  if (auto s = store->Migrate(); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace perfgate
