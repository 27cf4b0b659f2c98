#include "coordinator/sqlite_compact.h"

#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace perfgate {

namespace {

constexpr size_t kIdBytes = 16;

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string_view TextArg(sqlite3_value* v) {
  const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
}

void ResultText(sqlite3_context* ctx, const std::string& s, bool blob) {
  if (blob) {
    sqlite3_result_blob(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  } else {
    sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
}

void CompactIdFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  StoredId id = CompactId(TextArg(argv[0]), TextArg(argv[1]));
  ResultText(ctx, id.bytes, id.is_blob);
}

// The stripped form of argv[0] given the context in argv[1..3]; nullopt (and
// the result left as it is) when it does not parse.
std::optional<StrippedResult> StripArgs(sqlite3_value** argv) {
  v1::CaseResult result;
  const std::string_view stored = TextArg(argv[0]);
  if (!result.ParseFromArray(stored.data(), static_cast<int>(stored.size()))) return std::nullopt;
  return StripResult(std::move(result), {TextArg(argv[1]), TextArg(argv[2]), TextArg(argv[3])});
}

void StrippedResultFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  auto stripped = StripArgs(argv);
  if (!stripped) return sqlite3_result_value(ctx, argv[0]);
  ResultText(ctx, stripped->result, true);
}

void StrippedFieldsFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  auto stripped = StripArgs(argv);
  sqlite3_result_int64(ctx, stripped ? stripped->stripped : 0);
}

void ResultHostFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  v1::CaseResult result;
  const std::string_view stored = TextArg(argv[0]);
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL ||
      !result.ParseFromArray(stored.data(), static_cast<int>(stored.size())) || !result.has_host()) {
    return sqlite3_result_null(ctx);
  }
  ResultText(ctx, result.host().SerializeAsString(), true);
}

// Whether every value of every sample names `name` as its benchmark (what
// the agent's own metrics do), so the name need not be kept in each.
bool AllBenchmarksAre(const v1::CaseResult& result, std::string_view name) {
  if (name.empty()) return false;
  int values = 0;
  for (const auto& sample : result.samples()) {
    for (const auto& v : sample.values()) {
      if (v.benchmark() != name) return false;
      ++values;
    }
  }
  return values > 0;
}

}  // namespace

StoredId CompactId(std::string_view prefix, std::string_view id) {
  const bool canonical = id.size() == prefix.size() + 1 + 2 * kIdBytes && id.substr(0, prefix.size()) == prefix &&
                         id[prefix.size()] == '-' && IsLowerHex(id.substr(prefix.size() + 1));
  if (!canonical) return {std::string(id), false};
  const std::string_view hex = id.substr(prefix.size() + 1);
  return {absl::HexStringToBytes(absl::string_view(hex.data(), hex.size())), true};
}

std::string ExpandId(std::string_view prefix, std::string_view bytes, bool is_blob) {
  if (!is_blob) return std::string(bytes);
  return absl::StrCat(absl::string_view(prefix.data(), prefix.size()), "-",
                      absl::BytesToHexString(absl::string_view(bytes.data(), bytes.size())));
}

StrippedResult StripResult(v1::CaseResult result, const ResultContext& context) {
  StrippedResult out;
  if (!result.case_name().empty() && result.case_name() == context.case_name) {
    result.clear_case_name();
    out.stripped |= kStrippedCaseName;
  }
  if (!result.agent_id().empty() && result.agent_id() == context.agent_id) {
    result.clear_agent_id();
    out.stripped |= kStrippedAgentId;
  }
  if (!result.pool().empty() && result.pool() == context.pool) {
    result.clear_pool();
    out.stripped |= kStrippedPool;
  }
  if (AllBenchmarksAre(result, context.case_name)) {
    for (auto& sample : *result.mutable_samples()) {
      for (auto& v : *sample.mutable_values()) v.clear_benchmark();
    }
    out.stripped |= kStrippedBenchmarks;
  }
  if (result.has_host()) {
    out.host = result.host().SerializeAsString();
    result.clear_host();
    out.stripped |= kStrippedHost;
  }
  out.result = result.SerializeAsString();
  return out;
}

bool RestoreResult(std::string_view stored, int64_t stripped, const ResultContext& context, std::string_view host,
                   v1::CaseResult* out) {
  if (!out->ParseFromArray(stored.data(), static_cast<int>(stored.size()))) return false;
  if (stripped & kStrippedCaseName) out->set_case_name(std::string(context.case_name));
  if (stripped & kStrippedAgentId) out->set_agent_id(std::string(context.agent_id));
  if (stripped & kStrippedPool) out->set_pool(std::string(context.pool));
  if (stripped & kStrippedBenchmarks) {
    for (auto& sample : *out->mutable_samples()) {
      for (auto& v : *sample.mutable_values()) v.set_benchmark(std::string(context.case_name));
    }
  }
  if ((stripped & kStrippedHost) && !out->mutable_host()->ParseFromArray(host.data(), static_cast<int>(host.size()))) {
    return false;
  }
  return true;
}

int RegisterCompactFunctions(sqlite3* db) {
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
  int rc = sqlite3_create_function(db, "compact_id", 2, flags, nullptr, CompactIdFunction, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function(db, "result_host", 1, flags, nullptr, ResultHostFunction, nullptr, nullptr);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function(db, "stripped_result", 4, flags, nullptr, StrippedResultFunction, nullptr, nullptr);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function(db, "stripped_fields", 4, flags, nullptr, StrippedFieldsFunction, nullptr, nullptr);
  }
  return rc;
}

}  // namespace perfgate
