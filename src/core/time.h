// Clock abstraction and time formatting. Times are Unix milliseconds (int64) everywhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace agentgate {

// Thread safety: implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t NowMs() const override;
};

// A clock tests move by hand. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t now_ms) : now_ms_(now_ms) {}
  std::int64_t NowMs() const override { return now_ms_.load(std::memory_order_relaxed); }
  void Set(std::int64_t now_ms) { now_ms_.store(now_ms, std::memory_order_relaxed); }
  void Advance(std::int64_t ms) { now_ms_.fetch_add(ms, std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> now_ms_;
};

// "2026-05-10T00:00:00Z" (whole seconds, UTC).
std::string FormatIso8601(std::int64_t unix_ms);
// "2026-05-10T00:00:00.123Z" (milliseconds, UTC), for logs where order within a second matters.
std::string FormatIso8601Ms(std::int64_t unix_ms);
// Parses an RFC 3339 timestamp: "2026-05-10T00:00:00Z", with optional fractional seconds (kept to
// the millisecond) and a "Z" or "+hh:mm"/"-hh:mm" offset. Returns Unix milliseconds, or
// invalid_field naming `field`.
Result<std::int64_t> ParseIso8601(std::string_view text, std::string_view field);
// Days since the epoch, UTC; used as the key of "today" in statistics.
std::int64_t UtcDay(std::int64_t unix_ms);

// Parses the reference's expires_in form: a positive whole number followed by s, m, h or d,
// at most 3650 days. Returns seconds, or invalid_expires_in.
Result<std::int64_t> ParseExpiresIn(std::string_view text);

// Parses a duration for configuration: like ParseExpiresIn, and also accepts "ms".
// Returns milliseconds.
Result<std::int64_t> ParseDurationMs(std::string_view text);

}  // namespace agentgate
