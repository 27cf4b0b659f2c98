// What every fuzz target checks beyond "no crash": an error is UTF-8 (it
// goes into a proto string field and a JSON report), and a message parsed
// from hostile input can be delivered, i.e. survives a protobuf round trip.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "core/utf8.h"

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

}  // namespace perfgate::fuzz
