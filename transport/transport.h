// What coordinator and clients agree on about the wire beyond the proto:
// per-call message size limits, which addresses may carry plaintext, and
// how a client proves who it is (TLS trust, bearer token).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace perfgate {

inline constexpr uint64_t kMiB = 1ull << 20;

// Largest request each call may carry, sized to what it carries. The
// coordinator refuses a larger one with RESOURCE_EXHAUSTED naming the call
// and the limit; clients size their channels to match.
struct MessageLimits {
  uint64_t register_bytes = 1 * kMiB;   // a host fingerprint and labels
  uint64_t heartbeat_bytes = 1 * kMiB;  // lease ids
  uint64_t submit_bytes = 16 * kMiB;    // a whole suite
  uint64_t complete_bytes = 32 * kMiB;  // one case's samples and output tails
  uint64_t other_bytes = 4 * kMiB;      // ids, history keys, verdicts
  // What the coordinator sends at most (a run with every result).
  uint64_t reply_bytes = 64 * kMiB;

  uint64_t LargestRequest() const;
};

// The metadata key and value prefix that carry a token.
inline constexpr char kAuthorizationKey[] = "authorization";
inline constexpr char kBearerPrefix[] = "Bearer ";

// True for "unix:PATH" and "unix-abstract:NAME": gRPC's socket addresses.
bool IsUnixSocketAddress(absl::string_view address);

// True for 127.0.0.0/8, ::1, localhost and unix sockets: the only places
// plaintext and token-less service are allowed without --insecure.
// `address` is host:port, [v6]:port or unix:path.
bool IsLoopbackAddress(const std::string& address);

// OK if `address` is host:port or [v6]:port with a port of 1-65535 (0 too
// when `port_zero_picks`: a listener's "any free port"), or a unix: path;
// else an error naming `flag` and the form it takes. gRPC itself reads
// port 99999 as 34463 and a missing port as 443.
absl::Status CheckAddress(const std::string& address, const char* flag, bool port_zero_picks);

// The whole file, for keys, certificates and tokens. Errors name the file
// and the flag it came from.
absl::StatusOr<std::string> ReadCredentialFile(const std::string& path, const char* flag);
// A token from a file: surrounding whitespace trimmed; empty is an error.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, const char* flag);
// Whether `pem` holds at least one PEM certificate.
bool HoldsPemCertificate(const std::string& pem);
// A warning when every user of the host may read the credential file at
// `path` (given with `flag`); nullopt when it is not, or cannot be stat'ed
// (reading it says why).
std::optional<std::string> WorldReadableWarning(const std::string& path, const char* flag);
// 256 bits from getrandom(2), hex: for the embedded cluster's own tokens.
std::string RandomToken();

struct ClientSecurityFlags {
  std::string tls_ca;    // PEM of the CA that signed the coordinator's certificate; empty: plaintext
  std::string tls_cert;  // client certificate for mutual TLS
  std::string tls_key;
  std::string token_file;  // else $PERFGATE_TOKEN_FILE, else $PERFGATE_TOKEN
  bool insecure = false;   // trust a plaintext coordinator that is not a unix socket in safe folders
};

// Resolved: what a channel to the coordinator is opened with.
struct ClientSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string token;                                      // empty: none sent
};

// Reads the files and environment that `flags` name and checks that
// plaintext goes only to a unix socket no one else could have put there
// (socket_trust.h), or anywhere with --insecure.
absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityFlags& flags, const std::string& address);

// A channel whose every call carries `security.token` as
// `authorization: Bearer <token>` metadata.
std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address, const ClientSecurity& security,
                                           grpc::ChannelArguments args);

}  // namespace perfgate
