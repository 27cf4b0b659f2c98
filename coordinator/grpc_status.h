// absl::Status to grpc::Status, keeping code and message.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace perfgate {

inline grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace perfgate
