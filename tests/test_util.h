// Helpers shared by perfgate's tests: temp folders, paths to the built
// binaries, and real child processes with their stdout readable line by line.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace perfgate::testing {

// Absolute path of the built perfgate binary and bundled case binaries.
std::string PerfgateBinary();
std::string CaseBinary(const std::string& name);
std::string SourceDir();

// While alive, no file of this process may grow past `bytes`: a write past
// it fails with EFBIG, as on a full disk (SIGXFSZ is ignored meanwhile).
// The old limit and handler come back at scope exit.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(uint64_t bytes);
  ~FileSizeLimit();
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = nullptr;
  bool armed_ = false;  // saved_ holds the limit to restore
  bool ok_ = false;
};

// A fresh folder, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to File(name) and returns that path.
  std::string Write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// A child process with stdout (and stderr merged in) on a pipe. Killed with
// SIGKILL at scope exit if still running.
class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();
  pid_t pid() const { return pid_; }
  // Blocks until a line containing `needle` appears (returns it), EOF, or timeout.
  std::optional<std::string> WaitForLine(const std::string& needle, int timeout_ms);
  // Everything read so far.
  const std::string& output() const { return output_; }
  void Signal(int sig);
  // Waits for exit; returns the exit code, or 128 + signal.
  int Wait(int timeout_ms);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
  size_t scanned_ = 0;
  bool exited_ = false;
  int status_ = 0;
};

// The host:port after `marker` in `line` ("... listening on 127.0.0.1:4242 (db ...)",
// "... metrics on http://127.0.0.1:4243/metrics").
std::string AddressAfter(const std::string& line, const std::string& marker);

// Waits for a `perfgate coordinator` process to print where it listens; empty on timeout.
std::string CoordinatorAddress(Subprocess& coordinator);

// Runs argv to completion; returns exit code and combined output.
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms = 120'000);

// The first column of the first row of `sql` on the SQLite file, read-only; -1 if none.
int64_t QueryInt(const std::string& db_path, const std::string& sql);
// Runs `sql` on the SQLite file, read-write; false (and a gtest failure) if it fails.
bool ExecSql(const std::string& db_path, const std::string& sql);

// The body of GET http://host_port/path (HTTP/1.0, loopback only); empty on failure.
std::string HttpGet(const std::string& host_port, const std::string& path);

// True if `pid` is gone or a zombie.
bool ProcessGone(pid_t pid);

// Runs fn on a thread of its own and waits for it: a priority set there stays there.
template <typename F>
void OnOwnThread(F fn) {
  std::thread t(fn);
  t.join();
}

}  // namespace perfgate::testing
