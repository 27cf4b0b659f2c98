#include "core/units.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
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

// A whole count of milliseconds or bytes; nullopt past what 63 bits hold.
std::optional<uint64_t> ToCount(double value) {
  if (!(value < 9.2e18)) return std::nullopt;
  return static_cast<uint64_t>(std::llround(value));
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
  return ToCount(n * factor);
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
  return ToCount(n * factor);
}

namespace {

// Three significant digits: "1.23", "18.4", "123".
std::string ThreeDigits(double v) {
  const double a = std::fabs(v);
  char buf[64];
  std::snprintf(buf, sizeof buf, a >= 99.95 ? "%.0f" : a >= 9.995 ? "%.1f" : "%.2f", v);
  return buf;
}

struct Prefix {
  double factor;
  const char* name;  // with its leading space: " ms", " MiB", " M"
};

// `value` in the largest prefix it reaches, where 999.96 ms reaches "1.00 s".
// REQUIRES: `prefixes` ascending, non-empty.
std::string WithPrefix(double value, std::initializer_list<Prefix> prefixes) {
  const double a = std::fabs(value);
  const Prefix* chosen = prefixes.begin();
  for (const Prefix& p : prefixes) {
    if (a >= p.factor * 0.9995) chosen = &p;
  }
  return ThreeDigits(value / chosen->factor) + chosen->name;
}

bool IsInteger(double v) { return std::fabs(v) < 1e15 && v == std::floor(v); }

// 950, 0.00123, "1.77 M", "3.07 G": decimal prefixes from a thousand on.
std::string DecimalNumber(double value) {
  const double a = std::fabs(value);
  char buf[64];
  if (a < 999.5) {
    std::snprintf(buf, sizeof buf, IsInteger(value) ? "%.0f" : "%.3g", value);
    return buf;
  }
  if (a >= 1e18) {
    std::snprintf(buf, sizeof buf, "%.3g", value);
    return buf;
  }
  return WithPrefix(value, {{1, ""}, {1e3, " k"}, {1e6, " M"}, {1e9, " G"}, {1e12, " T"}, {1e15, " P"}});
}

}  // namespace

std::string FormatDurationSeconds(double seconds) {
  if (seconds == 0) return "0 s";
  return WithPrefix(seconds, {{1e-9, " ns"}, {1e-6, " us"}, {1e-3, " ms"}, {1, " s"}});
}

std::string FormatBytes(double bytes) {
  if (std::fabs(bytes) < 1023.5 && IsInteger(bytes)) return DecimalNumber(bytes) + " B";
  const double k = 1024;
  return WithPrefix(bytes, {{1, " B"}, {k, " KiB"}, {k * k, " MiB"}, {k * k * k, " GiB"}, {k * k * k * k, " TiB"}});
}

std::string FormatPercent(double fraction, bool sign) {
  if (std::isnan(fraction)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, sign ? "%+.2f%%" : "%.2f%%", fraction * 100);
  return buf;
}

bool IsTimeUnit(std::string_view unit) { return unit == "s" || unit == "ms" || unit == "us" || unit == "ns"; }

bool IsTimedOrRate(std::string_view unit, std::string_view metric) {
  if (IsTimeUnit(unit)) return true;
  if (const size_t slash = unit.rfind('/'); slash != std::string_view::npos && IsTimeUnit(unit.substr(slash + 1))) {
    return true;
  }
  return (unit.empty() || unit == "count") && (metric.ends_with("_per_second") || metric.ends_with("_per_s"));
}

std::string FormatValue(double value, std::string_view unit, std::string_view metric) {
  if (!std::isfinite(value)) return std::isnan(value) ? "n/a" : value > 0 ? "inf" : "-inf";
  if (unit == "s") return FormatDurationSeconds(value);
  if (unit == "bytes") return FormatBytes(value);
  if (unit == "bytes/s" || (unit.empty() && metric.ends_with("bytes_per_second"))) return FormatBytes(value) + "/s";
  if (unit == "count" && metric.find("instruction") != std::string_view::npos) return DecimalNumber(value) + " instr";
  if (unit == "count" || unit.empty()) {
    return metric.ends_with("_per_second") ? DecimalNumber(value) + "/s" : DecimalNumber(value);
  }
  // "1/s" reads as "12.3 k/s"; any other unit follows the number.
  if (unit.starts_with("1/")) return DecimalNumber(value) + std::string(unit.substr(1));
  return DecimalNumber(value) + " " + std::string(unit);
}

}  // namespace perfgate
