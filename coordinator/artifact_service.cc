#include "coordinator/artifact_service.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "coordinator/grpc_status.h"

namespace perfgate {

grpc::Status ArtifactServiceImpl::FindMissingArtifacts(grpc::ServerContext* context,
                                                       const v1::FindMissingArtifactsRequest* request,
                                                       v1::FindMissingArtifactsResponse* response) {
  if (auto s = gatekeeper_->Admit(Rpc::kFindMissingArtifacts, *context, request->ByteSizeLong()); !s.ok()) return s;
  for (auto& digest : store_->FindMissing({request->digests().begin(), request->digests().end()})) {
    response->add_missing(std::move(digest));
  }
  return grpc::Status::OK;
}

grpc::Status ArtifactServiceImpl::UploadArtifact(grpc::ServerContext* context,
                                                 grpc::ServerReader<v1::UploadArtifactChunk>* reader,
                                                 v1::UploadArtifactResponse* response) {
  // Token and role before a byte is read; each chunk's size as it comes.
  if (auto s = gatekeeper_->Authorize(Rpc::kUploadArtifact, context->client_metadata()); !s.ok()) return s;
  auto slot = transfers_.Take();
  if (!slot.ok()) return ToGrpc(slot.status());
  v1::UploadArtifactChunk chunk;
  if (!reader->Read(&chunk)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "UploadArtifact: no header");
  if (auto s = gatekeeper_->Admit(Rpc::kUploadArtifact, *context, chunk.ByteSizeLong()); !s.ok()) return s;
  if (store_->Has(chunk.digest())) {
    response->set_stored(false);  // another upload won; the rest of the stream is not needed
    return grpc::Status::OK;
  }
  auto upload = store_->BeginUpload(chunk.digest(), chunk.size());
  if (!upload.ok()) return ToGrpc(upload.status());
  do {
    if (auto s = gatekeeper_->Admit(Rpc::kUploadArtifact, *context, chunk.ByteSizeLong()); !s.ok()) return s;
    if (auto s = (*upload)->Append(chunk.data()); !s.ok()) return ToGrpc(s);
  } while (reader->Read(&chunk));
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "UploadArtifact: the client went away");
  auto stored = (*upload)->Finish();
  if (!stored.ok()) return ToGrpc(stored.status());
  response->set_stored(*stored);
  return grpc::Status::OK;
}

grpc::Status ArtifactServiceImpl::DownloadArtifact(grpc::ServerContext* context,
                                                   const v1::DownloadArtifactRequest* request,
                                                   grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  if (auto s = gatekeeper_->Admit(Rpc::kDownloadArtifact, *context, request->ByteSizeLong()); !s.ok()) return s;
  auto slot = transfers_.Take();
  if (!slot.ok()) return ToGrpc(slot.status());
  auto fd = store_->OpenBlob(request->digest());
  if (!fd.ok()) return ToGrpc(fd.status());
  std::string buffer(kArtifactChunkBytes, '\0');
  v1::ArtifactChunk chunk;
  grpc::Status status = grpc::Status::OK;
  for (;;) {
    const ssize_t n = read(*fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            absl::StrCat("cannot read blob ", request->digest(), ": ", std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    chunk.set_data(buffer.data(), static_cast<size_t>(n));
    if (!writer->Write(chunk)) break;  // the agent went away
  }
  close(*fd);
  return status;
}

}  // namespace perfgate
