#include "core/time.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace agentgate {

std::int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string FormatIso8601(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::int64_t UtcDay(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / 86'400'000 : (unix_ms - 86'399'999) / 86'400'000;
}

namespace {

constexpr std::int64_t kMaxExpiresSeconds = 3650LL * 86400;

Result<std::int64_t> ParseAmount(std::string_view digits, Code code, std::string_view text) {
  auto bad = [&] {
    return MakeError(code, "Invalid duration \"" + std::string(text.substr(0, 64)) +
                               "\": use a positive whole number followed by s, m, h or d, "
                               "e.g. 60s, 30m, 24h, 7d");
  };
  if (digits.empty() || digits.size() > 12) return bad();
  for (char c : digits) {
    if (c < '0' || c > '9') return bad();
  }
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || n <= 0) return bad();
  return n;
}

}  // namespace

Result<std::int64_t> ParseExpiresIn(std::string_view text) {
  if (text.size() < 2) {
    return MakeError(Code::kInvalidExpiresIn,
                     "Invalid expires_in \"" + std::string(text) +
                         "\": use a positive whole number followed by s, m, h or d, e.g. 60s, "
                         "30m, 24h, 7d");
  }
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: break;
  }
  auto n = ParseAmount(unit ? text.substr(0, text.size() - 1) : std::string_view{},
                       Code::kInvalidExpiresIn, text);
  if (!n.ok()) {
    Error e = n.take_error();
    e.message = "Invalid expires_in \"" + std::string(text.substr(0, 64)) +
                "\": use a positive whole number followed by s, m, h or d, e.g. 60s, 30m, 24h, "
                "7d";
    return e;
  }
  if (*n > kMaxExpiresSeconds / unit) {
    return MakeError(Code::kInvalidExpiresIn,
                     "expires_in \"" + std::string(text.substr(0, 64)) +
                         "\" is too long: the longest allowed is 3650d");
  }
  return *n * unit;
}

Result<std::int64_t> ParseDurationMs(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    auto n = ParseAmount(text.substr(0, text.size() - 2), Code::kInvalidField, text);
    if (!n.ok()) return n.take_error();
    return *n;
  }
  auto s = ParseExpiresIn(text);
  if (!s.ok()) {
    return MakeError(Code::kInvalidField, "Invalid duration \"" + std::string(text.substr(0, 64)) +
                                              "\": use e.g. 500ms, 30s, 15m, 1h, 7d");
  }
  return *s * 1000;
}

}  // namespace agentgate
