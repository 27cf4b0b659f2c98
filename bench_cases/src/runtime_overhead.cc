// Runtime overhead of `x + 1` on a 2-element tensor in C++ against libtorch,
// modelled on PyTorch's pr_time_benchmarks runtime_overhead.py: plain,
// requires_grad, c10::InferenceMode and backward, each with a static input
// shape and with a shape that changes every call (PyTorch's dynamic variant;
// eager here, so "dynamic" means the dispatcher sees a new size each call).
//
// Usage: runtime_overhead RESULT_FILE [CALLS] [REPEATS]
//
// Timed runs append `NAME,time_per_iteration_ns,NANOSECONDS` (median over
// REPEATS blocks of CALLS calls of the thread's CPU time, not wall time: on a
// loaded machine wall time counts the waits for a core; whole nanoseconds, because PyTorch's
// expected-results format holds integers). In the agent's region-count runs each variant is a
// region of kCountedCalls calls instead: the row NAME,instruction_count.
// PERFGATE_SLOWDOWN_PCT=N runs N% more calls in every block and region while
// still dividing by the nominal count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "perfgate_region.h"

namespace {

// PyTorch's count is of 100 calls (1,770,287 instructions on one host).
constexpr int kCountedCalls = 100;

enum class Mode { kPlain, kRequiresGrad, kInferenceMode, kBackward };

struct Variant {
  Mode mode;
  bool dynamic;
};

std::string NameOf(const Variant& v) {
  std::string name = "runtime_overhead_eager";
  if (v.mode == Mode::kRequiresGrad || v.mode == Mode::kBackward) name += "_requires_grad";
  if (v.mode == Mode::kInferenceMode) name += "_inference_mode";
  if (v.mode == Mode::kBackward) name += "_backward";
  if (v.dynamic) name += "_dynamic";
  return name;
}

// Inputs: one 2-element tensor, or eight sizes taken in turn.
std::vector<at::Tensor> Inputs(const Variant& v) {
  std::vector<at::Tensor> inputs;
  const int sizes = v.dynamic ? 8 : 1;
  const bool grad = v.mode == Mode::kRequiresGrad || v.mode == Mode::kBackward;
  for (int i = 0; i < sizes; ++i) inputs.push_back(at::ones({2 + i}).set_requires_grad(grad));
  return inputs;
}

// One call of the measured work; `pause`/`resume` bracket set-up that is not
// measured (the forward pass before a backward, as PyTorch's _prepare).
template <typename Pause, typename Resume>
void Call(const Variant& v, const at::Tensor& x, Pause pause, Resume resume) {
  switch (v.mode) {
    case Mode::kPlain:
    case Mode::kRequiresGrad:
      (void)(x + 1);
      break;
    case Mode::kInferenceMode: {
      c10::InferenceMode guard;
      (void)(x + 1);
      break;
    }
    case Mode::kBackward: {
      pause();
      at::Tensor loss = (x + 1).sum();
      resume();
      loss.backward();
      break;
    }
  }
}

void CountRegion(const Variant& v) {
  std::vector<at::Tensor> inputs = Inputs(v);
  auto nothing = [] {};
  for (int i = 0; i < 10; ++i) Call(v, inputs[i % inputs.size()], nothing, nothing);  // warm-up, as PyTorch
  const uint64_t calls = perfgate_region::WithSlowdown(kCountedCalls);
  const std::string name = NameOf(v);
  perfgate_region::Begin();
  for (uint64_t i = 0; i < calls; ++i) {
    Call(v, inputs[i % inputs.size()], perfgate_region::Pause, perfgate_region::Resume);
  }
  perfgate_region::End(name.c_str());
}

// This thread's CPU time (at::set_num_threads(1): the work runs here).
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double SecondsPerCall(const Variant& v, int calls, int repeats) {
  std::vector<at::Tensor> inputs = Inputs(v);
  auto nothing = [] {};
  for (int i = 0; i < 100; ++i) Call(v, inputs[i % inputs.size()], nothing, nothing);
  const uint64_t slowed = perfgate_region::WithSlowdown(calls);
  std::vector<double> per_call;
  for (int r = 0; r < repeats; ++r) {
    double paused = 0;
    double pause_start = 0;
    auto pause = [&] { pause_start = CpuSeconds(); };
    auto resume = [&] { paused += CpuSeconds() - pause_start; };
    const double start = CpuSeconds();
    for (uint64_t i = 0; i < slowed; ++i) Call(v, inputs[i % inputs.size()], pause, resume);
    per_call.push_back((CpuSeconds() - start - paused) / calls);
  }
  std::nth_element(per_call.begin(), per_call.begin() + per_call.size() / 2, per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: runtime_overhead RESULT_FILE [CALLS] [REPEATS]\n");
    return 2;
  }
  const int calls = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 31;
  if (calls <= 0 || repeats <= 0) {
    std::fprintf(stderr, "runtime_overhead: CALLS and REPEATS must be positive\n");
    return 2;
  }
  at::set_num_threads(1);
  std::vector<Variant> variants;
  for (bool dynamic : {false, true}) {
    for (Mode mode : {Mode::kPlain, Mode::kInferenceMode, Mode::kRequiresGrad, Mode::kBackward}) {
      variants.push_back({mode, dynamic});
    }
  }
  if (perfgate_region::Counting()) {
    for (const Variant& v : variants) CountRegion(v);
    return 0;
  }
  FILE* out = std::fopen(argv[1], "a");
  if (!out) {
    std::perror(argv[1]);
    return 1;
  }
  for (const Variant& v : variants) {
    std::fprintf(out, "%s,time_per_iteration_ns,%.0f\n", NameOf(v).c_str(), SecondsPerCall(v, calls, repeats) * 1e9);
  }
  return std::fclose(out) == 0 ? 0 : 1;
}
