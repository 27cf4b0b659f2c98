#include "coordinator/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/bounded_read.h"
#include "core/units.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

// A manifest blob is read whole; trees of a million files still fit.
constexpr uint64_t kMaxManifestBytes = 256ull << 20;

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Run ids are the scheduler's hex strings; nothing else becomes a file name.
bool IsRunId(const std::string& id) {
  return !id.empty() && id.size() <= 128 &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

absl::Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(absl::StrCat("cannot write '", path, "'"));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

ArtifactStore::ArtifactStore(ArtifactStoreOptions options, const TimeSource* clock, RunUnfinished run_unfinished)
    : options_(std::move(options)), clock_(clock), run_unfinished_(std::move(run_unfinished)) {}

absl::StatusOr<std::unique_ptr<ArtifactStore>> ArtifactStore::Open(ArtifactStoreOptions options,
                                                                   const TimeSource* clock,
                                                                   RunUnfinished run_unfinished) {
  std::unique_ptr<ArtifactStore> store(new ArtifactStore(std::move(options), clock, std::move(run_unfinished)));
  for (const char* sub : {"blobs", "tmp", "runs"}) {
    std::error_code ec;
    fs::create_directories(fs::path(store->options_.dir) / sub, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create artifact folder '", store->options_.dir, "/", sub, "': ", ec.message()));
    }
  }
  if (auto s = store->LoadIndex(); !s.ok()) return s;
  return store;
}

absl::Status ArtifactStore::LoadIndex() {
  std::error_code ec;
  // Leftovers of uploads a previous coordinator did not finish.
  for (const auto& entry : fs::directory_iterator(fs::path(options_.dir) / "tmp", ec)) fs::remove(entry.path(), ec);
  const int64_t now = clock_->NowMs();
  std::lock_guard lock(mu_);
  // A restart gives every blob a fresh grace period: it keeps more, never less.
  for (const auto& entry : fs::directory_iterator(fs::path(options_.dir) / "blobs", ec)) {
    const std::string name = entry.path().filename().string();
    if (!IsDigest(name) || !entry.is_regular_file(ec)) continue;
    const uint64_t size = entry.file_size(ec);
    blobs_[name] = {size, now};
    bytes_ += size;
  }
  for (const auto& entry : fs::directory_iterator(fs::path(options_.dir) / "runs", ec)) {
    if (!IsRunId(entry.path().filename().string())) continue;  // a pin a crash left half written
    std::ifstream in(entry.path());
    PinRecord pin;
    std::string line;
    if (!(in >> pin.pinned_at_ms)) continue;
    while (in >> line) {
      if (IsDigest(line)) pin.digests.push_back(line);
    }
    pins_[entry.path().filename().string()] = std::move(pin);
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot read artifact folder '", options_.dir, "': ", ec.message()));
  return absl::OkStatus();
}

std::string ArtifactStore::BlobPath(const std::string& digest) const {
  return absl::StrCat(options_.dir, "/blobs/", digest);
}

std::string ArtifactStore::PinPath(const std::string& run_id) const {
  return absl::StrCat(options_.dir, "/runs/", run_id);
}

std::vector<std::string> ArtifactStore::FindMissing(const std::vector<std::string>& digests) {
  std::vector<std::string> missing;
  const int64_t now = clock_->NowMs();
  std::lock_guard lock(mu_);
  for (const auto& digest : digests) {
    auto it = blobs_.find(digest);
    if (it == blobs_.end()) {
      missing.push_back(digest);
    } else {
      it->second.last_used_ms = now;
    }
  }
  return missing;
}

uint64_t ArtifactStore::SizeOf(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(digest);
  return it == blobs_.end() ? 0 : it->second.size;
}

bool ArtifactStore::Has(const std::string& digest) {
  std::lock_guard lock(mu_);
  return blobs_.count(digest) != 0;
}

bool ArtifactStore::FitsLocked(uint64_t size) const {
  // Subtracted, not added: a declared size near 2^64 must not wrap the sum
  // under the quota. What is stored may already exceed a quota lowered since.
  const uint64_t used = bytes_ + reserved_;
  return used <= options_.quota_bytes && size <= options_.quota_bytes - used;
}

absl::Status ArtifactStore::MakeRoom(uint64_t size, bool reserve) {
  std::unique_lock lock(mu_);
  if (!FitsLocked(size)) {
    lock.unlock();
    CollectGarbage();
    lock.lock();
    if (!FitsLocked(size)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the artifact store is full: it holds ", FormatBytes(bytes_), " (", FormatBytes(reserved_),
          " more arriving) of its quota of ", FormatBytes(options_.quota_bytes), ", and ", FormatBytes(size),
          " more does not fit; raise the coordinator's --artifact-quota or wait until older runs' "
          "artifacts expire"));
    }
  }
  if (reserve) reserved_ += size;
  return absl::OkStatus();
}

void ArtifactStore::Unreserve(uint64_t size) {
  std::lock_guard lock(mu_);
  reserved_ -= size;
}

absl::StatusOr<std::unique_ptr<ArtifactStore::Upload>> ArtifactStore::BeginUpload(const std::string& digest,
                                                                                  uint64_t size) {
  if (!IsDigest(digest)) {
    return absl::InvalidArgumentError("UploadArtifact: the first message must name the blob's SHA-256 digest (64 lowercase hex digits)");
  }
  // Checked now, reserved as the bytes arrive: a header declaring the whole
  // quota and then nothing held every other upload off for as long as its
  // stream stayed open.
  if (auto s = MakeRoom(size, /*reserve=*/false); !s.ok()) return s;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_upload_++;
  }
  std::unique_ptr<Upload> upload(new Upload());
  upload->store_ = this;
  upload->digest_ = digest;
  upload->size_ = size;
  upload->hash_ = std::make_unique<Sha256>();
  upload->tmp_path_ = absl::StrCat(options_.dir, "/tmp/", digest, ".", id);
  upload->fd_ = open(upload->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (upload->fd_ < 0) return Errno(absl::StrCat("cannot create '", upload->tmp_path_, "'"));
  return upload;
}

ArtifactStore::Upload::~Upload() {
  if (fd_ >= 0) close(fd_);
  if (!finished_) {
    unlink(tmp_path_.c_str());
    store_->Unreserve(received_);
  }
}

absl::Status ArtifactStore::Upload::Append(const std::string& bytes) {
  if (bytes.size() > size_ - received_) {
    return absl::InvalidArgumentError(
        absl::StrCat("UploadArtifact ", digest_, ": more bytes than the declared size of ", size_));
  }
  if (auto s = store_->MakeRoom(bytes.size(), /*reserve=*/true); !s.ok()) return s;
  received_ += bytes.size();
  hash_->Update(bytes);
  return WriteAll(fd_, bytes, tmp_path_);
}

absl::StatusOr<bool> ArtifactStore::Upload::Finish() {
  if (received_ != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("UploadArtifact ", digest_, ": ", received_, " bytes arrived, ", size_, " were declared"));
  }
  const std::string actual = hash_->HexDigest();
  if (actual != digest_) {
    return absl::InvalidArgumentError(absl::StrCat("UploadArtifact: the bytes have digest ", actual, ", not the ",
                                                   digest_, " declared; nothing was stored"));
  }
  if (fsync(fd_) != 0 || close(fd_) != 0) {
    fd_ = -1;
    return Errno(absl::StrCat("cannot write '", tmp_path_, "'"));
  }
  fd_ = -1;
  return store_->Commit(*this);
}

absl::StatusOr<bool> ArtifactStore::Commit(Upload& upload) {
  std::lock_guard lock(mu_);
  reserved_ -= upload.received_;  // == size_: Finish checked it
  upload.finished_ = true;
  auto [it, inserted] = blobs_.try_emplace(upload.digest_, Blob{upload.size_, clock_->NowMs()});
  if (!inserted) {
    unlink(upload.tmp_path_.c_str());
    it->second.last_used_ms = clock_->NowMs();
    return false;
  }
  if (rename(upload.tmp_path_.c_str(), BlobPath(upload.digest_).c_str()) != 0) {
    absl::Status error = Errno(absl::StrCat("cannot store blob ", upload.digest_));
    blobs_.erase(it);
    unlink(upload.tmp_path_.c_str());
    return error;
  }
  bytes_ += upload.size_;
  ++stats_.uploads_stored;
  stats_.bytes_uploaded += upload.size_;
  return true;
}

absl::StatusOr<int> ArtifactStore::OpenBlob(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(digest);
  if (!IsDigest(digest) || it == blobs_.end()) {
    return absl::NotFoundError(absl::StrCat("artifact ", digest.substr(0, 80),
                                            " is not on the coordinator (expired, or never uploaded)"));
  }
  const int fd = open(BlobPath(digest).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("cannot open blob ", digest));
  it->second.last_used_ms = clock_->NowMs();
  ++stats_.downloads;
  return fd;
}

absl::StatusOr<v1::ArtifactManifest> ArtifactStore::ReadManifest(const std::string& digest) {
  if (!Has(digest)) {
    return absl::FailedPreconditionError(
        absl::StrCat("artifact manifest ", digest, " is not on the coordinator: upload the tree first (perfgate gate "
                     "does so before submitting)"));
  }
  auto bytes = ReadFileBounded(BlobPath(digest), kMaxManifestBytes, "artifact manifest");
  if (!bytes.ok()) return bytes.status();
  auto manifest = ParseManifest(*bytes);
  if (!manifest.ok()) return absl::InvalidArgumentError(absl::StrCat("blob ", digest, ": ", manifest.status().message()));
  return manifest;
}

absl::Status ArtifactStore::CheckTree(const v1::ArtifactRef& ref, const std::string& where,
                                      std::set<std::string>* digests) {
  if (!IsDigest(ref.manifest_digest())) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": artifact tree '", ref.name(),
                                                   "' has no valid manifest digest"));
  }
  if (!ref.name().empty() && !IsArtifactName(ref.name())) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": artifact tree name '", ref.name(),
                                                   "' may use only letters, digits and '_'"));
  }
  if (!digests->insert(ref.manifest_digest()).second) return absl::OkStatus();  // checked for another case
  auto manifest = ReadManifest(ref.manifest_digest());
  if (!manifest.ok()) return absl::Status(manifest.status().code(), absl::StrCat(where, ": ", manifest.status().message()));
  uint64_t total = 0;
  for (const auto& file : manifest->files()) total += file.size();
  // Agents size their downloads by these; wrong ones would fail every case.
  const uint64_t manifest_bytes = SizeOf(ref.manifest_digest());
  if (ref.manifest_bytes() != manifest_bytes || ref.total_bytes() != total) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": artifact tree '", ref.name(), "' gives sizes (manifest ",
                                                   ref.manifest_bytes(), ", files ", ref.total_bytes(),
                                                   ") that are not its manifest's (", manifest_bytes, ", ", total, ")"));
  }
  for (const auto& file : manifest->files()) {
    if (!Has(file.digest())) {
      return absl::FailedPreconditionError(absl::StrCat(where, ": artifact '", file.path(), "' (", file.digest(),
                                                        ") is not on the coordinator: upload it first"));
    }
    digests->insert(file.digest());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ArtifactStore::CheckSuite(const v1::Suite& suite) {
  if (suite.artifact_dirs_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the suite names artifact folders of the gate's machine (", suite.artifact_dirs(0).path(),
                     "); the gate uploads them and sends their digests instead"));
  }
  std::set<std::string> digests;
  for (const auto& spec : suite.cases()) {
    const std::string where = absl::StrCat("case '", spec.name(), "'");
    for (const auto& ref : spec.artifacts()) {
      if (auto s = CheckTree(ref, where, &digests); !s.ok()) return s;
    }
    for (const auto& variant : spec.variants()) {
      if (!variant.has_root_tree()) continue;
      if (auto s = CheckTree(variant.root_tree(), absl::StrCat(where, " (", variant.name(), ")"), &digests); !s.ok()) {
        return s;
      }
    }
  }
  FindMissing({digests.begin(), digests.end()});  // counts as a use: the grace period restarts
  return std::vector<std::string>(digests.begin(), digests.end());
}

absl::Status ArtifactStore::Pin(const std::string& run_id, const std::vector<std::string>& digests) {
  if (!IsRunId(run_id)) return absl::InvalidArgumentError(absl::StrCat("not a run id: '", run_id, "'"));
  PinRecord pin{clock_->NowMs(), digests};
  std::ostringstream text;
  text << pin.pinned_at_ms << "\n";
  for (const auto& d : digests) text << d << "\n";
  const std::string path = PinPath(run_id);
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("cannot create '", tmp, "'"));
  absl::Status written = WriteAll(fd, text.str(), tmp);
  if (written.ok() && fsync(fd) != 0) written = Errno(absl::StrCat("cannot write '", tmp, "'"));
  close(fd);
  if (written.ok() && rename(tmp.c_str(), path.c_str()) != 0) written = Errno(absl::StrCat("cannot write '", path, "'"));
  if (!written.ok()) {
    unlink(tmp.c_str());
    return written;
  }
  std::lock_guard lock(mu_);
  pins_[run_id] = std::move(pin);
  return absl::OkStatus();
}

void ArtifactStore::CollectGarbage() {
  const int64_t now = clock_->NowMs();
  std::map<std::string, PinRecord> pins;
  {
    std::lock_guard lock(mu_);
    pins = pins_;
    last_collect_ms_ = now;
  }
  // Asked without the lock: the scheduler may read the store for an old run.
  std::set<std::string> needed;
  std::vector<std::string> expired;
  for (const auto& [run_id, pin] : pins) {
    if (now - pin.pinned_at_ms < options_.keep_runs_ms || (run_unfinished_ && run_unfinished_(run_id))) {
      needed.insert(pin.digests.begin(), pin.digests.end());
    } else {
      expired.push_back(run_id);
    }
  }
  std::error_code ec;
  for (const auto& run_id : expired) fs::remove(PinPath(run_id), ec);
  std::lock_guard lock(mu_);
  for (const auto& run_id : expired) pins_.erase(run_id);
  // A pin added meanwhile is honoured too.
  for (const auto& [run_id, pin] : pins_) {
    if (!pins.count(run_id)) needed.insert(pin.digests.begin(), pin.digests.end());
  }
  for (auto it = blobs_.begin(); it != blobs_.end();) {
    if (needed.count(it->first) || now - it->second.last_used_ms < options_.upload_grace_ms) {
      ++it;
      continue;
    }
    fs::remove(BlobPath(it->first), ec);
    bytes_ -= it->second.size;
    ++stats_.blobs_collected;
    it = blobs_.erase(it);
  }
}

void ArtifactStore::MaybeCollectGarbage() {
  {
    std::lock_guard lock(mu_);
    if (clock_->NowMs() - last_collect_ms_ < options_.collect_interval_ms) return;
  }
  CollectGarbage();
}

ArtifactStoreStats ArtifactStore::Stats() const {
  std::lock_guard lock(mu_);
  ArtifactStoreStats stats = stats_;
  stats.blobs = blobs_.size();
  stats.bytes = bytes_;
  return stats;
}

}  // namespace perfgate
