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

// Root, this process's user, and the package's service user (`perfgate`,
// which the packaged coordinator runs as and whose /run/perfgate holds its
// socket). Never a folder's own owner: whoever made a folder under /tmp
// would then be trusted by making it.
bool TrustedOwner(uid_t uid) {
  if (uid == 0 || uid == geteuid()) return true;
  const passwd* service = getpwnam("perfgate");
  return service != nullptr && service->pw_uid == uid;
}

}  // namespace

// "unix:/run/x.sock", "unix:///run/x.sock" or "unix:x.sock" (relative): the path.
std::string UnixSocketPath(const std::string& address) {
  std::string path = address.substr(address.find(':') + 1);
  if (absl::StartsWith(path, "//")) path = path.substr(2);
  return path;
}

absl::Status CheckSocketFolders(const std::string& path) {
  std::error_code ec;
  std::filesystem::path folder =
      std::filesystem::weakly_canonical(std::filesystem::absolute(std::filesystem::path(path), ec).parent_path(), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot resolve the folder of ", path, ": ", ec.message()));
  // A folder not made yet (the coordinator is down: systemd removes its
  // RuntimeDirectory) will be made by whoever can write the nearest one that
  // exists: that one is held to the socket folder's rule.
  while (!std::filesystem::exists(folder, ec) && folder != folder.root_path()) folder = folder.parent_path();
  for (std::filesystem::path f = folder;; f = f.parent_path()) {
    struct stat st;
    if (stat(f.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("cannot stat ", f.string(), " (above the socket ", path, ")"));
    }
    const bool shared_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    const bool sticky_above = (st.st_mode & S_ISVTX) != 0 && f != folder;
    if (!TrustedOwner(st.st_uid) || (shared_write && !sticky_above)) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.string(), " (above the socket ", path, ") is owned by ", UserName(st.st_uid), " with mode ",
          ModeText(st.st_mode), ": others could put their own socket there; keep the socket in a folder that only "
          "root, this user or the perfgate service user can write (chmod go-w), or give --tls-ca"));
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
