// The history a gate compares with: each key's newest run medians, read from
// the per-run summaries (run_medians) that a run's end writes, so a call costs
// the same at 10 stored runs and at 10,000.
#ifndef PERFGATE_COORDINATOR_SQLITE_HISTORY_H_
#define PERFGATE_COORDINATOR_SQLITE_HISTORY_H_

#include <sqlite3.h>

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/sqlite_statement.h"
#include "google/protobuf/arena.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

// The medians of request's keys, newest first, and the pools ever seen.
// Keys are bound unowned (the request outlives the statements) and the
// response is made on `arena`: a history of thousands of keys takes few heap
// allocations. Calls `pace` every few keys, between snapshots. `path` names
// the database in errors.
// REQUIRES: a read transaction is open on `db` (its own read-only connection,
// whose statements `statements` caches), and no other call uses `db` or
// `statements` until this returns (SqliteStore holds history_mu_). On success
// a read transaction is open again on return; on an error there may be none.
absl::StatusOr<v1::HistoryResponse*> ReadHistory(sqlite3* db, StatementCache& statements, const std::string& path,
                                                 const v1::HistoryRequest& request, google::protobuf::Arena* arena,
                                                 const std::function<void()>& pace);

}  // namespace perfgate

#endif  // PERFGATE_COORDINATOR_SQLITE_HISTORY_H_
