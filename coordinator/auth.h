// Who may call what on the coordinator. Every RPC belongs to one entry of a
// closed table naming the roles allowed to call it and the largest request
// it accepts; a caller proves its role with a bearer token.
#pragma once

#include <grpcpp/grpcpp.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "transport/transport.h"

namespace perfgate {

enum class Role : uint8_t { kAgent, kSubmitter, kReader };
inline constexpr size_t kRoleCount = 3;

enum class Rpc : uint8_t {
  kRegister,
  kWork,
  kHeartbeat,
  kCompleteLease,
  kSubmitRun,
  kWatchRun,
  kGetRun,
  kGetHistory,
  kCancelRun,
  kReportVerdict,
  kFindMissingArtifacts,
  kUploadArtifact,  // the limit applies to each chunk
  kDownloadArtifact,
};

enum class AuthFailure : uint8_t {
  kMissingToken,  // no `authorization: Bearer` metadata: UNAUTHENTICATED
  kUnknownToken,  // a token that is no role's: UNAUTHENTICATED
  kWrongRole,     // a valid token whose role may not call this RPC: PERMISSION_DENIED
};

const char* RpcName(Rpc rpc);
const char* RoleName(Role role);
// The `reason` label of perfgate_auth_failures_total.
const char* AuthFailureName(AuthFailure failure);
bool RoleMayCall(Role role, Rpc rpc);
// The request size limit that applies to `rpc`, and the flag that sets it.
uint64_t RequestLimit(const MessageLimits& limits, Rpc rpc);
const char* RequestLimitFlag(Rpc rpc);  // "" when fixed

// One secret per role; an empty one means nobody holds that role. A
// submitter may cancel and report any run: with one shared submitter token
// every run is "theirs".
struct RoleTokens {
  std::string agent;
  std::string submitter;
  std::string reader;
  bool any() const { return !agent.empty() || !submitter.empty() || !reader.empty(); }
};

// Admits or refuses each call: token and role first, then the request size.
class Gatekeeper {
 public:
  using FailureCounter = std::function<void(AuthFailure)>;
  // No tokens at all: authentication is off (loopback without token files).
  Gatekeeper(const RoleTokens& tokens, const MessageLimits& limits, FailureCounter on_failure);

  bool auth_enabled() const { return auth_enabled_; }
  const MessageLimits& limits() const { return limits_; }
  // UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED with a message
  // saying what to do; OK to go ahead.
  grpc::Status Admit(Rpc rpc, const grpc::ServerContext& context, size_t request_bytes) const;
  grpc::Status Authorize(Rpc rpc, const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  grpc::Status Refuse(AuthFailure failure, Rpc rpc) const;

  bool auth_enabled_ = false;
  // SHA-256 of each role's token, compared in constant time; unset roles never match.
  std::array<Digest, kRoleCount> digests_{};
  std::array<bool, kRoleCount> role_set_{};
  MessageLimits limits_;
  FailureCounter on_failure_;
};

}  // namespace perfgate
