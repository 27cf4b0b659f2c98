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

absl::Status Untrusted(const std::filesystem::path& f, const struct stat& st, const std::string& path) {
  return absl::InvalidArgumentError(
      absl::StrCat(f.string(), " (above the socket ", path, ") is owned by ", UserName(st.st_uid), " with mode ",
                   ModeText(st.st_mode),
                   ": others could put their own socket there; keep the socket in a folder that only "
                   "root, this user or the perfgate service user can write (chmod go-w), or give --tls-ca"));
}

// `folder` (the socket's; where it is not made yet, the nearest that is:
// whoever can write that one will make it) and every folder above it, by
// the rule. `as_named`: the folders as the path names them, a link not
// followed, since the connection goes through the path as given: a link
// must be owned by a trusted user (one in a sticky folder is its owner's to
// swap) and is judged with the folders that hold it. Otherwise the folders
// the path resolves to.
absl::Status CheckFoldersUp(std::filesystem::path folder, const std::string& path, bool as_named) {
  std::error_code ec;
  const auto exists = [&](const std::filesystem::path& f) {
    return as_named ? std::filesystem::symlink_status(f, ec).type() != std::filesystem::file_type::not_found
                    : std::filesystem::exists(f, ec);
  };
  while (!exists(folder) && folder != folder.root_path()) folder = folder.parent_path();
  for (std::filesystem::path f = folder;; f = f.parent_path()) {
    struct stat st;
    if ((as_named ? lstat(f.c_str(), &st) : stat(f.c_str(), &st)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("cannot stat ", f.string(), " (above the socket ", path, ")"));
    }
    const bool link = S_ISLNK(st.st_mode);  // its mode is always 0777, and means nothing
    const bool shared_write = !link && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    const bool sticky_above = (st.st_mode & S_ISVTX) != 0 && f != folder;
    if (!TrustedOwner(st.st_uid) || (shared_write && !sticky_above)) return Untrusted(f, st, path);
    if (f == f.root_path()) return absl::OkStatus();
  }
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
  const std::filesystem::path named = std::filesystem::absolute(std::filesystem::path(path), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot resolve the folder of ", path, ": ", ec.message()));
  // Both: a trusted folder reached through another user's link was trusted,
  // and that user swapped the link for one to a socket of their own. Not
  // normalized: `link/..` goes where the link leads, and the link is judged.
  if (absl::Status as_named = CheckFoldersUp(named.parent_path(), path, true); !as_named.ok()) {
    return as_named;
  }
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(named.parent_path(), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot resolve the folder of ", path, ": ", ec.message()));
  return CheckFoldersUp(resolved, path, false);
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
