#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/security_flags.h"
#include "cli/service_config.h"
#include "cli/signals.h"
#include "cli/value_checks.h"
#include "coordinator/coordinator.h"
#include "coordinator/malloc_policy.h"
#include "core/exit_codes.h"
#include "core/units.h"

namespace perfgate {
namespace {

struct TokenFiles {
  std::string agent;
  std::string submitter;
  std::string reader;
};

// Fewer characters than this make a token a warning: 16 hex digits are 64 bits.
constexpr size_t kShortestGoodToken = 16;
// Heartbeats go out every quarter of it, and no more often than every 50 ms.
constexpr uint64_t kShortestLeaseTtlMs = 100;

// Tokens come from files only: argv is visible to every user of the host.
absl::StatusOr<RoleTokens> ReadRoleTokens(const TokenFiles& files) {
  RoleTokens tokens;
  for (auto [path, flag, out] : {std::tuple{&files.agent, "--agent-token-file", &tokens.agent},
                                 std::tuple{&files.submitter, "--submit-token-file", &tokens.submitter},
                                 std::tuple{&files.reader, "--read-token-file", &tokens.reader}}) {
    if (path->empty()) continue;
    auto token = ReadTokenFile(*path, flag);
    if (!token.ok()) return token.status();
    *out = *std::move(token);
  }
  return tokens;
}

struct CoordinatorFlags {
  std::string listen = "127.0.0.1:7600";
  std::string db = "perfgate.db";
  std::string lease_ttl = "10s";
  uint32_t max_attempts = 3;
  std::string no_agent_grace = "30s";
  std::string metrics_listen;
  std::string main_branch = "main";
  std::string artifact_dir;
  std::string artifact_quota = "20GiB";
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  bool insecure = false;
  int priority_levels = 10;
  bool sync_commits = false;
  TokenFiles tokens;
  std::vector<SizeFlag> sizes = {{"--max-register-size", "", &MessageLimits::register_bytes},
                                 {"--max-heartbeat-size", "", &MessageLimits::heartbeat_bytes},
                                 {"--max-submit-size", "", &MessageLimits::submit_bytes},
                                 {"--max-complete-size", "", &MessageLimits::complete_bytes}};
};

void AddServingFlags(CLI::App* cmd, CoordinatorFlags* flags) {
  cmd->add_option("--listen", flags->listen, "host:port to serve gRPC on; port 0 picks a free one")
      ->capture_default_str()
      ->check(AddressCheck(/*port_zero_picks=*/true, /*empty_allowed=*/false));
  cmd->add_option("--db", flags->db, "SQLite file (created and migrated as needed)")->capture_default_str();
  cmd->add_option("--lease-ttl", flags->lease_ttl, "a lease not renewed this long is lost and its case re-queued")
      ->capture_default_str()
      ->check(DurationCheck(kShortestLeaseTtlMs));
  cmd->add_option("--max-attempts", flags->max_attempts, "attempts per case before it ends as an error")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->add_option("--no-agent-grace", flags->no_agent_grace,
                  "a pending case no live agent can run ends as 'no capable agent' after this long")
      ->capture_default_str()
      ->check(DurationCheck(0));
  cmd->add_option("--metrics-listen", flags->metrics_listen,
                  "host:port to serve Prometheus /metrics on (port 0 picks one); off when empty")
      ->check(AddressCheck(/*port_zero_picks=*/true, /*empty_allowed=*/true));
  cmd->add_option("--main-branch", flags->main_branch, "runs of this branch feed perfgate_benchmark_value")
      ->capture_default_str();
  cmd->add_option("--artifact-dir", flags->artifact_dir, "uploaded artifacts (default: 'artifacts' beside --db)");
  cmd->add_option("--artifact-quota", flags->artifact_quota, "most bytes of artifacts kept, e.g. 20GiB")
      ->capture_default_str()
      ->check(SizeCheck(1, std::numeric_limits<uint64_t>::max()));
}

void AddSecurityFlags(CLI::App* cmd, CoordinatorFlags* flags) {
  cmd->add_option("--tls-cert", flags->tls_cert, "certificate chain (PEM) to serve TLS with");
  cmd->add_option("--tls-key", flags->tls_key, "private key (PEM) of --tls-cert");
  cmd->add_option("--tls-client-ca", flags->tls_client_ca,
                  "mutual TLS: clients must present a certificate signed by this CA (PEM)");
  cmd->add_flag("--insecure", flags->insecure,
                "allow plaintext and no tokens on a non-loopback --listen (warns on every start)");
  cmd->add_option("--agent-token-file", flags->tokens.agent,
                  "file holding the agents' token (Register, Work, Heartbeat, CompleteLease)");
  cmd->add_option("--submit-token-file", flags->tokens.submitter,
                  "file holding the submitters' token (SubmitRun, CancelRun, ReportVerdict and reads)");
  cmd->add_option("--read-token-file", flags->tokens.reader,
                  "file holding a read-only token (GetRun, WatchRun, GetHistory)");
}

// How it shares the machine and the disk.
void AddTuningFlags(CLI::App* cmd, CoordinatorFlags* flags) {
  cmd->add_option("--priority-levels", flags->priority_levels,
                  "nice levels to run above the priority it was started with, so that agents and cases sharing "
                  "the machine never keep its replies waiting for a core (needs root or CAP_SYS_NICE; 0: as started)")
      ->capture_default_str()
      ->check(CLI::Range(0, 39));
  cmd->add_flag("--sync-commits", flags->sync_commits,
                "acknowledge a result only once fdatasync has put it on disk, so that it survives a power cut or a "
                "kernel crash, not only the coordinator's death (which is all the default survives); every "
                "acknowledgement then waits for the disk, which on a busy or shared disk can hold agents up");
}

// The lease timings the flags ask for; heartbeats, sessions and sweeps follow the lease's TTL.
absl::Status SetTimings(const CoordinatorFlags& flags, CoordinatorOptions* options) {
  // Their checks (DurationCheck) refused anything else as the flags were read.
  auto ttl = ParseDurationMs(flags.lease_ttl);
  auto grace = ParseDurationMs(flags.no_agent_grace);
  if (!ttl || !grace) return absl::InvalidArgumentError("--lease-ttl and --no-agent-grace take durations");
  options->scheduler.lease_ttl_ms = static_cast<int64_t>(*ttl);
  options->scheduler.heartbeat_interval_ms = std::max<int64_t>(50, options->scheduler.lease_ttl_ms / 4);
  options->scheduler.session_ttl_ms = options->scheduler.lease_ttl_ms * 3 / 2;
  options->scheduler.max_attempts = flags.max_attempts;
  options->scheduler.no_agent_grace_ms = static_cast<int64_t>(*grace);
  options->sweep_interval_ms = std::max<int64_t>(20, options->scheduler.lease_ttl_ms / 10);
  return absl::OkStatus();
}

// What `--db` names, checked before anything is opened: each of these is a
// configuration error (exit 2, which the unit does not restart), not a store
// failure (exit 3, restarted every 2 s for ever). SQLite itself takes "" and
// ":memory:" as a private database per connection: results kept nowhere, and
// the history reader found no tables.
absl::Status CheckDbPath(const std::string& db) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--db '", db, "': ", why));
  };
  if (db.empty() || db == ":memory:" || absl::StartsWith(db, "file:")) {
    return bad("name a database file, e.g. /var/lib/perfgate/perfgate.db");
  }
  std::error_code ec;
  const std::filesystem::path folder = std::filesystem::path(db).parent_path();
  if (!folder.empty() && !std::filesystem::is_directory(folder, ec)) {
    return bad(
        absl::StrCat("there is no folder ", folder.string(), "; make it, or name a file in a folder that exists"));
  }
  if (access(folder.empty() ? "." : folder.c_str(), W_OK | X_OK) != 0) {
    return bad(absl::StrCat("its folder cannot be written by this user (", std::strerror(errno), ")"));
  }
  const auto status = std::filesystem::status(db, ec);
  if (ec || !std::filesystem::exists(status)) return absl::OkStatus();  // made at start
  if (!std::filesystem::is_regular_file(status)) return bad("it is not a regular file");
  char header[16] = {};
  std::ifstream(db, std::ios::binary).read(header, sizeof header);
  if (std::filesystem::file_size(db, ec) > 0 && std::memcmp(header, "SQLite format 3", 16) != 0) {
    return bad("it is not a SQLite database (another file there?)");
  }
  return absl::OkStatus();
}

// The coordinator's options from its flags, or what is wrong with them (InvalidArgument).
absl::StatusOr<CoordinatorOptions> OptionsFrom(const CoordinatorFlags& flags) {
  CoordinatorOptions options;
  options.listen = flags.listen;
  options.db_path = flags.db;
  if (absl::Status db = CheckDbPath(flags.db); !db.ok()) return db;
  options.artifacts.dir = flags.artifact_dir;
  if (auto quota = ParseBytes(flags.artifact_quota); quota) {  // and not 0: SizeCheck
    options.artifacts.quota_bytes = *quota;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--artifact-quota '", flags.artifact_quota, "' is not a size"));
  }
  if (absl::Status timings = SetTimings(flags, &options); !timings.ok()) return timings;
  options.metrics_listen = flags.metrics_listen;
  options.main_branch = flags.main_branch;
  options.tls_cert_file = flags.tls_cert;
  options.tls_key_file = flags.tls_key;
  options.tls_client_ca_file = flags.tls_client_ca;
  options.insecure = flags.insecure;
  options.priority_levels = flags.priority_levels;
  options.durability = flags.sync_commits ? CommitDurability::kPowerLoss : CommitDurability::kProcessCrash;
  auto tokens = ReadRoleTokens(flags.tokens);
  if (!tokens.ok()) return tokens.status();
  if (absl::Status sizes = ParseSizeFlags(flags.sizes, &options.limits); !sizes.ok()) return sizes;
  options.tokens = *std::move(tokens);
  return options;
}

// Credentials an admin would want to know are weak: files every user may
// read, two roles given one token (its holders hold both roles), tokens too
// short to resist guessing.
std::vector<std::string> CredentialWarnings(const CoordinatorFlags& flags, const RoleTokens& tokens) {
  std::vector<std::string> warnings;
  for (auto [path, flag] :
       {std::pair{&flags.tokens.agent, "--agent-token-file"}, std::pair{&flags.tokens.submitter, "--submit-token-file"},
        std::pair{&flags.tokens.reader, "--read-token-file"}, std::pair{&flags.tls_key, "--tls-key"}}) {
    if (auto w = WorldReadableWarning(*path, flag)) warnings.push_back(*std::move(w));
  }
  const std::pair<const std::string*, const char*> roles[] = {
      {&tokens.agent, "agent"}, {&tokens.submitter, "submitter"}, {&tokens.reader, "reader"}};
  for (size_t i = 0; i < std::size(roles); ++i) {
    if (roles[i].first->empty()) continue;
    if (roles[i].first->size() < kShortestGoodToken) {
      warnings.push_back(absl::StrCat("the ", roles[i].second, " token is ", roles[i].first->size(),
                                      " characters; use at least ", kShortestGoodToken,
                                      " random ones (openssl rand -hex 32)"));
    }
    for (size_t j = i + 1; j < std::size(roles); ++j) {
      if (*roles[i].first == *roles[j].first) {
        warnings.push_back(absl::StrCat("the ", roles[i].second, " and ", roles[j].second,
                                        " tokens are the same: whoever holds it holds both roles"));
      }
    }
  }
  return warnings;
}

// What a started coordinator serves and how; tests and scripts read the first line to learn the port.
void PrintStarted(const Coordinator& c, const CoordinatorOptions& options) {
  std::printf("perfgate coordinator: listening on %s (db %s, %s, %s)\n", c.address().c_str(), options.db_path.c_str(),
              options.tls_cert_file.empty()        ? "plaintext"
              : options.tls_client_ca_file.empty() ? "TLS"
                                                   : "mutual TLS",
              options.tokens.any() ? "tokens required" : "no tokens");
  if (!c.metrics_address().empty()) {
    std::printf("perfgate coordinator: metrics on http://%s/metrics\n", c.metrics_address().c_str());
  }
  CoordinatorOptions bound = options;  // the warnings name the ports it took, not port 0
  bound.listen = c.address();
  if (!c.metrics_address().empty()) bound.metrics_listen = c.metrics_address();
  for (const auto& warning : ExposureWarnings(bound)) {
    std::fprintf(stderr, "perfgate coordinator: warning: %s\n", warning.c_str());
  }
  std::printf("perfgate coordinator: %s\n", DescribePriority(c.priority(), options.priority_levels).c_str());
  std::printf("perfgate coordinator: %s\n", options.durability == CommitDurability::kPowerLoss
                                                ? "results acknowledged once on disk (--sync-commits)"
                                                : "results acknowledged once committed: they survive its death, "
                                                  "not the machine's (--sync-commits for that)");
  std::fflush(stdout);
}

// Every connection holds a file descriptor, and a server out of them stops
// accepting (coordinator/listener_watch.h): the soft limit (1,024 by
// default) is raised to the hard one, which only root could raise further.
void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// Serves until a termination signal or a lost store write; the exit code.
int Serve(const CoordinatorFlags& flags) {
  // First, before any thread or output: on success this does not return.
  if (absl::Status restart = RestartWithSmallThreadCaches(); !restart.ok()) {
    std::cerr << "perfgate coordinator: keeps glibc's full per-thread malloc caches (" << restart.message()
              << "): its memory may grow a few percent more over the first runs\n";
  }
  absl::StatusOr<CoordinatorOptions> options = OptionsFrom(flags);
  if (!options.ok()) {
    std::cerr << "perfgate coordinator: " << options.status().message() << "\n";
    return kExitBadInput;
  }
  if (options->insecure) WarnInsecure("coordinator");
  // What it makes (the database and its WAL, the artifacts, its socket) holds
  // suites' environments and cases' output: none of it for every user of the
  // machine, whatever umask it was started with (the packaged unit's is 0027).
  umask(umask(0) | S_IRWXO);
  RaiseFileLimit();
  auto coordinator = Coordinator::Start(*options);
  if (!coordinator.ok()) {
    std::cerr << "perfgate coordinator: " << coordinator.status().message() << "\n";
    return coordinator.status().code() == absl::StatusCode::kInvalidArgument ? kExitBadInput : kExitInfra;
  }
  Coordinator* c = coordinator->get();
  OnTerminationSignal([c](int) { c->Shutdown(); });
  // A file-size limit (ulimit -f, systemd's LimitFSIZE) reached by the
  // database would kill us with SIGXFSZ and say nothing. Ignored, the write
  // fails with EFBIG: the call gets SQLite's "disk I/O error", and a lost
  // group stops us with exit 3 and why. (The coordinator runs no cases, so
  // nothing inherits this.)
  std::signal(SIGXFSZ, SIG_IGN);
  for (const auto& warning : CredentialWarnings(flags, options->tokens)) {
    std::fprintf(stderr, "perfgate coordinator: warning: %s\n", warning.c_str());
  }
  PrintStarted(*c, *options);
  if (absl::Status lost = c->Wait(); !lost.ok()) {
    std::cerr << "perfgate coordinator: stopping: " << lost.message() << "\n";
    c->Shutdown();
    return kExitInfra;
  }
  std::printf("perfgate coordinator: stopped\n");
  return kExitPassed;
}

}  // namespace

void AddCoordinatorCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("coordinator", "Serve runs to agents: queue, lease, store results (SQLite).");
  auto flags = std::make_shared<CoordinatorFlags>();
  AddConfigFileOption(cmd);
  AddServingFlags(cmd, flags.get());
  AddSecurityFlags(cmd, flags.get());
  AddTuningFlags(cmd, flags.get());
  AddSizeFlags(cmd, &flags->sizes, MessageLimits{});
  cmd->footer(kServiceExitCodesHelp);
  cmd->callback([flags, exit_code] { *exit_code = Serve(*flags); });
}

}  // namespace perfgate
