// One thread at a low CPU priority that runs calls for other threads. For
// work that is long and never urgent (a history query: tens of milliseconds
// of CPU), so that the kernel runs the short, urgent work (lease grants and
// completions) first: at equal priority a 2-core coordinator gives a history
// call a whole core while every agent waits for its next case.
//
// On Linux a nice value applies to one thread; raising it needs no privilege
// (lowering it again would, so the thread keeps its priority for life).
//
// A nice value alone does not keep it out of the way: on 2 cores a history
// call at nice 19 still cost the agents a quarter of their lease rate while
// it ran (each handoff between the lease path's threads found a core taken).
// Tasks also hold themselves to a share of a core (ActivityPacer).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"

namespace perfgate {

class LowPriorityWorker {
 public:
  // nice: the thread's nice value, 19 the lowest priority.
  explicit LowPriorityWorker(int nice = 19);
  // Runs what is queued, then joins.
  ~LowPriorityWorker();
  LowPriorityWorker(const LowPriorityWorker&) = delete;
  LowPriorityWorker& operator=(const LowPriorityWorker&) = delete;

  // Runs fn on the worker's thread and returns its result; calls from
  // several threads run one after another. Thread-safe.
  template <typename F>
  std::invoke_result_t<F&> Run(F&& fn) {
    std::packaged_task<std::invoke_result_t<F&>()> task(std::forward<F>(fn));
    auto result = task.get_future();
    Post([&task] { task(); });  // Run waits below, so the task outlives the call
    return result.get();
  }

  // Whether the priority was set: false where the kernel refused it.
  bool lowered() const { return lowered_.load(); }

 private:
  // Queues the task; after the destructor began it runs here and now.
  void Post(std::function<void()> task);
  void Loop(int nice);

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> lowered_{false};
  std::promise<void> started_;
  std::thread thread_;
};

}  // namespace perfgate
