#include "coordinator/low_priority_worker.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>

namespace perfgate {

namespace {

int64_t ThreadCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// CPU a task uses before Pace sleeps: short enough that agents never wait
// long for a core, long enough that sleeps stay few.
constexpr int64_t kPaceSliceNs = 1'000'000;

}  // namespace

LowPriorityWorker::LowPriorityWorker(int nice, double cpu_share)
    : cpu_share_(std::clamp(cpu_share, 0.01, 1.0)) {  // never a sleep without end
  thread_ = std::thread([this, nice] { Loop(nice); });
  started_.get_future().wait();  // lowered() is known once the constructor returns
}

LowPriorityWorker::~LowPriorityWorker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LowPriorityWorker::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      wake_.notify_one();
      return;
    }
  }
  task();  // the thread is leaving: the caller waits for the answer all the same
}

void LowPriorityWorker::Pace(bool busy) {
  busy_in_slice_ = busy_in_slice_ || busy;
  const int64_t used = ThreadCpuNs() - paced_from_ns_;
  if (used < kPaceSliceNs) return;
  if (busy_in_slice_ && cpu_share_ < 1.0) {
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(used) * (1 / cpu_share_ - 1))));
  }
  busy_in_slice_ = false;
  paced_from_ns_ = ThreadCpuNs();
}

void LowPriorityWorker::Loop(int nice) {
  pthread_setname_np(pthread_self(), "low-priority");  // as top -H and perf name it
  // PRIO_PROCESS with a thread id sets that one thread's nice value (Linux).
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0) {
    lowered_ = true;
  } else {
    std::fprintf(stderr, "perfgate coordinator: cannot lower the history thread's priority (%s); it runs at normal "
                 "priority\n", std::strerror(errno));
  }
  started_.set_value();
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and nothing left
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    paced_from_ns_ = ThreadCpuNs();
    busy_in_slice_ = false;
    task();
    lock.lock();
  }
}

}  // namespace perfgate
