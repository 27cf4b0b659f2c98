// Parsing of human-written quantities in suite files: "30s", "500ms", "8MiB".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace perfgate {

// "250ms", "30s", "2m", "12h", "30d", or a bare number of seconds ("1.5"). nullopt if malformed, negative,
// not finite or too large for 63 bits.
std::optional<uint64_t> ParseDurationMs(std::string_view text);

// "1%" -> 0.01, or a bare fraction "0.01". nullopt if malformed or negative.
std::optional<double> ParseFraction(std::string_view text);

// "1024", "64KiB", "8MiB", "2GiB" (also kB/MB/GB as powers of ten). nullopt if malformed, negative or too large.
std::optional<uint64_t> ParseBytes(std::string_view text);

// Whether a metric's unit is a duration ("s", "ms", "us", "ns"): such
// metrics are timed, and timed metrics follow the machine's load.
bool IsTimeUnit(std::string_view unit);

// A duration, or a rate over one ("1/s", "B/s", a unitless
// "..._per_second"): a rate is a count over a time, and follows the load as
// the time does (items_per_second fell 2% where real_time rose 2%).
bool IsTimedOrRate(std::string_view unit, std::string_view metric);

// Every measured value shown to people goes through FormatValue, so tables,
// explanations, Markdown and JUnit agree: three significant digits with a
// prefix and a unit ("1.23 ms", "18.4 MiB", "1.77 M instr", "950 instr").
// Picks the form from the unit ("s", "bytes", "bytes/s", "count", "1/s",
// anything else is appended) and, where the unit says only "count" or
// nothing, from the metric's name (instructions, ..._per_second).
std::string FormatValue(double value, std::string_view unit, std::string_view metric = {});
// Its forms for durations and sizes: "1.23 ms", "18.4 MiB", "512 B".
std::string FormatDurationSeconds(double seconds);
std::string FormatBytes(double bytes);
// 0.0123 -> "1.23%", or "+1.23%" with `sign`; "n/a" for NaN (no baseline to divide by).
std::string FormatPercent(double fraction, bool sign = false);

}  // namespace perfgate
