// The gate's side of artifacts: the folders a suite (`artifacts:`) and
// `perfgate gate --artifacts [NAME=]DIR` name, and the A/B roots
// (--base-root, --head-root). Towards a remote coordinator each folder
// becomes a manifest of digests; only the blobs the coordinator lacks are
// uploaded, and each case then names its trees by manifest digest. The
// embedded default reads the folders in place: its agents share this
// machine, so nothing is copied.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gate/gate_client.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// Adds `--artifacts` values ("DIR" for ${PERFGATE_ARTIFACTS}, "NAME=DIR"
// for ${PERFGATE_ARTIFACTS_NAME}) to the suite's folders. Errors name the
// flag value: a missing folder, a bad or repeated name.
absl::Status AddArtifactFlags(const std::vector<std::string>& values, v1::Suite* suite);

// Embedded default: every case sees the folders where they are, through
// the same variables; the suite keeps no artifact folders.
void UseArtifactsInPlace(v1::Suite* suite);

struct UploadSummary {
  uint64_t trees = 0;
  uint64_t files = 0;  // distinct blobs, manifests included
  uint64_t bytes = 0;
  uint64_t uploaded_files = 0;
  uint64_t uploaded_bytes = 0;
  std::string Describe() const;
};

// Remote coordinator: scans the suite's folders and the variants' roots,
// uploads what the coordinator lacks, and rewrites the suite so that cases
// name trees by digest (ArtifactRef) and carry no local paths. Errors:
// InvalidArgument (a folder cannot be read), Unavailable or the
// coordinator's refusal (quota, permission) with its message.
absl::StatusOr<UploadSummary> UploadArtifacts(const GateClientOptions& options, v1::Suite* suite);

// What the gate does before submitting: in place for the embedded default,
// else UploadArtifacts, saying on stderr what was uploaded.
absl::Status ResolveArtifacts(const GateClientOptions& options, bool embedded, v1::Suite* suite);

}  // namespace perfgate
