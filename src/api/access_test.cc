// Tests for abilities, the in-memory token table and actor names.
#include "api/access.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentgate::api {
namespace {

using Names = std::vector<std::string>;

Result<ParsedAbilities> Parse(std::string_view text) { return ParseAbilities(json::parse(text)); }

// Parses text that must be valid.
ParsedAbilities ParseOk(std::string_view text) {
  Result<ParsedAbilities> parsed = Parse(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? *parsed : ParsedAbilities{};
}

// Parses text that must be refused, and returns the message.
std::string ParseError(std::string_view text) {
  Result<ParsedAbilities> parsed = Parse(text);
  if (parsed.ok()) {
    ADD_FAILURE() << text << " was accepted";
    return "";
  }
  EXPECT_EQ(parsed.error().code, Code::kInvalidField) << text;
  return parsed.error().message;
}

TEST(AccessAbilityCatalogueTest, NamesAndBitsAreDistinctAndCoverEverything) {
  std::set<std::string_view> names;
  std::uint32_t bits = 0;
  for (const AbilityInfo& a : AbilityCatalogue()) {
    EXPECT_TRUE(names.insert(a.name).second) << a.name;
    EXPECT_EQ(bits & a.bit, 0u) << a.name;
    bits |= a.bit;
    // "resource:verb", or a bare verb for a capability of its own ("act").
    EXPECT_TRUE(std::all_of(a.name.begin(), a.name.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || ch == '-' || ch == ':';
    })) << a.name;
    EXPECT_LE(std::count(a.name.begin(), a.name.end(), ':'), 1) << a.name;
    EXPECT_FALSE(a.description.empty()) << a.name;
    EXPECT_EQ(AbilityName(a.bit), a.name);
  }
  EXPECT_EQ(bits, kAllAbilities);
  EXPECT_EQ(AbilityCatalogue().size(), 12u);
  EXPECT_EQ(AbilityName(kPermissionCheck), "permission:check");
}

TEST(AccessParseAbilitiesTest, AcceptsNamesFromTheCatalogue) {
  ParsedAbilities one = ParseOk(R"(["permission:check"])");
  EXPECT_EQ(one.bits, static_cast<std::uint32_t>(kPermissionCheck));
  EXPECT_FALSE(one.wildcard);
  EXPECT_EQ(one.names, Names{"permission:check"});

  for (const AbilityInfo& a : AbilityCatalogue()) {
    ParsedAbilities single = ParseOk("[\"" + std::string(a.name) + "\"]");
    EXPECT_EQ(single.bits, static_cast<std::uint32_t>(a.bit)) << a.name;
    EXPECT_EQ(single.names, Names{std::string(a.name)});
  }
}

TEST(AccessParseAbilitiesTest, DeduplicatesAndUsesCatalogueOrder) {
  ParsedAbilities parsed =
      ParseOk(R"(["token:manage","permission:check","agent:create","permission:check"])");
  EXPECT_EQ(parsed.bits,
            static_cast<std::uint32_t>(kTokenManage | kPermissionCheck | kAgentCreate));
  EXPECT_FALSE(parsed.wildcard);
  EXPECT_EQ(parsed.names, (Names{"agent:create", "permission:check", "token:manage"}));

  // Every name, backwards and twice over, comes back once each in catalogue order.
  std::string all = "[";
  Names catalogue_order;
  for (const AbilityInfo& a : AbilityCatalogue()) catalogue_order.emplace_back(a.name);
  for (int round = 0; round < 2; ++round) {
    for (auto it = catalogue_order.rbegin(); it != catalogue_order.rend(); ++it) {
      all += (all.size() > 1 ? ",\"" : "\"") + *it + "\"";
    }
  }
  all += "]";
  ParsedAbilities everything = ParseOk(all);
  EXPECT_EQ(everything.names, catalogue_order);
  EXPECT_EQ(everything.bits, kAllAbilities);
  EXPECT_FALSE(everything.wildcard);  // all of today's abilities is not "*"
}

TEST(AccessParseAbilitiesTest, WildcardStandsAlone) {
  ParsedAbilities star = ParseOk(R"(["*"])");
  EXPECT_TRUE(star.wildcard);
  EXPECT_EQ(star.bits, kAllAbilities);
  EXPECT_EQ(star.names, Names{"*"});
  // With other names beside it, "*" still wins and is the only name kept.
  for (std::string_view text : {R"(["agent:create","*"])", R"(["*","*","token:manage"])"}) {
    ParsedAbilities mixed = ParseOk(text);
    EXPECT_TRUE(mixed.wildcard) << text;
    EXPECT_EQ(mixed.bits, kAllAbilities) << text;
    EXPECT_EQ(mixed.names, Names{"*"}) << text;
  }
}

TEST(AccessParseAbilitiesTest, UnknownNameListsTheValidOnes) {
  std::string message = ParseError(R"(["permission:check","agent:fly"])");
  EXPECT_NE(message.find("\"agent:fly\""), std::string::npos) << message;
  EXPECT_NE(message.find('*'), std::string::npos) << message;
  for (const AbilityInfo& a : AbilityCatalogue()) {
    EXPECT_NE(message.find(a.name), std::string::npos) << a.name << " missing from " << message;
  }
  // Near misses are not accepted either.
  for (std::string_view text : {R"([""])", R"(["Permission:Check"])", R"([" agent:create"])",
                                R"(["agent:*"])", R"(["**"])"}) {
    ParseError(text);
  }
  // A long name is cut short in the message.
  std::string long_name(300, 'x');
  std::string long_message = ParseError("[\"" + long_name + "\"]");
  EXPECT_EQ(long_message.find(long_name), std::string::npos);
  EXPECT_NE(long_message.find(std::string(64, 'x')), std::string::npos) << long_message;
}

TEST(AccessParseAbilitiesTest, RefusesWhatIsNotANonEmptyArrayOfStrings) {
  for (std::string_view text : {"[]", R"("permission:check")", "{}",
                                R"({"abilities":["permission:check"]})", "null", "true", "7"}) {
    std::string message = ParseError(text);
    EXPECT_NE(message.find("non-empty array"), std::string::npos) << text << ": " << message;
    EXPECT_NE(message.find("permission:check"), std::string::npos) << text << ": " << message;
  }
  for (std::string_view text : {"[1]", R"(["permission:check",null])", R"([["agent:create"]])",
                                R"([{"name":"agent:create"}])", R"(["*",false])"}) {
    std::string message = ParseError(text);
    EXPECT_NE(message.find("must be a string"), std::string::npos) << text << ": " << message;
  }
}

TEST(AccessAbilitiesFromNamesTest, ReadsStoredNamesAndIgnoresUnknownOnes) {
  ParsedAbilities some = AbilitiesFromNames(
      {"permission:grant", "future:thing", "agent:view-any", "permission:grant"});
  EXPECT_EQ(some.bits, static_cast<std::uint32_t>(kPermissionGrant | kAgentViewAny));
  EXPECT_FALSE(some.wildcard);
  EXPECT_EQ(some.names, (Names{"agent:view-any", "permission:grant"}));

  ParsedAbilities star = AbilitiesFromNames({"agent:create", "*"});
  EXPECT_TRUE(star.wildcard);
  EXPECT_EQ(star.bits, kAllAbilities);
  EXPECT_EQ(star.names, Names{"*"});

  for (const Names& nothing : {Names{}, Names{"future:thing"}, Names{""}}) {
    ParsedAbilities none = AbilitiesFromNames(nothing);
    EXPECT_EQ(none.bits, 0u);
    EXPECT_FALSE(none.wildcard);
    EXPECT_TRUE(none.names.empty());
  }

  // What ParseAbilities produced reads back the same.
  ParsedAbilities parsed = ParseOk(R"(["webhook:manage","activity:view-any"])");
  ParsedAbilities reread = AbilitiesFromNames(parsed.names);
  EXPECT_EQ(reread.bits, parsed.bits);
  EXPECT_EQ(reread.names, parsed.names);
  EXPECT_EQ(reread.wildcard, parsed.wildcard);
}

TokenInfo Token(const std::string& id, std::int64_t expires_at_ms = 0) {
  TokenInfo t;
  t.id = id;
  t.name = "token " + id;
  t.user_id = "usr_" + id;
  t.user_email = id + "@example.com";
  t.abilities = AbilitiesFromNames({"permission:check"});
  t.expires_at_ms = expires_at_ms;
  return t;
}

crypto::Digest Hash(const std::string& id) { return crypto::Sha256("agt_plaintext_of_" + id); }

constexpr std::int64_t kNow = 1'760'000'000'000;

TEST(AccessTokenTableTest, FindsByDigest) {
  TokenTable table;
  table.Put(Token("tok_a"), Hash("tok_a"));
  table.Put(Token("tok_b"), Hash("tok_b"));
  std::shared_ptr<const TokenInfo> a = table.Find(Hash("tok_a"), kNow);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id, "tok_a");
  EXPECT_EQ(a->user_id, "usr_tok_a");
  EXPECT_EQ(a->user_email, "tok_a@example.com");
  EXPECT_EQ(a->abilities.bits, static_cast<std::uint32_t>(kPermissionCheck));
  std::shared_ptr<const TokenInfo> b = table.Find(Hash("tok_b"), kNow);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->id, "tok_b");
  EXPECT_EQ(table.Find(Hash("tok_c"), kNow), nullptr);
  // Never expires.
  EXPECT_NE(table.Find(Hash("tok_a"), std::numeric_limits<std::int64_t>::max()), nullptr);

  // Putting the same digest again replaces the entry.
  TokenInfo renamed = Token("tok_a");
  renamed.name = "renamed";
  table.Put(renamed, Hash("tok_a"));
  std::shared_ptr<const TokenInfo> again = table.Find(Hash("tok_a"), kNow);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->name, "renamed");
  EXPECT_EQ(a->name, "token tok_a");  // a holder keeps the entry it was given
}

TEST(AccessTokenTableTest, ExpiresAtTheExactMillisecond) {
  TokenTable table;
  table.Put(Token("tok_a", kNow + 1000), Hash("tok_a"));
  EXPECT_NE(table.Find(Hash("tok_a"), kNow), nullptr);
  EXPECT_NE(table.Find(Hash("tok_a"), kNow + 999), nullptr);
  EXPECT_EQ(table.Find(Hash("tok_a"), kNow + 1000), nullptr);
  EXPECT_EQ(table.Find(Hash("tok_a"), kNow + 1001), nullptr);
  // Find only refuses it: the entry is still there for an earlier instant.
  EXPECT_NE(table.Find(Hash("tok_a"), kNow + 999), nullptr);
}

TEST(AccessTokenTableTest, RemoveDropsOnlyThatToken) {
  TokenTable table;
  table.Put(Token("tok_a"), Hash("tok_a"));
  table.Put(Token("tok_b"), Hash("tok_b"));
  std::shared_ptr<const TokenInfo> held = table.Find(Hash("tok_a"), kNow);
  table.Remove("tok_a");
  EXPECT_EQ(table.Find(Hash("tok_a"), kNow), nullptr);
  EXPECT_NE(table.Find(Hash("tok_b"), kNow), nullptr);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->id, "tok_a");  // a request already holding it finishes with it
  table.Remove("tok_a");         // removing twice is fine
  table.Remove("tok_unknown");
  EXPECT_NE(table.Find(Hash("tok_b"), kNow), nullptr);
}

TEST(AccessTokenTableTest, SweepDropsExpiredTokensOnly) {
  TokenTable table;
  table.Put(Token("tok_expired", kNow - 1), Hash("tok_expired"));
  table.Put(Token("tok_at_now", kNow), Hash("tok_at_now"));
  table.Put(Token("tok_later", kNow + 1), Hash("tok_later"));
  table.Put(Token("tok_forever"), Hash("tok_forever"));
  table.Sweep(kNow);
  // Asked about an earlier instant, only entries still held can answer.
  const std::int64_t before = kNow - 10;
  EXPECT_EQ(table.Find(Hash("tok_expired"), before), nullptr);
  EXPECT_EQ(table.Find(Hash("tok_at_now"), before), nullptr);
  EXPECT_NE(table.Find(Hash("tok_later"), before), nullptr);
  EXPECT_NE(table.Find(Hash("tok_forever"), before), nullptr);
}

using Uses = std::vector<std::pair<std::string, std::int64_t>>;

Uses Drain(TokenTable& table) {
  Uses uses = table.DrainLastUsed();
  std::sort(uses.begin(), uses.end());
  return uses;
}

TEST(AccessTokenTableTest, TouchWritesAtMostOncePerSecondPerToken) {
  TokenTable table;
  EXPECT_TRUE(Drain(table).empty());
  table.Touch("tok_a", kNow);
  table.Touch("tok_a", kNow + 500);  // within the second: not written again
  table.Touch("tok_b", kNow + 10);
  EXPECT_EQ(Drain(table), (Uses{{"tok_a", kNow}, {"tok_b", kNow + 10}}));
  EXPECT_TRUE(Drain(table).empty());  // drained

  table.Touch("tok_a", kNow + 999);
  EXPECT_TRUE(Drain(table).empty());
  table.Touch("tok_a", kNow + 1000);
  table.Touch("tok_a", kNow + 1999);
  EXPECT_EQ(Drain(table), (Uses{{"tok_a", kNow + 1000}}));
  table.Touch("tok_a", kNow + 2000);
  table.Touch("tok_b", kNow + 2000);
  table.Touch("tok_a", kNow + 3500);  // two writes before one drain: the later one is kept
  EXPECT_EQ(Drain(table), (Uses{{"tok_a", kNow + 3500}, {"tok_b", kNow + 2000}}));
}

TEST(AccessActorKindNameTest, NamesEveryKind) {
  EXPECT_EQ(ActorKindName(ActorKind::kAnonymous), "anonymous");
  EXPECT_EQ(ActorKindName(ActorKind::kSession), "session");
  EXPECT_EQ(ActorKindName(ActorKind::kApiToken), "api_token");
  EXPECT_EQ(ActorKindName(ActorKind::kAgent), "agent");
}

TEST(AccessPrincipalTest, PeopleAreSessionsAndTokens) {
  Principal p;
  EXPECT_FALSE(p.is_person());
  EXPECT_FALSE(p.Has(kPermissionCheck));
  p.kind = ActorKind::kSession;
  EXPECT_TRUE(p.is_person());
  p.kind = ActorKind::kApiToken;
  EXPECT_TRUE(p.is_person());
  p.kind = ActorKind::kAgent;
  EXPECT_FALSE(p.is_person());
  p.abilities = kPermissionCheck | kAgentCreate;
  EXPECT_TRUE(p.Has(kPermissionCheck));
  EXPECT_TRUE(p.Has(kAgentCreate));
  EXPECT_FALSE(p.Has(kTokenManage));
}

}  // namespace
}  // namespace agentgate::api
