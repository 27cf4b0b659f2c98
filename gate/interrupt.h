// Ctrl-C as an event: the signal thread fires it once; whoever is running a
// gate run has subscribed what to do (cancel the run). No polling.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace perfgate {

class Interrupt {
 public:
  class Subscription {
   public:
    ~Subscription() { owner_->Unsubscribe(id_); }

   private:
    friend class Interrupt;
    Subscription(Interrupt* owner, int id) : owner_(owner), id_(id) {}
    Interrupt* owner_;
    int id_;
  };

  // Runs `on_fire` at once if already fired, else when Fire() is called,
  // until the subscription is dropped (dropping waits for a running call).
  // REQUIRES: on_fire does not call back into this Interrupt.
  std::unique_ptr<Subscription> OnFire(std::function<void()> on_fire) {
    std::lock_guard lock(mu_);
    if (fired_) on_fire();
    const int id = next_id_++;
    subscribers_[id] = std::move(on_fire);
    return std::unique_ptr<Subscription>(new Subscription(this, id));
  }

  // Thread-safe; callbacks run once, on the first call.
  void Fire() {
    std::lock_guard lock(mu_);
    if (fired_) return;
    fired_ = true;
    for (auto& [id, f] : subscribers_) f();
  }

  // Whether Fire() was called: a caller that meets a dead coordinator stops
  // instead of re-attaching when the person has already asked it to stop.
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  void Unsubscribe(int id) {
    std::lock_guard lock(mu_);
    subscribers_.erase(id);
  }

  std::mutex mu_;
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void()>> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perfgate
