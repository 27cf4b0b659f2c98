// Parsing of human-written quantities in suite files: "30s", "500ms", "8MiB".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace perfgate {

// "250ms", "30s", "2m", "12h", "30d", or a bare number of seconds ("1.5"). nullopt if malformed or negative.
std::optional<uint64_t> ParseDurationMs(std::string_view text);

// "1%" -> 0.01, or a bare fraction "0.01". nullopt if malformed or negative.
std::optional<double> ParseFraction(std::string_view text);

// "1024", "64KiB", "8MiB", "2GiB" (also kB/MB/GB as powers of ten). nullopt if malformed.
std::optional<uint64_t> ParseBytes(std::string_view text);

// "1.23 ms", "4.5 MiB": for tables.
std::string FormatDurationSeconds(double seconds);
std::string FormatBytes(double bytes);
// 0.0123 -> "1.23%", or "+1.23%" with `sign`; "n/a" for NaN (no baseline to divide by).
std::string FormatPercent(double fraction, bool sign = false);
// Picks the formatter from a unit name ("s", "bytes", "count"); plain %.4g otherwise.
std::string FormatValue(double value, std::string_view unit);

}  // namespace perfgate
