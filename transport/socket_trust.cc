#include "transport/socket_trust.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "transport/transport.h"

namespace perfgate {
namespace {

std::string UserName(uid_t uid) {
  const passwd* pw = getpwuid(uid);
  return pw ? pw->pw_name : absl::StrCat("uid ", uid);
}

std::string ModeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// "unix:/run/x.sock", "unix:///run/x.sock" or "unix:x.sock" (relative): the path.
std::string UnixSocketPath(const std::string& address) {
  std::string path = address.substr(address.find(':') + 1);
  if (absl::StartsWith(path, "//")) path = path.substr(2);
  return path;
}

}  // namespace

absl::Status CheckSocketFolders(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path folder =
      std::filesystem::weakly_canonical(std::filesystem::absolute(std::filesystem::path(path), ec).parent_path(), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot resolve the folder of ", path, ": ", ec.message()));
  struct stat own;
  if (stat(folder.c_str(), &own) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the socket's folder ", folder.string(), " does not exist"));
  }
  for (std::filesystem::path f = folder;; f = f.parent_path()) {
    struct stat st;
    if (stat(f.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("cannot stat ", f.string(), " (above the socket ", path, ")"));
    }
    const bool trusted_owner = st.st_uid == 0 || st.st_uid == geteuid() || st.st_uid == own.st_uid;
    const bool shared_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    const bool sticky_above = (st.st_mode & S_ISVTX) != 0 && f != folder;
    if (!trusted_owner || (shared_write && !sticky_above)) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.string(), " (above the socket ", path, ") is owned by ", UserName(st.st_uid), " with mode ",
                       ModeText(st.st_mode),
                       ": others could put their own socket there; keep the socket in a folder that only "
                       "root or the coordinator's user can write (chmod go-w), or give --tls-ca"));
    }
    if (f == f.root_path()) return absl::OkStatus();
  }
}

absl::Status CheckPlaintextPeer(const std::string& address, const char* flag) {
  if (absl::StartsWith(address, "unix:")) {
    absl::Status folders = CheckSocketFolders(UnixSocketPath(address));
    if (folders.ok()) return folders;
    return absl::InvalidArgumentError(absl::StrCat("refusing ", flag, " ", address, ": ", folders.message(),
                                                   "; or --insecure to trust it all the same"));
  }
  if (!IsLoopbackAddress(address)) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing plaintext to ", address,
                     ": it is not a loopback address. Give --tls-ca FILE (the CA of the coordinator's certificate), "
                     "or --insecure to send tokens and results unencrypted"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "refusing plaintext to ", address,
      ": nothing proves the coordinator answers there; any user of this machine can listen on it while the "
      "coordinator is down, and would get this client's token (and have an agent run its commands, or a gate "
      "take its verdict). Use the coordinator's unix socket (its --listen unix:/run/perfgate/coordinator.sock, "
      "and here ",
      flag,
      " unix:/run/perfgate/coordinator.sock), or --tls-ca FILE, or --insecure to trust it all "
      "the same"));
}

}  // namespace perfgate
