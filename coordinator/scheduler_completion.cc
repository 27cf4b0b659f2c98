// The completion path of the scheduler: a result checked, counted (or kept
// as stale, or answered again as a repeat), and its group of results
// committed before the agent is told (group commit, leader and followers).
#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/run_summary.h"
#include "coordinator/scheduler.h"
#include "core/identifiers.h"
#include "core/metric_traits.h"
#include "core/names.h"
#include "core/utf8.h"

namespace perfgate {

namespace {

absl::Status CheckSampleCount(const std::string& lease_id, const v1::CaseResult& result, size_t max_samples) {
  if (static_cast<size_t>(result.samples_size()) <= max_samples) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the result for lease '", lease_id, "' has ", result.samples_size(),
                                                 " samples; at most ", max_samples, " are taken"));
}

// A NaN or infinity compares false with every limit, so a judge would pass
// it; an honest agent's parsers never send one (agent/result_adapters.cc).
absl::Status CheckSampleValues(const std::string& lease_id, const v1::CaseResult& result) {
  for (const auto& sample : result.samples()) {
    for (const auto& v : sample.values()) {
      if (std::string problem = SeriesNameProblem(v.benchmark(), v.metric()); !problem.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("the result for lease '", lease_id, "' has a value whose ",
                                                       problem, " (benchmark '",
                                                       EscapeControls(v.benchmark().substr(0, 80)), "')"));
      }
      const auto refused = [&](const char* rule) {
        return absl::InvalidArgumentError(absl::StrCat("the result for lease '", lease_id, "' has ", v.value(), " for ",
                                                       v.benchmark(), ",", v.metric(), " in sample ", sample.index(),
                                                       "; ", rule));
      };
      if (!std::isfinite(v.value())) return refused("every value must be a finite number");
      // What the agent measures, and counts, are never below zero: -1e308
      // instructions passed as an improvement, and was offered as the new
      // expected row.
      if (v.value() < 0 && (absl::StartsWith(v.source(), "agent:") || IsCount(v.metric(), v.unit()))) {
        return refused("a count or a value the agent measures is never below zero");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckResult(const std::string& lease_id, const v1::CaseResult& result, size_t max_samples) {
  if (auto s = CheckSampleCount(lease_id, result, max_samples); !s.ok()) return s;
  return CheckSampleValues(lease_id, result);
}

// Leases the agent can hold after the reply: want_next_lease alone means one.
uint32_t LeasesWanted(const v1::CompleteLeaseRequest& request) {
  if (request.leases_wanted() > 0) return request.leases_wanted();
  return request.want_next_lease() ? 1 : 0;
}

}  // namespace

absl::StatusOr<v1::CompleteLeaseResponse> Scheduler::Complete(const v1::CompleteLeaseRequest& request) {
  if (request.more_results_size() > kMaxResultsPerCall) {
    return absl::InvalidArgumentError(absl::StrCat("a completion carries ", request.more_results_size() + 1,
                                                   " results; at most ", kMaxResultsPerCall + 1,
                                                   " are taken per call"));
  }
  if (auto s = CheckResult(request.lease_id(), request.result(), options_.max_samples_per_result); !s.ok()) {
    return s;
  }
  for (const auto& more : request.more_results()) {
    if (auto s = CheckResult(more.lease_id(), more.result(), options_.max_samples_per_result); !s.ok()) return s;
  }
  completing_.fetch_add(1);
  absl::StatusOr<v1::CompleteLeaseResponse> response;
  uint64_t group = 0;
  {
    std::lock_guard lock(mu_);
    // A run's end is written here; its sync waits for Flush below, outside mu_.
    SyncsDeferred deferred(store_);
    response = CompleteAllLocked(request);
    // Whatever this reply rests on is in this group or an earlier one; a
    // repeated completion may rest on an earlier reply's group.
    group = store_->OpenGroup();
  }
  if (!response.ok() || !group) {
    LeaveCompleting();
    if (!response.ok()) return response;
    // A repeated completion answers from memory: after a lost group, memory
    // holds results the database does not, and the agent must keep its own.
    if (absl::Status lost = store_->Lost(); !lost.ok()) return lost;
    // Its first answer's group is committed, but with --sync-commits its
    // sync may still be running: the agent drops its copy on this answer.
    if (absl::Status synced = store_->Flush(0); !synced.ok()) {
      return absl::UnavailableError(
          absl::StrCat("the coordinator could not store the result (", synced.message(), ")"));
    }
    return response;
  }
  if (auto s = AwaitGroup(group); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("the coordinator could not store the result (", s.message(), ")"));
  }
  return response;
}

void Scheduler::LeaveCompleting() {
  std::lock_guard lock(completing_mu_);
  if (--completing_ == 0) leader_cv_.notify_all();
}

// Group commit, leader and followers: the first completion of a group to get
// here leads it. It lets the completions on their way write first (they are
// running, or waiting for mu_, which others hold only to work, so this waits
// on their work alone), up to kMaxGroup of them or for kMaxLeaderWait,
// commits them all in one, and wakes them once. Nobody is woken per
// completion.
absl::Status Scheduler::AwaitGroup(uint64_t group) {
  std::unique_lock lock(completing_mu_);
  // Wakes the leaders: nobody is on the way any more, or (below) a group
  // has as many as it takes, or a newer group leads (the older ones are then
  // committed already).
  if (--completing_ == 0) leader_cv_.notify_all();
  if (group > led_group_) return LeadGroup(group, lock);
  if (group == led_group_ && ++joined_ == kMaxGroup) leader_cv_.notify_all();
  lock.unlock();
  return FollowGroup(group);
}

absl::Status Scheduler::LeadGroup(uint64_t group, std::unique_lock<std::mutex>& lock) {
  if (led_group_) leader_cv_.notify_all();
  led_group_ = group;
  joined_ = 1;
  leader_cv_.wait_for(lock, kMaxLeaderWait,
                      [&] { return completing_ == 0 || joined_ >= kMaxGroup || led_group_ != group; });
  lock.unlock();
  absl::Status flushed = store_->Flush(group);
  if (flushed.ok()) {
    uint64_t committed = committed_group_.load();
    while (committed < group && !committed_group_.compare_exchange_weak(committed, group)) {
    }
  } else {
    flush_failed_ = true;  // the store is lost for good (Store::Lost)
  }
  flushes_.fetch_add(1);
  flushes_.notify_all();
  return flushed;
}

// Without the mutex: woken all at once, followers take no lock to see their
// group committed. A group's leader, or a later group's (which opens only
// once this one is committed), advances committed_group_.
absl::Status Scheduler::FollowGroup(uint64_t group) {
  while (true) {
    const uint32_t seen = flushes_.load();
    if (committed_group_.load() >= group) return absl::OkStatus();
    if (flush_failed_) return store_->Flush(group);  // why it failed
    flushes_.wait(seen);
  }
}

absl::StatusOr<v1::CompleteLeaseResponse> Scheduler::CompleteAllLocked(const v1::CompleteLeaseRequest& request) {
  v1::CompleteLeaseResponse response;
  ++stats_.completion_calls;
  const uint64_t counted_before = stats_.results_counted;
  auto first = CompleteLocked(request.session_id(), request.lease_id(), request.result(), &response);
  if (!first.ok()) return first.status();
  response.set_disposition(*first);
  for (const auto& more : request.more_results()) {
    // The first one that cannot be taken now ends the call's results; the
    // agent sends it and those after it again.
    auto taken = CompleteLocked(request.session_id(), more.lease_id(), more.result(), &response);
    if (!taken.ok()) break;
    response.add_more_dispositions(*taken);
  }
  // Leases come with results that counted now, as before batches: a repeat
  // gets its first reply's leases again (above), a stale result none.
  Session* session = LiveSession(request.session_id());
  if (!session || stats_.results_counted == counted_before) return response;
  GrantInReply(*session, LeasesWanted(request), &response);
  if (auto done = completed_.find({request.lease_id(), request.session_id()}); done != completed_.end()) {
    // A repeat of this call gets every lease of this reply again.
    done->second.next_lease_ids.clear();
    if (response.has_next_lease()) done->second.next_lease_ids.push_back(response.next_lease().lease_id());
    for (const auto& l : response.more_leases()) done->second.next_lease_ids.push_back(l.lease_id());
  }
  if (session->lease_ids.empty()) session->wake->notify_all();  // idle: its Work streams look for a case
  return response;
}

absl::StatusOr<v1::CompleteLeaseResponse::Disposition> Scheduler::CompleteLocked(const std::string& session_id,
                                                                                 const std::string& lease_id,
                                                                                 const v1::CaseResult& result,
                                                                                 v1::CompleteLeaseResponse* response) {
  auto found = LeaseToComplete(session_id, lease_id);
  if (absl::IsNotFound(found.status())) {
    // Its run left memory; the first answer stayed if its reply carried leases (EvictFinishedRuns).
    if (auto done = completed_.find({lease_id, session_id}); done != completed_.end()) {
      const Session* session = LiveSession(session_id);
      return RepeatCompletion(done->second, session ? session->record.pool : "", session_id, result, response);
    }
    return TakeLateResult(session_id, lease_id, result);
  }
  if (!found.ok()) return found.status();
  LeaseRecord& lease = **found;
  const std::pair<std::string, std::string> key{lease.lease_id, lease.session_id};
  if (auto done = completed_.find(key); done != completed_.end()) {
    return RepeatCompletion(done->second, lease.pool, lease.session_id, result, response);
  }
  const int64_t now = clock_->NowMs();
  // We ask an agent to stop a case only after ending its lease (CancelRun, or
  // the lease was lost), so those results arrive on ended leases. A CANCELLED
  // result on a lease that is still active is the agent's own doing (it was
  // shut down, or gave up on us): nobody asked to cancel the case and nothing
  // was measured. Ending the case as cancelled would let a gate pass without
  // its measurement, so it is a lost attempt instead: re-queued with
  // attempt + 1, an error once attempts are spent.
  const bool unrequested_cancel =
      lease.state == LeaseState::kActive && result.outcome() == v1::CaseResult::OUTCOME_CANCELLED;
  if (lease.state != LeaseState::kActive || unrequested_cancel) {
    return TakeStaleResult(lease, result, unrequested_cancel, now);
  }
  // The gate picks the expected file and the confirmation's pool by the
  // result's pool: an agent may not name another than its lease's.
  if ((!result.pool().empty() && result.pool() != lease.pool) ||
      (!result.agent_id().empty() && result.agent_id() != lease.agent_id)) {
    ++stats_.results_refused;
    return absl::InvalidArgumentError(
        absl::StrCat("the result for lease '", lease.lease_id, "' names agent '", result.agent_id(), "' of pool '",
                     result.pool(), "'; the lease is agent '", lease.agent_id, "''s of pool '", lease.pool, "'"));
  }
  // Nor none: a result of no pool matched no expected file, and judged nothing.
  if (result.pool().empty() || result.agent_id().empty()) {
    v1::CaseResult named = result;
    if (named.pool().empty()) named.set_pool(lease.pool);
    if (named.agent_id().empty()) named.set_agent_id(lease.agent_id);
    return TakeCountedResult(lease, named, now);
  }
  return TakeCountedResult(lease, result, now);
}

absl::Status Scheduler::CheckHolder(const LeaseRecord& lease, const std::string& session_id) {
  if (lease.session_id == session_id) return absl::OkStatus();
  ++stats_.results_refused;
  return absl::PermissionDeniedError(absl::StrCat("lease '", lease.lease_id, "' is not held by session '", session_id,
                                                  "'; only its holder may complete it"));
}

v1::CompleteLeaseResponse::Disposition Scheduler::RepeatCompletion(const Completion& done, const std::string& pool,
                                                                   const std::string& session_id,
                                                                   const v1::CaseResult& result,
                                                                   v1::CompleteLeaseResponse* response) {
  ++stats_.results_duplicate;
  if (listener_) listener_->OnResult("", "", pool, DispositionName(Disposition::kDuplicate), "", result, 0);
  // The first reply may have been lost with the leases it carried.
  for (const auto& next : done.next_lease_ids) RepeatNextLease(next, session_id, response);
  return done.disposition;
}

bool Scheduler::CarriesActiveLease(const Completion& done) const {
  for (const auto& id : done.next_lease_ids) {
    if (auto it = leases_.find(id); it != leases_.end() && it->second.state == LeaseState::kActive) return true;
  }
  return false;
}

void Scheduler::ForgetKeptCompletions() {
  std::erase_if(kept_completions_, [&](const CompletionKey& key) {
    auto done = completed_.find(key);
    if (done != completed_.end() && CarriesActiveLease(done->second)) return false;
    if (done != completed_.end()) completed_.erase(done);
    return true;
  });
}

absl::StatusOr<LeaseRecord*> Scheduler::LeaseToComplete(const std::string& session_id, const std::string& lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return absl::NotFoundError(absl::StrCat("unknown lease '", lease_id, "'"));
  LeaseRecord& lease = it->second;
  if (auto s = CheckHolder(lease, session_id); !s.ok()) return s;
  return &lease;
}

absl::StatusOr<v1::CompleteLeaseResponse::Disposition> Scheduler::TakeLateResult(const std::string& session_id,
                                                                                 const std::string& lease_id,
                                                                                 const v1::CaseResult& result) {
  auto stored = store_->LoadLease(lease_id);
  if (!stored.ok()) return StoreFailed(stored.status(), "late result's lease");
  if (!stored->has_value()) return absl::NotFoundError(absl::StrCat("unknown lease '", lease_id, "'"));
  const LeaseRecord& lease = (*stored)->lease;
  if (auto s = CheckHolder(lease, session_id); !s.ok()) return s;
  if (const auto taken = (*stored)->result) {
    ++stats_.results_duplicate;
    return *taken == ResultDisposition::kCounted ? v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED
                                                 : v1::CompleteLeaseResponse::DISPOSITION_STALE;
  }
  if (auto s = KeepStale(lease, result, clock_->NowMs()); !s.ok()) return s;
  return v1::CompleteLeaseResponse::DISPOSITION_STALE;
}

absl::Status Scheduler::KeepStale(const LeaseRecord& lease, const v1::CaseResult& result, int64_t now) {
  if (auto s = store_->InsertResult(lease, ResultDisposition::kStale, result, now); !s.ok()) {
    return StoreFailed(s, "stale result");
  }
  ++stats_.results_stale;
  if (listener_) listener_->OnResult("", "", lease.pool, DispositionName(Disposition::kStale), "", result, 0);
  return absl::OkStatus();
}

absl::StatusOr<v1::CompleteLeaseResponse::Disposition> Scheduler::TakeStaleResult(LeaseRecord& lease,
                                                                                  const v1::CaseResult& result,
                                                                                  bool unrequested_cancel,
                                                                                  int64_t now) {
  if (auto s = KeepStale(lease, result, now); !s.ok() && !(unrequested_cancel && StoredStale(lease.lease_id))) {
    return s;
  }
  completed_[{lease.lease_id, lease.session_id}] = {v1::CompleteLeaseResponse::DISPOSITION_STALE, {}};
  if (unrequested_cancel) {
    LoseLease(lease.lease_id, "the agent stopped the case without being asked (outcome CANCELLED)");
    changed_.notify_all();
  }
  return v1::CompleteLeaseResponse::DISPOSITION_STALE;
}

// Whether the store holds a stale result for the lease: the same report
// taken before a restart that came before the lease was ended. Refusing it
// again as "already has a result" wedged the case: the agent retried for
// ever, renewing the lease it would never be let go of.
bool Scheduler::StoredStale(const std::string& lease_id) {
  auto stored = store_->LoadLease(lease_id);
  return stored.ok() && stored->has_value() && (*stored)->result == ResultDisposition::kStale;
}

std::pair<v1::CaseState, std::string> Scheduler::OutcomeOf(const LeaseRecord& lease,
                                                           const v1::CaseResult& result) const {
  if (result.outcome() == v1::CaseResult::OUTCOME_SKIPPED) {
    return {v1::CASE_STATE_ERROR, absl::StrCat("agent ", lease.agent_id, " could not run it: ", result.error())};
  }
  return {v1::CASE_STATE_DONE, result.error()};
}

absl::StatusOr<v1::CompleteLeaseResponse::Disposition> Scheduler::TakeCountedResult(LeaseRecord& lease,
                                                                                    const v1::CaseResult& result,
                                                                                    int64_t now) {
  RunEntry& run = runs_.at(lease.run_id);
  CaseEntry& c = run.cases[lease.case_index];
  const auto [state, error] = OutcomeOf(lease, result);
  v1::CaseStatus ended = c.status;
  ended.set_state(state);
  ended.set_error(error);
  // The result (and with it the case's duration), the lease's end and the
  // case's state: one batch, in the group Complete flushes before it tells
  // the agent that its result counts.
  lease.state = LeaseState::kCompleted;  // written with the result
  absl::Status stored = store_->BeginBatch();
  if (stored.ok()) {
    store_->InsertResult(lease, ResultDisposition::kCounted, result, now).IgnoreError();  // fails the batch
    store_->UpdateCase(lease.run_id, lease.case_index, ended).IgnoreError();
    stored = store_->CommitBatchLater().status();
  }
  if (!stored.ok()) {
    lease.state = LeaseState::kActive;
    return StoreFailed(stored, "result");
  }
  ForgetLease(lease, LeaseState::kCompleted, /*wake_idle=*/false);
  ++stats_.results_counted;
  completed_[{lease.lease_id, lease.session_id}] = {v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED, {}};
  Session* session = LiveSession(lease.session_id);
  if (session) session->record.last_seen_ms = now;
  c.result = result.SerializeAsString();
  c.implied_host = result.has_host() || !session ? nullptr : session->host;
  if (listener_) {
    listener_->OnResult(run.meta.suite_name(), run.meta.branch(), lease.pool, DispositionName(Disposition::kCounted),
                        c.status.name(), result,
                        static_cast<double>(DurationMs(result, now - lease.granted_at_ms)) / 1000);
  }
  ApplyCase(run, lease.case_index, state, error);
  MaybeFinish(run);
  changed_.notify_all();
  return v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED;
}

}  // namespace perfgate
