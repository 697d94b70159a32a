#include "core/time.h"

#include <charconv>
#include <chrono>
#include <algorithm>
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
  char buf[80];  // room for any int fields, so GCC can prove nothing is cut
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string FormatIso8601Ms(std::int64_t unix_ms) {
  std::string out = FormatIso8601(unix_ms);
  std::int64_t ms = ((unix_ms % 1000) + 1000) % 1000;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
  out.insert(out.size() - 1, frac);
  return out;
}

namespace {

// Days from 1970-01-01 to year-month-day (proleptic Gregorian; H. Hinnant's algorithm).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool Digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

Result<std::int64_t> ParseIso8601(std::string_view text, std::string_view field) {
  auto bad = [&] {
    return MakeError(Code::kInvalidField,
                     "'" + std::string(field) + "' must be an RFC 3339 time such as "
                     "2026-05-10T00:00:00Z (got \"" + std::string(text.substr(0, 40)) + "\")");
  };
  int year, month, day, hour, minute, second;
  if (text.size() < 20 || !Digits(text, 0, 4, year) || text[4] != '-' ||
      !Digits(text, 5, 2, month) || text[7] != '-' || !Digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !Digits(text, 11, 2, hour) ||
      text[13] != ':' || !Digits(text, 14, 2, minute) || text[16] != ':' ||
      !Digits(text, 17, 2, second)) {
    return bad();
  }
  static constexpr int kDaysIn[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDaysIn[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  std::size_t pos = 19;
  std::int64_t ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    int scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      ms += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start || pos - start > 9) return bad();
  }
  std::int64_t offset_s = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!Digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !Digits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
      return bad();
    }
    offset_s = (oh * 3600 + om * 60) * (text[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  std::int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + std::min(second, 59) - offset_s;
  return secs * 1000 + ms;
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
