// The compact forms the SQLite store keeps a case in. A stored case is
// mostly its result, and most of a result repeats what the store already
// holds: the host fingerprint (the same for every result of an agent), the
// case's name, the agent's id and its pool (all on the lease). They are
// taken out before the result is written and put back when it is read, so a
// result reads back byte for byte as it came. Ids the scheduler makes
// ("lease-" and 32 hex digits) are kept as their 16 random bytes.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

// An id as a column holds it: the 16 bytes of "PREFIX-<32 lowercase hex
// digits>" as a blob, any other id as its text. The two never collide: a
// blob never equals a text in SQLite.
struct StoredId {
  std::string bytes;
  bool is_blob = false;
};
StoredId CompactId(std::string_view prefix, std::string_view id);
// The id CompactId was given. REQUIRES: prefix is the one it was stored with.
std::string ExpandId(std::string_view prefix, std::string_view bytes, bool is_blob);

// Which fields of a result StripResult took out (bits of the `stripped` column).
enum StrippedField : int64_t {
  kStrippedCaseName = 1,  // equal to the case's name
  kStrippedAgentId = 2,   // equal to the lease's agent
  kStrippedPool = 4,      // equal to the lease's pool
  kStrippedHost = 8,      // kept once in the hosts table
  kStrippedBenchmarks = 16,  // every sample value's benchmark was the case's name
};

// What the lease already holds about a result.
struct ResultContext {
  std::string_view case_name;
  std::string_view agent_id;
  std::string_view pool;
};

struct StrippedResult {
  std::string result;  // serialised CaseResult without the stripped fields
  int64_t stripped = 0;
  std::string host;  // serialised HostFingerprint, when kStrippedHost
};

StrippedResult StripResult(v1::CaseResult result, const ResultContext& context);
// Puts back what StripResult took out. False if `stored` does not parse.
bool RestoreResult(std::string_view stored, int64_t stripped, const ResultContext& context, std::string_view host,
                   v1::CaseResult* out);

// SQL functions the migration to compact rows uses (the same code as the
// writes): compact_id(prefix, id), result_host(result) (NULL without a host),
// stripped_result(result, case_name, agent_id, pool) and
// stripped_fields(result, case_name, agent_id, pool). An unreadable result is
// kept as it is, with nothing stripped.
int RegisterCompactFunctions(sqlite3* db);

}  // namespace perfgate
