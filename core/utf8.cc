#include "core/utf8.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace perfgate {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `text`, or 0.
// The ranges are the table of Unicode 15, section 3.9 (D92).
size_t SequenceLength(absl::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length;
  uint8_t low = 0x80, high = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

size_t FirstInvalidUtf8(absl::string_view text) {
  size_t offset = 0;
  while (offset < text.size()) {
    const size_t n = SequenceLength(text.substr(offset));
    if (n == 0) return offset;
    offset += n;
  }
  return absl::string_view::npos;
}

bool IsValidUtf8(absl::string_view text) { return FirstInvalidUtf8(text) == absl::string_view::npos; }

std::string EscapeInvalidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t n = SequenceLength(text);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02X", static_cast<uint8_t>(text[0]));
      text.remove_prefix(1);
    } else if (text[0] == '\\') {
      out += "\\\\";
      text.remove_prefix(1);
    } else {
      out.append(text.data(), n);
      text.remove_prefix(n);
    }
  }
  return out;
}

std::string EscapeControls(absl::string_view raw) {
  const std::string text = ShowableUtf8(raw);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    if (byte < 0x20 || byte == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02X", byte);
    } else if (byte == 0xC2 && i + 1 < text.size() && static_cast<uint8_t>(text[i + 1]) <= 0x9F &&
               static_cast<uint8_t>(text[i + 1]) >= 0x80) {
      absl::StrAppendFormat(&out, "\\u%04X", static_cast<uint8_t>(text[++i]));
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string ShowableUtf8(absl::string_view text) {
  return IsValidUtf8(text) ? std::string(text) : EscapeInvalidUtf8(text);
}

absl::string_view CutAtCharacter(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  // Back over continuation bytes: at most three, a character's longest tail
  // (bytes that are not UTF-8 may all look like continuations).
  for (int back = 0; back < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80; ++back) --cut;
  return text.substr(0, cut);
}

namespace {

// Python's whitespace, UTF-8 encoded: 1 to 3 bytes each.
constexpr absl::string_view kPythonWhitespace[] = {
    "\t",           "\n",           "\v",           "\f",           "\r",
    "\x1c",         "\x1d",         "\x1e",         "\x1f",         " ",
    "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81",
    "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86",
    "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8",
    "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};

// The length of the whitespace `text` begins (front) or ends (back) with; 0 if none.
size_t WhitespaceAtEdge(absl::string_view text, bool front) {
  for (absl::string_view space : kPythonWhitespace) {
    // A lead byte (0xc2, 0xe1..0xe3) is never a continuation byte, so an
    // encoding found at the end is a whole character, not the tail of one.
    if (front ? absl::StartsWith(text, space) : absl::EndsWith(text, space)) return space.size();
  }
  return 0;
}

}  // namespace

absl::string_view StripPythonWhitespace(absl::string_view text) {
  while (size_t n = WhitespaceAtEdge(text, true)) text.remove_prefix(n);
  while (size_t n = WhitespaceAtEdge(text, false)) text.remove_suffix(n);
  return text;
}

bool HasEdgeWhitespace(absl::string_view text) { return StripPythonWhitespace(text).size() != text.size(); }

}  // namespace perfgate
