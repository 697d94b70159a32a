#include "engine/oauth.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "engine/single_flight.h"

namespace agentgate::engine {
namespace {

TEST(OAuthTest, PkceChallengeIsTheRfc7636AppendixBVector) {
  EXPECT_EQ(PkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

class CountingRandom : public crypto::Random {
 public:
  void Fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(next_++);
  }

 private:
  int next_ = 0;
};

TEST(OAuthTest, VerifiersAre43Base64UrlCharacters) {
  CountingRandom random;
  std::string a = NewPkceVerifier(random);
  std::string b = NewPkceVerifier(random);
  EXPECT_EQ(a.size(), 43u);
  EXPECT_NE(a, b);
  for (char c : a) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
}

TEST(OAuthTest, FormEncodingEscapesEverythingButUnreserved) {
  EXPECT_EQ(FormEncode({{"a b", "x&y=z"}, {"scope", "repo read:user"}, {"k", "~._-"}}),
            "a%20b=x%26y%3Dz&scope=repo%20read%3Auser&k=~._-");
  EXPECT_EQ(FormEncode({}), "");
}

TEST(OAuthTest, WithQueryAppendsToAnExistingQueryAndKeepsTheFragment) {
  EXPECT_EQ(WithQuery("https://x.test/auth", {{"a", "1"}}), "https://x.test/auth?a=1");
  EXPECT_EQ(WithQuery("https://x.test/auth?audience=api", {{"state", "s t"}}),
            "https://x.test/auth?audience=api&state=s%20t");
  EXPECT_EQ(WithQuery("https://x.test/a#frag", {{"a", "1"}}), "https://x.test/a?a=1#frag");
  EXPECT_EQ(WithQuery("https://x.test/a", {}), "https://x.test/a");
}

TEST(OAuthTest, ParsesJsonTokenResponses) {
  auto t = ParseTokenResponse(
      R"({"access_token":"at","refresh_token":"rt","token_type":"Bearer","expires_in":3600,)"
      R"("scope":"read","instance_url":"https://na1.example"})");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->access_token, "at");
  EXPECT_EQ(t->refresh_token, "rt");
  EXPECT_EQ(t->token_type, "Bearer");
  EXPECT_EQ(t->scope, "read");
  EXPECT_EQ(t->expires_in_s, 3600);
  EXPECT_EQ(t->extra.at("instance_url").as_string(), "https://na1.example");
  // expires_in as a string (some providers), or absent, or nonsense.
  EXPECT_EQ(ParseTokenResponse(R"({"access_token":"a","expires_in":"120"})")->expires_in_s, 120);
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":"a"})")->expires_in_s.has_value());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":"a","expires_in":-5})")->expires_in_s);
}

TEST(OAuthTest, ParsesFormEncodedTokenResponses) {
  auto t = ParseTokenResponse("access_token=gho_abc%2B1&scope=repo%2Cuser&token_type=bearer");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->access_token, "gho_abc+1");
  EXPECT_EQ(t->scope, "repo,user");
  EXPECT_EQ(ParseTokenResponse("access_token=a&scope=read+write")->scope, "read write");
}

TEST(OAuthTest, RefusesResponsesWithoutAnAccessToken) {
  EXPECT_FALSE(ParseTokenResponse(R"({"error":"invalid_grant"})").has_value());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":""})").has_value());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":42})").has_value());
  EXPECT_FALSE(ParseTokenResponse("").has_value());
  EXPECT_FALSE(ParseTokenResponse("<html>").has_value());
  EXPECT_FALSE(ParseTokenResponse("access_token=%zz").has_value()) << "a broken escape";
}

TEST(OAuthTest, AnUnreachableTokenEndpointIsATransientFailure) {
  TokenEndpoint endpoint(/*allow_private_egress=*/true, 2000);
  // Port 9 (discard) on loopback: nothing listens.
  TokenResult r = endpoint.Refresh("http://127.0.0.1:9/token", {"id", "secret", "body"}, "rt");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.failure.error, "network_error");
  EXPECT_FALSE(r.failure.permanent);
  TokenEndpoint guarded(/*allow_private_egress=*/false, 2000);
  TokenResult refused = guarded.Refresh("http://127.0.0.1:9/token", {"id", "", "body"}, "rt");
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.failure.description.find("private"), std::string::npos)
      << refused.failure.description;
}

TEST(SingleFlightTest, ConcurrentCallersShareOneRun) {
  SingleFlight<int> flight;
  std::atomic<int> runs{0};
  std::atomic<int> shared{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&] {
      bool joined = false;
      int v = flight.Do(
          "conn_1",
          [&] {
            runs.fetch_add(1);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            return 7;
          },
          &joined);
      EXPECT_EQ(v, 7);
      if (joined) shared.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(shared.load(), 19);
  EXPECT_EQ(flight.InFlight(), 0u);
  // A later call runs again; other keys never wait for each other.
  EXPECT_EQ(flight.Do("conn_1", [] { return 8; }), 8);
  EXPECT_EQ(flight.Do("conn_2", [] { return 9; }), 9);
}

TEST(SingleFlightTest, ALeadersExceptionReachesItsFollowers) {
  SingleFlight<int> flight;
  std::atomic<int> threw{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&] {
      try {
        flight.Do("k", [&]() -> int {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          throw std::runtime_error("boom");
        });
      } catch (const std::runtime_error&) {
        threw.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(threw.load(), 5);
  EXPECT_EQ(flight.InFlight(), 0u);
}

}  // namespace
}  // namespace agentgate::engine
