// A Store that passes every call to another: for tests that watch or alter
// one call and leave the rest to the real store (override that one).
#pragma once

#include "coordinator/store.h"

namespace perfgate::testing {

class ForwardingStore : public Store {
 public:
  // REQUIRES: target outlives this.
  explicit ForwardingStore(Store* target) : target_(target) {}

  absl::Status BeginBatch() override { return target_->BeginBatch(); }
  absl::Status CommitBatch() override { return target_->CommitBatch(); }
  void AbortBatch() override { target_->AbortBatch(); }
  absl::StatusOr<uint64_t> CommitBatchLater() override { return target_->CommitBatchLater(); }
  absl::Status Flush(uint64_t group) override { return target_->Flush(group); }
  uint64_t OpenGroup() override { return target_->OpenGroup(); }
  absl::Status Lost() override { return target_->Lost(); }
  void DeferSyncsOnThisThread(bool defer) override { target_->DeferSyncsOnThisThread(defer); }
  absl::Status InsertRun(const v1::Run& run, const v1::Suite& suite) override {
    return target_->InsertRun(run, suite);
  }
  absl::Status UpdateRunState(const std::string& run_id, v1::RunState state, int64_t finished_at_ms) override {
    return target_->UpdateRunState(run_id, state, finished_at_ms);
  }
  absl::StatusOr<bool> SetRunVerdict(const std::string& run_id, const std::string& verdict) override {
    return target_->SetRunVerdict(run_id, verdict);
  }
  absl::Status UpdateCase(const std::string& run_id, int case_index, const v1::CaseStatus& status) override {
    return target_->UpdateCase(run_id, case_index, status);
  }
  absl::Status InsertLease(const LeaseRecord& lease) override { return target_->InsertLease(lease); }
  absl::StatusOr<std::optional<StoredLease>> LoadLease(const std::string& lease_id) override {
    return target_->LoadLease(lease_id);
  }
  absl::Status UpdateLease(const std::string& lease_id, LeaseState state, int64_t expires_at_ms) override {
    return target_->UpdateLease(lease_id, state, expires_at_ms);
  }
  absl::Status InsertResult(const LeaseRecord& lease, ResultDisposition disposition, const v1::CaseResult& result,
                            int64_t received_at_ms) override {
    return target_->InsertResult(lease, disposition, result, received_at_ms);
  }
  absl::StatusOr<std::map<std::string, int64_t>> CaseDurations(const std::string& suite_name) override {
    return target_->CaseDurations(suite_name);
  }
  absl::Status UpsertSession(const SessionRecord& session) override { return target_->UpsertSession(session); }
  absl::Status DeleteSession(const std::string& session_id) override { return target_->DeleteSession(session_id); }
  absl::StatusOr<RecoveredState> Recover() override { return target_->Recover(); }
  absl::StatusOr<v1::HistoryResponse*> History(const v1::HistoryRequest& request, google::protobuf::Arena* arena,
                                               const std::function<void()>& pace) override {
    return target_->History(request, arena, pace);
  }
  absl::StatusOr<v1::Run> LoadRun(const std::string& run_id) override { return target_->LoadRun(run_id); }
  absl::StatusOr<std::vector<LatestResult>> LatestResults(const std::string& branch) override {
    return target_->LatestResults(branch);
  }

 private:
  Store* const target_;
};

}  // namespace perfgate::testing
