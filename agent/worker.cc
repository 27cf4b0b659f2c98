#include "agent/worker.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/case_runner.h"

namespace perfgate {
namespace {

int64_t LocalNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::system_clock::time_point In(int64_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

bool IsStale(const grpc::Status& status) { return status.error_code() == grpc::StatusCode::FAILED_PRECONDITION; }

// Refusals of our id before giving up: a predecessor that just died may not
// have been noticed yet, a live duplicate is still there after a few seconds.
constexpr int kIdRefusalsBeforeExit = 5;
// A token the coordinator refuses stays refused: the agent says so and exits
// (2) rather than retry unseen for ever. Three in a row, so that one answer
// of a coordinator restarting with new token files is not the end.
constexpr int kAuthRefusalsBeforeExit = 3;

bool IsAuthRefusal(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

std::string NewInstance() {
  std::random_device random;  // the kernel's random source on Linux
  return absl::StrFormat("%08x%08x%08x%08x", random(), random(), random(), random());
}

}  // namespace

AgentWorker::AgentWorker(WorkerOptions options, v1::HostFingerprint host)
    : options_(std::move(options)), host_(std::move(host)), instance_(NewInstance()),
      supplies_(DefaultCgroupParent(), options_.case_user ? &*options_.case_user : nullptr) {
  // Cases run with their own folder as cwd: a relative cache folder would point elsewhere there.
  std::error_code ec;
  options_.artifacts.dir = std::filesystem::absolute(options_.artifacts.dir, ec).lexically_normal().string();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  // Back within a second or so of a coordinator restart. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is not set: gRPC
  // takes it as the connect timeout, and at 100 ms a busy, just restarted coordinator never finished a handshake
  // ("tcp handshaker shutdown") for seconds, long enough to lose the session.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1'000);
  // A lease carries one case of a submitted suite; the largest call we make is CompleteLease.
  args.SetMaxReceiveMessageSize(static_cast<int>(options_.limits.submit_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options_.limits.complete_bytes));
  channel_ = OpenChannel(options_.coordinator, options_.security, args);
  stub_ = v1::AgentService::NewStub(channel_);
}

AgentWorker::~AgentWorker() { Stop(); }

void AgentWorker::Log(const std::string& line) {
  std::string full = absl::StrCat("agent ", options_.agent_id, ": ", line);
  if (options_.log)
    options_.log(full);
  else
    std::fprintf(stderr, "%s\n", full.c_str());
}

int64_t AgentWorker::Backoff(int attempt) {
  // Exponential with full jitter, 100 ms to 5 s: agents restarted together do not reconnect in lockstep.
  // No thread_local generator: the binary's thread_locals share one block that every thread of every perfgate
  // process (the coordinator's hundreds of gRPC threads too) writes when it starts; an mt19937 made it 5 KB
  // larger, and any variable at all adds a page ahead of the CUDA runtime's page-aligned one. Backoff is rare.
  absl::BitGen gen;
  const int64_t cap = std::min<int64_t>(5'000, 100LL << std::min(attempt, 6));
  return absl::Uniform<int64_t>(absl::IntervalClosed, gen, cap / 2, cap);
}

void AgentWorker::SleepInterruptibly(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
}

void AgentWorker::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  if (current_cancel_) current_cancel_->Cancel();
  if (work_context_) work_context_->TryCancel();
  cv_.notify_all();
  report_cv_.notify_all();
}

bool AgentWorker::WaitForCasesCompleted(uint64_t n, int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return cases_completed_.load() >= n; });
}

void AgentWorker::DropLeaseLocked(const std::string& lease_id, const std::string& why) {
  if (lease_id == current_lease_id_ && current_cancel_) {
    Log(absl::StrCat("stopping lease ", lease_id, ": ", why));
    current_cancel_->Cancel();
  }
  std::erase_if(queue_, [&](const v1::Lease& l) { return l.lease_id() == lease_id; });
}

void AgentWorker::MarkSessionStale() {
  std::lock_guard lock(mu_);
  session_stale_ = true;
  if (current_cancel_) current_cancel_->Cancel();
  if (work_context_) work_context_->TryCancel();
  cv_.notify_all();
  report_cv_.notify_all();
}

bool AgentWorker::RegisterWithRetry() {
  for (int attempt = 0, refusals = 0, auth_refusals = 0;; ++attempt) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
    }
    grpc::ClientContext context;
    context.set_deadline(In(5'000));
    context.set_wait_for_ready(true);
    v1::RegisterRequest request;
    request.set_agent_id(options_.agent_id);
    request.set_instance(instance_);
    request.set_pool(options_.pool);
    for (const auto& l : options_.labels) request.add_labels(l);
    *request.mutable_host() = host_;
    v1::RegisterResponse response;
    grpc::Status status = stub_->Register(&context, request, &response);
    if (status.ok()) {
      std::lock_guard lock(mu_);
      session_id_ = response.session_id();
      session_stale_ = false;
      heartbeat_interval_ms_ = response.heartbeat_interval_ms();
      lease_ttl_ms_ = response.lease_ttl_ms();
      results_imply_host_ = response.results_imply_host();
      Log(absl::StrCat("registered with ", options_.coordinator, " (", session_id_, ")"));
      return true;
    }
    if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS && ++refusals == kIdRefusalsBeforeExit) {
      Log(absl::StrCat("not registered: ", status.error_message()));
      refusal_ = absl::AlreadyExistsError(status.error_message());
      return false;
    }
    // Names the coordinator refuses, or a pool past its limit: trying again
    // cannot help. (RESOURCE_EXHAUSTED can: a full thread pool says so too.)
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      Log(absl::StrCat("not registered: ", status.error_message()));
      refusal_ = absl::InvalidArgumentError(status.error_message());
      return false;
    }
    auth_refusals = IsAuthRefusal(status) ? auth_refusals + 1 : 0;
    if (auth_refusals == kAuthRefusalsBeforeExit) {
      Log(absl::StrCat("not registered: ", status.error_message(),
                       "; give the coordinator's agent token with --token-file (or $PERFGATE_TOKEN_FILE)"));
      refusal_ = absl::PermissionDeniedError(status.error_message());
      return false;
    }
    if (attempt == 0 || attempt % 10 == 0) {
      Log(absl::StrCat("cannot register with ", options_.coordinator, ": ", status.error_message(), "; retrying"));
    }
    SleepInterruptibly(Backoff(attempt));
  }
}

void AgentWorker::ReadWork(std::string session_id) {
  for (int attempt = 0;;) {
    auto context = std::make_shared<grpc::ClientContext>();
    {
      std::lock_guard lock(mu_);
      if (stopping_ || session_stale_ || session_id_ != session_id) return;
      work_context_ = context;
    }
    v1::WorkRequest request;
    request.set_session_id(session_id);
    auto reader = stub_->Work(context.get(), request);
    v1::WorkItem item;
    while (reader->Read(&item)) {
      attempt = 0;
      std::lock_guard lock(mu_);
      if (item.has_lease()) {
        queue_.push_back(item.lease());
      } else if (!item.cancel_lease_id().empty()) {
        DropLeaseLocked(item.cancel_lease_id(), "the coordinator cancelled it");
      }
      cv_.notify_all();
    }
    grpc::Status status = reader->Finish();
    {
      std::lock_guard lock(mu_);
      work_context_.reset();
      if (stopping_) return;
    }
    if (IsStale(status)) {
      Log(absl::StrCat("session refused (", status.error_message(), ")"));
      MarkSessionStale();
      return;
    }
    // Not SleepInterruptibly: a refused heartbeat must end this thread at once, so the agent registers again.
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(Backoff(attempt++)),
                 [&] { return stopping_ || session_stale_ || session_id_ != session_id; });
  }
}

void AgentWorker::HeartbeatLoop(std::string session_id, uint32_t interval_ms, uint32_t ttl_ms) {
  int failures = 0;
  int64_t last_answer_ms = LocalNowMs();
  bool outage_logged = false;
  for (;;) {
    std::vector<std::string> held;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(interval_ms), [&] { return stopping_ || session_stale_; });
      if (stopping_ || session_stale_ || session_id_ != session_id) return;
      if (!current_lease_id_.empty()) held.push_back(current_lease_id_);
      for (const auto& l : queue_) held.push_back(l.lease_id());
      for (const auto& r : unreported_) held.push_back(r.lease_id);
    }
    grpc::ClientContext context;
    context.set_deadline(In(std::max<int64_t>(1'000, interval_ms)));
    // Waiting for the channel (rather than failing fast while it reconnects)
    // also drives the reconnect: a synchronous client makes progress on a
    // new connection only while a call waits on it.
    context.set_wait_for_ready(true);
    v1::HeartbeatRequest request;
    request.set_session_id(session_id);
    for (const auto& id : held) request.add_lease_ids(id);
    v1::HeartbeatResponse response;
    const int64_t sent_at = LocalNowMs();
    grpc::Status status = stub_->Heartbeat(&context, request, &response);
    if (IsStale(status)) {
      Log(absl::StrCat("heartbeat refused (", status.error_message(), ")"));
      MarkSessionStale();
      return;
    }
    std::lock_guard lock(mu_);
    if (status.ok()) {
      failures = 0;
      last_answer_ms = sent_at;
      outage_logged = false;
      for (const auto& id : response.cancel_lease_ids()) DropLeaseLocked(id, "it is no longer ours");
      continue;
    }
    if (failures++ % 5 == 0) Log(absl::StrCat("heartbeat failed: ", status.error_message()));
    // An unrenewed lease is not a reason to stop: only the coordinator knows
    // whether it gave the lease away (then it says so and the result is
    // stale) or was merely away (a restart resumes leases with a fresh TTL).
    // Stopping here would throw away a measurement that may still count.
    if (!current_lease_id_.empty() && !outage_logged && LocalNowMs() - last_answer_ms > ttl_ms) {
      Log(absl::StrCat("lease ", current_lease_id_, " not renewed for ", LocalNowMs() - last_answer_ms,
                       " ms; the case keeps running and its result waits for the coordinator"));
      outage_logged = true;
    }
  }
}

void AgentWorker::Run() {
  while (RegisterWithRetry()) {
    std::string session_id;
    uint32_t interval_ms, ttl_ms;
    {
      std::lock_guard lock(mu_);
      session_id = session_id_;
      interval_ms = heartbeat_interval_ms_;
      ttl_ms = lease_ttl_ms_;
    }
    std::thread reader(&AgentWorker::ReadWork, this, session_id);
    std::thread heartbeat(&AgentWorker::HeartbeatLoop, this, session_id, interval_ms, ttl_ms);
    std::thread reporter(&AgentWorker::ReportLoop, this, session_id);
    RunLeases();
    {
      std::lock_guard lock(mu_);
      if (work_context_) work_context_->TryCancel();
      queue_.clear();
      cv_.notify_all();  // the heartbeat thread waits on the same condition
      report_cv_.notify_all();
    }
    reader.join();
    heartbeat.join();
    reporter.join();
    std::lock_guard lock(mu_);
    unreported_.clear();  // refused with the session, or offered once more on Stop()
    if (stopping_) break;
  }
  Log("stopped");
}

void AgentWorker::RunLeases() {
  const auto leased = [&] {
    std::lock_guard lock(mu_);
    return stopping_ || session_stale_ || !queue_.empty();
  };
  for (;;) {
    // The finished case's groups and folder are removed and the next case's made while no lease is
    // waiting: off the path from one case's end to the next one's start whenever the agent waits anyway.
    supplies_.Tidy(leased);
    v1::Lease lease;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || session_stale_ || !queue_.empty(); });
      if (stopping_ || session_stale_) return;
      lease = std::move(queue_.front());
      queue_.pop_front();
      current_lease_id_ = lease.lease_id();
      report_on_start_ = ReportDueLocked(LocalNowMs());
    }
    RunLease(lease);
  }
}

void AgentWorker::RunLease(const v1::Lease& lease) {
  const v1::CaseSpec& spec = lease.spec();
  CancelToken cancel;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || session_stale_) {  // since the lease was taken: the case is not started
      current_lease_id_.clear();
      report_cv_.notify_all();  // it waits for the case to end before it ends with the session
      return;
    }
    current_cancel_ = &cancel;
  }
  Log(absl::StrCat("running ", spec.name(), " (", lease.run_id(), ", attempt ", lease.attempt(), ")"));
  CaseRunOptions options;
  options.cancel = &cancel;
  options.kill_grace_ms = options_.kill_grace_ms;
  options.labels = options_.labels;
  options.supplies = &supplies_;
  options.user = options_.case_user ? &*options_.case_user : nullptr;
  // A report due when the lease was taken goes once its case has started: sent in between, it took a
  // core from the spawn, and every 13th case started 1-3 ms late (one agent, report per 14 results).
  // The lock only then: a case that ends while this thread waits for it is timed late.
  options.started = [this] {
    if (!report_on_start_) return;
    report_on_start_ = false;
    std::lock_guard lock(mu_);
    report_cv_.notify_one();
  };
  const auto started = std::chrono::steady_clock::now();
  v1::CaseResult result = RunWithArtifacts(spec, options, &cancel);
  const int64_t finished_ms = LocalNowMs();
  const auto busy = std::chrono::steady_clock::now() - started;
  // At least 1: 0 says "not reported".
  result.set_busy_us(
      static_cast<uint64_t>(std::max<int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(busy).count(), 1)));
  result.set_agent_id(options_.agent_id);
  result.set_pool(options_.pool);
  Log(absl::StrCat("finished ", spec.name(), ": ", v1::CaseResult::Outcome_Name(result.outcome()),
                   result.error().empty() ? "" : " (" + result.error() + ")"));
  std::lock_guard lock(mu_);
  current_cancel_ = nullptr;
  current_lease_id_.clear();
  last_case_short_ = busy <= std::chrono::milliseconds(kShortCaseMs);
  result.clear_host();  // host_, put back when sent unless the coordinator implies it (NextReportLocked)
  unreported_.push_back({lease.lease_id(), std::move(result), finished_ms});
  // Only then: a thread woken per case for nothing costs the next case's start a core on a small machine.
  // With a lease waiting, not even then: its case starts first (options.started above), unless this
  // case never started and the report it held back is still due.
  if ((queue_.empty() || report_on_start_) && ReportDueLocked(finished_ms)) report_cv_.notify_one();
  report_on_start_ = false;
}

v1::CaseResult AgentWorker::RunWithArtifacts(const v1::CaseSpec& spec, const CaseRunOptions& options,
                                             CancelToken* cancel) {
  if (!ArtifactCache::Needs(spec)) return RunCase(spec, host_, options);
  absl::StatusOr<v1::CaseSpec> prepared = absl::UnavailableError("no artifact cache");
  const std::string cases_dir = options_.artifacts.dir + "/cases";
  if (!artifacts_) {
    std::error_code ec;
    std::filesystem::remove_all(cases_dir, ec);  // folders of cases a previous agent did not finish
    auto opened = ArtifactCache::Open(options_.artifacts, channel_);
    if (opened.ok()) artifacts_ = *std::move(opened);
    if (!opened.ok()) prepared = opened.status();
  }
  const std::string case_dir = absl::StrCat(cases_dir, "/", ++cases_prepared_);
  if (artifacts_) prepared = artifacts_->Prepare(spec, case_dir, cancel);
  v1::CaseResult result;
  if (prepared.ok()) {
    result = RunCase(*prepared, host_, options);
  } else {
    // Nothing was measured: the case ends as an error that says which artifact and why.
    result.set_case_name(spec.name());
    *result.mutable_host() = host_;
    result.set_outcome(cancel->cancelled() ? v1::CaseResult::OUTCOME_CANCELLED : v1::CaseResult::OUTCOME_ERROR);
    result.set_error(std::string(prepared.status().message()));
  }
  std::error_code ec;
  std::filesystem::remove_all(case_dir, ec);
  return result;
}

namespace {

// Transient: the coordinator is away, restarting or overloaded; the result is
// offered again. Any other error is the coordinator's answer about the lease.
bool WorthRetrying(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

// RESOURCE_EXHAUSTED also comes as a stream reset when the coordinator's
// buffers for all calls together are full (someone floods it): load shed,
// not a verdict on this result's size.
bool RefusedAsTooLarge(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         status.error_message().find("RST_STREAM") == std::string::npos;
}

// What is reported for a result the coordinator refused as too large:
// running the case again would only produce the same oversized result.
v1::CaseResult TooLargeError(const v1::CaseResult& result, const grpc::Status& status) {
  v1::CaseResult error;
  error.set_case_name(result.case_name());
  error.set_agent_id(result.agent_id());
  error.set_pool(result.pool());
  error.set_outcome(v1::CaseResult::OUTCOME_ERROR);
  error.set_error(absl::StrCat("the result is too large to report: ", status.error_message()));
  return error;
}

}  // namespace

bool AgentWorker::ReportDueLocked(int64_t now_ms) const {
  if (unreported_.empty()) return false;
  // Two leases left to run: their cases run while the coordinator answers, and the answer brings the next.
  return queue_.size() <= kReportWithLeasesLeft || stopping_ || session_stale_ ||
         now_ms - unreported_.front().finished_ms >= kMaxReportDelayMs;
}

v1::CompleteLeaseRequest AgentWorker::NextReportLocked(const std::string& session_id, size_t most) const {
  v1::CompleteLeaseRequest request;
  request.set_session_id(session_id);
  request.set_lease_id(unreported_.front().lease_id);
  *request.mutable_result() = unreported_.front().result;
  if (!results_imply_host_) *request.mutable_result()->mutable_host() = host_;
  size_t bytes = request.ByteSizeLong();
  const size_t host_bytes = results_imply_host_ ? 0 : host_.ByteSizeLong();
  for (size_t i = 1; i < std::min(most, unreported_.size()); ++i) {
    const Unreported& more = unreported_[i];
    if (bytes + more.result.ByteSizeLong() + host_bytes > options_.limits.complete_bytes / 2) break;
    v1::LeaseResult* added = request.add_more_results();
    added->set_lease_id(more.lease_id);
    *added->mutable_result() = more.result;
    if (!results_imply_host_) *added->mutable_result()->mutable_host() = host_;
    bytes += added->ByteSizeLong();
  }
  // Idle after this unless the reply brings leases: the next come in it, with no Work stream round trip.
  // Several only while cases are short; the coordinator decides which may be held ahead.
  if (!stopping_ && !session_stale_) request.set_leases_wanted(last_case_short_ ? kLeasesHeld : 1);
  request.set_want_next_lease(request.leases_wanted() > 0);
  return request;
}

void AgentWorker::ReportLoop(std::string session_id) {
  size_t most = kMaxResultsPerReport;
  for (;;) {
    v1::CompleteLeaseRequest request;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (ReportDueLocked(LocalNowMs())) break;
        // The session ends once its last case's result is offered: a refused session's results are still
        // kept (as stale) for the record, and a stopped case's (CANCELLED) lets the coordinator re-run it
        // elsewhere at once.
        if ((stopping_ || session_stale_) && current_lease_id_.empty()) return;
        if (unreported_.empty()) {
          report_cv_.wait(lock);
        } else {
          report_cv_.wait_for(lock, std::chrono::milliseconds(kMaxReportDelayMs));
        }
      }
      request = NextReportLocked(session_id, most);
    }
    most = Report(session_id, std::move(request)) ? kMaxResultsPerReport : 1;
  }
}

bool AgentWorker::Report(const std::string& session_id, v1::CompleteLeaseRequest request) {
  const std::string lease_id = request.lease_id();
  const bool several = request.more_results_size() > 0;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(In(5'000));   // short: Stop() is seen between attempts
    context.set_wait_for_ready(true);  // delivered as soon as the coordinator is back
    v1::CompleteLeaseResponse response;
    grpc::Status status = stub_->CompleteLease(&context, request, &response);
    if (status.ok()) {
      TakeAnswer(request, response);
      if (response.disposition() == v1::CompleteLeaseResponse::DISPOSITION_STALE) {
        Log(absl::StrCat("result for ", lease_id, " was stale (lease expired or cancelled); kept, not counted"));
      } else if (attempt > 0) {
        Log(absl::StrCat("delivered result for ", lease_id, " after ", attempt, " retries"));
      }
      return true;
    }
    if (IsStale(status)) {
      Log(absl::StrCat(1 + request.more_results_size(), " result(s) from ", lease_id, " refused with the session (",
                       status.error_message(), ")"));
      DropUnreported(LeaseIdsOf(request, request.more_results_size()));
      MarkSessionStale();
      return true;
    }
    // A refusal of several results at once may be about any of them (too large: one of them, or all together):
    // each is offered alone before any is dropped or replaced.
    if (several && (RefusedAsTooLarge(status) || !WorthRetrying(status))) return false;
    if (RefusedAsTooLarge(status)) {
      *request.mutable_result() = TooLargeError(request.result(), status);
      Log(absl::StrCat("result for ", lease_id, " refused as too large; reporting a case error instead"));
      continue;
    }
    if (!WorthRetrying(status)) {
      Log(absl::StrCat("coordinator refused result for ", lease_id, ": ", status.error_message()));
      DropUnreported({lease_id});
      return true;
    }
    if (attempt % 10 == 0) {
      Log(absl::StrCat("cannot deliver result for ", lease_id, " (", status.error_message(),
                       "); keeping it, retrying"));
    }
    if (GaveUpOnStop(lease_id)) return true;
    SleepInterruptibly(Backoff(attempt));
  }
}

bool AgentWorker::GaveUpOnStop(const std::string& lease_id) {
  std::lock_guard lock(mu_);
  if (!stopping_) return false;
  Log(absl::StrCat("stopping with ", unreported_.size(), " result(s) undelivered, the first for ", lease_id));
  unreported_.clear();
  return true;
}

std::set<std::string> AgentWorker::LeaseIdsOf(const v1::CompleteLeaseRequest& request, int more) {
  std::set<std::string> ids = {request.lease_id()};
  for (int i = 0; i < more; ++i) ids.insert(request.more_results(i).lease_id());
  return ids;
}

void AgentWorker::DropUnreported(const std::set<std::string>& lease_ids) {
  std::lock_guard lock(mu_);
  std::erase_if(unreported_, [&](const Unreported& r) { return lease_ids.count(r.lease_id) > 0; });
}

void AgentWorker::TakeAnswer(const v1::CompleteLeaseRequest& request, const v1::CompleteLeaseResponse& response) {
  // The first result and as many more as the reply answers; the rest go again in the next call.
  const std::set<std::string> answered =
      LeaseIdsOf(request, std::min(response.more_dispositions_size(), request.more_results_size()));
  DropUnreported(answered);
  {
    std::lock_guard lock(mu_);
    cases_completed_ += answered.size();
    if (!stopping_ && !session_stale_) {
      // In the heartbeats from now on; the run thread takes them in this order.
      if (response.has_next_lease()) queue_.push_back(response.next_lease());
      for (const auto& lease : response.more_leases()) queue_.push_back(lease);
    }
  }
  cv_.notify_all();
}

}  // namespace perfgate
