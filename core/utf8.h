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

// `text` as reports show it: valid UTF-8 unchanged, other text as
// EscapeInvalidUtf8 writes it (a JUnit file with a stray byte is no XML, and
// a Markdown row with one was not rendered as a row).
std::string ShowableUtf8(absl::string_view text);

// At most `max_bytes` of `text`, cut before a character, not inside one.
absl::string_view CutAtCharacter(absl::string_view text, size_t max_bytes);

// `text` for a terminal or a PR comment: every control character (C0, DEL,
// and C1, U+0080..U+009F) written as \xNN or \u00NN, so that a name from a
// suite, an agent or a case's output cannot move the cursor, recolour or
// overwrite a line (hiding "GATE FAILED"), or end a Markdown table row.
// Valid UTF-8 out: text that is not UTF-8 is first made so by ShowableUtf8.
std::string EscapeControls(absl::string_view text);

// `text` without whitespace at either end as Python's str.strip() sees it
// (str.isspace: the ASCII blanks, U+001C..U+001F, U+0085, U+00A0, U+1680,
// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), so that a name
// in a CSV file reads as PyTorch's check_results.py reads it. Bytes that
// are not well-formed UTF-8 are not whitespace.
absl::string_view StripPythonWhitespace(absl::string_view text);

// True if `text` begins or ends with whitespace StripPythonWhitespace removes.
bool HasEdgeWhitespace(absl::string_view text);

}  // namespace perfgate
