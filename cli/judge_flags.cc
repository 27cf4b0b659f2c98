#include "cli/judge_flags.h"

#include "core/suite.h"

namespace perfgate {

void AddJudgeFlags(CLI::App* cmd, JudgeSettings* flags, bool with_history) {
  cmd->add_option("--baseline", flags->baselines,
                  "PyTorch expected-results file, for every testbed or as POOL=FILE for one (repeatable; "
                  "overrides the suite's gate.expected)");
  cmd->add_option("--fail-on", flags->fail_on,
                  "comma-separated verdicts that fail the gate (default: regression,error,missing_result,"
                  "no_capable_agent; also improvement, no_baseline)");
  cmd->add_option("--confirm", flags->confirm,
                  "re-measure suspected regressions this many times before failing (default 1; 0 turns it off)")
      ->check(CLI::Range(uint32_t{0}, kMaxConfirmRounds));
  if (with_history) {
    cmd->add_option("--main-branch", flags->main_branch,
                    "runs with this --branch form the history baseline (default: main)");
  }
  cmd->add_option("--alpha", flags->alpha, "A/B: significance level of the rank test, in (0, 1) (default 0.01)");
  cmd->add_option("--min-effect", flags->min_effect,
                  "A/B: the smallest relative change that fails, > 0, like 1% or 0.01 (default 1%)");
  if (with_history) {
    cmd->add_option("--history-k", flags->history_k,
                    "history: the threshold is k scaled MADs of the history's noise, > 0 (default 4)");
    cmd->add_option("--history-floor", flags->history_floor,
                    "history: the smallest threshold of counts and other untimed metrics, >= 0, like 1% or 0.01 "
                    "(default 1%)");
    cmd->add_option("--history-time-floor", flags->history_time_floor,
                    "history: the smallest threshold of metrics measured in time, >= 0 (default 5%: a load rise "
                    "moves even CPU times by 1-2% here)");
  }
  cmd->add_option("--base-env", flags->base_env, "A/B: NAME=VALUE for the base variant of every case, or CASE:NAME=VALUE for one case (repeatable)");
  cmd->add_option("--head-env", flags->head_env, "A/B: NAME=VALUE for the head variant of every case, or CASE:NAME=VALUE for one case (repeatable)");
  cmd->add_option("--base-root", flags->base_root, "A/B: ${VARIANT_ROOT} for the base variant");
  cmd->add_option("--head-root", flags->head_root, "A/B: ${VARIANT_ROOT} for the head variant");
}

}  // namespace perfgate
