#include "bench/load_agent.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "agent/case_runner.h"
#include "agent/host_fingerprint.h"
#include "core/series.h"
#include "perfgate/v1/agent.grpc.pb.h"

namespace perfgate {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Seconds a simulated case lasts: argv {"sleep", SECONDS}; 0 for anything else.
double SimulatedSeconds(const v1::CaseSpec& spec) {
  if (spec.argv_size() != 2 || spec.argv(0) != "sleep") return 0;
  return std::atof(spec.argv(1).c_str());
}

// What the real agent reports for a trivial case: the four agent metrics per
// sample, its identity and the host it ran on (nullptr: implied by its session).
v1::CaseResult ResultFor(const v1::CaseSpec& spec, double wall_s, const LoadAgentOptions& options,
                         const std::string& agent_id, const v1::HostFingerprint* host) {
  v1::CaseResult result;
  result.set_case_name(spec.name());
  result.set_outcome(v1::CaseResult::OUTCOME_OK);
  result.set_agent_id(agent_id);
  result.set_pool(options.pool);
  if (host) *result.mutable_host() = *host;  // as the real agent: left out where the coordinator implies it
  for (int i = 0; i < options.samples_per_result; ++i) {
    auto* sample = result.add_samples();
    sample->set_index(static_cast<uint32_t>(i));
    AddValue(sample, spec.name(), kWallTime, wall_s + 0.0004 + 0.00001 * i, "s", "agent:clock");
    AddValue(sample, spec.name(), kUserCpuTime, 0.0002, "s", "agent:rusage");
    AddValue(sample, spec.name(), kSysCpuTime, 0.0003, "s", "agent:rusage");
    AddValue(sample, spec.name(), kPeakRss, 1'400'000 + 4096.0 * i, "bytes", "agent:cgroup");
  }
  return result;
}

}  // namespace

struct LoadAgent::Session {
  std::string agent_id;
  std::string session_id;
  bool results_imply_host = false;  // RegisterResponse.results_imply_host
  std::unique_ptr<v1::AgentService::Stub> stub;
  grpc::ClientContext work;  // cancelled by Stop()
  std::mutex mu;
  std::string lease_id ABSL_GUARDED_BY(mu);  // held while a simulated case runs
};

LoadAgent::LoadAgent(LoadAgentOptions options) : options_(std::move(options)) {}

LoadAgent::~LoadAgent() { Stop(); }

absl::Status LoadAgent::Start() {
  host_ = ProbeHost();
  std::shared_ptr<grpc::Channel> channel;
  for (int i = 0; i < options_.sessions; ++i) {
    if (i % std::max(1, options_.sessions_per_channel) == 0) {
      // A distinct argument per channel: gRPC would otherwise share one connection among them.
      grpc::ChannelArguments args;
      args.SetInt("perfgate.load_channel", i);
      channel = grpc::CreateCustomChannel(options_.coordinator, grpc::InsecureChannelCredentials(), args);
    }
    auto session = std::make_unique<Session>();
    session->agent_id = absl::StrCat(options_.id_prefix, "-", i);
    session->stub = v1::AgentService::NewStub(channel);
    v1::RegisterRequest request;
    request.set_agent_id(session->agent_id);
    request.set_pool(options_.pool);
    request.set_instance(absl::StrCat(session->agent_id, "-", NowNs()));
    *request.mutable_host() = host_;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::RegisterResponse response;
    grpc::Status s = session->stub->Register(&context, request, &response);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("load agent ", session->agent_id, ": register: ", s.error_message()));
    }
    session->session_id = response.session_id();
    session->results_imply_host = response.results_imply_host();
    sessions_.push_back(std::move(session));
  }
  for (auto& session : sessions_) {
    threads_.emplace_back([this, s = session.get()] { Serve(s); });
  }
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  return absl::OkStatus();
}

void LoadAgent::Serve(Session* session) {
  v1::WorkRequest request;
  request.set_session_id(session->session_id);
  auto reader = session->stub->Work(&session->work, request);
  v1::WorkItem item;
  while (reader->Read(&item)) {
    // A cancellation: nothing runs, so nothing to stop.
    if (!item.has_lease()) continue;
    // As the real agent does: each completion asks for the next lease in its reply.
    std::optional<v1::Lease> lease = item.lease();
    while (lease && !stopping_) lease = RunAndComplete(session, *lease);
    if (stopping_) break;
  }
  reader->Finish().IgnoreError();
}

std::optional<v1::Lease> LoadAgent::RunAndComplete(Session* session, const v1::Lease& lease) {
  const int64_t taken_ns = NowNs();
  RecordArrival(taken_ns);
  const double seconds = SimulatedSeconds(lease.spec());
  if (seconds > 0) {
    {
      std::lock_guard lock(session->mu);
      session->lease_id = lease.lease_id();
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  }
  v1::CompleteLeaseRequest complete;
  complete.set_session_id(session->session_id);
  complete.set_lease_id(lease.lease_id());
  complete.set_want_next_lease(true);
  *complete.mutable_result() =
      ResultFor(lease.spec(), seconds, options_, session->agent_id, session->results_imply_host ? nullptr : &host_);
  complete.mutable_result()->set_busy_us(static_cast<uint64_t>(std::max<int64_t>((NowNs() - taken_ns) / 1000, 1)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::CompleteLeaseResponse response;
  grpc::Status s = session->stub->CompleteLease(&context, complete, &response);
  std::lock_guard lock(session->mu);
  session->lease_id.clear();
  if (s.ok()) ++completed_;
  if (!s.ok() || !response.has_next_lease()) return std::nullopt;
  // Held from now on: the heartbeat renews it while a simulated case sleeps.
  session->lease_id = response.next_lease().lease_id();
  return std::move(*response.mutable_next_lease());
}

void LoadAgent::HeartbeatLoop() {
  // Keeps idle sessions alive between runs and renews simulated cases' leases.
  while (!stopping_) {
    for (auto& session : sessions_) {
      if (stopping_) return;
      v1::HeartbeatRequest request;
      request.set_session_id(session->session_id);
      {
        std::lock_guard lock(session->mu);
        if (!session->lease_id.empty()) request.add_lease_ids(session->lease_id);
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::HeartbeatResponse response;
      session->stub->Heartbeat(&context, request, &response).IgnoreError();
    }
    for (int i = 0; i < 20 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void LoadAgent::RecordArrival(int64_t ns) {
  std::lock_guard lock(mu_);
  arrivals_.push_back(ns);
}

std::vector<int64_t> LoadAgent::LeaseArrivals() const {
  std::lock_guard lock(mu_);
  return arrivals_;
}

void LoadAgent::Stop() {
  if (stopping_.exchange(true)) return;
  for (auto& session : sessions_) session->work.TryCancel();
  for (auto& t : threads_) t.join();
  if (heartbeat_.joinable()) heartbeat_.join();
}

}  // namespace perfgate
