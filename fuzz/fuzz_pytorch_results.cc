// The PyTorch result lines adapter on arbitrary case output: values the agent can
// deliver, or an error naming the line or field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/result_adapters.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  perfgate::fuzz::CheckAdapterOutput(perfgate::ParsePytorchResults(text, "stdout"));
  return 0;
}
