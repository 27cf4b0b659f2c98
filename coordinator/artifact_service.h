// The gRPC face of the artifact store: the gate asks what is missing and
// uploads it in chunks, agents download by digest. The Gatekeeper admits
// every call (token, role) and every message (size).
#pragma once

#include "coordinator/artifact_store.h"
#include "coordinator/auth.h"
#include "coordinator/stream_slots.h"
#include "perfgate/v1/artifact.grpc.pb.h"

namespace perfgate {

// Bytes per streamed message, well under every per-call limit.
inline constexpr size_t kArtifactChunkBytes = 1 << 20;

class ArtifactServiceImpl final : public v1::ArtifactService::Service {
 public:
  // REQUIRES: store and gatekeeper outlive the service; max_transfers >= 1.
  ArtifactServiceImpl(ArtifactStore* store, const Gatekeeper* gatekeeper, int max_transfers)
      : store_(store), gatekeeper_(gatekeeper), transfers_("artifact transfer", max_transfers) {}
  grpc::Status FindMissingArtifacts(grpc::ServerContext*, const v1::FindMissingArtifactsRequest*,
                                    v1::FindMissingArtifactsResponse*) override;
  grpc::Status UploadArtifact(grpc::ServerContext*, grpc::ServerReader<v1::UploadArtifactChunk>*,
                              v1::UploadArtifactResponse*) override;
  grpc::Status DownloadArtifact(grpc::ServerContext*, const v1::DownloadArtifactRequest*,
                                grpc::ServerWriter<v1::ArtifactChunk>*) override;

 private:
  ArtifactStore* store_;
  const Gatekeeper* gatekeeper_;
  StreamSlots transfers_;  // uploads and downloads together
};

}  // namespace perfgate
