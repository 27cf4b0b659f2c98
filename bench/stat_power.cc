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

struct Options {
  int trials = 10000;
  double sigma = 0.005;  // per-sample noise
  double between = 0;    // run-to-run noise
  double shift = 0.02;   // the regression to catch
  size_t history_runs = 20;
  double k = perfgate::CompareOptions{}.history_k;
  std::string json_path;
};

void AddOptions(CLI::App& app, Options* o) {
  app.add_option("--trials", o->trials, "trials per row")->capture_default_str()->check(perfgate::bench::kCount);
  app.add_option("--noise", o->sigma, "per-sample noise sigma, as a fraction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--between", o->between, "run-to-run noise sigma, as a fraction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--shift", o->shift, "the regression to catch, as a fraction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--history-runs", o->history_runs, "main-branch runs in the history window")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--k", o->k, "history threshold: k x scaled MAD")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--json", o->json_path, "write the rates as JSON to FILE");
}

constexpr size_t kRepeats = 5;  // a suite's default samples per case

// The gate's two ways of judging a head level against a baseline of level 1,
// round 0 the first measurement and round 1 its confirmation.
class Judges {
 public:
  Judges(const Options& o, const perfgate::Policy& policy)
      : o_(o), options_(policy.compare), noise_{o.sigma, o.between} {}

  // Both sides interleaved on one agent: they share their run's level.
  Verdict AB(double head, uint32_t /*round*/) {
    const double run = noise_.RunLevel(1.0);
    return perfgate::CompareAB(perfgate::Direction::kLowerIsBetter, noise_.SamplesAt(options_.ab_min_samples, run),
                               noise_.SamplesAt(options_.ab_min_samples, run * head), options_)
        .verdict;
  }

  // The first measurement and its confirmation (twice the samples, as the
  // gate re-measures) against one history.
  Verdict History(double head, uint32_t round) {
    if (round == 0) history_medians_ = noise_.RunMedians(o_.history_runs, kRepeats, 1.0);
    return perfgate::CompareWithHistory(perfgate::Direction::kLowerIsBetter,
                                        noise_.Samples(round == 0 ? kRepeats : 2 * kRepeats, head), history_medians_,
                                        options_)
        .verdict;
  }

 private:
  const Options& o_;
  const perfgate::CompareOptions& options_;
  Noise noise_;
  std::vector<double> history_medians_;
};

// Over o.trials: how often unchanged code reads as a regression, and how
// often the shift does, every round (with `confirm`, the confirmations too).
template <typename Judge>
Rates Measure(const Options& o, uint32_t confirm, Judge judge) {
  Rates r{0, 0};
  for (int t = 0; t < o.trials; ++t) {
    auto regressed = [&](double level) {
      for (uint32_t round = 0; round <= confirm; ++round) {
        if (judge(level, round) != Verdict::kRegression) return false;
      }
      return true;
    };
    r.false_alarm += regressed(1.0);
    r.detection += regressed(1.0 + o.shift);
  }
  r.false_alarm /= o.trials;
  r.detection /= o.trials;
  return r;
}

struct Row {
  const char* method;
  bool confirm;
  Rates r;
};

std::vector<Row> MeasureRows(const Options& o, const perfgate::Policy& policy) {
  Judges judges(o, policy);
  auto ab = [&](double head, uint32_t round) { return judges.AB(head, round); };
  auto history = [&](double head, uint32_t round) { return judges.History(head, round); };
  return {
      {"a/b (Mann-Whitney), single measurement", false, Measure(o, 0, ab)},
      {"a/b (Mann-Whitney), with confirmation", true, Measure(o, policy.confirm, ab)},
      {"history (median, k x scaled MAD, 1% floor), single", false, Measure(o, 0, history)},
      {"history, with confirmation", true, Measure(o, policy.confirm, history)},
  };
}

// The table; whether every row with confirmation (the gate's default) meets the goal.
bool PrintTable(const Options& o, const perfgate::Policy& policy, const std::vector<Row>& rows) {
  const auto& options = policy.compare;
  std::printf(
      "verdict rates over %d trials: noise sigma %.2f%% (+5%% outliers in 5%% of samples), run-to-run sigma %.2f%%,\n"
      "shift %.1f%%, %zu samples per run, %zu per A/B side, %zu history runs, k %.1f, alpha %.3f, min effect %.1f%%, "
      "confirm %u\n\n",
      o.trials, o.sigma * 100, o.between * 100, o.shift * 100, kRepeats, size_t{options.ab_min_samples}, o.history_runs,
      options.history_k, options.ab_alpha, options.ab_min_effect * 100, policy.confirm);
  std::printf("%-52s %14s %13.1f%% detected\n", "method", "A/A false alarm", o.shift * 100);
  for (const auto& row : rows) {
    std::printf("%-52s %13.2f%% %13.2f%%\n", row.method, row.r.false_alarm * 100, row.r.detection * 100);
  }
  bool ok = true;
  for (const auto& row : rows) {
    if (!row.confirm) continue;
    const bool meets = row.r.false_alarm <= 0.01 && row.r.detection >= 0.95;
    ok &= meets;
    std::printf("%s: %s\n", row.method, meets ? "meets the goal" : "MISSES the goal");
  }
  std::printf("goal: A/A false alarms <= 1%%, %.1f%% shift detected >= 95%%\n", o.shift * 100);
  return ok;
}

void WriteJson(const Options& o, const perfgate::Policy& policy, const std::vector<Row>& rows, bool ok) {
  nlohmann::json doc = {{"benchmark", "stat_power"},
                        {"trials", o.trials},
                        {"noise_sigma", o.sigma},
                        {"between_sigma", o.between},
                        {"shift", o.shift},
                        {"repeats", kRepeats},
                        {"history_runs", o.history_runs},
                        {"ab_repeats", policy.compare.ab_min_samples},
                        {"history_k", o.k},
                        {"rows", nlohmann::json::array()},
                        {"meets_goal", ok}};
  for (const auto& row : rows) {
    doc["rows"].push_back(
        {{"method", row.method}, {"false_alarm_rate", row.r.false_alarm}, {"detection_rate", row.r.detection}});
  }
  std::ofstream(o.json_path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", o.json_path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("How often the gate cries wolf, and how often it catches a real shift, on synthetic samples.",
               "stat_power");
  AddOptions(app, &o);
  if (std::optional<int> exit_code = perfgate::bench::ParseOrExit(app, argc, argv)) return *exit_code;
  perfgate::Policy policy;  // the defaults under test, but for --k
  policy.compare.history_k = o.k;
  const std::vector<Row> rows = MeasureRows(o, policy);
  const bool ok = PrintTable(o, policy, rows);
  if (!o.json_path.empty()) WriteJson(o, policy, rows, ok);
  return 0;
}
