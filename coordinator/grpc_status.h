// absl::Status <-> grpc::Status, keeping code and message (the codes share numbering).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace perfgate {

inline grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace perfgate
