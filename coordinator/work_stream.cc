#include "coordinator/work_stream.h"

#include <pthread.h>

#include <atomic>
#include <optional>

#include "coordinator/grpc_status.h"

namespace perfgate {

// What the pump, the reactor's callbacks and the scheduler's notify share.
// Lock order: mu, then the scheduler's lock, then the pump's. The reactor's
// StartWrite and Finish are called on the pump thread only, without mu:
// gRPC may run a reaction inline, and reactions take mu.
class WorkStreamState {
 public:
  std::string session_id;
  uint64_t stream_id = 0;
  grpc::ServerWriteReactor<v1::WorkItem>* reactor = nullptr;  // valid until Finish
  std::atomic<bool> queued{false};     // waiting in the pump's queue
  std::atomic<bool> cancelled{false};  // the client left, or the server shuts down
  absl::Mutex mu;
  bool writing ABSL_GUARDED_BY(mu) = false;
  bool write_failed ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;
  v1::WorkItem item;  // the write in flight; only the pump thread touches it
};

namespace {

class WorkReactor final : public grpc::ServerWriteReactor<v1::WorkItem> {
 public:
  WorkReactor(WorkPump* pump, Scheduler* scheduler, std::shared_ptr<WorkStreamState> state)
      : pump_(pump), scheduler_(scheduler), state_(std::move(state)) {}

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->writing = false;
      state_->write_failed = !ok;
    }
    pump_->Post(state_);
  }

  void OnCancel() override {
    state_->cancelled = true;
    pump_->Post(state_);
  }

  void OnDone() override {
    if (state_->stream_id != 0) scheduler_->CloseStream(state_->session_id, state_->stream_id);
    delete this;
  }

 private:
  WorkPump* const pump_;
  Scheduler* const scheduler_;
  const std::shared_ptr<WorkStreamState> state_;
};

}  // namespace

WorkPump::WorkPump(Scheduler* scheduler) : scheduler_(scheduler), thread_([this] { Loop(); }) {
  pthread_setname_np(thread_.native_handle(), "work-pump");
}

WorkPump::~WorkPump() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

grpc::ServerWriteReactor<v1::WorkItem>* WorkPump::Open(grpc::CallbackServerContext* context,
                                                       const v1::WorkRequest& request, const grpc::Status& admitted) {
  auto state = std::make_shared<WorkStreamState>();
  state->session_id = request.session_id();
  auto* reactor = new WorkReactor(this, scheduler_, state);
  state->reactor = reactor;
  if (!admitted.ok()) {
    reactor->Finish(admitted);
    return reactor;
  }
  // The open stream keeps the session's agent id from another process.
  std::weak_ptr<WorkStreamState> weak = state;
  auto stream = scheduler_->OpenStream(
      request.session_id(),
      {context->peer(), [state] { return !state->cancelled.load(); },
       [this, weak] {
         if (auto s = weak.lock()) Post(std::move(s));
       }});
  if (!stream.ok()) {
    reactor->Finish(ToGrpc(stream.status()));
    return reactor;
  }
  state->stream_id = *stream;
  Post(state);  // a case may be pending already
  return reactor;
}

void WorkPump::Post(std::shared_ptr<WorkStreamState> stream) {
  if (stream->queued.exchange(true)) return;
  absl::MutexLock lock(&mu_);
  ready_.push_back(std::move(stream));
}

void WorkPump::Loop() {
  for (;;) {
    std::shared_ptr<WorkStreamState> stream;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WorkPump::ReadyOrStopping));
      if (ready_.empty()) return;  // stopping, and nothing left
      stream = std::move(ready_.front());
      ready_.pop_front();
    }
    stream->queued = false;  // a notify from now on queues it again
    Step(*stream);
  }
}

void WorkPump::Step(WorkStreamState& stream) {
  std::optional<grpc::Status> end;
  {
    absl::MutexLock lock(&stream.mu);
    if (stream.finished || stream.writing) return;  // OnWriteDone posts it again
    if (stream.write_failed) {
      // The client is gone: the lease it did not get goes back, attempt not spent.
      if (stream.item.has_lease()) scheduler_->ReleaseUndelivered(stream.item.lease().lease_id());
      end = grpc::Status::OK;
    } else if (stream.cancelled) {
      end = grpc::Status::CANCELLED;
    } else {
      auto next = scheduler_->TryNextWorkItem(stream.session_id, &stream.item);
      if (!next.ok()) {
        end = ToGrpc(next.status());
      } else if (*next == Scheduler::Wait::kClosed) {
        end = grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is shutting down");
      } else if (*next == Scheduler::Wait::kNothing) {
        return;  // the scheduler notifies when there is
      }
    }
    if (end) {
      stream.finished = true;
    } else {
      stream.writing = true;
    }
  }
  if (end) {
    stream.reactor->Finish(*end);
  } else {
    stream.reactor->StartWrite(&stream.item);
  }
}

}  // namespace perfgate
