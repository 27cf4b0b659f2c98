// Prepared statements of one SQLite connection: each SQL text prepared once
// and kept, and a use of one that is reset (its read lock released) when it ends.
#ifndef PERFGATE_COORDINATOR_SQLITE_STATEMENT_H_
#define PERFGATE_COORDINATOR_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coordinator/sqlite_compact.h"

namespace perfgate {

// A cache of prepared statements of one connection: each SQL text is
// prepared once, on first use, and kept (SQLITE_PREPARE_PERSISTENT).
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // REQUIRES: sql is a string literal (cached by its address). nullptr if it does not prepare.
  sqlite3_stmt* Get(const char* sql) {
    sqlite3_stmt*& stmt = cache_[sql];
    if (!stmt && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      stmt = nullptr;
    }
    return stmt;
  }
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// One use of a cached statement; reset (its read lock released) when it ends.
class Statement {
 public:
  Statement(StatementCache& cache, const char* sql) : stmt_(cache.Get(sql)) {}
  ~Statement() {
    if (!stmt_) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int i, const std::string& v) {
    if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Without a copy. REQUIRES: v stays valid and unchanged until this Statement ends.
  Statement& BindUnowned(int i, std::string_view v) {
    if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& BindBlob(int i, const std::string& v) {
    if (stmt_) sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int i, int64_t v) {
    if (stmt_) sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, const StoredId& id) { return id.is_blob ? BindBlob(i, id.bytes) : Bind(i, id.bytes); }
  Statement& BindNull(int i) {
    if (stmt_) sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Statement& Bind(int i, double v) {
    if (stmt_) sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code (SQLITE_ERROR if the SQL did not prepare).
  int Step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::string Blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  // An id CompactId stored with `prefix`.
  std::string Id(int col, std::string_view prefix) const {
    return ExpandId(prefix, Blob(col), sqlite3_column_type(stmt_, col) == SQLITE_BLOB);
  }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_;
};

// Opens a read transaction: its statements see one snapshot until COMMIT.
inline bool BeginRead(sqlite3* db) { return sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK; }

}  // namespace perfgate

#endif  // PERFGATE_COORDINATOR_SQLITE_STATEMENT_H_
