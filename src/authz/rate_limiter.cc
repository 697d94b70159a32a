#include "authz/rate_limiter.h"

#include <charconv>

#include "core/time.h"

namespace agentgate::authz {

RateLimiter::RateLimiter(RateLimitPolicy policy) : policy_(std::move(policy)) {
  policy_header_ = "\"" + policy_.name + "\";q=" + std::to_string(policy_.limit) +
                   ";w=" + std::to_string(policy_.window_ms / 1000);
}

std::string RateLimiter::RateLimitHeader(const RateLimitResult& r) const {
  std::string out;
  out.reserve(policy_.name.size() + 32);
  out += '"';
  out += policy_.name;
  out += "\";r=";
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, r.remaining);
  out.append(buf, end);
  out += ";t=";
  auto [end2, ec2] = std::to_chars(buf, buf + sizeof buf, r.reset_seconds);
  out.append(buf, end2);
  return out;
}

RateLimitResult RateLimiter::Hit(std::string_view key, std::int64_t now_ms) {
  RateLimitResult r;
  r.limit = policy_.limit;
  if (!policy_.enabled) {
    r.remaining = policy_.limit;
    return r;
  }
  Shard& shard = shards_[StringHash{}(key) % kShards];
  std::lock_guard lock(shard.mu);
  if (++shard.hits_since_sweep >= kSweepEvery) {
    shard.hits_since_sweep = 0;
    std::erase_if(shard.windows, [&](const auto& kv) {
      return now_ms - kv.second.start_ms >= policy_.window_ms;
    });
  }
  auto it = shard.windows.find(key);
  if (it == shard.windows.end()) it = shard.windows.emplace(std::string(key), Window{}).first;
  Window& w = it->second;
  // A clock that jumped back by a whole window or more starts a fresh window too.
  if (w.count == 0 || now_ms - w.start_ms >= policy_.window_ms ||
      w.start_ms - now_ms >= policy_.window_ms) {
    w.start_ms = now_ms;
    w.count = 0;
  }
  // A clock read a moment earlier on another thread stays in the current window.
  std::int64_t reset_ms = w.start_ms + policy_.window_ms - now_ms;
  if (reset_ms > policy_.window_ms) reset_ms = policy_.window_ms;
  r.reset_seconds = (reset_ms + 999) / 1000;
  if (r.reset_seconds < 1) r.reset_seconds = 1;
  if (w.count >= policy_.limit) {
    r.allowed = false;
    r.remaining = 0;
    return r;
  }
  ++w.count;
  r.remaining = policy_.limit - w.count;
  return r;
}

bool ParseRateSpec(std::string_view spec, std::int64_t& limit, std::int64_t& window_ms) {
  auto slash = spec.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  std::string_view n = spec.substr(0, slash);
  std::string_view w = spec.substr(slash + 1);
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), value);
  if (ec != std::errc() || ptr != n.data() + n.size() || value <= 0) return false;
  std::int64_t ms = 0;
  if (w == "s" || w == "sec" || w == "second") {
    ms = 1000;
  } else if (w == "m" || w == "min" || w == "minute") {
    ms = 60'000;
  } else if (w == "h" || w == "hour") {
    ms = 3'600'000;
  } else if (w == "d" || w == "day") {
    ms = 86'400'000;
  } else {
    auto parsed = ParseDurationMs(w);
    if (!parsed.ok() || *parsed < 1000) return false;
    ms = *parsed;
  }
  limit = value;
  window_ms = ms;
  return true;
}

}  // namespace agentgate::authz
