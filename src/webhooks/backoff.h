// When to retry a failed webhook delivery.
//
// Exponential backoff with jitter, as the Standard Webhooks spec recommends: the n-th failed
// attempt waits base * 2^(n-1), capped at a maximum, and then a random part of that, uniformly in
// [delay/2, delay], so that many deliveries that failed together (a receiver's outage) do not all
// come back at the same moment.
//
// A Retry-After from the receiver (429, 503) is a lower bound: the delay is at least that long.
// It is still capped at max_ms, deliberately: a receiver that asks for a day (or, by mistake, a
// year) must not park a delivery beyond the schedule the operator configured; the retry then
// happens at max_ms and counts as an attempt like any other.
//
// Thread safety: a pure function apart from the Random it is given.
#pragma once

#include <cstdint>
#include <optional>

#include "crypto/random.h"

namespace agentgate::webhooks {

// Attempts per message, the first one included; after the kMaxAttempts-th failure the message is
// given up (and the failure recorded for the owner to see and replay). With the defaults below
// the seven waits are 1, 2, 4, 8, 16, 32 and 64 minutes before jitter, 127 minutes in all (64 to
// 127 with jitter): a receiver can be away for about an hour without losing a message. Raise the
// base delay for a longer schedule; the spec's example spans three days.
inline constexpr int kMaxAttempts = 8;
inline constexpr std::int64_t kDefaultBaseDelayMs = 60'000;
inline constexpr std::int64_t kDefaultMaxDelayMs = std::int64_t{6} * 60 * 60'000;

// Milliseconds to wait after failed attempt number `attempt` (1 for the first attempt) before the
// next one, as described above. Out-of-range inputs are clamped rather than trusted: attempt < 1
// counts as 1, negative delays as 0, a negative retry_after_s is ignored, and nothing overflows.
// The result is in [0, max(0, max_ms)].
std::int64_t RetryDelayMs(int attempt, std::int64_t base_ms, std::int64_t max_ms,
                          std::optional<std::int64_t> retry_after_s, crypto::Random& random);

}  // namespace agentgate::webhooks
