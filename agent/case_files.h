// Reading what a case wrote (its result file, callgrind's profiles) without
// trusting it. The case is a pull request's code: it can leave a symbolic
// link to the agent's token where its result file should be, a hard link to
// a file of another user, a FIFO that blocks whoever opens it, or a file of
// gigabytes. The agent, often root, would read any of them and put what it
// read into the result or an error message that goes back to the submitter.
//
// So a case's files are opened relative to an open folder, never following
// a link in their last component, without blocking, and only if they are
// regular files; in a case user's folder (agent/case_user.h), only files of
// that user. Reads are capped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace perfgate {

class CaseFolder {
 public:
  // Opens the folder at `path`, refusing a symbolic link in its last
  // component: the one the case can replace (a profile folder in its scratch
  // folder). REQUIRES: the case cannot replace the folders above that one
  // (its scratch folder sits in a folder only root can change).
  static absl::StatusOr<CaseFolder> Open(const std::string& path);

  CaseFolder(CaseFolder&& other) noexcept;
  CaseFolder& operator=(CaseFolder&& other) noexcept;
  CaseFolder(const CaseFolder&) = delete;
  CaseFolder& operator=(const CaseFolder&) = delete;
  ~CaseFolder();

  // The folder `name` in this one, on the same terms as Open.
  absl::StatusOr<CaseFolder> Sub(const std::string& name) const;
  // The names in this folder (not . or ..), sorted; an error past `max_entries`.
  absl::StatusOr<std::vector<std::string>> Names(size_t max_entries = 100'000) const;
  // The content of the file `name`: NotFound if there is none; an error
  // naming it if it is a link, not a regular file, larger than `max_bytes`,
  // or, in a folder of another user than the agent's (a case user's), a file
  // of a third user. `what` names it in errors.
  absl::StatusOr<std::string> Read(const std::string& name, uint64_t max_bytes, const std::string& what) const;

  const std::string& path() const { return path_; }

 private:
  CaseFolder(int fd, std::string path, uid_t owner) : fd_(fd), path_(std::move(path)), owner_(owner) {}
  static absl::StatusOr<CaseFolder> OpenAt(int dir_fd, const std::string& name, std::string path);

  int fd_ = -1;
  std::string path_;
  uid_t owner_ = 0;
};

}  // namespace perfgate
