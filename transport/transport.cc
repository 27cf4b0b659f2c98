#include "transport/transport.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/bounded_read.h"
#include "transport/socket_trust.h"

namespace perfgate {
namespace {

// Credential files are small; a larger one is a wrong path, not a key.
constexpr uint64_t kMaxCredentialFileBytes = 1 * kMiB;

absl::string_view HostOf(absl::string_view address) {
  for (absl::string_view scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(address, scheme)) {
      address.remove_prefix(scheme.size());
      break;
    }
  }
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    return close == absl::string_view::npos ? address : address.substr(1, close - 1);
  }
  size_t colon = address.rfind(':');
  return colon == absl::string_view::npos ? address : address.substr(0, colon);
}

// Adds the bearer token to every call's initial metadata. Works on
// plaintext loopback channels too, where gRPC refuses call credentials.
class BearerInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kAuthorizationKey, *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(const std::string& token) : header_(absl::StrCat(kBearerPrefix, token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor(&header_);
  }

 private:
  const std::string header_;
};

absl::StatusOr<std::string> ClientToken(const ClientSecurityFlags& flags) {
  // The flag takes $PERFGATE_TOKEN_FILE too (CLI11 envname): say both.
  if (!flags.token_file.empty()) return ReadTokenFile(flags.token_file, "--token-file (or $PERFGATE_TOKEN_FILE)");
  if (const char* file = std::getenv("PERFGATE_TOKEN_FILE"); file && *file) {
    return ReadTokenFile(file, "PERFGATE_TOKEN_FILE");
  }
  if (const char* token = std::getenv("PERFGATE_TOKEN"); token && *token) {
    return std::string(absl::StripAsciiWhitespace(token));
  }
  return std::string();
}

}  // namespace

uint64_t MessageLimits::LargestRequest() const {
  return std::max({register_bytes, heartbeat_bytes, submit_bytes, complete_bytes, other_bytes});
}

bool IsUnixSocketAddress(absl::string_view address) {
  return absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:");
}

bool IsLoopbackAddress(const std::string& address) {
  if (IsUnixSocketAddress(address)) return true;
  const std::string host(HostOf(address));
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::Status CheckAddress(const std::string& address, const char* flag, bool port_zero_picks) {
  if (IsUnixSocketAddress(address)) return absl::OkStatus();
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", address, "': ", why, "; give HOST:PORT, e.g. ",
                                                   port_zero_picks ? "127.0.0.1:7600 (port 0: any free one)"
                                                                   : "lab-coord:7600"));
  };
  const size_t colon = address.rfind(':');
  const size_t bracket = address.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) return bad("no port");
  if (HostOf(address).empty()) return bad("no host");
  uint32_t port = 0;
  const std::string digits = address.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 || !absl::SimpleAtoi(digits, &port) ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return bad(absl::StrCat("'", digits, "' is not a port number"));
  }
  if (port > 65535 || (port == 0 && !port_zero_picks)) {
    return bad(absl::StrCat("port ", digits, " is out of range (", port_zero_picks ? 0 : 1, "-65535)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadCredentialFile(const std::string& path, const char* flag) {
  // Bounded and never waiting on a FIFO (core/bounded_read.h).
  auto text = ReadFileBounded(path, kMaxCredentialFileBytes, "the file (a PEM file or a token)");
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", text.status().message()));
  return text;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path, const char* flag) {
  auto text = ReadCredentialFile(path, flag);
  if (!text.ok()) return text.status();
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": '", path, "' holds no token"));
  return token;
}

bool HoldsPemCertificate(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  return cert != nullptr;
}

std::optional<std::string> WorldReadableWarning(const std::string& path, const char* flag) {
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0 || !(st.st_mode & S_IROTH)) return std::nullopt;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return absl::StrCat(flag, " ", path, " can be read by every user of this machine (mode ", mode, "); chmod o-r it");
}

std::string RandomToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);  // EINTR: try again; getrandom never fails otherwise
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityFlags& flags, const std::string& address) {
  if (absl::Status s = CheckAddress(address, "--coordinator", /*port_zero_picks=*/false); !s.ok()) return s;
  ClientSecurity security;
  auto token = ClientToken(flags);
  if (!token.ok()) return token.status();
  security.token = *std::move(token);
  if (flags.tls_cert.empty() != flags.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together (mutual TLS)");
  }
  if (flags.tls_ca.empty()) {
    if (!flags.tls_cert.empty()) return absl::InvalidArgumentError("--tls-cert needs --tls-ca");
    if (flags.insecure) return security;
    if (absl::Status peer = CheckPlaintextPeer(address, "--coordinator"); !peer.ok()) return peer;
    return security;
  }
  grpc::SslCredentialsOptions ssl;
  auto ca = ReadCredentialFile(flags.tls_ca, "--tls-ca");
  if (!ca.ok()) return ca.status();
  // gRPC only says "Could not load any root certificate" and every call
  // then times out: an agent retried registering for ever.
  if (!HoldsPemCertificate(*ca)) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-ca ", flags.tls_ca, ": no PEM certificate in it"));
  }
  ssl.pem_root_certs = *std::move(ca);
  if (!flags.tls_cert.empty()) {
    auto cert = ReadCredentialFile(flags.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadCredentialFile(flags.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  security.credentials = grpc::SslCredentials(ssl);
  return security;
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address, const ClientSecurity& security,
                                           grpc::ChannelArguments args) {
  auto credentials = security.credentials ? security.credentials : grpc::InsecureChannelCredentials();
  if (security.token.empty()) return grpc::CreateCustomChannel(address, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerInterceptorFactory>(security.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, credentials, args, std::move(interceptors));
}

}  // namespace perfgate
