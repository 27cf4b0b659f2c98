// The gate's error rates on this machine, with real processes: every trial
// is a real `perfgate gate` run of the bundled demo suite (embedded
// coordinator and agents, a temp folder with its own .perfgate store), and
// the verdicts are counted. Not synthetic samples: whatever the machine's
// load does to the measurements is in the numbers (bench/stat_power has the
// synthetic counterpart).
//
//   gate_error_rates [--trials N] [--history-runs N] [--history-every K] [--slowdown PCT]
//                    [--rows history_same,history_slow,ab_same,ab_slow,instructions]
//                    [--perfgate PATH] [--suite FILE] [--json FILE]
//
// Rows:
//   history_same   history mode, unchanged code: any failure is a false alarm
//   history_slow   history mode, every demo program does PCT% more work
//                  (PERFGATE_SLOWDOWN_PCT): caught when a timed metric regresses
//   ab_same        A/B mode (--base-env/--head-env, same code both sides): false alarms
//   ab_slow        A/B mode, head PCT% slower: caught when a timed metric regresses
//   instructions   history mode, +2% work: caught when instructions_callgrind regresses
// History (for history rows) is built by --history-runs main-branch gate runs
// in a template store, which is copied into each trial's folder; a new
// history is built every --history-every trials (1: one per trial).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "core/units.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  int trials = 100;
  int history_runs = 10;
  int history_every = 1;
  int slowdown_pct = 10;
  std::vector<std::string> rows = {"history_same", "history_slow", "ab_same", "ab_slow", "instructions"};
  std::string perfgate = PERFGATE_BINARY;
  std::string suite = PERFGATE_DEMO_SUITE;
  std::string json_path;
};

// Runs argv with its output in `log`; returns the exit code (-1: could not run).
int Run(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// `perfgate gate` on the demo suite in `dir`, with `env` (NAME=VALUE) for the gate and its agents.
int Gate(const Options& o, const std::string& dir, const std::string& branch, const std::vector<std::string>& env,
         const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  argv.insert(argv.end(), env.begin(), env.end());
  for (const std::string& a : {o.perfgate, std::string("gate"), std::string("--suite"), o.suite,
                               std::string("--state-dir"), dir + "/.perfgate", std::string("--branch"), branch,
                               std::string("--no-color"), std::string("--json"), dir + "/report.json"}) {
    argv.push_back(a);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return Run(argv, dir, dir + "/gate.log");
}

std::string TempDir() {
  std::string pattern = (fs::temp_directory_path() / "gate-error-rates-XXXXXX").string();
  if (!mkdtemp(pattern.data())) return "";
  return pattern;
}

// A timed metric: a duration, not a count, memory or a rate.
bool Timed(const nlohmann::json& m) { return perfgate::IsTimeUnit(m.value("unit", "")); }

struct Trial {
  int exit_code = -1;
  std::vector<std::string> regressed;  // "case/benchmark metric" whose final verdict is a regression
  bool timed_regressed = false;
  bool instructions_regressed = false;
};

Trial Judge(const std::string& dir, int exit_code) {
  Trial t;
  t.exit_code = exit_code;
  std::ifstream in(dir + "/report.json");
  if (!in) return t;
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return t;
  for (const auto& c : doc["cases"]) {
    for (const auto& m : c["metrics"]) {
      if (m.value("verdict", "") != "regression") continue;
      t.regressed.push_back(c.value("name", "") + "/" + m.value("benchmark", "") + " " + m.value("metric", ""));
      t.timed_regressed |= Timed(m);
      t.instructions_regressed |= m.value("metric", "") == "instructions_callgrind";
    }
  }
  return t;
}

// /proc/loadavg's 1-, 5- and 15-minute load averages: the load a row ran under.
std::vector<double> LoadAverages() {
  std::ifstream in("/proc/loadavg");
  std::vector<double> out(3, 0.0);
  in >> out[0] >> out[1] >> out[2];
  return out;
}

// {min, mean, max} of the load averages seen during a row.
nlohmann::json LoadRange(const std::vector<double>& load) {
  if (load.empty()) return nullptr;
  double sum = 0;
  for (double l : load) sum += l;
  return {{"min", *std::min_element(load.begin(), load.end())},
          {"mean", sum / static_cast<double>(load.size())},
          {"max", *std::max_element(load.begin(), load.end())}};
}

struct Row {
  std::string name;
  std::string what;  // "false alarms", "caught"
  int trials = 0;
  int count = 0;  // false alarms, or catches
  int infra = 0;  // gate runs that ended neither 0 nor 1
  double seconds = 0;
  std::vector<double> load;              // the 1-minute load average after each trial
  std::map<std::string, int> regressed;  // metric -> trials it regressed in
};

void AddOptions(CLI::App& app, Options* o) {
  app.add_option("--trials", o->trials, "gate runs per row")->capture_default_str()->check(perfgate::bench::kCount);
  app.add_option("--history-runs", o->history_runs, "main-branch runs that build a history")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--history-every", o->history_every, "trials per history built (1: one per trial)")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--slowdown", o->slowdown_pct, "percent more work in the slow rows")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--rows", o->rows, "rows to run")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"history_same", "history_slow", "ab_same", "ab_slow", "instructions"}));
  app.add_option("--perfgate", o->perfgate, "the perfgate binary")->capture_default_str()->check(CLI::ExistingFile);
  app.add_option("--suite", o->suite, "the suite gated")->capture_default_str()->check(CLI::ExistingFile);
  app.add_option("--json", o->json_path, "write the rates as JSON to FILE");
}

constexpr char kSame[] = "PERFGATE_SLOWDOWN_PCT=0";

// Each trial's own folder; for history rows, with a copy of a store that
// holds the main-branch history, built anew every --history-every trials.
class TrialDirs {
 public:
  explicit TrialDirs(const Options& o) : o_(o) {}
  ~TrialDirs() {
    if (!history_.empty()) fs::remove_all(history_);
  }

  std::string Fresh(bool with_history) {
    if (with_history && (history_.empty() || age_ >= o_.history_every)) BuildHistory();
    const std::string dir = TempDir();
    if (with_history) {
      fs::copy(history_ + "/.perfgate", dir + "/.perfgate", fs::copy_options::recursive);
      ++age_;
    }
    return dir;
  }

 private:
  void BuildHistory() {
    if (!history_.empty()) fs::remove_all(history_);
    history_ = TempDir();
    for (int r = 0; r < o_.history_runs; ++r) {
      const int rc = Gate(o_, history_, "main", {kSame}, {});
      if (rc != 0) std::fprintf(stderr, "history run %d in %s exited %d\n", r, history_.c_str(), rc);
    }
    age_ = 0;
  }

  const Options& o_;
  std::string history_;  // a .perfgate store holding the main-branch history
  int age_ = 0;          // trials since it was built
};

bool HistoryRow(const std::string& row) { return row.starts_with("history") || row == "instructions"; }

// One gate run of the row's kind in `dir`; its exit code.
int GateTrial(const Options& o, const std::string& row, const std::string& dir) {
  const std::string slow = "PERFGATE_SLOWDOWN_PCT=" + std::to_string(o.slowdown_pct);
  if (row == "history_same") return Gate(o, dir, "pr", {kSame}, {});
  if (row == "history_slow") return Gate(o, dir, "pr", {slow}, {});
  if (row == "instructions") return Gate(o, dir, "pr", {"PERFGATE_SLOWDOWN_PCT=2"}, {});
  if (row == "ab_same") return Gate(o, dir, "pr", {}, {"--base-env", kSame, "--head-env", kSame});
  return Gate(o, dir, "pr", {}, {"--base-env", kSame, "--head-env", slow});  // ab_slow
}

// Counts a trial into its row: a false alarm (unchanged code that failed
// the gate) or a catch (the metric the row is about regressed).
void Count(int rc, const Trial& trial, Row* row) {
  ++row->trials;
  if (rc != 0 && rc != 1) ++row->infra;
  if (row->name.ends_with("_same")) {
    row->count += rc == 1;
  } else if (row->name == "instructions") {
    row->count += trial.instructions_regressed;
  } else {
    row->count += trial.timed_regressed;
  }
  for (const auto& m : std::set<std::string>(trial.regressed.begin(), trial.regressed.end())) ++row->regressed[m];
}

Row MeasureRow(const Options& o, const std::string& name, TrialDirs& dirs) {
  Row row;
  row.name = name;
  row.what = name.ends_with("_same") ? "false alarms" : "caught";
  const auto start = Clock::now();
  for (int t = 0; t < o.trials; ++t) {
    const std::string dir = dirs.Fresh(HistoryRow(name));
    const int rc = GateTrial(o, name, dir);
    const Trial trial = Judge(dir, rc);
    row.load.push_back(LoadAverages()[0]);
    Count(rc, trial, &row);
    std::string regressed;
    for (const auto& m : trial.regressed) regressed += (regressed.empty() ? ", regressed: " : "; ") + m;
    std::fprintf(stderr, "%s trial %d/%d: exit %d%s\n", name.c_str(), t + 1, o.trials, rc, regressed.c_str());
    // Keep the folders of failed runs for a look; drop the rest.
    if (!((name.ends_with("_same") && rc != 0) || rc > 1)) {
      fs::remove_all(dir);
    } else {
      std::fprintf(stderr, "  kept %s\n", dir.c_str());
    }
  }
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return row;
}

void WriteJson(const Options& o, const std::vector<Row>& rows) {
  nlohmann::json doc = {{"benchmark", "gate_error_rates"},
                        {"suite", o.suite},
                        {"trials", o.trials},
                        {"history_runs", o.history_runs},
                        {"history_every", o.history_every},
                        {"slowdown_pct", o.slowdown_pct},
                        {"rows", nlohmann::json::array()}};
  for (const auto& r : rows) {
    doc["rows"].push_back({{"row", r.name},
                           {"counts", r.what},
                           {"count", r.count},
                           {"trials", r.trials},
                           {"rate", r.trials ? static_cast<double>(r.count) / r.trials : 0.0},
                           {"infra_failures", r.infra},
                           {"seconds_per_trial", r.trials ? r.seconds / r.trials : 0.0},
                           {"load_average_1min", LoadRange(r.load)},
                           {"regressed_metrics", r.regressed}});
  }
  std::ofstream(o.json_path) << doc.dump(2) << "\n";
}

void PrintTable(const Options& o, const std::vector<Row>& rows) {
  std::printf(
      "gate error rates: demo suite through %s, %d trials per row, history of %d main-branch runs\n"
      "(new history every %d trials), slowdown %d%%, instructions +2%% work\n\n",
      o.perfgate.c_str(), o.trials, o.history_runs, o.history_every, o.slowdown_pct);
  std::printf("%-14s %-14s %12s %8s %8s %10s %12s\n", "row", "counts", "n/trials", "rate", "infra", "s/trial",
              "load min-max");
  for (const auto& r : rows) {
    std::printf("%-14s %-14s %7d/%-4d %7.1f%% %8d %10.1f %5.1f->%-5.1f\n", r.name.c_str(), r.what.c_str(), r.count,
                r.trials, r.trials ? 100.0 * r.count / r.trials : 0.0, r.infra, r.trials ? r.seconds / r.trials : 0.0,
                r.load.empty() ? 0.0 : *std::min_element(r.load.begin(), r.load.end()),
                r.load.empty() ? 0.0 : *std::max_element(r.load.begin(), r.load.end()));
    for (const auto& [metric, n] : r.regressed) std::printf("    regressed in %d: %s\n", n, metric.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("The gate's error rates on this machine, from real gate runs of the demo suite.", "gate_error_rates");
  AddOptions(app, &o);
  if (std::optional<int> exit_code = perfgate::bench::ParseOrExit(app, argc, argv)) return *exit_code;
  std::vector<Row> rows;
  {
    TrialDirs dirs(o);
    for (const auto& name : o.rows) {
      rows.push_back(MeasureRow(o, name, dirs));
      // After every row, so a long run that is stopped keeps what it measured.
      if (!o.json_path.empty()) WriteJson(o, rows);
    }
  }
  PrintTable(o, rows);
  return 0;
}
