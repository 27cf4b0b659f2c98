#include "coordinator/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

constexpr uint8_t Bit(Role role) { return static_cast<uint8_t>(1u << static_cast<unsigned>(role)); }
constexpr uint8_t kAgentOnly = Bit(Role::kAgent);
constexpr uint8_t kSubmitterOnly = Bit(Role::kSubmitter);
constexpr uint8_t kReaders = Bit(Role::kSubmitter) | Bit(Role::kReader);

struct RpcEntry {
  Rpc rpc;
  const char* name;
  uint8_t roles;                   // who may call it
  uint64_t MessageLimits::*limit;  // its request size limit
  const char* limit_flag;          // "": not configurable
};

// The one table: indexed by Rpc.
constexpr RpcEntry kRpcs[] = {
    {Rpc::kRegister, "Register", kAgentOnly, &MessageLimits::register_bytes, "--max-register-size"},
    {Rpc::kWork, "Work", kAgentOnly, &MessageLimits::other_bytes, ""},
    {Rpc::kHeartbeat, "Heartbeat", kAgentOnly, &MessageLimits::heartbeat_bytes, "--max-heartbeat-size"},
    {Rpc::kCompleteLease, "CompleteLease", kAgentOnly, &MessageLimits::complete_bytes, "--max-complete-size"},
    {Rpc::kSubmitRun, "SubmitRun", kSubmitterOnly, &MessageLimits::submit_bytes, "--max-submit-size"},
    {Rpc::kWatchRun, "WatchRun", kReaders, &MessageLimits::other_bytes, ""},
    {Rpc::kGetRun, "GetRun", kReaders, &MessageLimits::other_bytes, ""},
    {Rpc::kGetHistory, "GetHistory", kReaders, &MessageLimits::other_bytes, ""},
    {Rpc::kCancelRun, "CancelRun", kSubmitterOnly, &MessageLimits::other_bytes, ""},
    {Rpc::kReportVerdict, "ReportVerdict", kSubmitterOnly, &MessageLimits::other_bytes, ""},
    {Rpc::kFindMissingArtifacts, "FindMissingArtifacts", kSubmitterOnly, &MessageLimits::other_bytes, ""},
    {Rpc::kUploadArtifact, "UploadArtifact", kSubmitterOnly, &MessageLimits::other_bytes, ""},
    {Rpc::kDownloadArtifact, "DownloadArtifact", kAgentOnly, &MessageLimits::other_bytes, ""},
};

const RpcEntry& Entry(Rpc rpc) { return kRpcs[static_cast<size_t>(rpc)]; }

constexpr bool TableIsIndexedByRpc() {
  for (size_t i = 0; i < std::size(kRpcs); ++i) {
    if (static_cast<size_t>(kRpcs[i].rpc) != i) return false;
  }
  return std::size(kRpcs) == static_cast<size_t>(Rpc::kDownloadArtifact) + 1;
}
static_assert(TableIsIndexedByRpc());

constexpr const char* kRoleNames[kRoleCount] = {"agent", "submitter", "read-only"};
constexpr const char* kFailureNames[] = {"missing_token", "unknown_token", "wrong_role"};

std::string RolesAllowed(Rpc rpc) {
  std::string names;
  for (size_t r = 0; r < kRoleCount; ++r) {
    if (Entry(rpc).roles & (1u << r)) absl::StrAppend(&names, names.empty() ? "" : " or ", kRoleNames[r]);
  }
  return names;
}

std::string MiB(uint64_t bytes) {
  return bytes % kMiB == 0 ? absl::StrCat(bytes / kMiB, " MiB") : absl::StrCat(bytes, " bytes");
}

}  // namespace

const char* RpcName(Rpc rpc) { return Entry(rpc).name; }
const char* RoleName(Role role) { return kRoleNames[static_cast<size_t>(role)]; }
const char* AuthFailureName(AuthFailure failure) { return kFailureNames[static_cast<size_t>(failure)]; }
bool RoleMayCall(Role role, Rpc rpc) { return (Entry(rpc).roles & Bit(role)) != 0; }
uint64_t RequestLimit(const MessageLimits& limits, Rpc rpc) { return limits.*(Entry(rpc).limit); }
const char* RequestLimitFlag(Rpc rpc) { return Entry(rpc).limit_flag; }

Gatekeeper::Gatekeeper(const RoleTokens& tokens, const MessageLimits& limits, FailureCounter on_failure)
    : auth_enabled_(tokens.any()), limits_(limits), on_failure_(std::move(on_failure)) {
  const std::string* secrets[kRoleCount] = {&tokens.agent, &tokens.submitter, &tokens.reader};
  for (size_t r = 0; r < kRoleCount; ++r) {
    role_set_[r] = !secrets[r]->empty();
    SHA256(reinterpret_cast<const unsigned char*>(secrets[r]->data()), secrets[r]->size(), digests_[r].data());
  }
}

grpc::Status Gatekeeper::Refuse(AuthFailure failure, Rpc rpc) const {
  if (on_failure_) on_failure_(failure);
  switch (failure) {
    case AuthFailure::kMissingToken:
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat(RpcName(rpc), " needs a token (authorization: Bearer); give the client ",
                                       "--token-file, PERFGATE_TOKEN_FILE or PERFGATE_TOKEN"));
    case AuthFailure::kUnknownToken:
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat(RpcName(rpc), ": the token is not one this coordinator accepts"));
    case AuthFailure::kWrongRole:
      break;
  }
  const std::string roles = RolesAllowed(rpc);
  const bool vowel = !roles.empty() && absl::StrContains("aeiou", roles[0]);
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, absl::StrCat(RpcName(rpc), vowel ? " needs an " : " needs a ",
                                                                        roles, " token; this token's role may not call it"));
}

grpc::Status Gatekeeper::Authorize(Rpc rpc, const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  if (!auth_enabled_) return grpc::Status::OK;
  auto it = metadata.find(kAuthorizationKey);
  if (it == metadata.end()) return Refuse(AuthFailure::kMissingToken, rpc);
  absl::string_view header(it->second.data(), it->second.size());
  if (!absl::StartsWith(header, kBearerPrefix)) return Refuse(AuthFailure::kMissingToken, rpc);
  header.remove_prefix(sizeof kBearerPrefix - 1);
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(header.data()), header.size(), digest.data());
  // Every role is compared, matching or not, so timing tells nothing.
  uint8_t matched = 0;
  for (size_t r = 0; r < kRoleCount; ++r) {
    bool same = CRYPTO_memcmp(digest.data(), digests_[r].data(), digest.size()) == 0;
    matched |= static_cast<uint8_t>((same && role_set_[r]) << r);
  }
  if (matched == 0) return Refuse(AuthFailure::kUnknownToken, rpc);
  if ((matched & Entry(rpc).roles) == 0) return Refuse(AuthFailure::kWrongRole, rpc);
  return grpc::Status::OK;
}

grpc::Status Gatekeeper::Admit(Rpc rpc, const grpc::ServerContext& context, size_t request_bytes) const {
  if (auto s = Authorize(rpc, context.client_metadata()); !s.ok()) return s;
  const uint64_t limit = RequestLimit(limits_, rpc);
  if (request_bytes <= limit) return grpc::Status::OK;
  std::string hint = *RequestLimitFlag(rpc) == '\0'
                         ? std::string()
                         : absl::StrCat(" (the coordinator's ", RequestLimitFlag(rpc), " sets it)");
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat(RpcName(rpc), " request is ", request_bytes, " bytes, over its limit of ", MiB(limit), hint));
}

}  // namespace perfgate
