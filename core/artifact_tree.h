// Content-addressed artifact trees: SHA-256 digests, manifests (relative
// path, digest, size, executable bit) and their validation. Shared by the
// gate (which scans a folder), the coordinator (which checks what it is
// sent) and the agent (which rebuilds the folder from a manifest). A
// manifest arrives over the network, so every field is checked before a
// path is joined or a digest trusted.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// Incremental SHA-256, as 64 lowercase hex digits.
class Sha256 {
 public:
  Sha256();
  void Update(absl::string_view bytes);
  // REQUIRES: called once; Update may not follow.
  std::string HexDigest();

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

std::string DigestOfBytes(absl::string_view bytes);
// Reads the file in chunks; errors name the file.
absl::StatusOr<std::string> DigestOfFile(const std::string& path);
bool IsDigest(absl::string_view text);

// A tree name usable in ${PERFGATE_ARTIFACTS_<NAME>}: letters, digits and
// '_', not starting with a digit, at most 64 characters.
bool IsArtifactName(absl::string_view name);
// "PERFGATE_ARTIFACTS" for the unnamed tree, else "PERFGATE_ARTIFACTS_<name>".
std::string ArtifactVariable(absl::string_view name);

// Relative, '/'-separated, no empty, "." or ".." component, no NUL: safe to
// join below a folder. Errors say what is wrong with which path.
absl::Status CheckArtifactPath(absl::string_view path);

// Every file below `dir` (following symbolic links to files), sorted by
// path, with its digest, size and executable bit. Anything else (a socket,
// a dangling link, an unreadable file) is an error naming it.
absl::StatusOr<v1::ArtifactManifest> ScanTree(const std::string& dir);

// Parses and checks a manifest received from elsewhere: paths valid, sorted
// and unique, digests well formed.
absl::StatusOr<v1::ArtifactManifest> ParseManifest(absl::string_view bytes);
// The bytes whose digest names the tree (deterministic serialization).
std::string SerializeManifest(const v1::ArtifactManifest& manifest);

}  // namespace perfgate
