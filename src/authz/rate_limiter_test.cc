// Tests for the fixed-window rate limiter and the "N/WINDOW" spec parser.
#include "authz/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace agentgate::authz {
namespace {

constexpr std::int64_t kT0 = 1'778'371'200'000;  // a whole minute

RateLimitPolicy Policy(std::int64_t limit, std::int64_t window_ms, bool enabled = true) {
  return RateLimitPolicy{"check", limit, window_ms, enabled};
}

TEST(RateLimiterTest, AllowsExactlyNThenBlocks) {
  RateLimiter limiter(Policy(5, 60'000));
  for (int i = 1; i <= 5; ++i) {
    RateLimitResult r = limiter.Hit("ap_a", kT0 + i);
    EXPECT_TRUE(r.allowed) << "hit " << i;
    EXPECT_EQ(r.limit, 5);
    EXPECT_EQ(r.remaining, 5 - i) << "hit " << i;
  }
  RateLimitResult blocked = limiter.Hit("ap_a", kT0 + 10);
  EXPECT_FALSE(blocked.allowed);
  EXPECT_EQ(blocked.limit, 5);
  EXPECT_EQ(blocked.remaining, 0);
  // Blocked hits do not extend or consume anything: still blocked, still 0.
  RateLimitResult again = limiter.Hit("ap_a", kT0 + 20);
  EXPECT_FALSE(again.allowed);
  EXPECT_EQ(again.remaining, 0);
}

TEST(RateLimiterTest, LimitOfOne) {
  RateLimiter limiter(Policy(1, 1'000));
  RateLimitResult first = limiter.Hit("k", kT0);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 0);
  EXPECT_FALSE(limiter.Hit("k", kT0).allowed);
  EXPECT_TRUE(limiter.Hit("k", kT0 + 1'000).allowed);
}

TEST(RateLimiterTest, ResetSecondsCountsDownToTheWindowEnd) {
  RateLimiter limiter(Policy(100, 60'000));
  EXPECT_EQ(limiter.Hit("k", kT0).reset_seconds, 60);
  EXPECT_EQ(limiter.Hit("k", kT0 + 1).reset_seconds, 60);      // 59.999 s rounds up
  EXPECT_EQ(limiter.Hit("k", kT0 + 1'000).reset_seconds, 59);
  EXPECT_EQ(limiter.Hit("k", kT0 + 18'000).reset_seconds, 42);
  EXPECT_EQ(limiter.Hit("k", kT0 + 58'999).reset_seconds, 2);
  EXPECT_EQ(limiter.Hit("k", kT0 + 59'000).reset_seconds, 1);
  EXPECT_EQ(limiter.Hit("k", kT0 + 59'999).reset_seconds, 1);  // never 0
}

TEST(RateLimiterTest, BlockedAnswerSaysWhenToRetry) {
  RateLimiter limiter(Policy(2, 900'000));  // 2 per 15 minutes
  ASSERT_TRUE(limiter.Hit("a@example.com", kT0).allowed);
  ASSERT_TRUE(limiter.Hit("a@example.com", kT0 + 60'000).allowed);
  RateLimitResult r = limiter.Hit("a@example.com", kT0 + 120'000);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.reset_seconds, 780);
}

TEST(RateLimiterTest, WindowRollsOverAtItsEnd) {
  RateLimiter limiter(Policy(3, 60'000));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.Hit("k", kT0 + i * 1'000).allowed);
  EXPECT_FALSE(limiter.Hit("k", kT0 + 59'999).allowed);

  RateLimitResult fresh = limiter.Hit("k", kT0 + 60'000);
  EXPECT_TRUE(fresh.allowed);
  EXPECT_EQ(fresh.remaining, 2);
  EXPECT_EQ(fresh.reset_seconds, 60);  // the new window starts at this hit
  EXPECT_TRUE(limiter.Hit("k", kT0 + 60'001).allowed);
  EXPECT_TRUE(limiter.Hit("k", kT0 + 60'002).allowed);
  EXPECT_FALSE(limiter.Hit("k", kT0 + 119'999).allowed);

  // Long idle: a fresh window again.
  RateLimitResult later = limiter.Hit("k", kT0 + 10 * 60'000);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.remaining, 2);
}

TEST(RateLimiterTest, KeysAreIndependent) {
  RateLimiter limiter(Policy(2, 60'000));
  EXPECT_TRUE(limiter.Hit("ap_a", kT0).allowed);
  EXPECT_TRUE(limiter.Hit("ap_a", kT0).allowed);
  EXPECT_FALSE(limiter.Hit("ap_a", kT0).allowed);
  RateLimitResult b = limiter.Hit("ap_b", kT0);
  EXPECT_TRUE(b.allowed);
  EXPECT_EQ(b.remaining, 1);
  EXPECT_TRUE(limiter.Hit("", kT0).allowed);
  EXPECT_FALSE(limiter.Hit("ap_a", kT0 + 1).allowed);
  EXPECT_EQ(limiter.Hit("ap_b", kT0 + 1).remaining, 0);
}

TEST(RateLimiterTest, ManyKeysSurviveTheSweep) {
  // Enough distinct keys to trigger the periodic sweep in every shard; windows still running
  // must be kept.
  RateLimiter limiter(Policy(1, 3'600'000));
  constexpr int kKeys = 200'000;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(limiter.Hit("ip" + std::to_string(i), kT0 + i).allowed) << i;
  }
  for (int i = 0; i < kKeys; i += 997) {
    EXPECT_FALSE(limiter.Hit("ip" + std::to_string(i), kT0 + kKeys).allowed) << i;
  }
}

TEST(RateLimiterTest, DisabledPolicyAlwaysAllows) {
  RateLimiter limiter(Policy(2, 60'000, /*enabled=*/false));
  EXPECT_FALSE(limiter.policy().enabled);
  for (int i = 0; i < 1'000; ++i) {
    RateLimitResult r = limiter.Hit("k", kT0);
    ASSERT_TRUE(r.allowed) << i;
    EXPECT_EQ(r.limit, 2);
    EXPECT_EQ(r.remaining, 2);
  }
}

TEST(RateLimiterTest, PolicyIsKept) {
  RateLimiter limiter(RateLimitPolicy{"magic-link", 5, 900'000, true});
  EXPECT_EQ(limiter.policy().name, "magic-link");
  EXPECT_EQ(limiter.policy().limit, 5);
  EXPECT_EQ(limiter.policy().window_ms, 900'000);
}

TEST(RateLimiterTest, ConcurrentHitsCountExactly) {
  RateLimiter limiter(Policy(1'000, 60'000));
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (limiter.Hit("ap_hot", kT0 + 5).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1'000);
}

// Regression: a hit timed a moment before the window's start (handlers read the clock before
// Hit() takes the shard lock, so concurrent requests arrive slightly out of order) once reset
// the window and handed out a fresh budget.
TEST(RateLimiterTest, SlightlyOutOfOrderHitsDoNotResetTheWindow) {
  RateLimiter limiter(Policy(3, 60'000));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.Hit("ap_a", kT0 + 10).allowed);
  RateLimitResult r = limiter.Hit("ap_a", kT0 + 9);  // read the clock 1 ms earlier
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.remaining, 0);
  // And the window still ends where it did.
  EXPECT_FALSE(limiter.Hit("ap_a", kT0 + 60'009).allowed);
  EXPECT_TRUE(limiter.Hit("ap_a", kT0 + 60'010).allowed);
}

// --- ParseRateSpec ---------------------------------------------------------------------------

TEST(ParseRateSpecTest, AcceptsTheDocumentedForms) {
  struct Case {
    const char* spec;
    std::int64_t limit;
    std::int64_t window_ms;
  };
  const Case kCases[] = {
      {"10/h", 10, 3'600'000},
      {"1000/min", 1'000, 60'000},
      {"5/15m", 5, 900'000},
      {"3/30s", 3, 30'000},
      {"1/s", 1, 1'000},
      {"7/sec", 7, 1'000},
      {"7/second", 7, 1'000},
      {"60/m", 60, 60'000},
      {"60/minute", 60, 60'000},
      {"10/hour", 10, 3'600'000},
      {"100/d", 100, 86'400'000},
      {"100/day", 100, 86'400'000},
      {"100/2h", 100, 7'200'000},
      {"100/7d", 100, 7 * 86'400'000LL},
      {"2/1000ms", 2, 1'000},
      {"2/1500ms", 2, 1'500},
      {"9223372036854775807/h", 9'223'372'036'854'775'807, 3'600'000},
  };
  for (const Case& c : kCases) {
    std::int64_t limit = -1, window = -1;
    ASSERT_TRUE(ParseRateSpec(c.spec, limit, window)) << c.spec;
    EXPECT_EQ(limit, c.limit) << c.spec;
    EXPECT_EQ(window, c.window_ms) << c.spec;
  }
}

TEST(ParseRateSpecTest, RejectsBadSpecsAndLeavesOutputsAlone) {
  for (const char* spec :
       {"0/h", "-1/h", "x/h", "10", "10/", "/h", "", "/", "10/1ms", "10/999ms", "10/0s",
        "10/x", "10/H", "10/hours", "10/ h", "10 /h", " 10/h", "10/h ", "+10/h", "1.5/h",
        "10//h", "10/h/h", "99999999999999999999/h", "0x10/h", "10/-1h", "10/3651d"}) {
    std::int64_t limit = -1, window = -1;
    EXPECT_FALSE(ParseRateSpec(spec, limit, window)) << spec;
    EXPECT_EQ(limit, -1) << spec;
    EXPECT_EQ(window, -1) << spec;
  }
}

}  // namespace
}  // namespace agentgate::authz
