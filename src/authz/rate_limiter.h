// Fixed-window rate limiting by key (client IP, agent id, email).
//
// Thread safety: Hit() is safe from any thread; keys are spread over mutex-guarded shards.
// Memory: windows that have ended are dropped as shards are visited, so idle keys do not pile up.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace agentgate::authz {

struct RateLimitPolicy {
  std::string name;            // e.g. "check"; used in the RateLimit headers
  std::int64_t limit = 0;      // requests per window
  std::int64_t window_ms = 0;
  bool enabled = true;
};

struct RateLimitResult {
  bool allowed = true;
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  std::int64_t reset_seconds = 0;  // until the window ends, at least 1 when blocked
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimitPolicy policy);

  const RateLimitPolicy& policy() const { return policy_; }
  // The IETF RateLimit-Policy header value, e.g. "check";q=1000;w=60 (computed once).
  const std::string& policy_header() const { return policy_header_; }
  // The IETF RateLimit header value for a result, e.g. "check";r=997;t=42.
  std::string RateLimitHeader(const RateLimitResult& r) const;

  // Counts one request for key at now_ms and says whether it is within the limit.
  RateLimitResult Hit(std::string_view key, std::int64_t now_ms);

 private:
  struct Window {
    std::int64_t start_ms = 0;
    std::int64_t count = 0;
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct alignas(64) Shard {
    std::mutex mu;
    std::unordered_map<std::string, Window, StringHash, std::equal_to<>> windows;
    std::uint32_t hits_since_sweep = 0;
  };
  static constexpr std::size_t kShards = 32;
  static constexpr std::uint32_t kSweepEvery = 4096;

  RateLimitPolicy policy_;
  std::string policy_header_;
  std::array<Shard, kShards> shards_;
};

// Parses "N/WINDOW" where WINDOW is s, m, min, h, d or a duration like 15m or 30s.
// Returns false on anything else.
bool ParseRateSpec(std::string_view spec, std::int64_t& limit, std::int64_t& window_ms);

}  // namespace agentgate::authz
