// One thread that runs posted tasks in the order they were posted. For work
// that must happen soon but not on the caller's path (a finished run's
// history summaries, freeing a finished run), with a way to wait for it
// (Drain) where its result is needed.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "coordinator/process_priority.h"

namespace perfgate {

class BackgroundQueue {
 public:
  // kStarting: the nice value the coordinator started at, below the raised
  // one of the threads that serve agents (ReturnToStartingPriority). Only for
  // tasks that hold no lock those threads wait for: a task preempted while
  // holding one would hold them up too.
  enum class Priority { kCreator, kStarting };
  // `name`: the thread's, as top -H and perf show it (15 characters at most).
  // Returns once the thread runs under its name and at its priority.
  explicit BackgroundQueue(std::string name, Priority priority = Priority::kCreator)
      : name_(std::move(name)), priority_(priority), thread_([this] { Loop(); }) {
    ready_.get_future().wait();
  }
  // Finishes the running task; tasks not started are dropped (a task must
  // leave its work where a later start finds it). REQUIRES: no Drain under way.
  ~BackgroundQueue() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      done_ += tasks_.size();
      tasks_.clear();
    }
    changed_.notify_all();
    thread_.join();
  }
  BackgroundQueue(const BackgroundQueue&) = delete;
  BackgroundQueue& operator=(const BackgroundQueue&) = delete;

  // Thread-safe.
  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      tasks_.push_back(std::move(task));
      ++posted_;
    }
    changed_.notify_all();
  }

  // Returns once every task posted before the call has run (or was dropped).
  // REQUIRES: not called from a task (it would wait for itself).
  void Drain() {
    std::unique_lock lock(mu_);
    const uint64_t target = posted_;
    changed_.wait(lock, [&] { return done_ >= target; });
  }

 private:
  void Loop() {
    pthread_setname_np(pthread_self(), name_.c_str());
    if (priority_ == Priority::kStarting) ReturnToStartingPriority();
    ready_.set_value();
    std::unique_lock lock(mu_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      ++done_;
      changed_.notify_all();
    }
  }

  const std::string name_;
  const Priority priority_;
  std::promise<void> ready_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  uint64_t posted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;  // run or dropped
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: it starts once the rest is constructed
};

}  // namespace perfgate
