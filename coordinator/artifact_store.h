// The coordinator's content-addressed artifact store: files the gate
// uploads, named by SHA-256, kept in a folder beside the database.
//
//   <dir>/blobs/<digest>   one file per blob, written once, never changed
//   <dir>/tmp/             uploads in progress; a blob appears only whole and verified
//   <dir>/runs/<run id>    the digests a run needs (first line: when it was pinned, ms)
//
// A blob is kept while an unfinished run needs it, while a run pinned it
// less than keep_runs_ms ago, or for upload_grace_ms after it was uploaded
// or asked about (the gate asks, uploads, then submits). Everything else is
// removed by CollectGarbage, which also runs when an upload would not fit
// the quota. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "core/artifact_tree.h"
#include "core/time_source.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct ArtifactStoreOptions {
  std::string dir;  // REQUIRES: non-empty
  uint64_t quota_bytes = 20ull << 30;
  // A finished run's artifacts stay this long after it was submitted, so a
  // re-run or a confirmation of a recent commit uploads nothing.
  int64_t keep_runs_ms = 7ll * 24 * 3600 * 1000;
  // A blob no run has pinned yet survives this long after its upload or the
  // last FindMissing that named it.
  int64_t upload_grace_ms = 3600 * 1000;
  // CollectGarbage runs at most this often from MaybeCollectGarbage.
  int64_t collect_interval_ms = 10 * 60 * 1000;
};

struct ArtifactStoreStats {
  uint64_t blobs = 0;
  uint64_t bytes = 0;
  uint64_t uploads_stored = 0;  // blobs written by an upload
  uint64_t bytes_uploaded = 0;
  uint64_t downloads = 0;
  uint64_t blobs_collected = 0;  // removed by garbage collection
};

class ArtifactStore {
 public:
  // True while the run is not final; consulted for pins older than keep_runs_ms.
  using RunUnfinished = std::function<bool(const std::string& run_id)>;

  // Creates the folders as needed and indexes the blobs already there.
  // REQUIRES: clock outlives the store; one store per folder.
  static absl::StatusOr<std::unique_ptr<ArtifactStore>> Open(ArtifactStoreOptions options, const TimeSource* clock,
                                                             RunUnfinished run_unfinished);

  // The digests of `digests` not held; the held ones count as used now.
  std::vector<std::string> FindMissing(const std::vector<std::string>& digests);

  // One upload in progress: bytes are written to a temporary file and
  // hashed; Finish() checks size and digest and makes the blob visible.
  // Destroyed unfinished, it leaves nothing behind.
  class Upload {
   public:
    ~Upload();
    // INVALID_ARGUMENT when more bytes arrive than were declared.
    absl::Status Append(const std::string& bytes);
    // True when this upload stored the blob, false when it was already held.
    absl::StatusOr<bool> Finish();

   private:
    friend class ArtifactStore;
    Upload() = default;
    ArtifactStore* store_ = nullptr;
    std::string digest_;
    uint64_t size_ = 0;
    uint64_t received_ = 0;  // written, and reserved in the store
    std::string tmp_path_;
    int fd_ = -1;
    std::unique_ptr<Sha256> hash_;
    bool finished_ = false;
  };
  // INVALID_ARGUMENT for a malformed digest, RESOURCE_EXHAUSTED when `size`
  // does not fit the quota even after garbage collection.
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload(const std::string& digest, uint64_t size);
  bool Has(const std::string& digest);
  uint64_t SizeOf(const std::string& digest);  // 0 when not held

  // An open read-only descriptor of the blob (it stays readable even if the
  // blob is collected meanwhile); NOT_FOUND when not held. The caller closes it.
  absl::StatusOr<int> OpenBlob(const std::string& digest);

  // Checks that every tree the suite's cases and variants name is held:
  // its manifest (parsed and validated) and each file. Returns every digest
  // involved, for Pin. FAILED_PRECONDITION names a missing blob.
  absl::StatusOr<std::vector<std::string>> CheckSuite(const v1::Suite& suite);
  // Records that `run_id` needs `digests` (written before it returns).
  absl::Status Pin(const std::string& run_id, const std::vector<std::string>& digests);

  // Removes blobs nothing keeps (see above) and pins that keep nothing.
  void CollectGarbage();
  // CollectGarbage if collect_interval_ms has passed since the last one.
  void MaybeCollectGarbage();
  ArtifactStoreStats Stats() const;

 private:
  struct Blob {
    uint64_t size = 0;
    int64_t last_used_ms = 0;
  };
  struct PinRecord {
    int64_t pinned_at_ms = 0;
    std::vector<std::string> digests;
  };
  ArtifactStore(ArtifactStoreOptions options, const TimeSource* clock, RunUnfinished run_unfinished);
  absl::Status LoadIndex();
  std::string BlobPath(const std::string& digest) const;
  std::string PinPath(const std::string& run_id) const;
  // Whether `size` more bytes fit the quota beside what is stored and arriving.
  bool FitsLocked(uint64_t size) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Room for `size` more bytes, collecting garbage if need be, reserved for
  // an upload when `reserve`; RESOURCE_EXHAUSTED saying so if there is none.
  absl::Status MakeRoom(uint64_t size, bool reserve) ABSL_LOCKS_EXCLUDED(mu_);
  // Publishes a verified upload; false if the blob was already there.
  absl::StatusOr<bool> Commit(Upload& upload);
  void Unreserve(uint64_t size);
  // The blob's manifest, read and validated; FAILED_PRECONDITION if missing.
  absl::StatusOr<v1::ArtifactManifest> ReadManifest(const std::string& digest);
  // Adds a tree's manifest digest and file digests to `digests`.
  absl::Status CheckTree(const v1::ArtifactRef& ref, const std::string& where, std::set<std::string>* digests);

  const ArtifactStoreOptions options_;
  const TimeSource* clock_;
  const RunUnfinished run_unfinished_;

  mutable std::mutex mu_;
  std::map<std::string, Blob> blobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, PinRecord> pins_ ABSL_GUARDED_BY(mu_);  // by run id
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;                     // held blobs
  uint64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;                  // uploads in progress
  uint64_t next_upload_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_collect_ms_ ABSL_GUARDED_BY(mu_) = 0;
  ArtifactStoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perfgate
