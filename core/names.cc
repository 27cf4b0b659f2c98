#include "core/names.h"

#include <algorithm>
#include <string>
#include <utility>

namespace perfgate {
namespace {

template <typename T>
using NameTable = std::pair<T, const char*>;

constexpr NameTable<Method> kMethods[] = {
    {Method::kExpected, "expected"},
    {Method::kHistory, "history"},
    {Method::kAB, "a/b"},
};

constexpr NameTable<Side> kSides[] = {
    {Side::kPlain, ""},
    {Side::kBase, "base"},
    {Side::kHead, "head"},
};

constexpr NameTable<Disposition> kDispositions[] = {
    {Disposition::kCounted, "counted"},
    {Disposition::kStale, "stale"},
    {Disposition::kDuplicate, "duplicate"},
};

constexpr NameTable<v1::CaseResult::Outcome> kOutcomes[] = {
    {v1::CaseResult::OUTCOME_UNSPECIFIED, "unspecified"},
    {v1::CaseResult::OUTCOME_OK, "ok"},
    {v1::CaseResult::OUTCOME_FAILED, "failed"},
    {v1::CaseResult::OUTCOME_TIMED_OUT, "timed out"},
    {v1::CaseResult::OUTCOME_CRASHED, "crashed"},
    {v1::CaseResult::OUTCOME_ERROR, "error"},
    {v1::CaseResult::OUTCOME_CANCELLED, "cancelled"},
    {v1::CaseResult::OUTCOME_SKIPPED, "skipped"},
};

template <typename T, size_t N>
const char* NameIn(const NameTable<T> (&table)[N], T value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";  // a value past the table: only from a newer peer's enum
}

template <typename T, size_t N>
std::optional<T> ParseIn(const NameTable<T> (&table)[N], std::string_view name) {
  for (const auto& [v, n] : table) {
    if (name == n) return v;
  }
  return std::nullopt;
}

}  // namespace

const char* MethodName(Method method) { return NameIn(kMethods, method); }
std::optional<Method> ParseMethod(std::string_view name) { return ParseIn(kMethods, name); }

const char* SideName(Side side) { return NameIn(kSides, side); }
std::optional<Side> ParseSide(std::string_view name) { return ParseIn(kSides, name); }

const char* DispositionName(Disposition disposition) { return NameIn(kDispositions, disposition); }
std::optional<Disposition> ParseDisposition(std::string_view name) { return ParseIn(kDispositions, name); }

const char* OutcomeName(v1::CaseResult::Outcome outcome) { return NameIn(kOutcomes, outcome); }
std::optional<v1::CaseResult::Outcome> ParseOutcome(std::string_view name) { return ParseIn(kOutcomes, name); }

std::string LabelValue(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), ' ', '_');
  return out;
}

}  // namespace perfgate
