// How often the gate cries wolf, and how often it catches a real 2%
// regression, with the default settings on synthetic samples of known
// noise. Not a timing benchmark: it counts verdicts over many trials.
//
//   stat_power [--trials N] [--noise 0.005] [--between 0] [--shift 0.02] [--history-runs 20] [--k 4] [--json FILE]
//
// Noise model: each sample is base * (1 + N(0, noise)), and 5% of samples
// are outliers +5% (another process woke up). With --between, each run
// (a history run, a PR run, its confirmation) is also shifted as a whole by
// N(0, between): the load of a shared machine moves from one run to the
// next, and no number of samples within a run averages that away (the demo's
// timed metrics, bench/gate_error_rates). A/B sides share their run's shift:
// they are interleaved on one agent. Each scenario is run A/A (no change:
// every regression verdict is a false alarm) and with the shift (every
// regression verdict is a detection).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "core/compare.h"
#include "core/policy.h"
#include "core/stats.h"

namespace {

using perfgate::Verdict;

struct Noise {
  double sigma;
  double between;
  std::mt19937_64 rng{20261122};
  // The whole-run factor of one run.
  double RunLevel(double level) { return level * (1 + std::normal_distribution<double>(0, between)(rng)); }
  // One run's samples: the run's own level, then per-sample noise.
  std::vector<double> Samples(size_t n, double level) { return SamplesAt(n, RunLevel(level)); }
  std::vector<double> SamplesAt(size_t n, double level) {
    std::normal_distribution<double> normal(0, sigma);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<double> out;
    for (size_t i = 0; i < n; ++i) out.push_back(level * (1 + normal(rng)) * (u(rng) < 0.05 ? 1.05 : 1.0));
    return out;
  }
  std::vector<double> RunMedians(size_t runs, size_t n, double level) {
    std::vector<double> out;
    for (size_t r = 0; r < runs; ++r) out.push_back(perfgate::Summarize(Samples(n, level)).median);
    return out;
  }
};

struct Rates {
  double false_alarm;
  double detection;
};

}  // namespace

int main(int argc, char** argv) {
  int trials = 10000;
  double sigma = 0.005, between = 0, shift = 0.02;
  size_t history_runs = 20;
  double k = perfgate::CompareOptions{}.history_k;
  std::string json_path;
  CLI::App app("How often the gate cries wolf, and how often it catches a real shift, on synthetic samples.",
               "stat_power");
  app.add_option("--trials", trials, "trials per row")->capture_default_str()->check(perfgate::bench::kCount);
  app.add_option("--noise", sigma, "per-sample noise sigma, as a fraction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--between", between, "run-to-run noise sigma, as a fraction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--shift", shift, "the regression to catch, as a fraction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--history-runs", history_runs, "main-branch runs in the history window")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--k", k, "history threshold: k x scaled MAD")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "write the rates as JSON to FILE");
  if (std::optional<int> exit_code = perfgate::bench::ParseOrExit(app, argc, argv)) return *exit_code;
  perfgate::Policy policy;  // the defaults under test, but for --k
  policy.compare.history_k = k;
  const auto& options = policy.compare;
  const size_t repeats = 5;                          // a suite's default samples per case
  const size_t ab_repeats = options.ab_min_samples;  // samples per A/B side
  // main-branch runs in the window: --history-runs
  Noise noise{sigma, between};

  // One verdict for a head level against a baseline of level 1.
  auto ab = [&](double head) {
    const double run = noise.RunLevel(1.0);
    return perfgate::CompareAB(perfgate::Direction::kLowerIsBetter, noise.SamplesAt(ab_repeats, run),
                               noise.SamplesAt(ab_repeats, run * head), options)
        .verdict;
  };
  // The first measurement and its confirmation (twice the samples, as the
  // gate re-measures) against one history.
  std::vector<double> history_medians;
  auto history = [&](double head, uint32_t round) {
    if (round == 0) history_medians = noise.RunMedians(history_runs, repeats, 1.0);
    return perfgate::CompareWithHistory(perfgate::Direction::kLowerIsBetter,
                                        noise.Samples(round == 0 ? repeats : 2 * repeats, head), history_medians,
                                        options)
        .verdict;
  };
  auto ab_round = [&](double head, uint32_t) { return ab(head); };
  auto rates = [&](auto judge, bool confirm) {
    Rates r{0, 0};
    for (int t = 0; t < trials; ++t) {
      auto regressed = [&](double level) {
        for (uint32_t k = 0; k <= (confirm ? policy.confirm : 0); ++k) {
          if (judge(level, k) != Verdict::kRegression) return false;
        }
        return true;
      };
      r.false_alarm += regressed(1.0);
      r.detection += regressed(1.0 + shift);
    }
    r.false_alarm /= trials;
    r.detection /= trials;
    return r;
  };
  struct Row {
    const char* method;
    bool confirm;
    Rates r;
  };
  std::vector<Row> rows = {
      {"a/b (Mann-Whitney), single measurement", false, rates(ab_round, false)},
      {"a/b (Mann-Whitney), with confirmation", true, rates(ab_round, true)},
      {"history (median, k x scaled MAD, 1% floor), single", false, rates(history, false)},
      {"history, with confirmation", true, rates(history, true)},
  };
  std::printf(
      "verdict rates over %d trials: noise sigma %.2f%% (+5%% outliers in 5%% of samples), run-to-run sigma %.2f%%,\n"
      "shift %.1f%%, %zu samples per run, %zu per A/B side, %zu history runs, k %.1f, alpha %.3f, min effect %.1f%%, "
      "confirm %u\n\n",
      trials, sigma * 100, between * 100, shift * 100, repeats, ab_repeats, history_runs, options.history_k,
      options.ab_alpha, options.ab_min_effect * 100, policy.confirm);
  std::printf("%-52s %14s %13.1f%% detected\n", "method", "A/A false alarm", shift * 100);
  for (const auto& row : rows) {
    std::printf("%-52s %13.2f%% %13.2f%%\n", row.method, row.r.false_alarm * 100, row.r.detection * 100);
  }
  // The gate's defaults confirm every suspected regression once.
  bool ok = true;
  for (const auto& row : rows) {
    if (!row.confirm) continue;
    const bool meets = row.r.false_alarm <= 0.01 && row.r.detection >= 0.95;
    ok &= meets;
    std::printf("%s: %s\n", row.method, meets ? "meets the goal" : "MISSES the goal");
  }
  std::printf("goal: A/A false alarms <= 1%%, %.1f%% shift detected >= 95%%\n", shift * 100);
  if (!json_path.empty()) {
    nlohmann::json doc = {{"benchmark", "stat_power"},       {"trials", trials},         {"noise_sigma", sigma},
                          {"between_sigma", between},        {"shift", shift},           {"repeats", repeats},
                          {"history_runs", history_runs},    {"ab_repeats", ab_repeats}, {"history_k", k},
                          {"rows", nlohmann::json::array()}, {"meets_goal", ok}};
    for (const auto& row : rows) {
      doc["rows"].push_back(
          {{"method", row.method}, {"false_alarm_rate", row.r.false_alarm}, {"detection_rate", row.r.detection}});
    }
    std::ofstream(json_path) << doc.dump(2) << "\n";
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
