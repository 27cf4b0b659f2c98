#include "coordinator/low_priority_worker.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace perfgate {

LowPriorityWorker::LowPriorityWorker(int nice) {
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
    task();
    lock.lock();
  }
}

}  // namespace perfgate
