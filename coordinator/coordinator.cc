#include "coordinator/coordinator.h"

#include <fcntl.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/artifact_service.h"
#include "coordinator/listener_watch.h"
#include "coordinator/malloc_policy.h"
#include "coordinator/metrics_exporter.h"
#include "coordinator/services.h"
#include "transport/socket_trust.h"

namespace perfgate {
namespace {

// Threads the gRPC server keeps polling for calls when idle (Start says why).
constexpr int kMaxIdlePollers = 64;

// Refuses, before anything is opened or bound, a listener that would let
// anyone who reaches it run commands on every agent.
absl::Status CheckExposure(const CoordinatorOptions& options) {
  if (options.insecure || IsLoopbackAddress(options.listen)) return absl::OkStatus();
  if (options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing plaintext on ", options.listen,
        ": it is not a loopback address. Give --tls-cert and --tls-key, or --insecure to serve unencrypted"));
  }
  if (!options.tokens.any() && options.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to serve ", options.listen,
                     " without authentication: give --agent-token-file and --submit-token-file (or --tls-client-ca), "
                     "or --insecure"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> ExposureWarnings(const CoordinatorOptions& options) {
  std::vector<std::string> warnings;
  if (!options.tokens.any() && options.tls_client_ca_file.empty()) {
    const bool socket = IsUnixSocketAddress(options.listen);
    warnings.push_back(absl::StrCat("no tokens: anyone who can reach ", options.listen,
                                    socket                              ? " (any user who may open the socket)"
                                    : IsLoopbackAddress(options.listen) ? " (any user of this machine)"
                                                                        : "",
                                    " may submit suites, and so run commands on every agent; give "
                                    "--agent-token-file and --submit-token-file"));
  } else if (!options.tokens.any()) {
    warnings.push_back(
        "mutual TLS without tokens: every client certificate the CA signed holds every role (agent, submitter, "
        "reader); give --agent-token-file and --submit-token-file to tell them apart");
  }
  if (!options.metrics_listen.empty() && !IsLoopbackAddress(options.metrics_listen)) {
    warnings.push_back(absl::StrCat("/metrics on ", options.metrics_listen,
                                    " needs no token: anyone who reaches it reads suite, case and benchmark names "
                                    "and main-branch medians; keep it on a network only Prometheus reaches"));
  }
  return warnings;
}

namespace {

// Whether `listen` can be bound, tried before the store is opened: a second
// coordinator on a bound port must fail before it recovers a store another
// one serves (UNAVAILABLE: a port in use may be free again later). An
// address that is not this host's, a host that does not resolve (unless the
// resolver failed for now), or a port this user may not bind is the
// configuration's error (INVALID_ARGUMENT,
// exit 2): gRPC's own failure said only "cannot listen" (exit 3), and the
// packaged unit restarted it every two seconds for ever. gRPC's bind
// (without SO_REUSEPORT) still decides; this only fails early and says why.
// gRPC unlinks a socket file in its way and binds anew: a second
// coordinator on the path took the first one's agents and gates without a
// word, and both went on serving the same runs.
absl::Status CheckSocketFree(const std::string& listen) {
  if (!absl::StartsWith(listen, "unix:")) return absl::OkStatus();  // an abstract name in use fails to bind
  const std::string path = UnixSocketPath(listen);
  struct stat st {};
  sockaddr_un addr{};
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || path.size() >= sizeof addr.sun_path) {
    return absl::OkStatus();
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::OkStatus();
  // A full backlog (EAGAIN) is a live listener too; a refusal is a socket left by a dead one.
  const bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN;
  close(fd);
  if (!live) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", listen, ": a process already serves on that socket (another coordinator?)"));
}

// One coordinator per store file: two on one database each resumed its
// runs, ran their cases again and stored results the verdicts never saw.
// Taken before the store is opened, so that nothing (a migration, a
// checkpoint) touches a database another coordinator serves. A file that
// cannot be opened gets no lock: the store's open says what is wrong.
absl::StatusOr<HeldFileLock> LockDatabase(const std::string& db_path) {
  const int fd = open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return HeldFileLock();
  HeldFileLock lock(fd);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "--db ", db_path, " is in use by another coordinator (",
        errno == EWOULDBLOCK ? "it holds the file's lock" : strerror(errno),
        "; an embedded gate's is the perfgate.db of its --state-dir): one coordinator per store, so stop that one "
        "first, or give this one a store of its own"));
  }
  return lock;
}

absl::Status CheckBindable(const std::string& listen, const char* flag) {
  const size_t colon = listen.rfind(':');
  if (IsUnixSocketAddress(listen)) return CheckSocketFree(listen);
  if (colon == std::string::npos) return absl::OkStatus();
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    const std::string why = absl::StrCat(flag, " ", listen, ": cannot resolve '", host, "' (", gai_strerror(rc), ")");
    // A name server not up yet (at boot) may answer on the next start.
    return rc == EAI_AGAIN || rc == EAI_FAIL ? absl::UnavailableError(why) : absl::InvalidArgumentError(why);
  }
  int error = 0;
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;  // as gRPC binds: connections in TIME_WAIT do not hold the port
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool bound = bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    error = bound ? 0 : errno;
    close(fd);
    if (bound || error == EADDRINUSE) break;
  }
  freeaddrinfo(found);
  switch (error) {
    case 0:
      return absl::OkStatus();
    case EADDRINUSE:
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", listen, ": the port is in use (another coordinator?)"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(absl::StrCat(flag, " ", listen, ": '", host,
                                                     "' is not an address of this host (use one of its own, "
                                                     "127.0.0.1, or 0.0.0.0 for all)"));
    case EACCES:
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " ", listen, ": port ", port, " is below 1024 and needs privilege; use a higher one"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(flag, " ", listen, ": cannot bind: ", std::strerror(error)));
  }
}

// The certificate and key parse and belong together, checked before gRPC
// takes them: given a key of another pair, or no PEM at all, the server
// failed to start with "the port is in use" (exit 3, restarted by its unit
// every two seconds) and named neither file.
absl::Status CheckKeyPair(const std::string& cert_pem, const std::string& key_pem, const CoordinatorOptions& options) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr),
                                                   X509_free);
  if (!cert) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-cert ", options.tls_cert_file, ": no PEM certificate in it"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())),
                                                    BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", options.tls_key_file, ": no PEM private key in it (or one with a passphrase)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-key ", options.tls_key_file,
                                                   " is not the key of the certificate in --tls-cert ",
                                                   options.tls_cert_file));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const CoordinatorOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (options.tls_cert_file.empty()) {
    if (!options.tls_client_ca_file.empty()) return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert");
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadCredentialFile(options.tls_cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadCredentialFile(options.tls_key_file, "--tls-key");
  if (!key.ok()) return key.status();
  if (auto s = CheckKeyPair(*cert, *key, options); !s.ok()) return s;
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!options.tls_client_ca_file.empty()) {
    auto ca = ReadCredentialFile(options.tls_client_ca_file, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    // gRPC said only "Could not load any root certificate", then either "the
    // port is in use" (exit 3, restarted for ever) or served a mutual TLS no
    // client could pass.
    if (!HoldsPemCertificate(*ca)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-client-ca ", options.tls_client_ca_file, ": no PEM certificate in it"));
    }
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// The server threads each kind of stream may hold at once (stream_slots.h):
// Work streams half (one per connected agent), WatchRun a quarter (one per
// waiting gate), artifact transfers an eighth; the last eighth and whatever
// the streams leave serve the short calls (results, heartbeats, submits).
struct StreamShares {
  int work, watch, transfers;
};
StreamShares SharesOf(int max_threads) {
  return {std::max(1, max_threads / 2), std::max(1, max_threads / 4), std::max(1, max_threads / 8)};
}

// A unix socket's mode comes from the umask (the coordinator drops
// everyone else's bits; the packaged unit's UMask=0027 drops the group's
// write), and connecting takes write: it is opened to the group, so that
// the local users an admin puts in the coordinator's group can run gates.
void OpenSocketToGroup(const std::string& listen) {
  if (!absl::StartsWith(listen, "unix:")) return;  // an abstract socket has no file
  chmod(UnixSocketPath(listen).c_str(), 0770);
}

// The server's limits: message sizes, the memory of all calls' buffers
// together, its threads, and how it treats idle and dead peers.
void BoundServer(const CoordinatorOptions& options, grpc::ResourceQuota* quota, grpc::ServerBuilder* builder) {
  // The largest call's limit; the Gatekeeper holds each call to its own.
  builder->SetMaxReceiveMessageSize(static_cast<int>(options.limits.LargestRequest()));
  builder->SetMaxSendMessageSize(static_cast<int>(options.limits.reply_bytes));
  // gRPC reads a request whole before refusing it as too large, so without
  // a bound on all calls' buffers together a few concurrent oversized
  // requests, with no token, take the coordinator's memory. Room for the
  // largest request twice over and the largest reply.
  quota->Resize(2 * options.limits.LargestRequest() + options.limits.reply_bytes);
  // A bounded pool: the sync server otherwise grows a thread per concurrent
  // call without limit. Each connected agent and watching gate holds one for
  // its stream; idle pollers take new calls.
  quota->SetMaxThreads(options.max_threads);
  builder->SetResourceQuota(*quota);
  builder->SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder->SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  // gRPC starts a thread when a call leaves fewer than MIN_POLLERS polling
  // and ends the one that finishes a call while MAX_POLLERS already poll. At
  // one poller per core, load agents made it start and end a thread every
  // 3.5 leases; at 16, 128 load sessions still made it start one every 6
  // leases (4,618 clone3 calls in 8 s) and the coordinator spent 0.45 ms of
  // CPU per lease. At 64 no thread starts once the pool has grown to the
  // calls in flight: 0.36 ms. Idle pollers cost a blocked thread each.
  builder->SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxIdlePollers);
  // One coordinator per port: with SO_REUSEPORT a second one would share it
  // and a gate could land on the empty one.
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Notice dead peers on idle streams.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // A connection that has not finished its handshake within 10 s is closed
  // (gRPC waits 120 s): idle connections are what run a server out of file
  // descriptors, and then its listener stops for good (listener_watch.h).
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10'000);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Start(const CoordinatorOptions& options) {
  // First: gRPC starts threads of its own as soon as credentials are made,
  // and an arena limit set after a thread has taken an arena does not hold.
  LimitMallocRetention();
  const PriorityChange priority = RaiseThreadPriority(options.priority_levels);
  if (auto s = CheckAddress(options.listen, "--listen", /*port_zero_picks=*/true); !s.ok()) return s;
  if (!options.metrics_listen.empty()) {
    if (auto s = CheckAddress(options.metrics_listen, "--metrics-listen", /*port_zero_picks=*/true); !s.ok()) return s;
  }
  if (auto s = CheckExposure(options); !s.ok()) return s;
  auto credentials = ServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  if (auto s = CheckBindable(options.listen, "--listen"); !s.ok()) return s;
  if (!options.metrics_listen.empty()) {
    if (auto s = CheckBindable(options.metrics_listen, "--metrics-listen"); !s.ok()) return s;
  }
  std::unique_ptr<Coordinator> c(new Coordinator());
  c->priority_ = priority;
  auto db_lock = LockDatabase(options.db_path);
  if (!db_lock.ok()) return db_lock.status();
  c->db_lock_ = *std::move(db_lock);
  auto store = OpenSqliteStore(options.db_path, 5'000, options.durability);
  if (!store.ok()) return store.status();
  c->store_ = *std::move(store);
  c->scheduler_ = std::make_unique<Scheduler>(c->store_.get(), &c->clock_, options.scheduler);
  if (!options.metrics_listen.empty()) {
    auto metrics = MetricsExporter::Start(options.metrics_listen, c->scheduler_.get(), options.main_branch,
                                          c->store_.get(), options.db_path);
    if (!metrics.ok()) return metrics.status();
    c->metrics_ = *std::move(metrics);
    c->scheduler_->SetListener(c->metrics_.get());
  }
  if (auto s = c->scheduler_->Recover(); !s.ok()) return s;
  c->gatekeeper_ = std::make_unique<Gatekeeper>(options.tokens, options.limits, [raw = c.get()](AuthFailure f) {
    if (raw->metrics_) raw->metrics_->OnAuthFailure(AuthFailureName(f));
  });
  const StreamShares shares = SharesOf(options.max_threads);
  c->agent_service_ = std::make_unique<AgentServiceImpl>(c->scheduler_.get(), c->gatekeeper_.get(), shares.work);
  if (auto s = c->OpenArtifacts(options); !s.ok()) return s;
  c->gate_service_ =
      std::make_unique<GateServiceImpl>(c->scheduler_.get(), c->gatekeeper_.get(), c->artifacts_.get(), shares.watch);
  c->sweep_interval_ms_ = options.sweep_interval_ms;

  WatchListeners();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  builder.RegisterService(c->agent_service_.get());
  builder.RegisterService(c->gate_service_.get());
  builder.RegisterService(c->artifact_service_.get());
  grpc::ResourceQuota quota("perfgate-coordinator");
  BoundServer(options, &quota, &builder);
  c->server_ = builder.BuildAndStart();
  if (!c->server_ || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     ": the port is in use (another coordinator?), the address is not this host's, or not host:port"));
  }
  if (IsUnixSocketAddress(options.listen)) {
    c->address_ = options.listen;  // gRPC's port for a socket is 1
    OpenSocketToGroup(options.listen);
  } else {
    c->address_ = absl::StrCat(options.listen.substr(0, options.listen.rfind(':')), ":", port);
  }
  c->sweeper_ = std::thread([raw = c.get()] { raw->SweepLoop(); });
  pthread_setname_np(c->sweeper_.native_handle(), "sweeper");
  return c;
}

absl::Status Coordinator::OpenArtifacts(const CoordinatorOptions& options) {
  ArtifactStoreOptions artifacts = options.artifacts;
  if (artifacts.dir.empty()) {
    artifacts.dir = (std::filesystem::path(options.db_path).parent_path() / "artifacts").string();
  }
  auto store = ArtifactStore::Open(artifacts, &clock_, [scheduler = scheduler_.get()](const std::string& run_id) {
    auto run = scheduler->GetRun(run_id);
    return run.ok() && run->state() == v1::RUN_STATE_RUNNING;
  });
  if (!store.ok()) return store.status();
  artifacts_ = *std::move(store);
  artifact_service_ = std::make_unique<ArtifactServiceImpl>(artifacts_.get(), gatekeeper_.get(),
                                                            SharesOf(options.max_threads).transfers);
  return absl::OkStatus();
}

Coordinator::~Coordinator() { Shutdown(); }

HeldFileLock::~HeldFileLock() {
  if (fd_ >= 0) close(fd_);
}

std::string Coordinator::metrics_address() const { return metrics_ ? metrics_->address() : ""; }

void Coordinator::SweepLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(sweep_interval_ms_));
    if (stopping_) break;
    lock.unlock();
    scheduler_->Sweep();
    artifacts_->MaybeCollectGarbage();
    absl::Status lost = store_->Lost();
    if (lost.ok()) lost = ListenerFailure();
    lock.lock();
    if (!lost.ok()) {
      lost_ = lost;
      stop_cv_.notify_all();
      return;
    }
  }
}

void Coordinator::Shutdown() {
  // Later callers block until the first has finished, so nothing is torn
  // down while another thread is still shutting it down.
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    if (scheduler_) scheduler_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    stop_cv_.notify_all();
  });
}

absl::Status Coordinator::Wait() {
  std::unique_lock lock(mu_);
  stop_cv_.wait(lock, [&] { return stopped_ || !lost_.ok(); });
  return lost_;
}

}  // namespace perfgate
