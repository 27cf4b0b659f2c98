#include "coordinator/scheduler.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/cpu_pacer.h"
#include "coordinator/malloc_policy.h"
#include "coordinator/process_priority.h"
#include "core/capabilities.h"
#include "core/identifiers.h"
#include "core/names.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

using Steady = std::chrono::steady_clock;

bool IsFinal(v1::CaseState state) {
  return state == v1::CASE_STATE_DONE || state == v1::CASE_STATE_ERROR || state == v1::CASE_STATE_NO_CAPABLE_AGENT ||
         state == v1::CASE_STATE_CANCELLED;
}

absl::Status StaleSession(const std::string& session_id) {
  return absl::FailedPreconditionError(absl::StrCat("stale session '", session_id, "': register again"));
}

// "<prefix>-" and 128 bits from the kernel's CSPRNG, in hex: ids are
// capabilities (a lease id lets its holder report a result), so they must not
// be guessable from ones seen before.
std::string NewId(const char* prefix) {
  unsigned char bytes[16];
  size_t filled = 0;
  while (filled < sizeof bytes) {
    const ssize_t n = getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Only on a kernel without getrandom (before Linux 3.17): no safe ids, so no coordinator.
      std::fprintf(stderr, "perfgate coordinator: getrandom failed: %s\n", std::strerror(errno));
      std::abort();
    }
    filled += static_cast<size_t>(n);
  }
  std::string id = absl::StrCat(prefix, "-");
  for (unsigned char b : bytes) absl::StrAppend(&id, absl::Hex(b, absl::kZeroPad2));
  return id;
}

bool SameInstance(const std::string& a, const std::string& b) { return !a.empty() && a == b; }

// A GPU agent takes GPU cases before any other: CPU work must not keep one
// waiting while its only capable hardware is busy.
bool NeedsGpu(const v1::Requirements& r) {
  return r.device() == v1::Requirements::DEVICE_GPU || r.min_gpu_memory_bytes() > 0 || r.min_compute_capability() > 0;
}

// The durations read, or none: without them the cases only lose their order.
// A reference either way: the conditional with a temporary copied the whole
// map of a suite's durations.
const std::map<std::string, int64_t>& DurationsOrNone(const absl::StatusOr<std::map<std::string, int64_t>>& read) {
  static const std::map<std::string, int64_t> kNone;
  return read.ok() ? *read : kNone;
}

// Expected lease time: the suite's own figure, else the case's history, else
// unknown (scheduled first, in file order: a case never seen may be long).
int64_t ExpectedMs(const v1::CaseSpec& spec, const std::map<std::string, int64_t>& durations) {
  // A client's value beyond int64 is the longest known one, not a negative one; INT64_MAX itself means unknown.
  constexpr uint64_t kLongestKnownMs = std::numeric_limits<int64_t>::max() - 1;
  const uint64_t given = spec.expected_duration_ms();
  if (given > 0) return static_cast<int64_t>(std::min(given, kLongestKnownMs));
  auto it = durations.find(spec.name());
  return it == durations.end() ? std::numeric_limits<int64_t>::max() : it->second;
}

}  // namespace

Scheduler::Scheduler(Store* store, const TimeSource* clock, SchedulerOptions options)
    : store_(store), clock_(clock), options_(options) {}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::LogIfError(const absl::Status& status, const char* what) {
  // The store is the system of record; failing to write is loud and counted,
  // and the in-memory state stays authoritative until the next write succeeds.
  if (status.ok()) return;
  ++stats_.store_errors;
  std::fprintf(stderr, "perfgate coordinator: store error (%s): %s\n", what, status.ToString().c_str());
}

absl::Status Scheduler::StoreFailed(const absl::Status& status, const char* what) {
  LogIfError(status, what);
  return absl::UnavailableError(absl::StrCat("the coordinator could not store the ", what, " (", status.message(),
                                             "); nothing was changed, retry"));
}

absl::Status Scheduler::Recover() {
  auto recovered = store_->Recover();
  if (!recovered.ok()) return recovered.status();
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMs();
  for (auto& record : recovered->sessions) {
    // Agents get a full session TTL to reconnect after a coordinator restart.
    record.last_seen_ms = now;
    Session session;
    session.record = record;
    AddSession(std::move(session));
  }
  for (size_t i = 0; i < recovered->runs.size(); ++i) RecoverRun(recovered->runs[i], recovered->suites[i]);
  for (auto& lease : recovered->active_leases) RecoverLease(lease, now);
  for (auto& [id, run] : runs_) {
    for (size_t c = 0; c < run.cases.size(); ++c) {
      if (run.cases[c].status.state() == v1::CASE_STATE_RUNNING && run.cases[c].lease_id.empty()) {
        RetryOrGiveUp(run, static_cast<int>(c),
                      absl::StrCat("attempt ", run.cases[c].status.attempts(), " lost in a coordinator restart"));
      }
    }
    MaybeFinish(run);
  }
  changed_.notify_all();
  return absl::OkStatus();
}

void Scheduler::RecoverRun(const v1::Run& run, const v1::Suite& suite) {
  RunEntry entry;
  entry.meta = run;
  entry.meta.clear_cases();
  for (int c = 0; c < run.cases_size(); ++c) {
    CaseEntry ce;
    ce.spec = suite.cases(c);
    ce.status = run.cases(c);
    if (ce.status.has_result()) {
      ce.result = ce.status.result().SerializeAsString();
      ce.status.clear_result();
    }
    entry.cases.push_back(std::move(ce));
  }
  auto durations = store_->CaseDurations(suite.name());
  LogIfError(durations.status(), "read case durations");
  PlaceCases(entry, DurationsOrNone(durations));
  entry.seq = next_run_seq_++;
  RunEntry& added = runs_.emplace(run.run_id(), std::move(entry)).first->second;
  run_by_seq_[added.seq] = &added;
  Enqueue(added);
}

void Scheduler::RecoverLease(LeaseRecord& lease, int64_t now) {
  auto run = runs_.find(lease.run_id);
  Session* session = LiveSession(lease.session_id);
  if (run == runs_.end() || lease.case_index >= static_cast<int>(run->second.cases.size()) ||
      run->second.cases[lease.case_index].status.state() != v1::CASE_STATE_RUNNING || !session) {
    // Orphaned by a crash between two writes: not counted, the case is re-queued by Recover.
    lease.state = LeaseState::kLost;
    LogIfError(store_->UpdateLease(lease.lease_id, LeaseState::kLost, lease.expires_at_ms), "recover lease");
    if (run != runs_.end()) {
      run->second.lease_ids.push_back(lease.lease_id);
      leases_.emplace(lease.lease_id, lease);
    }
    return;
  }
  // Resumed, not expired: the agent could not renew while we were down, and
  // it kept running the case (only we end leases). A fresh TTL from now
  // gives it time to reconnect; written back so the store says the same.
  // (Renewals are not written: a restart gives every lease a fresh TTL.)
  lease.expires_at_ms = std::max(lease.expires_at_ms, now + options_.lease_ttl_ms);
  LogIfError(store_->UpdateLease(lease.lease_id, LeaseState::kActive, lease.expires_at_ms), "resume lease");
  run->second.cases[lease.case_index].lease_id = lease.lease_id;
  run->second.lease_ids.push_back(lease.lease_id);
  session->lease_ids.push_back(lease.lease_id);
  active_leases_.insert(&leases_.emplace(lease.lease_id, lease).first->second);
}

Scheduler::Session* Scheduler::LiveSession(const std::string& session_id) {
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

// What `session` lacks to run a case with `requirements`; empty if nothing.
std::string Scheduler::Unmet(const Session& session, const v1::Requirements& requirements) const {
  if (!requirements.pool().empty() && requirements.pool() != session.record.pool) {
    return absl::StrCat("needs pool '", requirements.pool(), "', is in pool '", session.record.pool, "'");
  }
  return UnmetRequirement(requirements, session.record.host, session.record.labels);
}

bool Scheduler::Matches(const Session& session, const v1::Requirements& requirements) const {
  return Unmet(session, requirements).empty();
}

bool Scheduler::AnyCapable(const v1::Requirements& requirements, std::string* why) const {
  std::vector<std::string> reasons;
  for (const auto& [id, session] : sessions_) {
    std::string unmet = Unmet(session, requirements);
    if (unmet.empty()) return true;
    reasons.push_back(absl::StrCat(session.record.agent_id, ": ", unmet));
  }
  if (why) {
    *why = sessions_.empty() ? "no agent is registered"
                             : absl::StrCat("no registered agent can run it (", absl::StrJoin(reasons, "; "), ")");
  }
  return false;
}

absl::Status Scheduler::CheckIdFree(const Session& holder, const v1::RegisterRequest& request) {
  // A crashed agent's streams are closed by its kernel, so its successor takes
  // the id at once; a live one keeps it, and the newcomer is told why.
  if (SameInstance(holder.instance, request.instance())) return absl::OkStatus();
  for (const auto& [id, stream] : holder.streams) {
    if (!stream.connected()) continue;
    ++stats_.registrations_refused;
    const std::string& host = holder.record.host.hostname();
    return absl::AlreadyExistsError(absl::StrCat("agent id '", request.agent_id(), "' is in use by a live agent",
                                                 host.empty() ? "" : absl::StrCat(" on host ", host), " at ",
                                                 stream.peer, "; give this agent another --id"));
  }
  return absl::OkStatus();
}

namespace {

// What a Register may name: an agent token holder's names outlive its session
// (store rows, known pools, Prometheus labels), so each is bounded.
absl::Status CheckRegistration(const v1::RegisterRequest& request) {
  std::string problem = AgentNameProblem("id", request.agent_id());
  if (problem.empty() && !request.pool().empty()) problem = AgentNameProblem("pool", request.pool());
  if (problem.empty() && static_cast<size_t>(request.labels_size()) > kMaxAgentLabels) {
    problem = absl::StrCat("an agent may have at most ", kMaxAgentLabels, " labels, not ", request.labels_size());
  }
  for (const auto& label : request.labels()) {
    if (!problem.empty()) break;
    problem = AgentNameProblem("label", label);
  }
  if (problem.empty() && request.host().ByteSizeLong() > Scheduler::kMaxHostFingerprintBytes) {
    problem = absl::StrCat("a host fingerprint may be at most ", Scheduler::kMaxHostFingerprintBytes, " bytes, not ",
                           request.host().ByteSizeLong());
  }
  if (problem.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(problem, " (agent '", EscapeControls(request.agent_id().substr(0, 80)), "')"));
}

}  // namespace

absl::StatusOr<v1::RegisterResponse> Scheduler::Register(const v1::RegisterRequest& request) {
  if (auto s = CheckRegistration(request); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
  std::string fenced;
  if (auto old = agent_session_.find(request.agent_id()); old != agent_session_.end()) {
    if (const Session* holder = LiveSession(old->second)) {
      if (auto s = CheckIdFree(*holder, request); !s.ok()) return s;
      fenced = old->second;
    }
  }
  if (sessions_.size() >= options_.max_sessions && fenced.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat("this coordinator serves at most ", options_.max_sessions,
                                                     " agent sessions at once; agent '", request.agent_id(),
                                                     "' may register once one ends"));
  }
  Session session;
  session.record.session_id = NewId("session");
  session.record.agent_id = request.agent_id();
  session.record.pool = request.pool();
  session.record.labels.assign(request.labels().begin(), request.labels().end());
  session.record.host = request.host();
  session.record.last_seen_ms = clock_->NowMs();
  session.instance = request.instance();
  if (auto s = store_->UpsertSession(session.record); !s.ok()) {
    return absl::IsFailedPrecondition(s) ? s : StoreFailed(s, "agent's session");
  }
  if (!fenced.empty()) DropSession(fenced, "the agent registered again (session fenced)");
  const std::string id = session.record.session_id;
  AddSession(std::move(session));
  changed_.notify_all();
  if (listener_) listener_->OnAgentRegistered(request.pool());

  v1::RegisterResponse response;
  response.set_session_id(id);
  response.set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval_ms));
  response.set_lease_ttl_ms(static_cast<uint32_t>(options_.lease_ttl_ms));
  response.set_results_imply_host(true);
  return response;
}

void Scheduler::AddSession(Session session) {
  if (session.record.host.ByteSizeLong() > 0) {
    session.host = std::make_shared<const v1::HostFingerprint>(session.record.host);
  }
  agent_session_[session.record.agent_id] = session.record.session_id;
  const std::string id = session.record.session_id;
  sessions_.emplace(id, std::move(session));
}

absl::StatusOr<uint64_t> Scheduler::OpenStream(const std::string& session_id, WorkStream stream) {
  std::lock_guard lock(mu_);
  Session* session = LiveSession(session_id);
  if (!session) return StaleSession(session_id);
  const uint64_t id = next_stream_id_++;
  session->streams.emplace(id, std::move(stream));
  return id;
}

void Scheduler::CloseStream(const std::string& session_id, uint64_t stream_id) {
  std::lock_guard lock(mu_);
  if (Session* session = LiveSession(session_id)) session->streams.erase(stream_id);
}

absl::StatusOr<Scheduler::Wait> Scheduler::NextWorkItem(const std::string& session_id, int64_t wait_ms,
                                                        v1::WorkItem* item) {
  std::unique_lock lock(mu_);
  const auto deadline = Steady::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    if (shutdown_) return Wait::kClosed;
    Session* session = LiveSession(session_id);
    if (!session) return StaleSession(session_id);
    if (!session->outbox.empty()) {
      *item = std::move(session->outbox.front());
      session->outbox.pop_front();
      return Wait::kItem;
    }
    if (session->lease_ids.empty()) {
      if (auto granted = GrantLease(*session)) {
        *item = std::move(*granted);
        return Wait::kItem;
      }
    }
    const auto wake = session->wake;
    if (wake->wait_until(lock, deadline) == std::cv_status::timeout) return Wait::kTimeout;
  }
}

void Scheduler::PlaceCases(RunEntry& run, const std::map<std::string, int64_t>& durations) {
  std::map<std::string, std::vector<int>> by_requirements;
  for (size_t i = 0; i < run.cases.size(); ++i) {
    CaseEntry& c = run.cases[i];
    c.expected_ms = ExpectedMs(c.spec, durations);
    by_requirements[c.spec.requirements().SerializeAsString()].push_back(static_cast<int>(i));
  }
  run.placement.clear();
  for (auto& [requirements, indexes] : by_requirements) {
    // The queue's own order (one run: the seq does not matter).
    std::sort(indexes.begin(), indexes.end(), [&](int a, int b) {
      return QueueKey{0, run.cases[a].expected_ms, a} < QueueKey{0, run.cases[b].expected_ms, b};
    });
    run.placement.emplace_back(requirements, std::move(indexes));
  }
}

void Scheduler::Enqueue(RunEntry& run) {
  const int64_t now = clock_->NowMs();
  for (const auto& [requirements, indexes] : run.placement) {
    auto [it, created] = queues_.try_emplace(requirements);
    Queue& queue = it->second;
    if (created) {
      queue.key = requirements;
      queue.requirements = run.cases[indexes.front()].spec.requirements();
      queue.gpu = NeedsGpu(queue.requirements);
    }
    ++queue.runs;  // once per run: placement has one entry per set of requirements
    for (const int i : indexes) {
      CaseEntry& c = run.cases[i];
      c.queue = &queue;
      if (c.status.state() != v1::CASE_STATE_PENDING) continue;
      c.pending_since_ms = now;
      // In queue order, and a new run's seq is the largest: each goes at the end, in constant time.
      queue.pending.insert(queue.pending.end(), {run.seq, c.expected_ms, i});
    }
  }
  run.placement = {};
  WakeIdleSessions();
}

void Scheduler::WakeIdleSessions() {
  for (auto& [id, session] : sessions_) {
    if (session.lease_ids.empty()) session.wake->notify_all();
  }
}

Scheduler::Queue* Scheduler::BestQueueFor(const Session& session) {
  Queue* best = nullptr;
  for (auto& [key, queue] : queues_) {
    if (queue.pending.empty() || !Matches(session, queue.requirements)) continue;
    if (!best || (queue.gpu && !best->gpu) ||
        (queue.gpu == best->gpu && *queue.pending.begin() < *best->pending.begin())) {
      best = &queue;
    }
  }
  return best;
}

std::optional<v1::WorkItem> Scheduler::GrantLease(Session& session) {
  std::optional<Grant> grant = ChooseLease(session);
  if (!grant) return std::nullopt;
  // Committed now, before anything changes here.
  if (absl::Status stored = StoreGrant(*grant, /*commit_now=*/true); !stored.ok()) {
    LogIfError(stored, "grant lease");
    return std::nullopt;
  }
  v1::WorkItem item;
  *item.mutable_lease() = ApplyGrant(session, *std::move(grant));
  return item;
}

// A frozen agent (stopped, swapping) that comes back before its session
// ends asked for work and got the case whose lease it had just lost, and a
// case lost twice is one attempt from an error. It takes the next case
// instead, if one of the first few is not its own lost one; else that one.
Scheduler::QueueKey Scheduler::FirstNotLostBy(const Queue& queue, const std::string& agent_id) const {
  int scanned = 0;
  for (const QueueKey& key : queue.pending) {
    if (++scanned > kLostCasesPassed) break;
    if (run_by_seq_.at(key.run_seq)->cases[key.index].lost_by != agent_id) return key;
  }
  return *queue.pending.begin();
}

std::optional<Scheduler::Grant> Scheduler::ChooseLease(const Session& session, bool ahead) {
  Queue* queue = BestQueueFor(session);
  if (!queue) return std::nullopt;
  const QueueKey key = FirstNotLostBy(*queue, session.record.agent_id);
  if (ahead && !MayHoldAhead(session, *queue, key)) return std::nullopt;
  RunEntry& run = *run_by_seq_.at(key.run_seq);
  const CaseEntry& c = run.cases[key.index];
  const int64_t now = clock_->NowMs();
  Grant grant;
  grant.run = &run;
  LeaseRecord& lease = grant.lease;
  lease.lease_id = NewId("lease");
  lease.run_id = run.meta.run_id();
  lease.case_index = key.index;
  lease.attempt = c.status.attempts() + 1;
  lease.agent_id = session.record.agent_id;
  lease.session_id = session.record.session_id;
  lease.pool = session.record.pool;
  lease.state = LeaseState::kActive;
  lease.granted_at_ms = now;
  lease.expires_at_ms = now + options_.lease_ttl_ms;
  grant.running = c.status;
  grant.running.set_state(v1::CASE_STATE_RUNNING);
  grant.running.set_attempts(lease.attempt);
  grant.running.set_agent_id(lease.agent_id);
  return grant;
}

bool Scheduler::MayHoldAhead(const Session& session, const Queue& queue, const QueueKey& key) const {
  if (session.record.host.gpus_size() > 0) return false;
  // Unknown (INT64_MAX) passes: an agent asks for leases ahead only while
  // its own cases take less than this, and the queue check bounds the rest.
  const int64_t expected = key.expected_ms;
  if (expected != std::numeric_limits<int64_t>::max() && expected > kAheadMaxExpectedMs) return false;
  // Until the queue's last kLastCasesPerSession cases per session, which go
  // one at a time: the agents that hold fewer take more of them, so all run
  // dry together, and the run's last case is not one held behind others.
  return queue.pending.size() > sessions_.size() * kLastCasesPerSession;
}

absl::Status Scheduler::StoreGrant(const Grant& grant, bool commit_now) {
  absl::Status stored = store_->BeginBatch();
  if (!stored.ok()) return stored;
  store_->InsertLease(grant.lease).IgnoreError();  // a failed write fails the batch
  store_->UpdateCase(grant.lease.run_id, grant.lease.case_index, grant.running).IgnoreError();
  return commit_now ? store_->CommitBatch() : store_->CommitBatchLater().status();
}

v1::Lease Scheduler::ApplyGrant(Session& session, Grant grant) {
  RunEntry& run = *grant.run;
  const LeaseRecord& lease = grant.lease;
  CaseEntry& c = run.cases[lease.case_index];
  c.status.set_attempts(lease.attempt);
  c.status.set_agent_id(lease.agent_id);
  c.lease_id = lease.lease_id;
  session.lease_ids.push_back(lease.lease_id);
  ApplyCase(run, lease.case_index, v1::CASE_STATE_RUNNING, c.status.error());
  run.lease_ids.push_back(lease.lease_id);
  ++stats_.leases_granted;
  grants_.fetch_add(1, std::memory_order_relaxed);
  if (listener_) listener_->OnLeaseGranted(lease.pool);
  v1::Lease message = LeaseMessage(lease);
  active_leases_.insert(&leases_.emplace(lease.lease_id, std::move(grant.lease)).first->second);
  return message;
}

v1::Lease Scheduler::LeaseMessage(const LeaseRecord& lease) const {
  v1::Lease message;
  message.set_lease_id(lease.lease_id);
  message.set_run_id(lease.run_id);
  message.set_attempt(lease.attempt);
  *message.mutable_spec() = runs_.at(lease.run_id).cases[lease.case_index].spec;
  return message;
}

void Scheduler::RepeatNextLease(const std::string& lease_id, const std::string& session_id,
                                v1::CompleteLeaseResponse* response) const {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.state != LeaseState::kActive || it->second.session_id != session_id) return;
  AddLease(LeaseMessage(it->second), response);
}

void Scheduler::AddLease(v1::Lease lease, v1::CompleteLeaseResponse* response) {
  if (!response->has_next_lease()) {
    *response->mutable_next_lease() = std::move(lease);
  } else {
    *response->add_more_leases() = std::move(lease);
  }
}

void Scheduler::GrantInReply(Session& session, uint32_t wanted, v1::CompleteLeaseResponse* response) {
  while (session.lease_ids.size() < std::min(wanted, kMaxLeasesHeld)) {
    std::optional<Grant> next = ChooseLease(session, /*ahead=*/!session.lease_ids.empty());
    if (!next) return;
    // Committed with the results before the reply (Complete flushes the group).
    if (absl::Status stored = StoreGrant(*next, /*commit_now=*/false); !stored.ok()) {
      LogIfError(stored, "grant lease in reply");
      return;
    }
    AddLease(ApplyGrant(session, *std::move(next)), response);
    ++stats_.leases_in_replies;
  }
}

void Scheduler::ReleaseUndelivered(const std::string& lease_id) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.state != LeaseState::kActive) return;
  LeaseRecord& lease = it->second;
  EndLease(lease, LeaseState::kReleased);
  RunEntry& run = runs_.at(lease.run_id);
  CaseEntry& c = run.cases[lease.case_index];
  c.status.set_attempts(c.status.attempts() - 1);
  SetCase(run, lease.case_index, v1::CASE_STATE_PENDING, c.status.error());
  changed_.notify_all();
}

void Scheduler::EndLease(LeaseRecord& lease, LeaseState state) {
  LogIfError(store_->UpdateLease(lease.lease_id, state, lease.expires_at_ms), "end lease");
  ForgetLease(lease, state);
}

void Scheduler::ForgetLease(LeaseRecord& lease, LeaseState state, bool wake_idle) {
  lease.state = state;
  active_leases_.erase(&lease);
  if (Session* session = LiveSession(lease.session_id);
      session && std::erase(session->lease_ids, lease.lease_id) && session->lease_ids.empty() && wake_idle) {
    session->wake->notify_all();  // free for the next case
  }
  if (auto run = runs_.find(lease.run_id); run != runs_.end()) {
    CaseEntry& c = run->second.cases[lease.case_index];
    if (c.lease_id == lease.lease_id) c.lease_id.clear();
  }
}

void Scheduler::StopLease(LeaseRecord& lease, LeaseState state) {
  if (Session* session = LiveSession(lease.session_id)) {
    v1::WorkItem cancel;
    cancel.set_cancel_lease_id(lease.lease_id);
    session->outbox.push_back(std::move(cancel));
    session->wake->notify_all();
  }
  EndLease(lease, state);
}

std::optional<int64_t> LongestLeaseSpanMs(const v1::CaseSpec& spec) {
  if (spec.timeout_ms() == 0) return std::nullopt;
  constexpr double kPerRunRoomMs = 10'000;      // spawn, groups, the kill's grace
  constexpr double kArtifactsMs = 10 * 60'000;  // fetched before the first run
  constexpr double kUnderValgrind = 100;        // the agent's timeout for a counted run
  const double variants = std::max(1, spec.variants_size());
  const double repeats = std::max<uint32_t>(1, spec.repeats());
  const double runs = (spec.warmup() + repeats) * variants;
  double counted_runs = 0;
  if (spec.instructions() == v1::INSTRUCTION_COUNTER_REGION) counted_runs = variants;
  if (spec.instructions() == v1::INSTRUCTION_COUNTER_AUTO || spec.instructions() == v1::INSTRUCTION_COUNTER_CALLGRIND) {
    counted_runs = std::min(repeats, 3.0) * variants;
  }
  const double timeout = spec.timeout_ms();
  const double span =
      kArtifactsMs + runs * (timeout + kPerRunRoomMs) + counted_runs * (timeout * kUnderValgrind + kPerRunRoomMs);
  return static_cast<int64_t>(std::min(2 * span, static_cast<double>(std::numeric_limits<int64_t>::max() / 2)));
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(const v1::HeartbeatRequest& request) {
  std::lock_guard lock(mu_);
  Session* session = LiveSession(request.session_id());
  if (!session) return StaleSession(request.session_id());
  const int64_t now = clock_->NowMs();
  session->record.last_seen_ms = now;
  v1::HeartbeatResponse response;
  for (const auto& lease_id : request.lease_ids()) {
    auto it = leases_.find(lease_id);
    if (it == leases_.end() || it->second.state != LeaseState::kActive ||
        it->second.session_id != request.session_id()) {
      response.add_cancel_lease_ids(lease_id);
      continue;
    }
    if (HeldPastItsCase(it->second, now)) {
      response.add_cancel_lease_ids(lease_id);
      continue;
    }
    // In memory only: a restarted coordinator gives every lease a fresh TTL
    // (Recover), so a renewal written to disk would never be read.
    it->second.expires_at_ms = now + options_.lease_ttl_ms;
    (*response.mutable_expires_at_ms())[lease_id] = it->second.expires_at_ms;
  }
  return response;
}

bool Scheduler::HeldPastItsCase(const LeaseRecord& lease, int64_t now) {
  const RunEntry& run = runs_.at(lease.run_id);
  const std::optional<int64_t> longest = LongestLeaseSpanMs(run.cases[lease.case_index].spec);
  if (!longest || now - lease.granted_at_ms <= *longest) return false;
  LoseLease(lease.lease_id, absl::StrCat("held ", (now - lease.granted_at_ms) / 1000,
                                         " s, past the longest its case can take (", *longest / 1000, " s)"));
  return true;
}

void Scheduler::LoseLease(std::string lease_id, const std::string& why) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.state != LeaseState::kActive) return;
  LeaseRecord& lease = it->second;
  // If the agent is alive but slow, it must stop the case: its result would be stale.
  StopLease(lease, LeaseState::kLost);
  ++stats_.leases_lost;
  if (listener_) listener_->OnLeaseLost(lease.pool);
  RunEntry& run = runs_.at(lease.run_id);
  run.cases[lease.case_index].lost_by = lease.agent_id;
  RetryOrGiveUp(run, lease.case_index, absl::StrCat("attempt ", lease.attempt, " on ", lease.agent_id, " lost: ", why));
  MaybeFinish(run);
}

void Scheduler::RetryOrGiveUp(RunEntry& run, int index, const std::string& what) {
  const uint32_t attempts = run.cases[index].status.attempts();
  if (attempts >= options_.max_attempts) {
    SetCase(run, index, v1::CASE_STATE_ERROR, absl::StrCat("gave up after ", attempts, " attempts; ", what));
  } else {
    SetCase(run, index, v1::CASE_STATE_PENDING, what);
  }
}

void Scheduler::DropSession(std::string session_id, const std::string& why) {
  Session* session = LiveSession(session_id);
  if (!session) return;
  const std::string agent_id = session->record.agent_id;
  // A copy: LoseLease takes each out of the session's list.
  for (const std::string& lease_id : std::vector<std::string>(session->lease_ids)) LoseLease(lease_id, why);
  session->wake->notify_all();  // its streams end: the session is stale
  sessions_.erase(session_id);
  if (auto it = agent_session_.find(agent_id); it != agent_session_.end() && it->second == session_id) {
    agent_session_.erase(it);
  }
  LogIfError(store_->DeleteSession(session_id), "drop session");
}

void Scheduler::SetCase(RunEntry& run, int index, v1::CaseState state, const std::string& error) {
  v1::CaseStatus status = run.cases[index].status;
  status.set_state(state);
  status.set_error(error);
  LogIfError(store_->UpdateCase(run.meta.run_id(), index, status), "update case");
  ApplyCase(run, index, state, error);
}

void Scheduler::ApplyCase(RunEntry& run, int index, v1::CaseState state, const std::string& error) {
  CaseEntry& c = run.cases[index];
  const bool was_pending = c.status.state() == v1::CASE_STATE_PENDING;
  c.status.set_state(state);
  c.status.set_error(error);
  const QueueKey key{run.seq, c.expected_ms, index};
  if (was_pending && state != v1::CASE_STATE_PENDING) {
    c.queue->pending.erase(key);
  } else if (!was_pending && state == v1::CASE_STATE_PENDING && c.queue) {  // none once its run finished
    c.pending_since_ms = clock_->NowMs();
    c.queue->pending.insert(key);
    WakeIdleSessions();
  }
  LoggedEvent logged;
  *logged.event.mutable_case_changed() = c.status;
  if (c.result) logged.result_of_case = index;
  run.events.push_back(std::move(logged));
}

void Scheduler::MaybeFinish(RunEntry& run) {
  if (run.final) return;
  while (run.first_open < run.cases.size() && IsFinal(run.cases[run.first_open].status.state())) ++run.first_open;
  if (run.first_open < run.cases.size()) return;
  run.final = true;
  LeaveQueues(run);
  if (run.meta.state() == v1::RUN_STATE_RUNNING) run.meta.set_state(v1::RUN_STATE_FINISHED);
  run.meta.set_finished_at_ms(clock_->NowMs());
  LogIfError(store_->UpdateRunState(run.meta.run_id(), run.meta.state(), run.meta.finished_at_ms()), "finish run");
  LoggedEvent logged;
  logged.event.set_run_finished(run.meta.state());
  run.events.push_back(std::move(logged));
  finished_order_.push_back(run.meta.run_id());
  if (listener_) listener_->OnRunFinished(run.meta.suite_name(), run.meta.state());
  changed_.notify_all();
  run_ended_.notify_all();
}

void Scheduler::LeaveQueues(RunEntry& run) {
  std::set<Queue*> used;
  for (CaseEntry& c : run.cases) {
    if (c.queue) used.insert(c.queue);
    c.queue = nullptr;
  }
  for (Queue* queue : used) {
    if (--queue->runs == 0 && queue->pending.empty()) queues_.erase(queue->key);
  }
}

void Scheduler::WaitRunEnd(const std::string& run_id, int64_t wait_ms) {
  std::unique_lock lock(mu_);
  run_ended_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] {
    auto it = runs_.find(run_id);
    return shutdown_ || it == runs_.end() || it->second.final;
  });
}

Scheduler::EvictedRuns Scheduler::EvictFinishedRuns(size_t leases) {
  EvictedRuns evicted;
  while (finished_order_.size() > options_.finished_runs_in_memory) {
    auto it = runs_.find(finished_order_.front());
    if (it == runs_.end()) {
      finished_order_.pop_front();
      continue;
    }
    // Its leases are all ended; the store keeps them. A late report for one
    // is taken from the store (TakeLateResult): kept as stale, never lost.
    RunEntry& run = it->second;
    for (; run.leases_evicted < run.lease_ids.size() && leases > 0; ++run.leases_evicted, --leases) {
      auto lease = leases_.find(run.lease_ids[run.leases_evicted]);
      if (lease == leases_.end()) continue;
      if (auto done = completed_.find({lease->first, lease->second.session_id}); done != completed_.end()) {
        // A reply that carried leases still running may have been lost: its
        // repeat must carry them again, or each would wait out its TTL and
        // be lost (ForgetKeptCompletions lets it go once they end).
        if (CarriesActiveLease(done->second)) {
          kept_completions_.push_back(done->first);
        } else {
          evicted.completions.push_back(completed_.extract(done));
        }
      }
      active_leases_.erase(&lease->second);  // none should be active; the node leaves leases_ either way
      evicted.leases.push_back(leases_.extract(lease));
    }
    if (run.leases_evicted < run.lease_ids.size()) break;  // the rest in the next piece
    finished_order_.pop_front();
    run_by_seq_.erase(run.seq);
    evicted.runs.push_back(runs_.extract(it));
  }
  return evicted;
}

void Scheduler::EvictInPieces() {
  for (;;) {
    EvictedRuns evicted;
    {
      std::lock_guard lock(mu_);
      evicted = EvictFinishedRuns(kLeasesEvictedPerLock);
    }
    if (evicted.empty()) return;
    ReleaseEvicted(std::move(evicted));
  }
}

void Scheduler::ReleaseEvicted(EvictedRuns runs) {
  if (runs.empty()) return;
  // std::function needs a copyable task; the runs' nodes are move-only.
  releaser_.Post([this, held = std::make_shared<EvictedRuns>(std::move(runs))] { FreeEvicted(*held); });
  const int64_t now = clock_->NowMs();
  int64_t last = last_trim_ms_.load();
  if (now - last < kTrimIntervalMs || !last_trim_ms_.compare_exchange_strong(last, now)) return;
  ReleaseFreedMemory();  // what the runs held goes back to the system: RSS stays flat
}

namespace {

// Destroys v's elements from the back, `n` at a time, calling pace() after each piece.
template <typename T>
void FreeInPieces(std::vector<T>& v, size_t n, const std::function<void()>& pace) {
  while (!v.empty()) {
    v.erase(v.end() - static_cast<std::ptrdiff_t>(std::min(n, v.size())), v.end());
    pace();
  }
  std::vector<T>().swap(v);
}

}  // namespace

void Scheduler::FreeEvicted(EvictedRuns& runs) {
  ActivityPacer paced(kReleaseCpuShare, grants_);
  const std::function<void()> pace = [&] { paced(); };
  for (auto& node : runs.runs) {
    RunEntry& run = node.mapped();
    FreeInPieces(run.cases, kEntriesPerFree, pace);
    FreeInPieces(run.events, kEntriesPerFree, pace);
    FreeInPieces(run.lease_ids, kEntriesPerFree, pace);
    node = {};
  }
  runs.runs.clear();
  FreeInPieces(runs.leases, kEntriesPerFree, pace);
  FreeInPieces(runs.completions, kEntriesPerFree, pace);
}

absl::Status Scheduler::CheckSuite(const v1::Suite& suite) const {
  if (suite.cases_size() == 0) return absl::InvalidArgumentError("the suite has no cases");
  if (static_cast<size_t>(suite.cases_size()) > options_.max_cases_per_run) {
    return absl::InvalidArgumentError(absl::StrCat("the suite has ", suite.cases_size(), " cases; a run takes at most ",
                                                   options_.max_cases_per_run, " (split the suite)"));
  }
  if (std::string problem = SuiteNameProblem(suite.name()); !problem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(problem, " (suite '", EscapeControls(suite.name().substr(0, 80)), "')"));
  }
  std::set<std::string> names;
  for (const auto& c : suite.cases()) {
    if (std::string problem = CaseNameProblem(c.name()); !problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(problem, " (case '", EscapeControls(c.name().substr(0, 80)), "')"));
    }
    if (c.argv_size() == 0) return absl::InvalidArgumentError(absl::StrCat("case '", c.name(), "' has no command"));
    if (!names.insert(c.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate case name '", c.name(), "'"));
    }
    // One sample per repeat and variant: what its result will carry.
    const uint64_t samples = uint64_t{std::max(c.repeats(), 1u)} * std::max(c.variants_size(), 1);
    if (samples > options_.max_samples_per_result) {
      return absl::InvalidArgumentError(absl::StrCat("case '", c.name(), "' asks for ", samples,
                                                     " samples (repeats x variants); a result holds at most ",
                                                     options_.max_samples_per_result));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitRunResponse> Scheduler::Submit(const v1::SubmitRunRequest& request) {
  if (auto s = CheckSuite(request.suite()); !s.ok()) return s;
  // Runs that finished leave memory, and are freed, before this one comes
  // in: its cases, leases and results then reuse what theirs held, instead
  // of the heap growing to hold both (RSS from the first of 20 runs of
  // 2,000 cases to the last, 128 load sessions: +6 to +10% against +16 to
  // +19%).
  EvictInPieces();
  releaser_.Drain();
  const v1::Suite& suite = request.suite();
  absl::StatusOr<std::map<std::string, int64_t>> durations;
  RunEntry run;
  {
    std::lock_guard one_at_a_time(prepare_mu_);
    StartingPriorityScope below_agents;  // takes nothing the lease path needs
    // Read before taking the lock (the store's reader never waits for writers);
    // without it the cases only lose their order, so a failure is logged, not fatal.
    durations = store_->CaseDurations(suite.name());
    run = NewRunEntry(request);
    PlaceCases(run, DurationsOrNone(durations));
  }
  v1::SubmitRunResponse response;
  response.set_run_id(run.meta.run_id());
  {
    std::lock_guard lock(mu_);
    LogIfError(durations.status(), "read case durations");
    if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
    MarkUnsatisfiable(run, &response);
  }
  // Written before the scheduler knows the run, and not under mu_: a suite
  // of thousands of cases takes milliseconds to store, and agents go on
  // meanwhile. Agents that leave in between are Sweep's to notice.
  if (auto s = store_->InsertRun(BuildRun(run), suite); !s.ok()) {
    std::lock_guard lock(mu_);
    return StoreFailed(s, "run");
  }
  {
    std::lock_guard lock(mu_);
    run.seq = next_run_seq_++;
    auto& entry = runs_.emplace(run.meta.run_id(), std::move(run)).first->second;
    run_by_seq_[entry.seq] = &entry;
    Enqueue(entry);
    if (listener_) listener_->OnRunSubmitted(suite, request.branch());
    MaybeFinish(entry);
    changed_.notify_all();
  }
  EvictInPieces();
  return response;
}

Scheduler::RunEntry Scheduler::NewRunEntry(const v1::SubmitRunRequest& request) {
  RunEntry run;
  run.meta.set_run_id(NewId("run"));
  run.meta.set_state(v1::RUN_STATE_RUNNING);
  run.meta.set_suite_name(request.suite().name());
  run.meta.set_commit(request.commit());
  run.meta.set_branch(request.branch());
  run.meta.set_created_at_ms(clock_->NowMs());
  run.cases.reserve(static_cast<size_t>(request.suite().cases_size()));
  for (const auto& spec : request.suite().cases()) {
    CaseEntry c;
    c.spec = spec;
    c.status.set_name(spec.name());
    c.status.set_state(v1::CASE_STATE_PENDING);
    run.cases.push_back(std::move(c));
  }
  return run;
}

void Scheduler::MarkUnsatisfiable(RunEntry& run, v1::SubmitRunResponse* response) {
  // With no agent at all (the lab's agents restarting, say), cases wait the
  // grace for one, as when every capable agent leaves (EndUnrunnableCases);
  // the submitter hears so, instead of silence for the whole grace.
  if (sessions_.empty()) {
    response->set_waiting(absl::StrCat("no agent is registered; the cases wait up to ",
                                       FormatDurationSeconds(static_cast<double>(options_.no_agent_grace_ms) / 1000),
                                       " for one, then end as no capable agent"));
    return;
  }
  std::string why;
  for (auto& c : run.cases) {
    if (AnyCapable(c.spec.requirements(), &why)) continue;
    c.status.set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
    c.status.set_error(why);
    response->add_unsatisfiable(absl::StrCat(c.spec.name(), ": ", why));
  }
}

v1::Run Scheduler::BuildRun(const RunEntry& run, bool without_results) {
  v1::Run out = run.meta;
  for (const auto& c : run.cases) *out.add_cases() = without_results ? c.status : WithResult(c);
  return out;
}

v1::CaseStatus Scheduler::WithResult(const CaseEntry& c) {
  v1::CaseStatus status = c.status;
  if (c.result) CopyResult(c, status.mutable_result());
  return status;
}

void Scheduler::CopyResult(const CaseEntry& c, v1::CaseResult* result) {
  // Our own bytes, serialized from a parsed message: they parse.
  result->ParseFromString(*c.result);
  if (c.implied_host) *result->mutable_host() = *c.implied_host;
}

absl::StatusOr<v1::Run> Scheduler::GetRun(const std::string& run_id) {
  size_t cursor;
  return Snapshot(run_id, &cursor);
}

absl::StatusOr<v1::Run> Scheduler::Snapshot(const std::string& run_id, size_t* cursor, bool without_results) {
  {
    std::lock_guard lock(mu_);
    if (auto it = runs_.find(run_id); it != runs_.end()) {
      *cursor = it->second.events.size();
      return BuildRun(it->second, without_results);
    }
  }
  *cursor = 0;
  return store_->LoadRun(run_id);
}

v1::RunEvent Scheduler::Unlogged(const RunEntry& run, const LoggedEvent& logged, bool without_results) {
  v1::RunEvent event = logged.event;
  if (!without_results && logged.result_of_case >= 0) {
    const CaseEntry& c = run.cases[logged.result_of_case];
    CopyResult(c, event.mutable_case_changed()->mutable_result());
  }
  return event;
}

absl::Status Scheduler::WaitRunEvents(const std::string& run_id, size_t* cursor, int64_t wait_ms,
                                      std::vector<v1::RunEvent>* events, bool without_results) {
  std::unique_lock lock(mu_);
  const auto deadline = Steady::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    auto it = runs_.find(run_id);
    if (it == runs_.end()) {
      // Finished and gone from memory: the watcher gets the end, and the
      // results from GetRun (the store).
      lock.unlock();
      auto stored = store_->LoadRun(run_id);
      if (!stored.ok() || stored->state() == v1::RUN_STATE_RUNNING) {
        return absl::NotFoundError(absl::StrCat("run '", run_id, "' is no longer live"));
      }
      v1::RunEvent end;
      end.set_run_finished(stored->state());
      events->push_back(std::move(end));
      return absl::OkStatus();
    }
    auto& log = it->second.events;
    if (*cursor < log.size()) {
      for (size_t i = *cursor; i < log.size(); ++i) {
        events->push_back(Unlogged(it->second, log[i], without_results));
      }
      *cursor = log.size();
      return absl::OkStatus();
    }
    if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return absl::OkStatus();
  }
}

absl::StatusOr<v1::RunState> Scheduler::Cancel(const std::string& run_id) {
  std::unique_lock lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) {
    lock.unlock();  // a finished run: read from the store, not under mu_
    auto stored = store_->LoadRun(run_id);
    if (!stored.ok()) return stored.status();
    return stored->state();
  }
  RunEntry& run = it->second;
  if (run.final) return run.meta.state();
  run.meta.set_state(v1::RUN_STATE_CANCELLED);
  for (size_t i = 0; i < run.cases.size(); ++i) {
    CaseEntry& c = run.cases[i];
    if (IsFinal(c.status.state())) continue;
    if (!c.lease_id.empty()) {
      StopLease(leases_.at(c.lease_id), LeaseState::kCancelled);
    }
    SetCase(run, static_cast<int>(i), v1::CASE_STATE_CANCELLED, "run cancelled");
  }
  MaybeFinish(run);
  changed_.notify_all();
  return run.meta.state();
}

absl::Status Scheduler::History(const v1::HistoryRequest& request, v1::HistoryResponse* out) {
  google::protobuf::ArenaOptions blocks;
  blocks.start_block_size = 64 << 10;  // a history of thousands of keys in tens of blocks
  blocks.max_block_size = 1 << 20;
  google::protobuf::Arena arena(blocks);
  ActivityPacer paced(kHistoryCpuShare, grants_);  // this thread's CPU: see kHistoryCpuShare
  auto read = store_->History(request, &arena, [&] { paced(); });
  if (!read.ok()) return read.status();
  out->CopyFrom(**read);
  return absl::OkStatus();
}

namespace {

// A verdict names each of the run's cases at most once, and no other: its
// names become metric labels, which must stay bounded.
absl::Status CheckVerdictCases(const v1::ReportVerdictRequest& request, const v1::Run& run) {
  std::set<std::string> names;
  for (const auto& c : run.cases()) names.insert(c.name());
  std::set<std::string> seen;
  for (const auto& c : request.cases()) {
    if (!names.count(c.case_name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("the verdict names case '", c.case_name(), "', which run '", run.run_id(), "' does not have"));
    }
    if (!seen.insert(c.case_name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("the verdict names case '", c.case_name(), "' twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Scheduler::ReportVerdict(const v1::ReportVerdictRequest& request) {
  auto run = GetRun(request.run_id());
  if (!run.ok()) return run.status();
  if (run->state() == v1::RUN_STATE_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("run '", request.run_id(), "' has not finished"));
  }
  if (auto s = CheckVerdictCases(request, *run); !s.ok()) return s;
  auto first = store_->SetRunVerdict(request.run_id(), request.passed() ? "passed" : "failed");
  std::lock_guard lock(mu_);
  if (!first.ok()) return StoreFailed(first.status(), "verdict");
  // A run keeps its first verdict; a repeat (a retried call) is counted once.
  if (*first && listener_) listener_->OnVerdict(run->suite_name(), request);
  return absl::OkStatus();
}

void Scheduler::Sweep() {
  // Both after the lock is released: the syncs of what lost leases and ended
  // runs wrote (nobody is told of those), and the eviction.
  absl::Cleanup evict = [&] {
    if (absl::Status synced = store_->Flush(0); !synced.ok()) {
      std::lock_guard lock(mu_);
      LogIfError(synced, "sync sweep");
    }
    EvictInPieces();
  };
  std::lock_guard lock(mu_);
  SyncsDeferred deferred(store_);
  const int64_t now = clock_->NowMs();
  std::vector<std::string> expired;
  for (const LeaseRecord* lease : active_leases_) {
    if (lease->state == LeaseState::kActive && lease->expires_at_ms <= now) expired.push_back(lease->lease_id);
  }
  std::sort(expired.begin(), expired.end());  // lost in the same order on every sweep of the same leases
  for (const auto& id : expired) {
    const LeaseRecord& lease = leases_.at(id);
    LoseLease(id, absl::StrCat("lease expired (no heartbeat for ", now - lease.expires_at_ms + options_.lease_ttl_ms,
                               " ms)"));
  }
  std::vector<std::string> silent;
  for (const auto& [id, session] : sessions_) {
    if (session.record.last_seen_ms + options_.session_ttl_ms <= now) silent.push_back(id);
  }
  for (const auto& id : silent) {
    DropSession(id, absl::StrCat("agent silent for ", now - sessions_.at(id).record.last_seen_ms, " ms"));
  }
  EndUnrunnableCases(now);
  ForgetKeptCompletions();
  changed_.notify_all();
}

void Scheduler::EndUnrunnableCases(int64_t now) {
  // Once per queue, not per case: every case of a queue has its requirements.
  std::vector<std::pair<RunEntry*, int>> ended;
  std::string why;
  for (auto& [key, queue] : queues_) {
    if (queue.pending.empty() || AnyCapable(queue.requirements, &why)) {
      queue.unmatched_since_ms = 0;
      continue;
    }
    if (queue.unmatched_since_ms == 0) queue.unmatched_since_ms = now;
    const size_t first = ended.size();
    for (const QueueKey& k : queue.pending) {
      RunEntry* run = run_by_seq_.at(k.run_seq);
      const int64_t since = std::max(queue.unmatched_since_ms, run->cases[k.index].pending_since_ms);
      if (now - since >= options_.no_agent_grace_ms) ended.emplace_back(run, k.index);
    }
    for (size_t i = first; i < ended.size(); ++i)
      SetCase(*ended[i].first, ended[i].second, v1::CASE_STATE_NO_CAPABLE_AGENT, why);
  }
  // After the walk: a run that finishes leaves its queues, which may go.
  for (const auto& [run, index] : ended) MaybeFinish(*run);
}

void Scheduler::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  changed_.notify_all();
  run_ended_.notify_all();
  for (auto& [id, session] : sessions_) session.wake->notify_all();
}

bool Scheduler::WaitForAgents(size_t n, int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    return sessions_.size() >= n || shutdown_;
  }) && sessions_.size() >= n;
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard lock(mu_);
  SchedulerStats stats = stats_;
  for (const auto& [id, session] : sessions_) ++stats.sessions_by_pool[session.record.pool];
  for (const auto& [key, queue] : queues_) stats.pending_cases += queue.pending.size();
  for (const auto& [id, session] : sessions_) stats.running_cases += session.lease_ids.size();
  stats.queues = queues_.size();
  return stats;
}

}  // namespace perfgate
