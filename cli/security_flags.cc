#include "cli/security_flags.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/value_checks.h"
#include "core/units.h"

namespace perfgate {
namespace {

// gRPC takes message sizes as int.
constexpr uint64_t kLargestMessage = 1ull << 30;

std::string SizeText(uint64_t bytes) { return absl::StrCat(bytes / kMiB, "MiB"); }

}  // namespace

void AddClientSecurityFlags(CLI::App* cmd, ClientSecurityFlags* flags) {
  cmd->add_option("--tls-ca", flags->tls_ca, "PEM file of the CA that signed the coordinator's certificate (TLS)")
      ->envname("PERFGATE_TLS_CA");
  cmd->add_option("--tls-cert", flags->tls_cert, "client certificate (PEM) for a coordinator that asks for mutual TLS")
      ->envname("PERFGATE_TLS_CERT");
  cmd->add_option("--tls-key", flags->tls_key, "private key (PEM) of --tls-cert")->envname("PERFGATE_TLS_KEY");
  cmd->add_option("--token-file", flags->token_file, "file holding this client's token (else $PERFGATE_TOKEN)")
      ->envname("PERFGATE_TOKEN_FILE");
  cmd->add_flag("--insecure", flags->insecure,
                "trust a plaintext coordinator: on the network, or on a loopback port (which any local user can "
                "listen on while the coordinator is down); without it plaintext goes only to a unix socket in "
                "folders no one else can write");
}

void AddSizeFlags(CLI::App* cmd, std::vector<SizeFlag>* sizes, const MessageLimits& limits) {
  for (auto& size : *sizes) {
    size.text = SizeText(limits.*size.field);
    cmd->add_option(size.name, size.text, "largest request of this call (like 512KiB, 16MiB)")
        ->capture_default_str()
        ->check(SizeCheck(1, kLargestMessage));
  }
}

absl::Status ParseSizeFlags(const std::vector<SizeFlag>& sizes, MessageLimits* limits) {
  for (const auto& size : sizes) {
    auto bytes = ParseBytes(size.text);
    if (!bytes) {  // the bounds are SizeCheck's, checked as the flag was read
      return absl::InvalidArgumentError(absl::StrCat(size.name, " takes a size like 512KiB or 16MiB"));
    }
    limits->*size.field = *bytes;
  }
  return absl::OkStatus();
}

void WarnInsecure(const char* command) {
  std::cerr << "perfgate " << command
            << ": WARNING: --insecure: plaintext and unauthenticated traffic to non-loopback addresses is allowed; "
               "anyone on the network can read results and tokens\n";
}

void WarnInsecureClient(const char* command) {
  std::cerr << "perfgate " << command
            << ": WARNING: --insecure: the coordinator is trusted without proof of who answers; whoever listens "
               "at its address gets this client's token and results\n";
}

}  // namespace perfgate
