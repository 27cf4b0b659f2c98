// The closed sets that are written down somewhere (reports, metric labels,
// suite files, the store): one name table each, here, and a Name/Parse pair
// per set. Parse(Name(x)) == x for every value; an unknown name is nullopt.
// Verdicts have theirs in core/verdict.h.
#pragma once

#include <optional>
#include <string_view>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

// How a metric was compared: with an expected file, the main-branch
// history, or the base side of an A/B pair.
enum class Method { kExpected, kHistory, kAB };
const char* MethodName(Method method);  // "expected", "history", "a/b"
std::optional<Method> ParseMethod(std::string_view name);

// The side of an A/B pair a sample measured. Samples carry it as text on the
// wire and in the store (v1::Sample.variant); a plain run's is "".
enum class Side { kPlain, kBase, kHead };
const char* SideName(Side side);  // "", "base", "head"
std::optional<Side> ParseSide(std::string_view name);

// What the coordinator did with a completed lease's result: counted it,
// refused it because the lease was no longer the agent's (stale), or saw it
// again after it was counted (duplicate).
enum class Disposition { kCounted, kStale, kDuplicate };
const char* DispositionName(Disposition disposition);  // "counted", "stale", "duplicate"
std::optional<Disposition> ParseDisposition(std::string_view name);

// How a case's process ended, as a word: "ok", "failed", "timed out",
// "crashed", "error", "cancelled", "skipped"; "unspecified" for no result.
const char* OutcomeName(v1::CaseResult::Outcome outcome);
std::optional<v1::CaseResult::Outcome> ParseOutcome(std::string_view name);

// A name as a Prometheus label value: words joined by '_' ("timed_out").
std::string LabelValue(std::string_view name);

}  // namespace perfgate
