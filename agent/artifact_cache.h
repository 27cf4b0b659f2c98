// The agent's side of artifacts: before a case runs, every tree it names is
// fetched from the coordinator by digest (or taken from this cache),
// verified, and copied into the case's own folder with executable bits as
// the manifest says. The case then sees ${PERFGATE_ARTIFACTS} (and
// ${PERFGATE_ARTIFACTS_<NAME>} for named trees) in its command and its
// environment; an A/B variant's tree becomes its ${VARIANT_ROOT}.
//
// The cache holds blobs by digest under a size limit, evicting the least
// recently used. Every blob is hashed again each time it is used, so an
// entry corrupted on disk is noticed, dropped and fetched again. A tree that
// cannot be had (missing on the coordinator, corrupt in transit, larger than
// the cache) is an error for the case, never a measurement.
//
// Thread-safe, but meant for one agent: one cache per folder.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "agent/executor.h"
#include "perfgate/v1/artifact.grpc.pb.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct ArtifactCacheOptions {
  std::string dir;  // REQUIRES: non-empty; blobs live in <dir>/blobs
  uint64_t limit_bytes = 10ull << 30;
  // Per blob: a download slower than this fails the case.
  int64_t download_timeout_ms = 10 * 60 * 1000;
};

struct ArtifactCacheStats {
  uint64_t blobs_fetched = 0;
  uint64_t bytes_fetched = 0;
  uint64_t cache_hits = 0;
  uint64_t corrupt_refetched = 0;  // entries that failed verification and were fetched again
  uint64_t evicted = 0;
};

class ArtifactCache {
 public:
  // REQUIRES: the channel reaches the coordinator with an agent token.
  static absl::StatusOr<std::unique_ptr<ArtifactCache>> Open(ArtifactCacheOptions options,
                                                             std::shared_ptr<grpc::Channel> channel);

  // True when the case names trees to fetch.
  static bool Needs(const v1::CaseSpec& spec);
  // Materialises the case's trees below `case_dir` (created; the caller
  // removes it) and returns the spec to run: env carries the
  // PERFGATE_ARTIFACTS variables, variants their roots, and cwd defaults
  // to `case_dir`. Stops early (CANCELLED) once `cancel` fires.
  absl::StatusOr<v1::CaseSpec> Prepare(const v1::CaseSpec& spec, const std::string& case_dir,
                                       const CancelToken* cancel);
  ArtifactCacheStats Stats() const;

 private:
  struct Entry {
    uint64_t size = 0;
    uint64_t last_used = 0;  // a tick: larger is more recent
  };
  ArtifactCache(ArtifactCacheOptions options, std::shared_ptr<grpc::Channel> channel);
  void LoadIndex();
  std::string BlobPath(const std::string& digest) const;
  // The path of a verified copy of the blob in the cache, fetched if needed.
  // `max_size` bounds what is accepted from the coordinator.
  absl::StatusOr<std::string> Get(const std::string& digest, uint64_t max_size, const CancelToken* cancel);
  // True when the cached entry still has its digest; drops it otherwise.
  bool VerifyEntry(const std::string& digest);
  // Fetches the blob into the cache, a few attempts while the coordinator is away.
  absl::Status Fetch(const std::string& digest, uint64_t max_size, const CancelToken* cancel);
  // One download of the blob into `tmp`, checked against its digest; `finished` is the stream's own end.
  absl::Status DownloadOnce(const std::string& digest, uint64_t max_size, const std::string& tmp,
                            const CancelToken* cancel, uint64_t* received, grpc::Status* finished);
  // Evicts least recently used entries not in use until `size` more fits.
  absl::Status MakeRoom(uint64_t size);
  // Fetches the tree's manifest and files and copies them to `dest`.
  absl::Status Materialise(const v1::ArtifactRef& ref, const std::string& dest, const CancelToken* cancel);

  const ArtifactCacheOptions options_;
  std::unique_ptr<v1::ArtifactService::Stub> stub_;

  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> in_use_ ABSL_GUARDED_BY(mu_);  // digests of the case being prepared
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tick_ ABSL_GUARDED_BY(mu_) = 0;
  ArtifactCacheStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perfgate
