// absl::Status <-> grpc::Status, keeping code and message (the codes share numbering).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace perfgate {

inline grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// A status without a message (gRPC gives none for a request it could not
// serialise) says its code, so that an error never prints as nothing.
inline absl::Status FromGrpc(const grpc::Status& status) {
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (!status.ok() && status.error_message().empty()) {
    return absl::Status(code, absl::StrCat("the call failed with ", absl::StatusCodeToString(code), " and no message"));
  }
  return absl::Status(code, status.error_message());
}

}  // namespace perfgate
