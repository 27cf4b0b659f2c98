#include "coordinator/services.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <charconv>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "coordinator/grpc_status.h"

namespace perfgate {
namespace {

// How long a streaming handler waits before checking that its client is
// still there; events wake it sooner.
constexpr int64_t kStreamCheckMs = 500;

// The least time between two batches of a run's events to one watcher: a
// gate's progress needs no more than 10 updates a second. At 50 a second,
// the watcher of a run of trivial cases took a fifteenth of the
// coordinator's CPU (16 agents, a profile).
constexpr int64_t kEventBatchMs = 100;

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpc(result.status());
  *out = *std::move(result);  // moved, not copied: a reply can carry a lease's whole case spec
  return grpc::Status::OK;
}

// The bytes one more case adds to a Run: its field tag, length and body.
size_t CaseBytes(const v1::CaseStatus& c) {
  const size_t body = c.ByteSizeLong();
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(body) + body;
}

// Where a part of a run starts: a page_token is the index of its first case.
absl::StatusOr<size_t> FirstCaseOf(const std::string& page_token, const v1::Run& run) {
  size_t first = 0;
  if (page_token.empty()) return first;
  const char* end = page_token.data() + page_token.size();
  auto parsed = std::from_chars(page_token.data(), end, first);
  if (parsed.ec != std::errc() || parsed.ptr != end || first > static_cast<size_t>(run.cases_size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("GetRun: page_token '", page_token, "' is not one a reply gave; start again without it"));
  }
  return first;
}

// The cases of `run` from `page_token` on that fit in `max_bytes` (the
// whole reply), moved into `page`, with the token of the rest if any.
absl::Status PageOfRun(v1::Run run, const std::string& page_token, uint64_t max_bytes, v1::Run* page) {
  auto first = FirstCaseOf(page_token, run);
  if (!first.ok()) return first.status();
  auto cases = std::move(*run.mutable_cases());
  run.clear_cases();
  *page = std::move(run);
  // Room for the largest next_page_token (tag, length, 20 digits).
  size_t bytes = page->ByteSizeLong() + 22;
  int next = static_cast<int>(*first);
  for (; next < cases.size(); ++next) {
    const size_t more = CaseBytes(cases[next]);
    if (bytes + more > max_bytes) break;
    bytes += more;
    *page->add_cases() = std::move(cases[next]);
  }
  if (next == cases.size()) return absl::OkStatus();
  if (page->cases_size() == 0) {
    return absl::ResourceExhaustedError(absl::StrCat("GetRun: case '", cases[next].name(), "' alone is ",
                                                     CaseBytes(cases[next]), " bytes, more than a reply of ", max_bytes,
                                                     " bytes may carry; raise the client's receive limit"));
  }
  page->set_next_page_token(absl::StrCat(next));
  return absl::OkStatus();
}

// A history request whose largest reply fits the reply limit, checked before
// any of it is read: the reply is built whole, so 90,000 copies of one key
// with no limit on runs took 3 GB of the coordinator's memory before gRPC
// refused to send it. Each median is 9 bytes on the wire, a key's series
// a few more than the key itself.
absl::Status CheckHistoryReplyFits(const v1::HistoryRequest& request, uint64_t reply_bytes) {
  if (request.max_runs() == 0 && request.keys_size() > 0) {  // no keys: a call for the known pools alone
    return absl::InvalidArgumentError("GetHistory: max_runs must be at least 1 (the newest runs kept per key)");
  }
  const uint64_t keys = static_cast<uint64_t>(request.keys_size());
  const uint64_t largest = request.ByteSizeLong() + keys * (9 * uint64_t{request.max_runs()} + 8);
  if (largest <= reply_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat("GetHistory: ", keys, " keys of up to ", request.max_runs(),
                                                   " runs each could reply ", largest, " bytes, more than the ",
                                                   reply_bytes, " a reply may carry; ask for fewer keys or runs"));
}

void DropResults(v1::Run* run) {
  for (auto& c : *run->mutable_cases()) c.clear_result();
}

void DropResults(v1::RunEvent* event) {
  if (event->has_snapshot()) DropResults(event->mutable_snapshot());
  if (event->has_case_changed()) event->mutable_case_changed()->clear_result();
}

}  // namespace

grpc::Status AgentServiceImpl::Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                                        v1::RegisterResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kRegister, *context, request->ByteSizeLong()); !s.ok()) return s;
  return Reply(scheduler_->Register(*request), response);
}

grpc::Status AgentServiceImpl::Work(grpc::ServerContext* context, const v1::WorkRequest* request,
                                    grpc::ServerWriter<v1::WorkItem>* writer) {
  if (auto s = gatekeeper_->Admit(Rpc::kWork, *context, request->ByteSizeLong()); !s.ok()) return s;
  auto slot = work_streams_.Take();
  if (!slot.ok()) return ToGrpc(slot.status());
  // The open stream keeps the session's agent id from another process; gRPC's
  // sync IsCancelled may be asked from the Register thread.
  auto stream =
      scheduler_->OpenStream(request->session_id(), {context->peer(), [context] { return !context->IsCancelled(); }});
  if (!stream.ok()) return ToGrpc(stream.status());
  absl::Cleanup close = [&] { scheduler_->CloseStream(request->session_id(), *stream); };
  while (!context->IsCancelled()) {
    v1::WorkItem item;
    auto wait = scheduler_->NextWorkItem(request->session_id(), kStreamCheckMs, &item);
    if (!wait.ok()) return ToGrpc(wait.status());
    if (*wait == Scheduler::Wait::kClosed)
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is shutting down");
    if (*wait == Scheduler::Wait::kTimeout) continue;
    if (!writer->Write(item)) {
      if (item.has_lease()) scheduler_->ReleaseUndelivered(item.lease().lease_id());
      break;
    }
  }
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                                         v1::HeartbeatResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kHeartbeat, *context, request->ByteSizeLong()); !s.ok()) return s;
  return Reply(scheduler_->Heartbeat(*request), response);
}

grpc::Status AgentServiceImpl::CompleteLease(grpc::ServerContext* context, const v1::CompleteLeaseRequest* request,
                                             v1::CompleteLeaseResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kCompleteLease, *context, request->ByteSizeLong()); !s.ok()) return s;
  return Reply(scheduler_->Complete(*request), response);
}

grpc::Status GateServiceImpl::SubmitRun(grpc::ServerContext* context, const v1::SubmitRunRequest* request,
                                        v1::SubmitRunResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kSubmitRun, *context, request->ByteSizeLong()); !s.ok()) return s;
  if (!artifacts_) return Reply(scheduler_->Submit(*request), response);
  // Every tree the run names must be here before it is queued, and stays while the run needs it.
  auto needed = artifacts_->CheckSuite(request->suite());
  if (!needed.ok()) return ToGrpc(needed.status());
  auto submitted = scheduler_->Submit(*request);
  if (submitted.ok() && !needed->empty()) {
    if (auto s = artifacts_->Pin(submitted->run_id(), *needed); !s.ok()) {
      scheduler_->Cancel(submitted->run_id()).status().IgnoreError();  // a run whose files may vanish would measure nothing
      return ToGrpc(s);
    }
  }
  return Reply(std::move(submitted), response);
}

grpc::Status GateServiceImpl::WatchRun(grpc::ServerContext* context, const v1::WatchRunRequest* request,
                                       grpc::ServerWriter<v1::RunEvent>* writer) {
  if (auto s = gatekeeper_->Admit(Rpc::kWatchRun, *context, request->ByteSizeLong()); !s.ok()) return s;
  auto slot = watch_streams_.Take();
  if (!slot.ok()) return ToGrpc(slot.status());
  size_t cursor = 0;
  auto snapshot = scheduler_->Snapshot(request->run_id(), &cursor, request->without_results());
  if (!snapshot.ok()) return ToGrpc(snapshot.status());
  v1::RunEvent first;
  *first.mutable_snapshot() = *std::move(snapshot);
  if (request->without_results()) DropResults(&first);
  if (!writer->Write(first)) return grpc::Status::OK;
  if (first.snapshot().state() != v1::RUN_STATE_RUNNING) {
    v1::RunEvent done;
    done.set_run_finished(first.snapshot().state());
    writer->Write(done);
    return grpc::Status::OK;
  }
  while (!context->IsCancelled()) {
    std::vector<v1::RunEvent> events;
    if (auto s = scheduler_->WaitRunEvents(request->run_id(), &cursor, kStreamCheckMs, &events,
                                               request->without_results());
        !s.ok()) {
      return ToGrpc(s);
    }
    for (size_t i = 0; i < events.size(); ++i) {
      v1::RunEvent& event = events[i];
      if (request->without_results()) DropResults(&event);
      // One send for the batch: gRPC holds a write with the buffer hint
      // until the next one without it.
      grpc::WriteOptions options;
      if (i + 1 < events.size()) options.set_buffer_hint();
      if (!writer->Write(event, options)) return grpc::Status::OK;
      if (event.has_run_finished()) return grpc::Status::OK;
    }
    // Events that come meanwhile wait and go as one batch: a watcher woken
    // and a message sent per case change cost the coordinator as much as
    // a twelfth of its CPU with 16 agents running trivial cases. The run's
    // end is not held back.
    if (!events.empty()) scheduler_->WaitRunEnd(request->run_id(), kEventBatchMs);
  }
  return grpc::Status::OK;
}

grpc::Status GateServiceImpl::GetRun(grpc::ServerContext* context, const v1::GetRunRequest* request,
                                     v1::Run* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kGetRun, *context, request->ByteSizeLong()); !s.ok()) return s;
  auto run = scheduler_->GetRun(request->run_id());
  if (!run.ok() || (request->max_reply_bytes() == 0 && request->page_token().empty())) {
    return Reply(std::move(run), response);
  }
  uint64_t max_bytes = gatekeeper_->limits().reply_bytes;
  if (request->max_reply_bytes() != 0) max_bytes = std::min<uint64_t>(max_bytes, request->max_reply_bytes());
  return ToGrpc(PageOfRun(*std::move(run), request->page_token(), max_bytes, response));
}

grpc::Status GateServiceImpl::CancelRun(grpc::ServerContext* context, const v1::CancelRunRequest* request,
                                        v1::CancelRunResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kCancelRun, *context, request->ByteSizeLong()); !s.ok()) return s;
  auto state = scheduler_->Cancel(request->run_id());
  if (!state.ok()) return ToGrpc(state.status());
  response->set_state(*state);
  return grpc::Status::OK;
}

grpc::Status GateServiceImpl::GetHistory(grpc::ServerContext* context, const v1::HistoryRequest* request,
                                         v1::HistoryResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kGetHistory, *context, request->ByteSizeLong()); !s.ok()) return s;
  if (auto s = CheckHistoryReplyFits(*request, gatekeeper_->limits().reply_bytes); !s.ok()) return ToGrpc(s);
  return ToGrpc(scheduler_->History(*request, response));
}

grpc::Status GateServiceImpl::ReportVerdict(grpc::ServerContext* context, const v1::ReportVerdictRequest* request,
                                            v1::ReportVerdictResponse*) {
  if (auto s = gatekeeper_->Admit(Rpc::kReportVerdict, *context, request->ByteSizeLong()); !s.ok()) return s;
  return ToGrpc(scheduler_->ReportVerdict(*request));
}

}  // namespace perfgate
