// Case output is bytes. Text that reaches a protobuf `string` field or a
// JSON report must be valid UTF-8 (protobuf refuses to serialise it
// otherwise, nlohmann::json throws on dump), so text built from case output
// goes through EscapeInvalidUtf8 first.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace perfgate {

// True if `text` is well-formed UTF-8 as protobuf and JSON require it: no
// overlong forms, no surrogates, nothing above U+10FFFF, no cut sequences.
bool IsValidUtf8(absl::string_view text);

// Offset of the first byte of `text` that is not part of a well-formed
// sequence, or absl::string_view::npos if there is none.
size_t FirstInvalidUtf8(absl::string_view text);

// `text` with every byte that is not part of a well-formed UTF-8 sequence
// written as \xNN (and every backslash of the input as \\, so the escaping
// can be undone and an input "\x41" is not mistaken for an escaped byte).
// Valid text without backslashes comes back unchanged.
std::string EscapeInvalidUtf8(absl::string_view text);

}  // namespace perfgate
