#include "core/artifact_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadChunk = 1 << 20;

absl::Status FileError(const std::string& what, const std::string& path) {
  return absl::InvalidArgumentError(absl::StrCat(what, " '", EscapeInvalidUtf8(path), "': ", std::strerror(errno)));
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }

void Sha256::Update(absl::string_view bytes) { EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()); }

std::string Sha256::HexDigest() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx_.get(), md.data(), &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

std::string DigestOfBytes(absl::string_view bytes) {
  Sha256 hash;
  hash.Update(bytes);
  return hash.HexDigest();
}

absl::StatusOr<std::string> DigestOfFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError("cannot open", path);
  Sha256 hash;
  std::string buffer(kReadChunk, '\0');
  for (;;) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status error = FileError("cannot read", path);
      close(fd);
      return error;
    }
    if (n == 0) break;
    hash.Update(absl::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  close(fd);
  return hash.HexDigest();
}

bool IsDigest(absl::string_view text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsArtifactName(absl::string_view name) {
  if (name.empty() || name.size() > 64 || absl::ascii_isdigit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

std::string ArtifactVariable(absl::string_view name) {
  return name.empty() ? "PERFGATE_ARTIFACTS" : absl::StrCat("PERFGATE_ARTIFACTS_", name);
}

absl::Status CheckArtifactPath(absl::string_view path) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("artifact path '", EscapeInvalidUtf8(path), "' ", why));
  };
  if (path.empty()) return bad("is empty");
  if (path.size() > 4096) return bad("is longer than 4096 bytes");
  if (path.find('\0') != absl::string_view::npos) return bad("contains a NUL byte");
  if (path.front() == '/') return bad("is absolute; manifest paths are relative to the tree");
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return bad("has an empty, '.' or '..' component");
  }
  return absl::OkStatus();
}

namespace {

// A link inside an artifact folder is uploaded as the file it names, which
// must be inside the folder too: a link out of it (to ~/.ssh, a CI secret)
// would hand that file to whoever runs the case. Links to folders are not
// followed, so they are refused rather than silently left out.
absl::Status CheckLink(const fs::path& root, const fs::path& link) {
  std::error_code ec;
  const fs::path target = fs::canonical(link, ec);
  const std::string shown = EscapeInvalidUtf8(link.string());
  if (ec) return absl::InvalidArgumentError(absl::StrCat("artifact '", shown, "' is a broken symbolic link"));
  const fs::path inside = target.lexically_relative(root);
  if (inside.empty() || *inside.begin() == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifact '", shown, "' is a symbolic link to '", EscapeInvalidUtf8(target.string()),
        "', outside the artifact folder: only what is inside it is uploaded; copy the file in or remove the link"));
  }
  if (fs::is_directory(target, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("artifact '", shown,
                                                   "' is a symbolic link to a folder, which is not followed; "
                                                   "name the folder itself, or remove the link"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ArtifactManifest> ScanTree(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("artifact folder '", EscapeInvalidUtf8(dir), "' is not a folder"));
  }
  v1::ArtifactManifest manifest;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) return FileError("cannot read artifact folder", dir);
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string path = it->path().string();
    if (it->is_symlink(ec)) {
      if (auto s = CheckLink(root, it->path()); !s.ok()) return s;
    }
    if (it->is_directory(ec)) continue;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return FileError("cannot read artifact", path);
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("artifact '", EscapeInvalidUtf8(path),
                                                     "' is not a regular file (only files and folders are uploaded)"));
    }
    auto digest = DigestOfFile(path);
    if (!digest.ok()) return digest.status();
    v1::ArtifactFile* file = manifest.add_files();
    file->set_path(it->path().lexically_relative(dir).generic_string());
    file->set_digest(*digest);
    file->set_size(static_cast<uint64_t>(st.st_size));
    file->set_executable((st.st_mode & S_IXUSR) != 0);
    if (auto s = CheckArtifactPath(file->path()); !s.ok()) return s;
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot list artifact folder '", EscapeInvalidUtf8(dir), "': ", ec.message()));
  }
  std::sort(manifest.mutable_files()->begin(), manifest.mutable_files()->end(),
            [](const v1::ArtifactFile& a, const v1::ArtifactFile& b) { return a.path() < b.path(); });
  return manifest;
}

absl::StatusOr<v1::ArtifactManifest> ParseManifest(absl::string_view bytes) {
  v1::ArtifactManifest manifest;
  if (!manifest.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("artifact manifest is not a valid ArtifactManifest message");
  }
  const std::string* previous = nullptr;
  for (const auto& file : manifest.files()) {
    if (auto s = CheckArtifactPath(file.path()); !s.ok()) return s;
    if (!IsDigest(file.digest())) {
      return absl::InvalidArgumentError(
          absl::StrCat("artifact '", file.path(), "' has digest '", EscapeInvalidUtf8(file.digest().substr(0, 80)),
                       "', not 64 lowercase hex digits of SHA-256"));
    }
    if (previous && *previous >= file.path()) {
      return absl::InvalidArgumentError(
          absl::StrCat("artifact manifest is not sorted by path or repeats one ('", file.path(), "')"));
    }
    previous = &file.path();
  }
  return manifest;
}

std::string SerializeManifest(const v1::ArtifactManifest& manifest) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    manifest.SerializeToCodedStream(&coded);
  }
  return bytes;
}

}  // namespace perfgate
