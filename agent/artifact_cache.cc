#include "agent/artifact_cache.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/artifact_tree.h"
#include "core/backoff.h"
#include "core/bounded_read.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

// A manifest is read whole; a million files still fit.
constexpr uint64_t kMaxManifestBytes = 256ull << 20;
// A download the coordinator refuses as busy (all its transfer slots held,
// a lab of agents fetching a new tree at once) or cut off is tried again,
// backing off, for up to this long.
constexpr auto kDownloadRetryFor = std::chrono::seconds(120);

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The folder a tree is materialised in, below the case's folder.
std::string TreeDir(const std::string& case_dir, const std::string& name) {
  return absl::StrCat(case_dir, name.empty() ? "/tree" : absl::StrCat("/trees/", name));
}

// Waits `ms`; true if `cancel` (may be null) fired meanwhile.
bool CancelledWithin(const CancelToken* cancel, int ms) {
  if (!cancel) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return false;
  }
  pollfd fired{cancel->fd(), POLLIN, 0};
  return poll(&fired, 1, ms) > 0;
}

bool Transient(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

ArtifactCache::ArtifactCache(ArtifactCacheOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), stub_(v1::ArtifactService::NewStub(channel)) {}

absl::StatusOr<std::unique_ptr<ArtifactCache>> ArtifactCache::Open(ArtifactCacheOptions options,
                                                                   std::shared_ptr<grpc::Channel> channel) {
  std::unique_ptr<ArtifactCache> cache(new ArtifactCache(std::move(options), std::move(channel)));
  for (const char* sub : {"blobs", "tmp"}) {
    std::error_code ec;
    fs::create_directories(fs::path(cache->options_.dir) / sub, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create the artifact cache '", cache->options_.dir, "/", sub, "': ", ec.message()));
    }
  }
  cache->LoadIndex();
  return cache;
}

void ArtifactCache::LoadIndex() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(options_.dir) / "tmp", ec)) fs::remove(entry.path(), ec);
  // Least recently used first by modification time (touched on each use).
  std::vector<std::pair<fs::file_time_type, std::string>> found;
  std::lock_guard lock(mu_);
  for (const auto& entry : fs::directory_iterator(fs::path(options_.dir) / "blobs", ec)) {
    const std::string name = entry.path().filename().string();
    if (!IsDigest(name) || !entry.is_regular_file(ec)) continue;
    found.emplace_back(entry.last_write_time(ec), name);
    entries_[name].size = entry.file_size(ec);
    bytes_ += entries_[name].size;
  }
  std::sort(found.begin(), found.end());
  for (const auto& [time, name] : found) entries_[name].last_used = ++tick_;
}

bool ArtifactCache::Needs(const v1::CaseSpec& spec) {
  return spec.artifacts_size() > 0 || std::any_of(spec.variants().begin(), spec.variants().end(),
                                                  [](const v1::Variant& v) { return v.has_root_tree(); });
}

std::string ArtifactCache::BlobPath(const std::string& digest) const {
  return absl::StrCat(options_.dir, "/blobs/", digest);
}

ArtifactCacheStats ArtifactCache::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool ArtifactCache::VerifyEntry(const std::string& digest) {
  auto actual = DigestOfFile(BlobPath(digest));
  if (actual.ok() && *actual == digest) return true;
  std::error_code ec;
  fs::remove(BlobPath(digest), ec);
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(digest); it != entries_.end()) {
    bytes_ -= it->second.size;
    entries_.erase(it);
  }
  ++stats_.corrupt_refetched;
  return false;
}

absl::Status ArtifactCache::MakeRoom(uint64_t size) {
  std::lock_guard lock(mu_);
  if (size > options_.limit_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("an artifact of ", FormatBytes(size),
                                                     " is larger than this agent's artifact cache of ",
                                                     FormatBytes(options_.limit_bytes), " (--artifact-cache-size)"));
  }
  while (bytes_ + size > options_.limit_bytes) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (in_use_.count(it->first)) continue;
      if (victim == entries_.end() || it->second.last_used < victim->second.last_used) victim = it;
    }
    if (victim == entries_.end()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("this case's artifacts need more than this agent's artifact cache of ",
                       FormatBytes(options_.limit_bytes), " (--artifact-cache-size)"));
    }
    std::error_code ec;
    fs::remove(BlobPath(victim->first), ec);
    bytes_ -= victim->second.size;
    ++stats_.evicted;
    entries_.erase(victim);
  }
  bytes_ += size;  // reserved; Fetch gives back what it does not use
  return absl::OkStatus();
}

absl::Status ArtifactCache::DownloadOnce(const std::string& digest, uint64_t max_size, const std::string& tmp,
                                         const CancelToken* cancel, uint64_t* received, grpc::Status* finished) {
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("cannot create '", tmp, "'"));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.download_timeout_ms));
  v1::DownloadArtifactRequest request;
  request.set_digest(digest);
  auto reader = stub_->DownloadArtifact(&context, request);
  Sha256 hash;
  *received = 0;
  absl::Status status;
  v1::ArtifactChunk chunk;
  while (status.ok() && reader->Read(&chunk)) {
    if (cancel && cancel->cancelled()) {
      context.TryCancel();
      status = absl::CancelledError("the case was cancelled while its artifacts were fetched");
    } else if (chunk.data().size() > max_size - *received) {
      context.TryCancel();
      status = absl::DataLossError(absl::StrCat("artifact ", digest, " from the coordinator is larger than the ",
                                                max_size, " bytes its manifest gives"));
    } else if (write(fd, chunk.data().data(), chunk.data().size()) != static_cast<ssize_t>(chunk.data().size())) {
      context.TryCancel();
      status = Errno(absl::StrCat("cannot write '", tmp, "'"));
    } else {
      *received += chunk.data().size();
      hash.Update(chunk.data());
    }
  }
  *finished = reader->Finish();
  close(fd);
  if (status.ok() && !finished->ok()) {
    status = absl::Status(static_cast<absl::StatusCode>(finished->error_code()),
                          absl::StrCat("cannot fetch artifact ", digest, ": ", finished->error_message()));
  }
  if (status.ok() && hash.HexDigest() != digest) {
    status = absl::DataLossError(absl::StrCat("artifact ", digest,
                                              " arrived with another digest (corrupted in transit or on the "
                                              "coordinator); nothing was run"));
  }
  return status;
}

absl::Status ArtifactCache::Fetch(const std::string& digest, uint64_t max_size, const CancelToken* cancel) {
  if (auto s = MakeRoom(max_size); !s.ok()) return s;
  const std::string tmp = absl::StrCat(options_.dir, "/tmp/", digest);
  uint64_t received = 0;
  auto release = [&](uint64_t kept) {
    std::lock_guard lock(mu_);
    bytes_ -= max_size - kept;
  };
  absl::Status status;
  const auto give_up = std::chrono::steady_clock::now() + kDownloadRetryFor;
  for (int attempt = 0;; ++attempt) {
    grpc::Status finished;
    status = DownloadOnce(digest, max_size, tmp, cancel, &received, &finished);
    if (status.ok() || !Transient(finished) || std::chrono::steady_clock::now() >= give_up) break;
    if (CancelledWithin(cancel, RetryBackoffMs(attempt))) break;
  }
  if (status.ok() && rename(tmp.c_str(), BlobPath(digest).c_str()) != 0) {
    status = Errno(absl::StrCat("cannot store artifact ", digest, " in the cache"));
  }
  if (!status.ok()) {
    unlink(tmp.c_str());
    release(0);
    return status;
  }
  release(received);
  std::lock_guard lock(mu_);
  entries_[digest] = {received, ++tick_};
  ++stats_.blobs_fetched;
  stats_.bytes_fetched += received;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactCache::Get(const std::string& digest, uint64_t max_size,
                                               const CancelToken* cancel) {
  bool cached;
  {
    std::lock_guard lock(mu_);
    in_use_.insert(digest);
    cached = entries_.count(digest) != 0;
  }
  if (cached && VerifyEntry(digest)) {
    std::lock_guard lock(mu_);
    entries_[digest].last_used = ++tick_;
    ++stats_.cache_hits;
  } else if (auto s = Fetch(digest, max_size, cancel); !s.ok()) {
    return s;
  }
  // The modification time carries recency across agent restarts.
  utimensat(AT_FDCWD, BlobPath(digest).c_str(), nullptr, 0);
  return BlobPath(digest);
}

absl::Status ArtifactCache::Materialise(const v1::ArtifactRef& ref, const std::string& dest,
                                        const CancelToken* cancel) {
  if (!IsDigest(ref.manifest_digest())) {
    return absl::InvalidArgumentError(absl::StrCat("artifact tree '", ref.name(), "' has no valid manifest digest"));
  }
  if (ref.total_bytes() > options_.limit_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("artifact tree", ref.name().empty() ? "" : absl::StrCat(" '", ref.name(), "'"), " holds ",
                     FormatBytes(ref.total_bytes()), ", more than this agent's artifact cache of ",
                     FormatBytes(options_.limit_bytes), " (--artifact-cache-size)"));
  }
  if (ref.manifest_bytes() > kMaxManifestBytes) {
    return absl::InvalidArgumentError(absl::StrCat("artifact tree '", ref.name(), "' has a manifest of ",
                                                   FormatBytes(ref.manifest_bytes()), ", more than the ",
                                                   FormatBytes(kMaxManifestBytes), " an agent accepts"));
  }
  auto manifest_path = Get(ref.manifest_digest(), ref.manifest_bytes(), cancel);
  if (!manifest_path.ok()) return manifest_path.status();
  auto bytes = ReadFileBounded(*manifest_path, kMaxManifestBytes, "artifact manifest");
  if (!bytes.ok()) return bytes.status();
  auto manifest = ParseManifest(*bytes);
  if (!manifest.ok()) return manifest.status();
  for (const auto& file : manifest->files()) {
    auto cached = Get(file.digest(), file.size(), cancel);
    if (!cached.ok())
      return absl::Status(cached.status().code(), absl::StrCat(file.path(), ": ", cached.status().message()));
    const fs::path target = fs::path(dest) / file.path();
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (!ec) fs::copy_file(*cached, target, fs::copy_options::overwrite_existing, ec);
    if (!ec) {
      fs::permissions(target, file.executable() ? fs::perms(0755) : fs::perms(0644), fs::perm_options::replace, ec);
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot place artifact '", file.path(), "' in '", dest, "': ", ec.message()));
    }
  }
  std::error_code ec;
  fs::create_directories(dest, ec);  // an empty tree is still a folder
  return absl::OkStatus();
}

absl::StatusOr<v1::CaseSpec> ArtifactCache::Prepare(const v1::CaseSpec& spec, const std::string& case_dir,
                                                    const CancelToken* cancel) {
  v1::CaseSpec prepared = spec;
  std::error_code ec;
  fs::create_directories(case_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create the case folder '", case_dir, "': ", ec.message()));
  absl::Status status;
  for (const auto& ref : spec.artifacts()) {
    // The name comes from the network and becomes a folder: "../../etc"
    // would place the tree's files anywhere the agent may write.
    if (!ref.name().empty() && !IsArtifactName(ref.name())) {
      status = absl::InvalidArgumentError(
          absl::StrCat("artifact tree name '", EscapeControls(ref.name()),
                       "' is not letters, digits and '_' (at most 64, not starting with a digit)"));
      break;
    }
    const std::string dest = TreeDir(case_dir, ref.name());
    status = Materialise(ref, dest, cancel);
    if (!status.ok()) break;
    (*prepared.mutable_env())[ArtifactVariable(ref.name())] = dest;
  }
  for (int i = 0; i < prepared.variants_size(); ++i) {
    v1::Variant& variant = *prepared.mutable_variants(i);
    if (!status.ok() || !variant.has_root_tree()) continue;
    const std::string dest = absl::StrCat(case_dir, "/variant-", i);
    status = Materialise(variant.root_tree(), dest, cancel);
    variant.set_root(dest);
  }
  {
    std::lock_guard lock(mu_);
    in_use_.clear();
  }
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("artifacts of case '", spec.name(), "': ", status.message()));
  }
  if (prepared.cwd().empty()) prepared.set_cwd(case_dir);
  return prepared;
}

}  // namespace perfgate
