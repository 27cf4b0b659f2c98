#include "coordinator/sqlite_history.h"

#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

constexpr int kKeysBetweenPaces = 32;  // ~0.3 ms of reading

absl::Status ReadError(sqlite3* db, const std::string& path, const char* what) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", sqlite3_errmsg(db)));
}

}  // namespace

// A new snapshot after each pause: a paced call of thousands of keys takes
// seconds, and while a reader holds a snapshot the WAL cannot start over,
// so it grew past 100 MB under the agents' commits. One snapshot for all
// keys bought nothing: each key's medians are one statement, and a run
// that ends during the call has its medians written in several commits
// anyway (runs that ended before the call are all in it: SqliteStore::History
// waits for their summaries first).
absl::StatusOr<v1::HistoryResponse*> ReadHistory(sqlite3* db, StatementCache& statements, const std::string& path,
                                                 const v1::HistoryRequest& request, google::protobuf::Arena* arena,
                                                 const std::function<void()>& pace) {
  auto* response = google::protobuf::Arena::CreateMessage<v1::HistoryResponse>(arena);
  int64_t excluded = -1;
  {
    Statement q(statements, "SELECT seq FROM runs WHERE run_id = ?");
    q.Bind(1, request.exclude_run_id());
    if (q.Step() == SQLITE_ROW) excluded = q.Int(0);
  }
  int keys = 0;
  for (const auto& key : request.keys()) {
    if (++keys % kKeysBetweenPaces == 0) {
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
      pace();
      if (!BeginRead(db)) return ReadError(db, path, "history");
    }
    auto* series = response->add_series();
    *series->mutable_key() = key;
    // One statement per key (the series' id and its newest medians): half
    // the statement runs of looking the id up first.
    Statement q(statements,
                "SELECT m.run_seq, m.median FROM series s JOIN run_medians m ON m.series_id = s.series_id "
                "WHERE s.branch = ? AND s.pool = ? AND s.benchmark = ? AND s.metric = ? AND s.source = ? "
                "AND m.created_at_ms >= ? ORDER BY m.created_at_ms DESC, m.run_seq DESC LIMIT ?");
    q.BindUnowned(1, request.branch()).BindUnowned(2, key.pool()).BindUnowned(3, key.benchmark());
    q.BindUnowned(4, key.metric()).BindUnowned(5, key.source()).Bind(6, request.since_ms());
    // One more than asked for: the excluded run may be among them.
    q.Bind(7, request.max_runs() ? int64_t{request.max_runs()} + 1 : int64_t{-1});
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      if (q.Int(0) == excluded) continue;
      if (request.max_runs() && static_cast<uint32_t>(series->run_medians_size()) >= request.max_runs()) break;
      series->add_run_medians(q.Double(1));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return ReadError(db, path, "history query");
  }
  Statement pools(statements, "SELECT pool FROM pools ORDER BY pool");
  int rc;
  while ((rc = pools.Step()) == SQLITE_ROW) response->add_known_pools(pools.Text(0));
  if (rc != SQLITE_DONE) return ReadError(db, path, "known pools");
  return response;
}

}  // namespace perfgate
