#include "gate/gate_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/grpc_status.h"
#include "core/backoff.h"
#include "core/utf8.h"
#include "gate/requests.h"
#include "perfgate/v1/gate.grpc.pb.h"

namespace perfgate {
namespace {

using Steady = std::chrono::steady_clock;

const char* StateWord(v1::CaseState s) {
  switch (s) {
    case v1::CASE_STATE_PENDING:
      return "queued";
    case v1::CASE_STATE_RUNNING:
      return "running";
    case v1::CASE_STATE_DONE:
      return "done";
    case v1::CASE_STATE_ERROR:
      return "error";
    case v1::CASE_STATE_NO_CAPABLE_AGENT:
      return "no capable agent";
    case v1::CASE_STATE_CANCELLED:
      return "cancelled";
    default:
      return "?";
  }
}

// Progress on stderr: a rewritten line on a terminal, plain lines in CI logs.
class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty) {}
  ~Progress() {
    if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  }
  void Reset(const v1::Run& run) {
    states_.clear();
    running_.clear();
    done_ = 0;
    for (const auto& c : run.cases()) Count(c.name(), c.state());
    Draw(nullptr);
  }
  void Update(const v1::CaseStatus& c) {
    if (auto it = states_.find(c.name()); it != states_.end()) {
      if (it->second == c.state()) return;
      Uncount(it->first, it->second);
    }
    Count(c.name(), c.state());
    Draw(&c);
  }
  void Line(const std::string& text) {
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", EscapeControls(text).c_str());  // agents' reasons, case names
    drawn_ = false;
  }

 private:
  // The counters and the running set follow each event, so a redraw costs
  // the same at 10 cases and at 10,000.
  void Count(const std::string& name, v1::CaseState state) {
    states_[name] = state;
    if (state == v1::CASE_STATE_RUNNING)
      running_.insert(name);
    else if (state != v1::CASE_STATE_PENDING)
      ++done_;
  }
  void Uncount(const std::string& name, v1::CaseState state) {
    if (state == v1::CASE_STATE_RUNNING)
      running_.erase(name);
    else if (state != v1::CASE_STATE_PENDING)
      --done_;
  }

  void Draw(const v1::CaseStatus* changed) {
    const std::string counter = absl::StrCat("[", done_, "/", states_.size(), "]");
    if (tty_) {
      std::string line = absl::StrCat("perfgate ", counter, " running: ", running_.empty() ? "-" : "");
      // Only as many names as fit the line, escaped before they are counted.
      for (auto it = running_.begin(); it != running_.end() && line.size() <= 120; ++it) {
        absl::StrAppend(&line, it == running_.begin() ? "" : ", ", EscapeControls(*it));
      }
      if (line.size() > 120) line = line.substr(0, 117) + "...";
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      drawn_ = true;
    } else if (!changed) {
      // A snapshot: the watch began, or began again after the coordinator was
      // lost. Cases that started or ended meanwhile have no event of their own.
      std::string line = absl::StrCat("perfgate ", counter, " done, ", running_.size(), " running");
      size_t shown = 0;
      for (auto it = running_.begin(); it != running_.end() && shown < 8; ++it, ++shown) {
        absl::StrAppend(&line, shown == 0 ? ": " : ", ", *it);
      }
      if (running_.size() > shown) absl::StrAppend(&line, ", ...");
      std::fprintf(stderr, "%s\n", EscapeControls(line).c_str());
    } else {
      std::string line = absl::StrCat("perfgate ", counter, " ", changed->name(), ": ", StateWord(changed->state()));
      if (!changed->agent_id().empty() && changed->state() != v1::CASE_STATE_PENDING) {
        absl::StrAppend(&line, " on ", changed->agent_id());
      }
      if (changed->attempts() > 1) absl::StrAppend(&line, " (attempt ", changed->attempts(), ")");
      if (!changed->error().empty()) absl::StrAppend(&line, " - ", changed->error());
      std::fprintf(stderr, "%s\n", EscapeControls(line).c_str());  // names and errors from agents
    }
    std::fflush(stderr);
  }

  bool tty_;
  bool drawn_ = false;
  std::unordered_map<std::string, v1::CaseState> states_;
  std::set<std::string> running_;
  size_t done_ = 0;
};

}  // namespace

namespace {

std::shared_ptr<grpc::Channel> Channel(const GateClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.limits.reply_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.limits.submit_bytes));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  return OpenChannel(options.coordinator, options.security, args);
}

}  // namespace

absl::Status FetchHistory(const GateClientOptions& options, const v1::Run& run, const Policy& policy,
                          Baselines* baselines) {
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const v1::HistoryRequest all = HistoryRequestFor(run, policy, now_ms);
  auto stub = v1::GateService::NewStub(Channel(options));
  // In calls each within the coordinator's limit on a request, and whose
  // largest reply fits half a reply: the coordinator refuses a call whose
  // reply could not be sent. Split by count alone, calls of long names went
  // over the request limit (8,000 series of 500-byte names, or 10,000
  // cases), and the gate failed after the run.
  const uint64_t request_limit = std::min(options.limits.other_bytes, options.limits.submit_bytes);
  for (const v1::HistoryRequest& request :
       SplitHistoryRequest(all, request_limit - request_limit / 16, options.limits.reply_bytes / 2)) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::HistoryResponse response;
    grpc::Status s = stub->GetHistory(&context, request, &response);
    if (!s.ok()) return FromGrpc(s);
    for (const auto& series : response.series()) {
      const auto& k = series.key();
      baselines->history[{k.pool(), k.benchmark(), k.metric(), k.source()}].assign(series.run_medians().begin(),
                                                                                   series.run_medians().end());
    }
    if (!baselines->known_pools) baselines->known_pools.emplace();
    baselines->known_pools->insert(response.known_pools().begin(), response.known_pools().end());
  }
  return absl::OkStatus();
}

absl::Status ReportVerdict(const GateClientOptions& options, const v1::ReportVerdictRequest& request) {
  auto stub = v1::GateService::NewStub(Channel(options));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ReportVerdictResponse response;
  return FromGrpc(stub->ReportVerdict(&context, request, &response));
}

namespace {

// The run submitted, or why not in words a CI log can act on.
absl::StatusOr<v1::SubmitRunResponse> Submit(v1::GateService::Stub& stub, const GateClientOptions& options,
                                             const v1::SubmitRunRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  context.set_wait_for_ready(true);
  v1::SubmitRunResponse submitted;
  grpc::Status s = stub.SubmitRun(&context, request, &submitted);
  if (s.ok()) return submitted;
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::UnavailableError(
        absl::StrCat("coordinator ", options.coordinator, " unreachable: ", s.error_message()));
  }
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("submit to coordinator ", options.coordinator, " failed (",
                                               s.error_message(),
                                               "); if the call was cut off after the coordinator took the run, "
                                               "the run is there without a gate"));
  }
  return FromGrpc(s);
}

// Ctrl-C: cancel once, then keep watching until the run says so.
std::unique_ptr<Interrupt::Subscription> CancelOnInterrupt(Interrupt* interrupt, v1::GateService::Stub& stub,
                                                           const std::string& run_id, Progress& progress) {
  if (!interrupt) return nullptr;
  return interrupt->OnFire([&stub, run_id, &progress] {
    progress.Line(absl::StrCat("perfgate: interrupted; cancelling run ", run_id));
    // Short: with the coordinator gone this blocks the signal thread, and
    // an interrupted gate must exit within seconds.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::CancelRunRequest cancel;
    cancel.set_run_id(run_id);
    v1::CancelRunResponse response;
    stub.CancelRun(&context, cancel, &response);
  });
}

// One watch of the run, drawing its progress, until the stream ends. `finished`
// says whether the run finished; `heard` whether the coordinator sent anything.
grpc::Status WatchOnce(v1::GateService::Stub& stub, const std::string& run_id, Progress& progress, bool* finished,
                       bool* heard) {
  grpc::ClientContext context;
  v1::WatchRunRequest watch;
  watch.set_run_id(run_id);
  watch.set_without_results(true);  // progress needs states only; GetRun brings the results in parts
  auto reader = stub.WatchRun(&context, watch);
  v1::RunEvent event;
  while (reader->Read(&event)) {
    *heard = true;
    if (event.has_snapshot()) {
      progress.Reset(event.snapshot());
    } else if (event.has_case_changed()) {
      progress.Update(event.case_changed());
    } else if (event.has_run_finished()) {
      *finished = true;
    }
  }
  return reader->Finish();
}

// The finished run with its results, in parts, each under our receive limit
// with room to spare: a run's results together may not fit one message.
grpc::Status FetchRun(v1::GateService::Stub& stub, const std::string& run_id, const MessageLimits& limits,
                      v1::Run* run) {
  v1::GetRunRequest get;
  get.set_run_id(run_id);
  get.set_max_reply_bytes(limits.reply_bytes - limits.reply_bytes / 8);
  do {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::Run part;
    grpc::Status s = stub.GetRun(&context, get, &part);
    if (!s.ok()) return s;
    get.set_page_token(part.next_page_token());
    if (run->run_id().empty()) {
      *run = std::move(part);
    } else {
      for (auto& c : *part.mutable_cases()) *run->add_cases() = std::move(c);
    }
  } while (!get.page_token().empty());
  run->clear_next_page_token();
  return grpc::Status::OK;
}

// Watching again will not find a run the coordinator does not know.
bool Unknown(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::NOT_FOUND || s.error_code() == grpc::StatusCode::INVALID_ARGUMENT;
}

// One case over our receive limit: asking again will not help (a stream
// reset is the coordinator shedding load, which passes).
bool TooLargeToReceive(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         s.error_message().find("RST_STREAM") == std::string::npos;
}

}  // namespace

namespace {

// Refused, unknown or TLS-mismatched coordinators fail within seconds
// instead of waiting out a call's deadline.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const GateClientOptions& options) {
  auto channel = Channel(options);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return absl::UnavailableError(absl::StrCat("coordinator ", options.coordinator,
                                               " unreachable: no connection within 5 s (is it running there, and do "
                                               "--tls-ca and the address match its certificate?)"));
  }
  return channel;
}

}  // namespace

absl::StatusOr<std::set<std::string>> FetchKnownPools(const GateClientOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(options);
  if (!channel.ok()) return channel.status();
  auto stub = v1::GateService::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::HistoryResponse response;
  grpc::Status s = stub->GetHistory(&context, v1::HistoryRequest(), &response);
  if (!s.ok()) return FromGrpc(s);
  return std::set<std::string>(response.known_pools().begin(), response.known_pools().end());
}

absl::StatusOr<v1::Run> SubmitAndWatch(const GateClientOptions& options, const v1::SubmitRunRequest& request,
                                       Interrupt* interrupt) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(options);
  if (!channel.ok()) return channel.status();
  auto stub = v1::GateService::NewStub(*channel);
  Progress progress(options.tty);
  absl::StatusOr<v1::SubmitRunResponse> submitted = Submit(*stub, options, request);
  if (!submitted.ok()) return submitted.status();
  const std::string run_id = submitted->run_id();
  progress.Line(absl::StrCat("perfgate: run ", run_id, " submitted to ", options.coordinator, " (",
                             request.suite().cases_size(), " cases)"));
  for (const auto& u : submitted->unsatisfiable()) progress.Line(absl::StrCat("perfgate: cannot run ", u));
  if (!submitted->waiting().empty()) progress.Line(absl::StrCat("perfgate: ", submitted->waiting()));
  const auto on_interrupt = CancelOnInterrupt(interrupt, *stub, run_id, progress);

  Steady::time_point lost_since{};
  for (int attempt = 0;; ++attempt) {
    bool finished = false, heard = false;
    grpc::Status status = WatchOnce(*stub, run_id, progress, &finished, &heard);
    if (heard) lost_since = {};
    if (finished) {
      v1::Run run;
      status = FetchRun(*stub, run_id, options.limits, &run);
      if (status.ok()) return run;
      if (TooLargeToReceive(status)) return FromGrpc(status);
    }
    if (Unknown(status)) return FromGrpc(status);
    // Interrupted with the coordinator gone: nobody is left to confirm the
    // cancellation, so stop instead of re-attaching for minutes.
    if (interrupt && interrupt->fired()) {
      return absl::UnavailableError(absl::StrCat("interrupted, and coordinator ", options.coordinator, " unreachable (",
                                                 status.error_message(), "): run ", run_id,
                                                 " may still be pending there"));
    }
    // The coordinator went away: re-attach by run id for a while.
    if (lost_since == Steady::time_point{}) {
      lost_since = Steady::now();
      progress.Line(
          absl::StrCat("perfgate: lost the coordinator (", status.error_message(), "); re-attaching to ", run_id));
    }
    if (Steady::now() - lost_since > std::chrono::milliseconds(options.reconnect_timeout_ms)) {
      return absl::UnavailableError(absl::StrCat("coordinator ", options.coordinator, " unreachable for ",
                                                 options.reconnect_timeout_ms / 1000, " s while watching ", run_id));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(RetryBackoffMs(attempt)));
  }
}

}  // namespace perfgate
