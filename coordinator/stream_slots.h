// A bound on how many streams of one kind hold a gRPC server thread at once.
// The sync server's threads are one pool (CoordinatorOptions::max_threads),
// and a stream holds its thread for as long as it is open: 1,100 WatchRun
// calls with the read token on a running run took them all, and agents'
// heartbeats and results were refused until their leases expired. Each kind
// of stream gets a share of the pool, so that what is left always serves the
// short calls.
#pragma once

#include <atomic>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace perfgate {

class StreamSlots {
 public:
  // REQUIRES: limit >= 1.
  StreamSlots(const char* what, int limit) : what_(what), limit_(limit) {}
  StreamSlots(const StreamSlots&) = delete;
  StreamSlots& operator=(const StreamSlots&) = delete;

  // A slot, given back when it is destroyed.
  class Slot {
   public:
    explicit Slot(StreamSlots* slots) : slots_(slots) {}
    Slot(Slot&& other) noexcept : slots_(other.slots_) { other.slots_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (slots_) slots_->in_use_.fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    StreamSlots* slots_;
  };

  // A slot, or UNAVAILABLE naming the kind and its limit when every slot is
  // held: the code gRPC clients retry with backoff (agents' downloads and
  // Work streams, gates' uploads and watches do).
  absl::StatusOr<Slot> Take() {
    if (in_use_.fetch_add(1, std::memory_order_relaxed) >= limit_) {
      in_use_.fetch_sub(1, std::memory_order_relaxed);
      return absl::UnavailableError(absl::StrCat(limit_, " ", what_,
                                                 " streams are open, the most this coordinator serves at once; "
                                                 "try again later"));
    }
    return Slot(this);
  }

  int in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  const char* what_;
  const int limit_;
  std::atomic<int> in_use_{0};
};

}  // namespace perfgate
