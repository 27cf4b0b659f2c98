// The expected-results parser: rows or an error naming the line; rows it
// accepts survive being written back (baseline update) and read again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/baseline_update.h"
#include "core/expected_file.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto rows = perfgate::ParseExpectedFile(text, "fuzz.csv");
  if (!rows.ok()) {
    perfgate::fuzz::CheckErrorText(rows.status());
    return 0;
  }
  auto again = perfgate::ParseExpectedFile(perfgate::FormatExpectedFile(*rows), "rewritten.csv");
  if (!again.ok()) perfgate::fuzz::Fail("written rows do not read back", std::string(again.status().message()));
  if (again->size() != rows->size()) perfgate::fuzz::Fail("row count changed on rewrite", text);
  for (size_t i = 0; i < rows->size(); ++i) {
    if ((*again)[i].Key() != (*rows)[i].Key()) perfgate::fuzz::Fail("row key changed on rewrite", (*rows)[i].Key());
  }
  return 0;
}
