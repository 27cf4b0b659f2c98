// The agents' Work stream as a gRPC callback reactor. A sync handler holds a
// server thread for as long as its agent stays connected: one per agent,
// each with its stack and a malloc cache that never empties. Here an open
// stream holds no thread. One pump thread, which the scheduler wakes through
// the stream's notify, moves each session's next work item onto its stream.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/scheduler.h"
#include "perfgate/v1/agent.pb.h"

namespace perfgate {

class WorkStreamState;

class WorkPump {
 public:
  // REQUIRES: the scheduler outlives the pump.
  explicit WorkPump(Scheduler* scheduler);
  // REQUIRES: every stream it opened is done (the server has shut down).
  ~WorkPump();
  WorkPump(const WorkPump&) = delete;
  WorkPump& operator=(const WorkPump&) = delete;

  // A reactor for a Work call that the Gatekeeper answered with `admitted`:
  // it ends at once with that status if it is not OK, or with the
  // scheduler's refusal of the session; else it streams the session's items.
  grpc::ServerWriteReactor<v1::WorkItem>* Open(grpc::CallbackServerContext* context, const v1::WorkRequest& request,
                                               const grpc::Status& admitted);

  // The stream has something to do on the pump thread. Any thread, under
  // the scheduler's lock too: it only queues.
  void Post(std::shared_ptr<WorkStreamState> stream);

 private:
  void Loop();
  bool ReadyOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !ready_.empty(); }
  // One stream's next step: write its next item, or end it.
  void Step(WorkStreamState& stream);

  Scheduler* const scheduler_;
  absl::Mutex mu_;
  std::deque<std::shared_ptr<WorkStreamState>> ready_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace perfgate
