// What every fuzz target checks beyond "no crash": an error is UTF-8 (it
// goes into a proto string field and a JSON report), and a message parsed
// from hostile input can be delivered, i.e. survives a protobuf round trip.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/utf8.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate::fuzz {

[[noreturn]] inline void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz check failed: %s: %s\n", what, EscapeInvalidUtf8(detail).c_str());
  std::abort();
}

inline void CheckErrorText(const absl::Status& status) {
  if (!IsValidUtf8(status.message())) Fail("error text is not UTF-8", std::string(status.message()));
}

template <typename Message>
void CheckDeliverable(const Message& message) {
  std::string wire;
  Message copy;
  if (!message.SerializeToString(&wire) || !copy.ParseFromString(wire)) {
    Fail("message cannot be delivered", message.ShortDebugString());
  }
}

// A result adapter's answer: a UTF-8 error, or values that one sample can deliver.
inline void CheckAdapterOutput(const absl::StatusOr<std::vector<v1::MetricValue>>& values) {
  if (!values.ok()) {
    CheckErrorText(values.status());
    return;
  }
  v1::Sample sample;
  for (const auto& value : *values) *sample.add_values() = value;
  CheckDeliverable(sample);
}

}  // namespace perfgate::fuzz
