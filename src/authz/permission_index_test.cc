// Tests for PermissionIndex: decisions, expiry, authentication, scope enforcement, snapshots,
// sweeping, last_seen bookkeeping and concurrent use.
#include "authz/permission_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace agentgate::authz {
namespace {

constexpr std::int64_t kNow = 1'778'371'200'000;  // 2026-05-10T00:00:00Z
constexpr std::string_view kDenied = "Permission denied or expired";

crypto::Digest SecretOf(std::string_view agent_id) {
  return crypto::Sha256("sk_ap_secret_of_" + std::string(agent_id));
}

AgentInfo MakeAgent(std::string id, std::int64_t last_seen_ms = 0) {
  AgentInfo a;
  a.id = std::move(id);
  a.name = "agent " + a.id;
  a.developer_email = "dev@example.com";
  a.secret_hash = SecretOf(a.id);
  a.created_at_ms = kNow - 86'400'000;
  a.last_seen_ms = last_seen_ms;
  return a;
}

GrantInfo MakeGrant(std::string id, std::string agent_id, std::string action,
                    std::int64_t expires_at_ms = kNever, std::string scope_json = "",
                    std::int64_t created_at_ms = kNow - 1'000) {
  GrantInfo g;
  g.id = std::move(id);
  g.agent_id = std::move(agent_id);
  g.action = std::move(action);
  g.granted_by = "usr_1";
  g.granted_by_email = "owner@example.com";
  g.expires_at_ms = expires_at_ms;
  g.scope_json = std::move(scope_json);
  g.created_at_ms = created_at_ms;
  return g;
}

json::object Context(std::string_view text) { return json::parse(text).as_object(); }

std::vector<std::string> Ids(const std::vector<GrantView>& grants) {
  std::vector<std::string> ids;
  for (const auto& g : grants) ids.push_back(g.id);
  return ids;
}

class PermissionIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    index_.PutAgent(MakeAgent("ap_a"));
    index_.PutAgent(MakeAgent("ap_b"));
  }

  Decision CheckA(std::string_view action, std::int64_t now_ms,
                  const json::object* context = nullptr) const {
    return index_.Check("ap_a", SecretOf("ap_a"), action, now_ms, context);
  }

  PermissionIndex index_;
};

TEST_F(PermissionIndexTest, AllowsAnActiveGrantAndReportsIt) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "read:email", kNow + 60'000)));
  Decision d = CheckA("read:email", kNow);
  EXPECT_EQ(d.auth, AuthResult::kOk);
  ASSERT_TRUE(d.allowed);
  ASSERT_TRUE(d.grant.has_value());
  EXPECT_EQ(d.grant->id, "perm_1");
  EXPECT_EQ(d.grant->action, "read:email");
  ASSERT_NE(d.grant->granter, nullptr);
  EXPECT_EQ(d.grant->granter->user_id, "usr_1");
  EXPECT_EQ(d.grant->granter->email, "owner@example.com");
  EXPECT_EQ(d.grant->expires_at_ms, kNow + 60'000);
  EXPECT_EQ(d.grant->created_at_ms, kNow - 1'000);
  EXPECT_EQ(d.grant->scope, nullptr);
  EXPECT_EQ(d.reason, "");
  EXPECT_EQ(d.constraint, "");
}

TEST_F(PermissionIndexTest, DeniesWithoutAGrant) {
  Decision d = CheckA("read:email", kNow);
  EXPECT_EQ(d.auth, AuthResult::kOk);
  EXPECT_FALSE(d.allowed);
  EXPECT_FALSE(d.grant.has_value());
  EXPECT_EQ(d.reason, kDenied);
  EXPECT_EQ(d.constraint, "");
}

TEST_F(PermissionIndexTest, ActionsMatchExactly) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "read")));
  EXPECT_TRUE(CheckA("read", kNow).allowed);
  for (const char* other : {"rea", "read:all", "READ", "read ", "", "write"}) {
    Decision d = CheckA(other, kNow);
    EXPECT_FALSE(d.allowed) << other;
    EXPECT_EQ(d.reason, kDenied) << other;
  }
}

TEST_F(PermissionIndexTest, GrantsBelongToOneAgent) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "read")));
  Decision d = index_.Check("ap_b", SecretOf("ap_b"), "read", kNow, nullptr);
  EXPECT_EQ(d.auth, AuthResult::kOk);
  EXPECT_FALSE(d.allowed);
}

TEST_F(PermissionIndexTest, ExpiryIsExactToTheMillisecond) {
  const std::int64_t expires = kNow + 3'600'000;
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy", expires)));
  Decision before = CheckA("deploy", expires - 1);
  EXPECT_TRUE(before.allowed);
  Decision at = CheckA("deploy", expires);
  EXPECT_FALSE(at.allowed);
  EXPECT_EQ(at.reason, kDenied);
  EXPECT_FALSE(CheckA("deploy", expires + 1).allowed);
  EXPECT_EQ(index_.ActiveGrants("ap_a", "deploy", expires - 1).size(), 1u);
  EXPECT_TRUE(index_.ActiveGrants("ap_a", "deploy", expires).empty());
}

TEST_F(PermissionIndexTest, LongestLastingGrantAnswers) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_short", "ap_a", "deploy", kNow + 1'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_long", "ap_a", "deploy", kNow + 50'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_mid", "ap_a", "deploy", kNow + 20'000)));
  Decision d = CheckA("deploy", kNow);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_long");
  EXPECT_EQ(d.grant->expires_at_ms, kNow + 50'000);

  // After the longest one lapses nothing is left either: it lasted longest.
  EXPECT_EQ(CheckA("deploy", kNow + 10'000).grant->id, "perm_long");
  EXPECT_FALSE(CheckA("deploy", kNow + 50'000).allowed);
}

TEST_F(PermissionIndexTest, NeverExpiringBeatsExpiring) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_exp", "ap_a", "deploy", kNow + 1'000'000'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_never", "ap_a", "deploy", kNever)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_exp2", "ap_a", "deploy", kNow + 5)));
  Decision d = CheckA("deploy", kNow);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_never");
  EXPECT_EQ(d.grant->expires_at_ms, kNever);
}

TEST_F(PermissionIndexTest, ExpiredGrantDoesNotShadowAnActiveOne) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_old", "ap_a", "deploy", kNow - 1)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_new", "ap_a", "deploy", kNow + 1)));
  Decision d = CheckA("deploy", kNow);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_new");
}

TEST_F(PermissionIndexTest, RemoveGrantsTakesEffectOnTheVeryNextCheck) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy")));
  ASSERT_TRUE(CheckA("deploy", kNow).allowed);
  EXPECT_EQ(index_.GrantCount(), 1u);
  EXPECT_EQ(index_.RemoveGrants("ap_a", {"perm_1"}), 1u);
  Decision d = CheckA("deploy", kNow);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, kDenied);
  EXPECT_EQ(index_.GrantCount(), 0u);
}

TEST_F(PermissionIndexTest, RemoveGrantsRemovesOnlyTheNamedOnes) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy", kNever)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_2", "ap_a", "deploy", kNow + 1'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_3", "ap_a", "read")));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_4", "ap_b", "deploy")));
  EXPECT_EQ(index_.RemoveGrants("ap_a", {"perm_1", "perm_4", "perm_missing"}), 1u);
  Decision d = CheckA("deploy", kNow);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_2");
  EXPECT_TRUE(CheckA("read", kNow).allowed);
  EXPECT_TRUE(index_.Check("ap_b", SecretOf("ap_b"), "deploy", kNow, nullptr).allowed);
  EXPECT_EQ(index_.GrantCount(), 3u);
  EXPECT_EQ(index_.RemoveGrants("ap_missing", {"perm_2"}), 0u);
  EXPECT_EQ(index_.RemoveGrants("ap_a", {}), 0u);
  EXPECT_EQ(index_.GrantCount(), 3u);
}

TEST_F(PermissionIndexTest, AddGrantToAnUnknownAgentFails) {
  EXPECT_FALSE(index_.AddGrant(MakeGrant("perm_1", "ap_missing", "deploy")));
  EXPECT_EQ(index_.GrantCount(), 0u);
  EXPECT_FALSE(index_.HasAgent("ap_missing"));
  EXPECT_EQ(index_.Decide("ap_missing", "deploy", kNow, nullptr).auth,
            AuthResult::kAgentNotFound);
}

TEST_F(PermissionIndexTest, AddGrantWithAScopeThatIsNotAnObjectFails) {
  for (const char* scope : {"[1,2]", "\"text\"", "42", "null", "{", "not json", "{}x"}) {
    EXPECT_FALSE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy", kNever, scope))) << scope;
  }
  EXPECT_EQ(index_.GrantCount(), 0u);
  EXPECT_FALSE(CheckA("deploy", kNow).allowed);
}

TEST_F(PermissionIndexTest, KeepsTheScopeTextVerbatim) {
  const std::string text = R"({ "max_spend" : 500, "note": "as typed" })";
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "pay", kNever, text)));
  Decision d = CheckA("pay", kNow);
  ASSERT_TRUE(d.allowed);
  ASSERT_NE(d.grant->scope, nullptr);
  EXPECT_EQ(d.grant->scope->json_text, text);
  EXPECT_EQ(d.grant->scope->object.at("max_spend").as_int64(), 500);
}

TEST_F(PermissionIndexTest, AgentOfSecretNamesTheOwner) {
  EXPECT_EQ(index_.AgentOfSecret(SecretOf("ap_a")), "ap_a");
  EXPECT_EQ(index_.AgentOfSecret(SecretOf("ap_b")), "ap_b");
  EXPECT_EQ(index_.AgentOfSecret(crypto::Sha256("sk_ap_wrong")), std::nullopt);
}

TEST_F(PermissionIndexTest, AuthenticateOutcomes) {
  EXPECT_EQ(index_.Authenticate("ap_a", SecretOf("ap_a")), AuthResult::kOk);
  EXPECT_EQ(index_.Authenticate("ap_a", crypto::Sha256("sk_ap_wrong")), AuthResult::kUnknownSecret);
  EXPECT_EQ(index_.Authenticate("ap_missing", SecretOf("ap_a")), AuthResult::kAgentNotFound);
  EXPECT_EQ(index_.Authenticate("ap_a", SecretOf("ap_b")), AuthResult::kOtherAgent);
  // An unknown secret is reported first, whether or not the agent exists (reference order:
  // unauthorized before agent_not_found).
  EXPECT_EQ(index_.Authenticate("ap_missing", crypto::Sha256("sk_ap_wrong")),
            AuthResult::kUnknownSecret);
}

TEST_F(PermissionIndexTest, CheckReportsAuthenticationFailuresAndNeverAllows) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy")));
  struct Case {
    std::string agent_id;
    crypto::Digest secret;
    AuthResult expected;
  };
  const Case kCases[] = {
      {"ap_a", crypto::Sha256("sk_ap_wrong"), AuthResult::kUnknownSecret},
      {"ap_missing", SecretOf("ap_a"), AuthResult::kAgentNotFound},
      {"ap_a", SecretOf("ap_b"), AuthResult::kOtherAgent},
      {"ap_missing", crypto::Sha256("sk_ap_wrong"), AuthResult::kUnknownSecret},
  };
  for (const Case& c : kCases) {
    Decision d = index_.Check(c.agent_id, c.secret, "deploy", kNow, nullptr);
    EXPECT_EQ(d.auth, c.expected) << c.agent_id;
    EXPECT_FALSE(d.allowed) << c.agent_id;
    EXPECT_FALSE(d.grant.has_value()) << c.agent_id;
  }
  // None of the failures counted as the agent being seen.
  EXPECT_TRUE(index_.DrainLastSeen().empty());
  EXPECT_EQ(index_.Snapshot("ap_a", kNow)->info.last_seen_ms, 0);
}

TEST_F(PermissionIndexTest, ReplacingAnAgentKeepsItsGrants) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy")));
  AgentInfo renamed = MakeAgent("ap_a");
  renamed.name = "renamed";
  index_.PutAgent(renamed);
  EXPECT_EQ(index_.AgentCount(), 2u);
  EXPECT_EQ(index_.GrantCount(), 1u);
  EXPECT_TRUE(CheckA("deploy", kNow).allowed);
  EXPECT_EQ(index_.Snapshot("ap_a", kNow)->info.name, "renamed");
}

// Regression: PutAgent() with a new secret once left the old digest in the owners map, so the
// old secret kept authenticating (kOk, and a Check answering allowed=false with no reason).
TEST_F(PermissionIndexTest, ReplacingAnAgentsSecretRetiresTheOldSecret) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy")));
  const crypto::Digest old_secret = SecretOf("ap_a");
  const crypto::Digest new_secret = crypto::Sha256("sk_ap_rotated");
  AgentInfo rotated = MakeAgent("ap_a");
  rotated.secret_hash = new_secret;
  index_.PutAgent(rotated);

  EXPECT_EQ(index_.Authenticate("ap_a", new_secret), AuthResult::kOk);
  EXPECT_TRUE(index_.Check("ap_a", new_secret, "deploy", kNow, nullptr).allowed);

  EXPECT_EQ(index_.Authenticate("ap_a", old_secret), AuthResult::kUnknownSecret);
  Decision d = index_.Check("ap_a", old_secret, "deploy", kNow, nullptr);
  EXPECT_EQ(d.auth, AuthResult::kUnknownSecret);
  EXPECT_FALSE(d.allowed);
}

TEST_F(PermissionIndexTest, ContextEnforcesTheScope) {
  ASSERT_TRUE(
      index_.AddGrant(MakeGrant("perm_1", "ap_a", "pay", kNever, R"({"max_spend":500})")));
  json::object over = Context(R"({"spend":700})");
  Decision denied = CheckA("pay", kNow, &over);
  EXPECT_EQ(denied.auth, AuthResult::kOk);
  EXPECT_FALSE(denied.allowed);
  EXPECT_FALSE(denied.grant.has_value());
  EXPECT_EQ(denied.reason, "Scope constraint max_spend failed: spend is 700, the maximum is 500");
  EXPECT_EQ(denied.constraint, "max_spend");

  json::object at_bound = Context(R"({"spend":500})");
  Decision allowed = CheckA("pay", kNow, &at_bound);
  ASSERT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.grant->id, "perm_1");
  EXPECT_EQ(allowed.constraint, "");

  json::object empty = Context("{}");
  Decision missing = CheckA("pay", kNow, &empty);
  EXPECT_FALSE(missing.allowed);
  EXPECT_EQ(missing.constraint, "max_spend");
  EXPECT_EQ(missing.reason, "Scope constraint max_spend failed: context has no 'spend'");

  // Without a context (GET /permission/check) the scope is returned, not enforced.
  EXPECT_TRUE(CheckA("pay", kNow, nullptr).allowed);
}

TEST_F(PermissionIndexTest, ContextWithoutScopeIsAllowed) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "pay")));
  json::object ctx = Context(R"({"spend":1e9})");
  EXPECT_TRUE(CheckA("pay", kNow, &ctx).allowed);
}

TEST_F(PermissionIndexTest, AnyOneSatisfiedGrantAllows) {
  ASSERT_TRUE(index_.AddGrant(
      MakeGrant("perm_small", "ap_a", "pay", kNever, R"({"max_spend":100})")));
  ASSERT_TRUE(index_.AddGrant(
      MakeGrant("perm_big", "ap_a", "pay", kNow + 60'000, R"({"max_spend":1000})")));
  json::object ctx = Context(R"({"spend":500})");
  Decision d = CheckA("pay", kNow, &ctx);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_big");

  json::object small = Context(R"({"spend":50})");
  Decision both = CheckA("pay", kNow, &small);
  ASSERT_TRUE(both.allowed);
  EXPECT_EQ(both.grant->id, "perm_small");  // both satisfied: the longest-lasting answers

  // Once the big grant has expired, only the small one is left and it fails.
  Decision later = CheckA("pay", kNow + 60'000, &ctx);
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.constraint, "max_spend");
  EXPECT_EQ(later.reason, "Scope constraint max_spend failed: spend is 500, the maximum is 100");
}

TEST_F(PermissionIndexTest, WhenEveryGrantFailsTheLongestLastingReasonIsGiven) {
  ASSERT_TRUE(index_.AddGrant(
      MakeGrant("perm_1", "ap_a", "pay", kNow + 1'000, R"({"allowed_currency":["EUR"]})")));
  ASSERT_TRUE(index_.AddGrant(
      MakeGrant("perm_2", "ap_a", "pay", kNow + 9'000, R"({"max_spend":100})")));
  json::object ctx = Context(R"({"spend":500,"currency":"USD"})");
  Decision d = CheckA("pay", kNow, &ctx);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.constraint, "max_spend");
  EXPECT_EQ(d.reason, "Scope constraint max_spend failed: spend is 500, the maximum is 100");
}

TEST_F(PermissionIndexTest, UnscopedGrantAllowsWhenAScopedOneFails) {
  ASSERT_TRUE(index_.AddGrant(
      MakeGrant("perm_scoped", "ap_a", "pay", kNever, R"({"max_spend":100})")));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_open", "ap_a", "pay", kNow + 1'000)));
  json::object ctx = Context(R"({"spend":500})");
  Decision d = CheckA("pay", kNow, &ctx);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_open");
}

TEST_F(PermissionIndexTest, ExpiredGrantWithASatisfiedScopeDoesNotAllow) {
  ASSERT_TRUE(index_.AddGrant(
      MakeGrant("perm_1", "ap_a", "pay", kNow, R"({"max_spend":1000})")));
  json::object ctx = Context(R"({"spend":5})");
  Decision d = CheckA("pay", kNow, &ctx);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, kDenied);
  EXPECT_EQ(d.constraint, "");
}

TEST_F(PermissionIndexTest, SnapshotListsOnlyActiveGrantsNewestFirst) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_old", "ap_a", "read", kNever, "", kNow - 30'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_new", "ap_a", "write", kNever, "", kNow - 10'000)));
  ASSERT_TRUE(
      index_.AddGrant(MakeGrant("perm_mid", "ap_a", "admin", kNow + 5'000, "", kNow - 20'000)));
  ASSERT_TRUE(
      index_.AddGrant(MakeGrant("perm_gone", "ap_a", "deploy", kNow, "", kNow - 1'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_b", "ap_b", "read", kNever, "", kNow)));
  // Same creation time: ordered by id.
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_tie_b", "ap_a", "x", kNever, "", kNow - 40'000)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_tie_a", "ap_a", "y", kNever, "", kNow - 40'000)));

  auto snap = index_.Snapshot("ap_a", kNow);
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->info.id, "ap_a");
  EXPECT_EQ(snap->info.name, "agent ap_a");
  EXPECT_EQ(snap->info.status, "active");
  EXPECT_EQ(Ids(snap->active),
            (std::vector<std::string>{"perm_new", "perm_mid", "perm_old", "perm_tie_a",
                                      "perm_tie_b"}));

  auto later = index_.Snapshot("ap_a", kNow + 5'000);
  EXPECT_EQ(Ids(later->active),
            (std::vector<std::string>{"perm_new", "perm_old", "perm_tie_a", "perm_tie_b"}));
  EXPECT_FALSE(index_.Snapshot("ap_missing", kNow).has_value());
}

TEST_F(PermissionIndexTest, SnapshotReportsLastSeenAfterACheck) {
  index_.PutAgent(MakeAgent("ap_c", kNow - 86'400'000));
  EXPECT_EQ(index_.Snapshot("ap_c", kNow)->info.last_seen_ms, kNow - 86'400'000);
  EXPECT_EQ(index_.Snapshot("ap_a", kNow)->info.last_seen_ms, 0);

  (void)index_.Check("ap_a", SecretOf("ap_a"), "anything", kNow + 123, nullptr);
  EXPECT_EQ(index_.Snapshot("ap_a", kNow + 200)->info.last_seen_ms, kNow + 123);
  (void)index_.Check("ap_a", SecretOf("ap_a"), "anything", kNow + 5'000, nullptr);
  EXPECT_EQ(index_.Snapshot("ap_a", kNow + 6'000)->info.last_seen_ms, kNow + 5'000);
  EXPECT_EQ(index_.Snapshot("ap_b", kNow)->info.last_seen_ms, 0);
}

TEST_F(PermissionIndexTest, DecideDoesNotAuthenticateOrRecordLastSeen) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_1", "ap_a", "deploy")));
  Decision d = index_.Decide("ap_a", "deploy", kNow, nullptr);
  EXPECT_EQ(d.auth, AuthResult::kOk);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.grant->id, "perm_1");
  EXPECT_TRUE(index_.DrainLastSeen().empty());
}

TEST_F(PermissionIndexTest, SweepDropsOnlyExpiredGrants) {
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_past", "ap_a", "a", kNow - 1)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_now", "ap_a", "b", kNow)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_soon", "ap_a", "c", kNow + 1)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_never", "ap_b", "d", kNever)));
  ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_past_b", "ap_b", "d", kNow - 50)));
  EXPECT_EQ(index_.GrantCount(), 5u);

  EXPECT_EQ(index_.Sweep(kNow), 3u);
  EXPECT_EQ(index_.GrantCount(), 2u);
  EXPECT_EQ(Ids(index_.Snapshot("ap_a", kNow - 1'000'000)->active),
            std::vector<std::string>{"perm_soon"});
  EXPECT_EQ(Ids(index_.Snapshot("ap_b", kNow - 1'000'000)->active),
            std::vector<std::string>{"perm_never"});
  EXPECT_TRUE(CheckA("c", kNow).allowed);
  EXPECT_EQ(index_.Sweep(kNow), 0u);
  EXPECT_EQ(index_.GrantCount(), 2u);
}

TEST_F(PermissionIndexTest, DrainLastSeenTakesEachUpdateOnce) {
  EXPECT_TRUE(index_.DrainLastSeen().empty());
  (void)CheckA("deploy", kNow);
  auto first = index_.DrainLastSeen();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].first, "ap_a");
  EXPECT_EQ(first[0].second, kNow);
  EXPECT_TRUE(index_.DrainLastSeen().empty());

  // last_seen is kept to the second: another check within the same second is not news.
  (void)CheckA("deploy", kNow + 999);
  EXPECT_TRUE(index_.DrainLastSeen().empty());

  (void)CheckA("deploy", kNow + 1'000);
  (void)index_.Check("ap_b", SecretOf("ap_b"), "deploy", kNow + 2'500, nullptr);
  auto second = index_.DrainLastSeen();
  std::sort(second.begin(), second.end());
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0], (std::pair<std::string, std::int64_t>{"ap_a", kNow + 1'000}));
  EXPECT_EQ(second[1], (std::pair<std::string, std::int64_t>{"ap_b", kNow + 2'500}));
}

TEST_F(PermissionIndexTest, CountsAgentsAndGrants) {
  EXPECT_EQ(index_.AgentCount(), 2u);
  EXPECT_TRUE(index_.HasAgent("ap_a"));
  EXPECT_FALSE(index_.HasAgent("ap_c"));
  for (int i = 0; i < 100; ++i) index_.PutAgent(MakeAgent("ap_n" + std::to_string(i)));
  EXPECT_EQ(index_.AgentCount(), 102u);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(index_.AddGrant(MakeGrant("perm_" + std::to_string(i),
                                          "ap_n" + std::to_string(i), "act")));
  }
  EXPECT_EQ(index_.GrantCount(), 100u);
  for (int i = 0; i < 100; ++i) {
    std::string id = "ap_n" + std::to_string(i);
    EXPECT_TRUE(index_.Check(id, SecretOf(id), "act", kNow, nullptr).allowed) << id;
  }
}

// Readers check while a writer adds and removes grants. Each answer must be one whole grant as
// it was added (no torn fields), the permanent grant must never flicker, and run under the
// sanitizers (ASan/UBSan here, TSan in its own build) there must be no data race.
TEST(PermissionIndexConcurrencyTest, ReadersSeeWholeGrantsWhileAWriterChangesThem) {
  PermissionIndex index;
  index.PutAgent(MakeAgent("ap_stable"));
  index.PutAgent(MakeAgent("ap_flap"));
  GrantInfo keep = MakeGrant("perm_keep", "ap_stable", "act", kNever);
  keep.granted_by_email = "keep@example.com";
  ASSERT_TRUE(index.AddGrant(keep));

  constexpr int kRounds = 3'000;
  auto flap_grant = [](int n) {
    GrantInfo g = MakeGrant("perm_" + std::to_string(n), "ap_flap", "act",
                            kNow + 1'000'000 + n, n % 2 ? R"({"max_n":)" + std::to_string(n) + "}"
                                                        : "",
                            n);
    g.granted_by = "usr_" + std::to_string(n % 7);
    g.granted_by_email = "u" + std::to_string(n % 7) + "@example.com";
    return g;
  };

  std::atomic<bool> done{false};
  std::atomic<int> readers_started{0};
  std::atomic<long> allowed_flap{0};
  std::atomic<bool> seen_allowed{false};
  std::atomic<long> failures{0};
  auto reader = [&] {
    long local_allowed = 0;
    readers_started.fetch_add(1);
    while (!done.load(std::memory_order_acquire)) {
      Decision s = index.Check("ap_stable", SecretOf("ap_stable"), "act", kNow, nullptr);
      if (!s.allowed || s.grant->id != "perm_keep" || s.grant->granter->email != "keep@example.com" ||
          s.grant->expires_at_ms != kNever) {
        failures.fetch_add(1);
      }
      Decision f = index.Check("ap_flap", SecretOf("ap_flap"), "act", kNow, nullptr);
      if (f.auth != AuthResult::kOk) failures.fetch_add(1);
      if (f.allowed) {
        ++local_allowed;
        seen_allowed.store(true, std::memory_order_release);
        const GrantView& g = *f.grant;
        int n = std::stoi(g.id.substr(5));
        bool whole = g.action == "act" && g.expires_at_ms == kNow + 1'000'000 + n &&
                     g.created_at_ms == n &&
                     g.granter->user_id == "usr_" + std::to_string(n % 7) &&
                     g.granter->email == "u" + std::to_string(n % 7) + "@example.com" &&
                     ((n % 2 == 0 && g.scope == nullptr) ||
                      (n % 2 == 1 && g.scope != nullptr &&
                       g.scope->object.at("max_n").as_int64() == n));
        if (!whole) failures.fetch_add(1);
      } else if (f.reason != kDenied) {
        failures.fetch_add(1);
      }
      auto snap = index.Snapshot("ap_flap", kNow);
      if (!snap || snap->active.size() > 2) failures.fetch_add(1);
    }
    allowed_flap.fetch_add(local_allowed);
  };

  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  std::thread drainer([&] {
    while (!done.load(std::memory_order_acquire)) (void)index.DrainLastSeen();
  });
  std::thread writer([&] {
    while (readers_started.load() < 3) std::this_thread::yield();
    for (int n = 0; n < kRounds; ++n) {
      if (!index.AddGrant(flap_grant(n))) failures.fetch_add(1);
      if (n > 0 && index.RemoveGrants("ap_flap", {"perm_" + std::to_string(n - 1)}) != 1) {
        failures.fetch_add(1);
      }
      // Churn on the stable agent's shard too, with a different action.
      if (!index.AddGrant(MakeGrant("perm_noise", "ap_stable", "other"))) failures.fetch_add(1);
      if (index.RemoveGrants("ap_stable", {"perm_noise"}) != 1) failures.fetch_add(1);
    }
    // On a loaded machine the readers may not have run during the churn; keep the last grant
    // until one of them has seen the agent allowed (bounded), so the test is not timing-bound.
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!seen_allowed.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    if (index.RemoveGrants("ap_flap", {"perm_" + std::to_string(kRounds - 1)}) != 1) {
      failures.fetch_add(1);
    }
    done.store(true, std::memory_order_release);
  });
  writer.join();
  drainer.join();
  for (auto& t : readers) t.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(allowed_flap.load(), 0);
  EXPECT_EQ(index.GrantCount(), 1u);
  EXPECT_FALSE(index.Check("ap_flap", SecretOf("ap_flap"), "act", kNow, nullptr).allowed);
  EXPECT_TRUE(index.Check("ap_stable", SecretOf("ap_stable"), "act", kNow, nullptr).allowed);
}

}  // namespace
}  // namespace agentgate::authz
