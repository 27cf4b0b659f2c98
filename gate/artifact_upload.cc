#include "gate/artifact_upload.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "coordinator/artifact_service.h"
#include "coordinator/grpc_status.h"
#include "core/artifact_tree.h"
#include "core/backoff.h"
#include "core/units.h"
#include "perfgate/v1/artifact.grpc.pb.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

// Digests per FindMissingArtifacts call: 65 bytes each, well under 4 MiB.
constexpr size_t kDigestsPerQuery = 20'000;

// Where a blob's bytes come from: a file of a scanned folder, or a manifest in memory.
struct BlobSource {
  std::string path;
  std::string bytes;
  uint64_t size = 0;
};

struct Tree {
  std::string manifest_digest;
  uint64_t manifest_bytes = 0;
  uint64_t total_bytes = 0;
};

class Uploader {
 public:
  explicit Uploader(const GateClientOptions& options) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options.limits.reply_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(options.limits.submit_bytes));
    stub_ = v1::ArtifactService::NewStub(OpenChannel(options.coordinator, options.security, args));
  }

  // Scans `dir` once, however many cases or variants name it.
  absl::StatusOr<Tree> AddTree(const std::string& dir) {
    if (auto it = trees_.find(dir); it != trees_.end()) return it->second;
    auto manifest = ScanTree(dir);
    if (!manifest.ok()) return manifest.status();
    Tree tree;
    for (const auto& file : manifest->files()) {
      tree.total_bytes += file.size();
      blobs_.try_emplace(file.digest(), BlobSource{(fs::path(dir) / file.path()).string(), "", file.size()});
    }
    std::string bytes = SerializeManifest(*manifest);
    tree.manifest_digest = DigestOfBytes(bytes);
    const uint64_t size = bytes.size();
    tree.manifest_bytes = size;
    blobs_.try_emplace(tree.manifest_digest, BlobSource{"", std::move(bytes), size});
    ++summary_.trees;
    trees_[dir] = tree;
    return tree;
  }

  absl::StatusOr<UploadSummary> UploadMissing() {
    summary_.files = blobs_.size();
    for (const auto& [digest, source] : blobs_) summary_.bytes += source.size;
    std::vector<std::string> all;
    for (const auto& [digest, source] : blobs_) all.push_back(digest);
    for (size_t first = 0; first < all.size(); first += kDigestsPerQuery) {
      v1::FindMissingArtifactsRequest request;
      for (size_t i = first; i < std::min(all.size(), first + kDigestsPerQuery); ++i) request.add_digests(all[i]);
      v1::FindMissingArtifactsResponse response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      if (auto s = stub_->FindMissingArtifacts(&context, request, &response); !s.ok()) return Failed("ask", s);
      for (const auto& digest : response.missing()) {
        auto it = blobs_.find(digest);
        if (it == blobs_.end()) continue;  // not one we asked about
        if (auto s = UploadRetryingWhileBusy(digest, it->second); !s.ok()) return s;
        ++summary_.uploaded_files;
        summary_.uploaded_bytes += it->second.size;
      }
    }
    return summary_;
  }

 private:
  static absl::Status Failed(const char* what, const grpc::Status& status) {
    return absl::Status(FromGrpc(status).code(),
                        absl::StrCat("cannot ", what, " the coordinator about artifacts: ", status.error_message()));
  }

  // A coordinator whose transfer slots are all held (agents fetching) or
  // that cut the call off answers UNAVAILABLE: tried again, backing off,
  // for up to two minutes.
  absl::Status UploadRetryingWhileBusy(const std::string& digest, const BlobSource& source) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    for (int attempt = 0;; ++attempt) {
      absl::Status s = Upload(digest, source);
      if (!absl::IsUnavailable(s) || std::chrono::steady_clock::now() >= give_up) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(RetryBackoffMs(attempt)));
    }
  }

  absl::Status Upload(const std::string& digest, const BlobSource& source) {
    grpc::ClientContext context;
    v1::UploadArtifactResponse response;
    auto writer = stub_->UploadArtifact(&context, &response);
    v1::UploadArtifactChunk chunk;
    chunk.set_digest(digest);
    chunk.set_size(source.size);
    bool open = writer->Write(chunk);
    chunk.Clear();
    absl::Status read_error;
    if (source.path.empty()) {
      for (size_t at = 0; open && at < source.bytes.size(); at += kArtifactChunkBytes) {
        chunk.set_data(source.bytes.substr(at, kArtifactChunkBytes));
        open = writer->Write(chunk);
      }
    } else {
      const int fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        read_error = absl::InvalidArgumentError(absl::StrCat("cannot read artifact '", source.path, "': ", std::strerror(errno)));
      }
      std::string buffer(kArtifactChunkBytes, '\0');
      while (open && fd >= 0) {
        const ssize_t n = read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) read_error = absl::InvalidArgumentError(absl::StrCat("cannot read artifact '", source.path, "': ", std::strerror(errno)));
        if (n <= 0) break;
        chunk.set_data(buffer.data(), static_cast<size_t>(n));
        open = writer->Write(chunk);
      }
      if (fd >= 0) close(fd);
    }
    if (!read_error.ok()) {
      context.TryCancel();
      writer->Finish();
      return read_error;
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (status.ok()) return absl::OkStatus();
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT && !source.path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("artifact '", source.path,
                                                     "' changed while it was uploaded (the coordinator refused it: ",
                                                     status.error_message(), ")"));
    }
    return Failed("upload to", status);
  }

  std::unique_ptr<v1::ArtifactService::Stub> stub_;
  std::map<std::string, BlobSource> blobs_;  // by digest
  std::map<std::string, Tree> trees_;        // by folder
  UploadSummary summary_;
};

v1::ArtifactRef Ref(const std::string& name, const Tree& tree) {
  v1::ArtifactRef ref;
  ref.set_name(name);
  ref.set_manifest_digest(tree.manifest_digest);
  ref.set_total_bytes(tree.total_bytes);
  ref.set_manifest_bytes(tree.manifest_bytes);
  return ref;
}

}  // namespace

absl::Status AddArtifactFlags(const std::vector<std::string>& values, v1::Suite* suite) {
  std::set<std::string> names;
  for (const auto& dir : suite->artifact_dirs()) names.insert(dir.name());
  for (const auto& value : values) {
    const size_t eq = value.find('=');
    std::string name = eq == std::string::npos ? "" : value.substr(0, eq);
    std::string path = eq == std::string::npos ? value : value.substr(eq + 1);
    if (eq != std::string::npos && !IsArtifactName(name)) {
      return absl::InvalidArgumentError(absl::StrCat("--artifacts ", value, ": the name '", name,
                                                     "' may use only letters, digits and '_' (not first a digit)"));
    }
    std::error_code ec;
    if (path.empty() || !fs::is_directory(path, ec)) {
      return absl::InvalidArgumentError(absl::StrCat("--artifacts ", value, ": '", path, "' is not a folder"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("--artifacts ", value, ": ", ArtifactVariable(name),
                                                     " is already given (by the suite or another --artifacts)"));
    }
    v1::ArtifactDir* dir = suite->add_artifact_dirs();
    dir->set_name(name);
    dir->set_path(fs::absolute(path, ec).lexically_normal().string());
  }
  return absl::OkStatus();
}

void UseArtifactsInPlace(v1::Suite* suite) {
  for (auto& spec : *suite->mutable_cases()) {
    for (const auto& dir : suite->artifact_dirs()) {
      // Env values are expanded on the agent: a '$' in the path stays literal.
      spec.mutable_env()->insert({ArtifactVariable(dir.name()), absl::StrReplaceAll(dir.path(), {{"$", "$$"}})});
    }
  }
  suite->clear_artifact_dirs();
}

absl::StatusOr<UploadSummary> UploadArtifacts(const GateClientOptions& options, v1::Suite* suite) {
  Uploader uploader(options);
  std::vector<v1::ArtifactRef> refs;
  for (const auto& dir : suite->artifact_dirs()) {
    auto tree = uploader.AddTree(dir.path());
    if (!tree.ok()) return tree.status();
    refs.push_back(Ref(dir.name(), *tree));
  }
  for (auto& spec : *suite->mutable_cases()) {
    for (const auto& ref : refs) *spec.add_artifacts() = ref;
    for (auto& variant : *spec.mutable_variants()) {
      if (variant.root().empty()) continue;
      auto tree = uploader.AddTree(variant.root());
      if (!tree.ok()) {
        return absl::Status(tree.status().code(),
                            absl::StrCat("--", variant.name(), "-root: ", tree.status().message()));
      }
      *variant.mutable_root_tree() = Ref("", *tree);
      variant.clear_root();  // a path on this machine; the agent sets its own
    }
  }
  suite->clear_artifact_dirs();
  return uploader.UploadMissing();
}

absl::Status ResolveArtifacts(const GateClientOptions& options, bool embedded, v1::Suite* suite) {
  if (embedded) {
    UseArtifactsInPlace(suite);
    return absl::OkStatus();
  }
  const bool any = suite->artifact_dirs_size() > 0 ||
                   std::any_of(suite->cases().begin(), suite->cases().end(), [](const v1::CaseSpec& c) {
                     return std::any_of(c.variants().begin(), c.variants().end(),
                                        [](const v1::Variant& v) { return !v.root().empty(); });
                   });
  if (!any) return absl::OkStatus();
  auto summary = UploadArtifacts(options, suite);
  if (!summary.ok()) return summary.status();
  std::fprintf(stderr, "perfgate: %s\n", summary->Describe().c_str());
  return absl::OkStatus();
}

std::string UploadSummary::Describe() const {
  return absl::StrCat("artifacts: ", trees, trees == 1 ? " tree, " : " trees, ", files, " blobs (",
                      FormatBytes(static_cast<double>(bytes)), "); uploaded ", uploaded_files, " (",
                      FormatBytes(static_cast<double>(uploaded_bytes)), "), the coordinator held the rest");
}

}  // namespace perfgate
