#include "webhooks/backoff.h"

#include <algorithm>
#include <array>
#include <limits>

namespace agentgate::webhooks {

std::int64_t RetryDelayMs(int attempt, std::int64_t base_ms, std::int64_t max_ms,
                          std::optional<std::int64_t> retry_after_s, crypto::Random& random) {
  max_ms = std::max<std::int64_t>(max_ms, 0);
  base_ms = std::clamp<std::int64_t>(base_ms, 0, max_ms);
  const int doublings = std::max(attempt, 1) - 1;

  // base * 2^doublings, saturating at max_ms without overflowing.
  std::int64_t delay = base_ms;
  for (int i = 0; i < doublings && delay > 0 && delay < max_ms; ++i) {
    delay = delay > max_ms / 2 ? max_ms : delay * 2;
  }

  // Uniform in [delay/2, delay]. The modulo bias is at most span / 2^64: nil for real delays.
  const std::int64_t low = delay / 2;
  const std::uint64_t span = static_cast<std::uint64_t>(delay - low) + 1;
  std::array<std::uint8_t, 8> bytes{};
  random.Fill(bytes);
  std::uint64_t draw = 0;
  for (std::uint8_t b : bytes) draw = (draw << 8) | b;
  std::int64_t jittered = low + static_cast<std::int64_t>(draw % span);

  if (retry_after_s.has_value() && *retry_after_s > 0) {
    constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / 1000;
    const std::int64_t asked_ms = std::min(*retry_after_s, kMaxSeconds) * 1000;
    jittered = std::max(jittered, asked_ms);
  }
  return std::min(jittered, max_ms);
}

}  // namespace agentgate::webhooks
