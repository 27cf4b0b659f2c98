#include "core/units.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace perfgate {
namespace {

// Splits "12.5ms" into 12.5 and "ms". False when there is no leading number.
bool SplitNumber(std::string_view text, double* number, std::string_view* suffix) {
  std::string s(text);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  const char* begin = s.c_str();
  char* end = nullptr;
  *number = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(*number) || *number < 0) return false;
  size_t consumed = static_cast<size_t>(end - begin);
  while (consumed < s.size() && s[consumed] == ' ') ++consumed;
  *suffix = text.substr(consumed, s.size() - consumed);
  return true;
}

}  // namespace

std::optional<uint64_t> ParseDurationMs(std::string_view text) {
  double n;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit)) return std::nullopt;
  double factor;
  if (unit.empty() || unit == "s")
    factor = 1000;
  else if (unit == "ms")
    factor = 1;
  else if (unit == "m" || unit == "min")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else if (unit == "d")
    factor = 86'400'000;
  else
    return std::nullopt;
  return static_cast<uint64_t>(std::llround(n * factor));
}

std::optional<double> ParseFraction(std::string_view text) {
  double n;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit)) return std::nullopt;
  if (unit.empty()) return n;
  if (unit == "%") return n / 100;
  return std::nullopt;
}

std::optional<uint64_t> ParseBytes(std::string_view text) {
  double n;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit)) return std::nullopt;
  double factor;
  if (unit.empty() || unit == "B")
    factor = 1;
  else if (unit == "KiB")
    factor = 1024.0;
  else if (unit == "MiB")
    factor = 1024.0 * 1024;
  else if (unit == "GiB")
    factor = 1024.0 * 1024 * 1024;
  else if (unit == "kB" || unit == "KB")
    factor = 1e3;
  else if (unit == "MB")
    factor = 1e6;
  else if (unit == "GB")
    factor = 1e9;
  else
    return std::nullopt;
  return static_cast<uint64_t>(std::llround(n * factor));
}

std::string FormatDurationSeconds(double seconds) {
  char buf[64];
  double a = std::fabs(seconds);
  if (a >= 1)
    std::snprintf(buf, sizeof buf, "%.3f s", seconds);
  else if (a >= 1e-3)
    std::snprintf(buf, sizeof buf, "%.3f ms", seconds * 1e3);
  else if (a >= 1e-6)
    std::snprintf(buf, sizeof buf, "%.3f us", seconds * 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1f ns", seconds * 1e9);
  return buf;
}

std::string FormatBytes(double bytes) {
  char buf[64];
  double a = std::fabs(bytes);
  if (a >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (a >= 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / (1024.0 * 1024));
  else if (a >= 1024.0)
    std::snprintf(buf, sizeof buf, "%.2f KiB", bytes / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  return buf;
}

std::string FormatPercent(double fraction, bool sign) {
  if (std::isnan(fraction)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, sign ? "%+.2f%%" : "%.2f%%", fraction * 100);
  return buf;
}

std::string FormatValue(double value, std::string_view unit) {
  if (unit == "s") return FormatDurationSeconds(value);
  if (unit == "bytes") return FormatBytes(value);
  char buf[64];
  if ((unit == "count" || unit.empty()) && std::fabs(value) < 1e15 && value == std::floor(value)) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", value);
  }
  std::string out = buf;
  if (!unit.empty() && unit != "count") out += " " + std::string(unit);
  return out;
}

}  // namespace perfgate
