// The suite loader on arbitrary text: a suite or an error with file:line:col.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/suite.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto suite = perfgate::ParseSuite(text, "fuzz.yaml", "/suite");
  if (!suite.ok()) {
    perfgate::fuzz::CheckErrorText(suite.status());
    return 0;
  }
  perfgate::fuzz::CheckDeliverable(*suite);  // a suite is sent to the coordinator as it is
  return 0;
}
