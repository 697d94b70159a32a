// The Store contract, as a type-parameterized GoogleTest suite every implementation must pass.
//
// A backend is a type with
//     static StoreFactory NewStorage();
// that returns a factory over fresh, empty storage (a temporary directory, a scratch database).
// Each call of the factory opens a Store on that same storage, so calling it again after the
// previous Store is destroyed must reach the same data; destroying the factory releases the
// storage. A backend's test file instantiates the suite once:
//     INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreContractTest, ::testing::Types<SqliteBackend>);
// This header defines tests, so include it only from test sources; it may be included by several
// of them in one binary (one instantiation per backend).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crypto/hash.h"
#include "store/store.h"

namespace agentgate::store::contract {

using StoreFactory = std::function<std::unique_ptr<Store>()>;

// A fixed instant, so expiry tests do not depend on the wall clock.
inline constexpr std::int64_t kNow = 1'760'000'000'000;
inline constexpr std::int64_t kDayMs = 86'400'000;

inline crypto::Digest TestDigest(const std::string& seed) { return crypto::Sha256(seed); }

inline AgentRecord TestAgent(const std::string& id) {
  AgentRecord agent;
  agent.id = id;
  agent.name = "Agent " + id;
  agent.description = "does things for " + id;
  agent.developer_email = "dev+" + id + "@example.com";
  agent.metadata_json = R"({"team":"qa"})";
  agent.secret_hash = TestDigest("secret:" + id);
  agent.created_at_ms = kNow - 1000;
  return agent;
}

inline GrantRecord TestGrant(const std::string& id, const std::string& agent_id,
                             std::int64_t created_at_ms = kNow - 500,
                             std::optional<std::int64_t> expires_at_ms = std::nullopt) {
  GrantRecord grant;
  grant.id = id;
  grant.agent_id = agent_id;
  grant.action = "read:" + id;
  grant.granted_by = "usr_granter";
  grant.granted_by_email = "granter@example.com";
  grant.expires_at_ms = expires_at_ms;
  grant.scope_json = R"({"repo":"x"})";
  grant.metadata_json = R"({"why":"test"})";
  grant.created_at_ms = created_at_ms;
  return grant;
}

inline void ExpectSameAgent(const AgentRecord& actual, const AgentRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.description, expected.description);
  EXPECT_EQ(actual.developer_email, expected.developer_email);
  EXPECT_EQ(actual.metadata_json, expected.metadata_json);
  EXPECT_EQ(actual.secret_hash, expected.secret_hash);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.created_at_ms, expected.created_at_ms);
  EXPECT_EQ(actual.last_seen_ms, expected.last_seen_ms);
}

inline void ExpectSameGrant(const GrantRecord& actual, const GrantRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.agent_id, expected.agent_id);
  EXPECT_EQ(actual.action, expected.action);
  EXPECT_EQ(actual.granted_by, expected.granted_by);
  EXPECT_EQ(actual.granted_by_email, expected.granted_by_email);
  EXPECT_EQ(actual.expires_at_ms, expected.expires_at_ms);
  EXPECT_EQ(actual.scope_json, expected.scope_json);
  EXPECT_EQ(actual.metadata_json, expected.metadata_json);
  EXPECT_EQ(actual.created_at_ms, expected.created_at_ms);
  EXPECT_EQ(actual.revoked_at_ms, expected.revoked_at_ms);
  EXPECT_EQ(actual.revoked_by, expected.revoked_by);
}

inline constexpr bool kActiveOnly = true;
inline constexpr bool kAll = false;

// Positional, because GCC warns about the fields designated initializers leave out.
inline GrantFilter Filter(std::string granted_by = "", std::string agent_id = "",
                          bool active_only = kActiveOnly, int limit = 1000) {
  GrantFilter filter;
  filter.granted_by = std::move(granted_by);
  filter.agent_id = std::move(agent_id);
  filter.active_only = active_only;
  filter.now_ms = kNow;
  filter.limit = limit;
  return filter;
}

inline std::vector<AgentRecord> AllAgents(Store& store) {
  std::vector<AgentRecord> agents;
  Status s = store.LoadAgents([&](AgentRecord&& agent) { agents.push_back(std::move(agent)); });
  EXPECT_TRUE(s.ok()) << s.error().message;
  std::sort(agents.begin(), agents.end(),
            [](const AgentRecord& a, const AgentRecord& b) { return a.id < b.id; });
  return agents;
}

// Sorted ids of the grants active at now_ms.
inline std::vector<std::string> ActiveGrantIds(Store& store, std::int64_t now_ms) {
  std::vector<std::string> ids;
  Status s = store.LoadActiveGrants(now_ms, [&](GrantRecord&& grant) { ids.push_back(grant.id); });
  EXPECT_TRUE(s.ok()) << s.error().message;
  std::sort(ids.begin(), ids.end());
  return ids;
}

inline std::vector<std::string> Ids(const std::vector<GrantRecord>& grants) {
  std::vector<std::string> ids;
  ids.reserve(grants.size());
  for (const GrantRecord& grant : grants) ids.push_back(grant.id);
  return ids;
}

inline Counters CountersFor(Store& store, std::int64_t day) {
  Result<Counters> counters = store.LoadCounters(day);
  EXPECT_TRUE(counters.ok()) << counters.error().message;
  return counters.ok() ? *counters : Counters{};
}

// Runs body(thread_index) on `threads` threads released together, and joins them.
inline void RunConcurrently(int threads, const std::function<void(int)>& body) {
  std::latch start(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
  for (std::thread& worker : workers) worker.join();
}

template <class Backend>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    factory_ = Backend::NewStorage();
    store_ = factory_();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    factory_ = nullptr;
  }

  Store& store() { return *store_; }

  // Closes the store and opens it again on the same storage.
  void Reopen() {
    store_.reset();
    store_ = factory_();
    ASSERT_NE(store_, nullptr);
  }

  void InsertAgents(std::initializer_list<std::string> ids) {
    for (const std::string& id : ids) {
      Status s = store().InsertAgent(TestAgent(id));
      ASSERT_TRUE(s.ok()) << s.error().message;
    }
  }

  void InsertGrants(std::initializer_list<GrantRecord> grants) {
    for (const GrantRecord& grant : grants) {
      Status s = store().InsertGrant(grant);
      ASSERT_TRUE(s.ok()) << s.error().message;
    }
  }

  StoreFactory factory_;
  std::unique_ptr<Store> store_;
};

TYPED_TEST_SUITE_P(StoreContractTest);

TYPED_TEST_P(StoreContractTest, EmptyStoreHasNothing) {
  Store& store = this->store();
  EXPECT_TRUE(AllAgents(store).empty());
  EXPECT_TRUE(ActiveGrantIds(store, kNow).empty());
  Result<std::optional<GrantRecord>> grant = store.FindGrant("nope");
  ASSERT_TRUE(grant.ok()) << grant.error().message;
  EXPECT_FALSE(grant->has_value());
  Result<std::vector<GrantRecord>> list = store.ListGrants(Filter("", "", kAll));
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_TRUE(list->empty());
  Counters counters = CountersFor(store, kNow / kDayMs);
  EXPECT_EQ(counters.agents_registered, 0);
  EXPECT_EQ(counters.permissions_granted, 0);
  EXPECT_EQ(counters.checks_total, 0);
  EXPECT_EQ(counters.checks_today, 0);
}

TYPED_TEST_P(StoreContractTest, AgentRoundTrips) {
  AgentRecord full = TestAgent("ap_full");
  full.status = "suspended";
  full.last_seen_ms = kNow - 10;
  AgentRecord sparse = TestAgent("ap_sparse");
  sparse.description = "";
  sparse.metadata_json = "";
  ASSERT_TRUE(this->store().InsertAgent(full).ok());
  ASSERT_TRUE(this->store().InsertAgent(sparse).ok());

  std::vector<AgentRecord> agents = AllAgents(this->store());
  ASSERT_EQ(agents.size(), 2u);
  ExpectSameAgent(agents[0], full);
  ExpectSameAgent(agents[1], sparse);
}

TYPED_TEST_P(StoreContractTest, DuplicateAgentIsAnErrorValue) {
  this->InsertAgents({"ap_1"});
  Status same_id = this->store().InsertAgent(TestAgent("ap_1"));
  ASSERT_FALSE(same_id.ok());
  EXPECT_EQ(same_id.error().code, Code::kConflict) << same_id.error().message;

  AgentRecord same_secret = TestAgent("ap_2");
  same_secret.secret_hash = TestAgent("ap_1").secret_hash;
  Status clash = this->store().InsertAgent(same_secret);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code, Code::kConflict) << clash.error().message;

  // The store keeps working, and the failed inserts left nothing behind.
  this->InsertAgents({"ap_3"});
  std::vector<AgentRecord> agents = AllAgents(this->store());
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(agents[0].id, "ap_1");
  EXPECT_EQ(agents[1].id, "ap_3");
}

TYPED_TEST_P(StoreContractTest, GrantRoundTrips) {
  this->InsertAgents({"ap_1"});
  GrantRecord never_expires = TestGrant("g_1", "ap_1");
  GrantRecord expiring = TestGrant("g_2", "ap_1", kNow - 400, kNow + 60'000);
  expiring.scope_json = "";
  expiring.metadata_json = "";
  this->InsertGrants({never_expires, expiring});

  for (const GrantRecord& expected : {never_expires, expiring}) {
    Result<std::optional<GrantRecord>> found = this->store().FindGrant(expected.id);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_TRUE(found->has_value());
    ExpectSameGrant(**found, expected);
  }
  Result<std::optional<GrantRecord>> missing = this->store().FindGrant("g_missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TYPED_TEST_P(StoreContractTest, BadGrantIsAnErrorValue) {
  this->InsertAgents({"ap_1"});
  this->InsertGrants({TestGrant("g_1", "ap_1")});

  Status duplicate = this->store().InsertGrant(TestGrant("g_1", "ap_1"));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, Code::kConflict) << duplicate.error().message;

  Status unknown_agent = this->store().InsertGrant(TestGrant("g_2", "ap_nobody"));
  EXPECT_FALSE(unknown_agent.ok());

  EXPECT_EQ(ActiveGrantIds(this->store(), kNow), std::vector<std::string>{"g_1"});
}

TYPED_TEST_P(StoreContractTest, RevokeReturnsOnlyWhatItRevokedNow) {
  this->InsertAgents({"ap_1"});
  this->InsertGrants(
      {TestGrant("g_1", "ap_1"), TestGrant("g_2", "ap_1"), TestGrant("g_3", "ap_1")});

  Result<std::vector<std::string>> first =
      this->store().RevokeGrants({"g_1", "g_2", "g_1", "g_missing"}, kNow, "usr_admin");
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::vector<std::string> revoked = *first;
  std::sort(revoked.begin(), revoked.end());
  EXPECT_EQ(revoked, (std::vector<std::string>{"g_1", "g_2"}));

  Result<std::vector<std::string>> second =
      this->store().RevokeGrants({"g_1", "g_2"}, kNow + 1, "usr_other");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->empty());

  Result<std::vector<std::string>> none = this->store().RevokeGrants({}, kNow, "usr_admin");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // The first revocation is the one on record.
  Result<std::optional<GrantRecord>> g1 = this->store().FindGrant("g_1");
  ASSERT_TRUE(g1.ok() && g1->has_value());
  EXPECT_EQ((*g1)->revoked_at_ms, kNow);
  EXPECT_EQ((*g1)->revoked_by, "usr_admin");
  Result<std::optional<GrantRecord>> g3 = this->store().FindGrant("g_3");
  ASSERT_TRUE(g3.ok() && g3->has_value());
  EXPECT_EQ((*g3)->revoked_at_ms, std::nullopt);
  EXPECT_EQ((*g3)->revoked_by, "");
}

TYPED_TEST_P(StoreContractTest, LoadActiveGrantsExcludesRevokedAndExpired) {
  this->InsertAgents({"ap_1", "ap_2"});
  this->InsertGrants({
      TestGrant("g_forever", "ap_1"),
      TestGrant("g_later", "ap_2", kNow - 500, kNow + 1),
      TestGrant("g_now", "ap_1", kNow - 500, kNow),  // expiry is exclusive: gone at kNow
      TestGrant("g_past", "ap_1", kNow - 500, kNow - 1),
      TestGrant("g_revoked", "ap_2"),
  });
  ASSERT_TRUE(this->store().RevokeGrants({"g_revoked"}, kNow - 100, "usr_x").ok());

  EXPECT_EQ(ActiveGrantIds(this->store(), kNow),
            (std::vector<std::string>{"g_forever", "g_later"}));
  EXPECT_EQ(ActiveGrantIds(this->store(), kNow - 1),
            (std::vector<std::string>{"g_forever", "g_later", "g_now"}));

  // Records arrive whole.
  std::vector<GrantRecord> loaded;
  Status s = this->store().LoadActiveGrants(
      kNow, [&](GrantRecord&& grant) { loaded.push_back(std::move(grant)); });
  ASSERT_TRUE(s.ok()) << s.error().message;
  std::sort(loaded.begin(), loaded.end(),
            [](const GrantRecord& a, const GrantRecord& b) { return a.id < b.id; });
  ASSERT_EQ(loaded.size(), 2u);
  ExpectSameGrant(loaded[0], TestGrant("g_forever", "ap_1"));
  ExpectSameGrant(loaded[1], TestGrant("g_later", "ap_2", kNow - 500, kNow + 1));
}

TYPED_TEST_P(StoreContractTest, ListGrantsIsNewestFirstAndFiltered) {
  this->InsertAgents({"ap_a", "ap_b"});
  auto grant = [](const std::string& id, const std::string& agent, const std::string& granter,
                  std::int64_t created, std::optional<std::int64_t> expires = std::nullopt) {
    GrantRecord g = TestGrant(id, agent, created, expires);
    g.granted_by = granter;
    return g;
  };
  this->InsertGrants({
      grant("g1", "ap_a", "u1", 100),
      grant("g2", "ap_a", "u2", 200),
      grant("g4", "ap_b", "u1", 300),  // inserted before g3; same time, so id decides
      grant("g3", "ap_b", "u1", 300),
      grant("g5", "ap_a", "u1", 400, 450),
      grant("g6", "ap_b", "u2", 500),
  });
  ASSERT_TRUE(this->store().RevokeGrants({"g6"}, 600, "u2").ok());

  auto list = [&](GrantFilter filter) {
    filter.now_ms = 1000;
    Result<std::vector<GrantRecord>> grants = this->store().ListGrants(filter);
    EXPECT_TRUE(grants.ok()) << grants.error().message;
    return grants.ok() ? Ids(*grants) : std::vector<std::string>{};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list(Filter()), (V{"g3", "g4", "g2", "g1"}));
  EXPECT_EQ(list(Filter("", "", kAll)), (V{"g6", "g5", "g3", "g4", "g2", "g1"}));
  EXPECT_EQ(list(Filter("u1")), (V{"g3", "g4", "g1"}));
  EXPECT_EQ(list(Filter("", "ap_a")), (V{"g2", "g1"}));
  EXPECT_EQ(list(Filter("u1", "ap_a", kAll)), (V{"g5", "g1"}));
  EXPECT_EQ(list(Filter("u2", "", kAll)), (V{"g6", "g2"}));
  EXPECT_EQ(list(Filter("nobody")), V{});
  EXPECT_EQ(list(Filter("", "", kAll, 2)), (V{"g6", "g5"}));
  EXPECT_EQ(list(Filter("", "", kActiveOnly, 0)), V{});

  // Records come back whole, revocation included.
  Result<std::vector<GrantRecord>> revoked = this->store().ListGrants(Filter("u2", "", kAll, 1));
  ASSERT_TRUE(revoked.ok() && revoked->size() == 1);
  GrantRecord expected = grant("g6", "ap_b", "u2", 500);
  expected.revoked_at_ms = 600;
  expected.revoked_by = "u2";
  ExpectSameGrant(revoked->front(), expected);
}

TYPED_TEST_P(StoreContractTest, SignInCreatesOnceThenFinds) {
  Result<UserRecord> created = this->store().SignInUser("ann@example.com", "usr_ann", kNow, false);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->id, "usr_ann");
  EXPECT_EQ(created->email, "ann@example.com");
  EXPECT_FALSE(created->is_admin);
  EXPECT_EQ(created->created_at_ms, kNow);

  Result<UserRecord> again =
      this->store().SignInUser("ann@example.com", "usr_new", kNow + 5, false);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, "usr_ann");
  EXPECT_EQ(again->created_at_ms, kNow);
  EXPECT_FALSE(again->is_admin);
}

TYPED_TEST_P(StoreContractTest, OnlyTheFirstPromotableUserBecomesAdmin) {
  Store& store = this->store();
  // Not asking for promotion never promotes.
  Result<UserRecord> plain = store.SignInUser("a@example.com", "usr_a", kNow, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->is_admin);
  // An existing user can be the first admin.
  Result<UserRecord> first = store.SignInUser("a@example.com", "usr_x", kNow, true);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->is_admin);
  EXPECT_EQ(first->id, "usr_a");
  Result<UserRecord> second = store.SignInUser("b@example.com", "usr_b", kNow, true);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->is_admin);
  // Admin status sticks.
  Result<UserRecord> later = store.SignInUser("a@example.com", "usr_y", kNow, false);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->is_admin);
}

TYPED_TEST_P(StoreContractTest, FirstAdminRaceHasOneWinner) {
  constexpr int kThreads = 32;
  std::vector<std::optional<UserRecord>> users(kThreads);
  RunConcurrently(kThreads, [&](int t) {
    Result<UserRecord> user = this->store().SignInUser("user" + std::to_string(t) + "@example.com",
                                                       "usr_" + std::to_string(t), kNow, true);
    if (user.ok()) users[t] = *user;
  });
  int admins = 0;
  for (const auto& user : users) {
    ASSERT_TRUE(user.has_value());
    admins += user->is_admin ? 1 : 0;
  }
  EXPECT_EQ(admins, 1);

  // The store agrees with what the callers were told.
  int stored_admins = 0;
  for (int t = 0; t < kThreads; ++t) {
    Result<UserRecord> user = this->store().SignInUser("user" + std::to_string(t) + "@example.com",
                                                       "usr_unused", kNow, false);
    ASSERT_TRUE(user.ok());
    EXPECT_EQ(user->is_admin, users[t]->is_admin);
    stored_admins += user->is_admin ? 1 : 0;
  }
  EXPECT_EQ(stored_admins, 1);
}

TYPED_TEST_P(StoreContractTest, ConcurrentSignInsOfOneEmailMakeOneUser) {
  constexpr int kThreads = 16;
  std::vector<std::string> ids(kThreads);
  RunConcurrently(kThreads, [&](int t) {
    Result<UserRecord> user =
        this->store().SignInUser("same@example.com", "usr_" + std::to_string(t), kNow, false);
    if (user.ok()) ids[t] = user->id;
  });
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  EXPECT_FALSE(ids[0].empty());
}

TYPED_TEST_P(StoreContractTest, MagicLinkIsSingleUseAndExpires) {
  Store& store = this->store();
  crypto::Digest fresh = TestDigest("link:fresh");
  crypto::Digest stale = TestDigest("link:stale");
  ASSERT_TRUE(store.InsertMagicLink(fresh, "ann@example.com", kNow, kNow + 900'000).ok());
  ASSERT_TRUE(store.InsertMagicLink(stale, "bob@example.com", kNow - 2000, kNow).ok());
  Status duplicate = store.InsertMagicLink(fresh, "eve@example.com", kNow, kNow + 900'000);
  EXPECT_FALSE(duplicate.ok());

  Result<std::optional<std::string>> used = store.ConsumeMagicLink(fresh, kNow + 1);
  ASSERT_TRUE(used.ok()) << used.error().message;
  EXPECT_EQ(*used, std::optional<std::string>("ann@example.com"));
  Result<std::optional<std::string>> reused = store.ConsumeMagicLink(fresh, kNow + 2);
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(*reused, std::nullopt);

  Result<std::optional<std::string>> expired = store.ConsumeMagicLink(stale, kNow);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, std::nullopt);

  Result<std::optional<std::string>> unknown =
      store.ConsumeMagicLink(TestDigest("link:unknown"), kNow);
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(*unknown, std::nullopt);
}

TYPED_TEST_P(StoreContractTest, MagicLinkRaceHasOneWinner) {
  crypto::Digest link = TestDigest("link:raced");
  ASSERT_TRUE(this->store().InsertMagicLink(link, "ann@example.com", kNow, kNow + 60'000).ok());
  std::atomic<int> winners{0};
  std::atomic<int> errors{0};
  RunConcurrently(16, [&](int) {
    Result<std::optional<std::string>> email = this->store().ConsumeMagicLink(link, kNow + 1);
    if (!email.ok()) {
      ++errors;
    } else if (email->has_value()) {
      ++winners;
    }
  });
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(errors.load(), 0);
}

TYPED_TEST_P(StoreContractTest, SessionsExpireAndCanBeDeleted) {
  Store& store = this->store();
  Result<UserRecord> user = store.SignInUser("ann@example.com", "usr_ann", kNow, true);
  ASSERT_TRUE(user.ok());
  crypto::Digest token = TestDigest("session:1");
  ASSERT_TRUE(store.InsertSession(token, "usr_ann", kNow, kNow + 1000).ok());

  Result<std::optional<SessionInfo>> found = store.FindSession(token, kNow + 999);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->expires_at_ms, kNow + 1000);
  EXPECT_EQ((*found)->user.id, "usr_ann");
  EXPECT_EQ((*found)->user.email, "ann@example.com");
  EXPECT_TRUE((*found)->user.is_admin);
  EXPECT_EQ((*found)->user.created_at_ms, kNow);

  Result<std::optional<SessionInfo>> expired = store.FindSession(token, kNow + 1000);
  ASSERT_TRUE(expired.ok());
  EXPECT_FALSE(expired->has_value());
  Result<std::optional<SessionInfo>> unknown = store.FindSession(TestDigest("nope"), kNow);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());

  ASSERT_TRUE(store.DeleteSession(token).ok());
  Result<std::optional<SessionInfo>> deleted = store.FindSession(token, kNow);
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->has_value());
  EXPECT_TRUE(store.DeleteSession(token).ok());  // deleting twice is fine

  EXPECT_FALSE(store.InsertSession(TestDigest("s:2"), "usr_nobody", kNow, kNow + 1000).ok());
}

TYPED_TEST_P(StoreContractTest, BookkeepingMovesCountersAndLastSeen) {
  Store& store = this->store();
  this->InsertAgents({"ap_1", "ap_2"});
  this->InsertGrants(
      {TestGrant("g_1", "ap_1"), TestGrant("g_2", "ap_1"), TestGrant("g_3", "ap_2")});
  ASSERT_TRUE(store.RevokeGrants({"g_3"}, kNow, "usr_x").ok());
  const std::int64_t today = kNow / kDayMs;

  EXPECT_TRUE(store.FlushBookkeeping(Bookkeeping{}).ok());

  Bookkeeping first;
  first.checks = {{"ap_1", "read:g_1", true, "", kNow, 12},
                  {"ap_1", "write", false, "no_grant", kNow + 1, 30},
                  {"ap_unknown", "read", false, "agent_not_found", kNow + 2, 5}};
  first.last_seen = {{"ap_1", kNow + 1}, {"ap_1", kNow - 50}, {"ap_unknown", kNow}};
  first.checks_per_day = {{today, 3}};
  Status s = store.FlushBookkeeping(first);
  ASSERT_TRUE(s.ok()) << s.error().message;

  Counters counters = CountersFor(store, today);
  EXPECT_EQ(counters.agents_registered, 2);
  EXPECT_EQ(counters.permissions_granted, 3);  // revoked grants still count
  EXPECT_EQ(counters.checks_total, 3);
  EXPECT_EQ(counters.checks_today, 3);

  Bookkeeping second;
  second.last_seen = {{"ap_1", kNow - 10}, {"ap_2", kNow + 7}};  // older than stored for ap_1
  second.checks_per_day = {{today, 2}, {today + 1, 4}};
  ASSERT_TRUE(store.FlushBookkeeping(second).ok());

  counters = CountersFor(store, today);
  EXPECT_EQ(counters.checks_total, 9);
  EXPECT_EQ(counters.checks_today, 5);
  EXPECT_EQ(CountersFor(store, today + 1).checks_today, 4);
  EXPECT_EQ(CountersFor(store, today - 1).checks_today, 0);

  std::vector<AgentRecord> agents = AllAgents(store);
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(agents[0].last_seen_ms, kNow + 1);  // the max, never moved back
  EXPECT_EQ(agents[1].last_seen_ms, kNow + 7);
}

TYPED_TEST_P(StoreContractTest, PruneDeletesExpiredLinksAndSessions) {
  Store& store = this->store();
  ASSERT_TRUE(store.SignInUser("ann@example.com", "usr_ann", kNow, false).ok());
  crypto::Digest old_session = TestDigest("s:old");
  crypto::Digest new_session = TestDigest("s:new");
  crypto::Digest old_link = TestDigest("l:old");
  crypto::Digest new_link = TestDigest("l:new");
  ASSERT_TRUE(store.InsertSession(old_session, "usr_ann", kNow - 100, kNow).ok());
  ASSERT_TRUE(store.InsertSession(new_session, "usr_ann", kNow - 100, kNow + 100).ok());
  ASSERT_TRUE(store.InsertMagicLink(old_link, "ann@example.com", kNow - 100, kNow).ok());
  ASSERT_TRUE(store.InsertMagicLink(new_link, "ann@example.com", kNow - 100, kNow + 100).ok());

  ASSERT_TRUE(store.Prune(kNow, kNow).ok());

  // Asked about an earlier instant, only rows that still exist can answer.
  auto session_exists = [&](const crypto::Digest& token) {
    Result<std::optional<SessionInfo>> found = store.FindSession(token, kNow - 200);
    return found.ok() && found->has_value();
  };
  EXPECT_FALSE(session_exists(old_session));
  EXPECT_TRUE(session_exists(new_session));
  Result<std::optional<std::string>> old_email = store.ConsumeMagicLink(old_link, kNow - 200);
  ASSERT_TRUE(old_email.ok());
  EXPECT_FALSE(old_email->has_value());
  Result<std::optional<std::string>> new_email = store.ConsumeMagicLink(new_link, kNow - 200);
  ASSERT_TRUE(new_email.ok());
  EXPECT_TRUE(new_email->has_value());
}

TYPED_TEST_P(StoreContractTest, EverythingSurvivesReopen) {
  AgentRecord agent = TestAgent("ap_1");
  ASSERT_TRUE(this->store().InsertAgent(agent).ok());
  GrantRecord kept = TestGrant("g_kept", "ap_1", kNow - 10, kNow + 1'000'000);
  GrantRecord revoked = TestGrant("g_revoked", "ap_1");
  this->InsertGrants({kept, revoked});
  ASSERT_TRUE(this->store().RevokeGrants({"g_revoked"}, kNow, "usr_ann").ok());
  ASSERT_TRUE(this->store().SignInUser("ann@example.com", "usr_ann", kNow, true).ok());
  crypto::Digest session = TestDigest("s:1");
  crypto::Digest link = TestDigest("l:1");
  ASSERT_TRUE(this->store().InsertSession(session, "usr_ann", kNow, kNow + 1000).ok());
  ASSERT_TRUE(this->store().InsertMagicLink(link, "bob@example.com", kNow, kNow + 1000).ok());
  Bookkeeping batch;
  batch.checks = {{"ap_1", "read", true, "", kNow, 3}};
  batch.last_seen = {{"ap_1", kNow + 3}};
  batch.checks_per_day = {{kNow / kDayMs, 1}};
  ASSERT_TRUE(this->store().FlushBookkeeping(batch).ok());

  for (int round = 0; round < 2; ++round) {  // re-opening twice: migrations must be idempotent
    this->Reopen();
    Store& store = this->store();
    agent.last_seen_ms = kNow + 3;
    std::vector<AgentRecord> agents = AllAgents(store);
    ASSERT_EQ(agents.size(), 1u);
    ExpectSameAgent(agents[0], agent);
    EXPECT_EQ(ActiveGrantIds(store, kNow), std::vector<std::string>{"g_kept"});
    Result<std::optional<GrantRecord>> found = store.FindGrant("g_revoked");
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ((*found)->revoked_at_ms, kNow);
    EXPECT_EQ((*found)->revoked_by, "usr_ann");
    Result<std::optional<SessionInfo>> info = store.FindSession(session, kNow);
    ASSERT_TRUE(info.ok() && info->has_value());
    EXPECT_TRUE((*info)->user.is_admin);
    Counters counters = CountersFor(store, kNow / kDayMs);
    EXPECT_EQ(counters.agents_registered, 1);
    EXPECT_EQ(counters.permissions_granted, 2);
    EXPECT_EQ(counters.checks_total, 1);
    EXPECT_EQ(counters.checks_today, 1);
  }
  // The link was stored unused, and its use is durable too.
  Result<std::optional<std::string>> email = this->store().ConsumeMagicLink(link, kNow);
  ASSERT_TRUE(email.ok() && email->has_value());
  this->Reopen();
  Result<std::optional<std::string>> again = this->store().ConsumeMagicLink(link, kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TYPED_TEST_P(StoreContractTest, ConcurrentWritersAllLand) {
  constexpr int kThreads = 32;
  constexpr int kPerThread = 200;
  this->InsertAgents({"ap_1", "ap_2"});
  std::atomic<int> failures{0};
  RunConcurrently(kThreads, [&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string id = "g_" + std::to_string(t) + "_" + std::to_string(i);
      Status s = this->store().InsertGrant(TestGrant(id, i % 2 == 0 ? "ap_1" : "ap_2"));
      if (!s.ok()) ++failures;
    }
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ActiveGrantIds(this->store(), kNow).size(),
            static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(CountersFor(this->store(), 0).permissions_granted, kThreads * kPerThread);
  Result<std::optional<GrantRecord>> last = this->store().FindGrant("g_31_199");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->has_value());
}

TYPED_TEST_P(StoreContractTest, AFailingWriteDoesNotFailItsNeighbours) {
  constexpr int kThreads = 32;
  constexpr int kRounds = 40;
  this->InsertAgents({"ap_1"});
  this->InsertGrants({TestGrant("g_taken", "ap_1")});
  std::atomic<int> good_failed{0};
  std::atomic<int> bad_succeeded{0};
  std::atomic<int> bad_wrong_code{0};
  // Half the threads write valid grants while the other half keep colliding, so that commits
  // group good and bad writes together.
  RunConcurrently(kThreads, [&](int t) {
    for (int i = 0; i < kRounds; ++i) {
      if (t % 2 == 0) {
        std::string id = "g_" + std::to_string(t) + "_" + std::to_string(i);
        if (!this->store().InsertGrant(TestGrant(id, "ap_1")).ok()) ++good_failed;
      } else {
        Status s = i % 2 == 0 ? this->store().InsertGrant(TestGrant("g_taken", "ap_1"))
                              : this->store().InsertAgent(TestAgent("ap_1"));
        if (s.ok()) {
          ++bad_succeeded;
        } else if (s.error().code != Code::kConflict) {
          ++bad_wrong_code;
        }
      }
    }
  });
  EXPECT_EQ(good_failed.load(), 0);
  EXPECT_EQ(bad_succeeded.load(), 0);
  EXPECT_EQ(bad_wrong_code.load(), 0);
  EXPECT_EQ(ActiveGrantIds(this->store(), kNow).size(),
            static_cast<std::size_t>(1 + kThreads / 2 * kRounds));
  EXPECT_EQ(AllAgents(this->store()).size(), 1u);
}

TYPED_TEST_P(StoreContractTest, ConcurrentRevokesRevokeEachGrantOnce) {
  constexpr int kGrants = 50;
  this->InsertAgents({"ap_1"});
  std::vector<std::string> ids;
  for (int i = 0; i < kGrants; ++i) {
    ids.push_back("g_" + std::to_string(i));
    ASSERT_TRUE(this->store().InsertGrant(TestGrant(ids.back(), "ap_1")).ok());
  }
  std::mutex mu;
  std::vector<std::string> revoked;
  RunConcurrently(8, [&](int t) {
    Result<std::vector<std::string>> now = this->store().RevokeGrants(ids, kNow + t, "usr_x");
    ASSERT_TRUE(now.ok());
    std::lock_guard lock(mu);
    revoked.insert(revoked.end(), now->begin(), now->end());
  });
  std::sort(revoked.begin(), revoked.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(revoked, ids);  // every grant exactly once across all callers
  EXPECT_TRUE(ActiveGrantIds(this->store(), kNow).empty());
}

TYPED_TEST_P(StoreContractTest, ReadsSeeCompletedWritesWhileOthersWrite) {
  constexpr int kWriters = 8;
  constexpr int kPerWriter = 50;
  this->InsertAgents({"ap_1"});
  std::atomic<int> stale_reads{0};
  RunConcurrently(kWriters * 2, [&](int t) {
    for (int i = 0; i < kPerWriter; ++i) {
      if (t < kWriters) {
        std::string id = "g_" + std::to_string(t) + "_" + std::to_string(i);
        ASSERT_TRUE(this->store().InsertGrant(TestGrant(id, "ap_1")).ok());
        // A write that returned is visible to the very next read.
        Result<std::optional<GrantRecord>> found = this->store().FindGrant(id);
        if (!found.ok() || !found->has_value()) ++stale_reads;
      } else {
        Result<std::vector<GrantRecord>> list =
            this->store().ListGrants(Filter("", "", kActiveOnly, 10));
        ASSERT_TRUE(list.ok()) << list.error().message;
      }
    }
  });
  EXPECT_EQ(stale_reads.load(), 0);
}

TYPED_TEST_P(StoreContractTest, ExceptionsInSinksComeBackAsErrors) {
  this->InsertAgents({"ap_1"});
  this->InsertGrants({TestGrant("g_1", "ap_1")});
  Status agents = this->store().LoadAgents([](AgentRecord&&) { throw std::runtime_error("boom"); });
  ASSERT_FALSE(agents.ok());
  EXPECT_EQ(agents.error().code, Code::kServerError);
  Status grants =
      this->store().LoadActiveGrants(kNow, [](GrantRecord&&) { throw std::runtime_error("boom"); });
  ASSERT_FALSE(grants.ok());
  // The store is still usable afterwards, and nothing is left half-read.
  this->InsertGrants({TestGrant("g_2", "ap_1")});
  EXPECT_EQ(ActiveGrantIds(this->store(), kNow), (std::vector<std::string>{"g_1", "g_2"}));
}

TYPED_TEST_P(StoreContractTest, IdempotencyClaimsReplaysAndRejects) {
  Store& store = this->store();
  crypto::Digest key = TestDigest("idem:key");
  crypto::Digest body = TestDigest("idem:body");
  const std::int64_t ttl = 86'400'000;
  auto begin = [&](const crypto::Digest& fp, std::int64_t now) {
    Result<IdempotencyOutcome> r = store.BeginIdempotent(key, fp, now, now + ttl, now - 60'000);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : IdempotencyOutcome{};
  };
  EXPECT_EQ(begin(body, kNow).state, IdempotencyState::kStarted);
  // Same request while the first runs; another request under the same key.
  EXPECT_EQ(begin(body, kNow + 1).state, IdempotencyState::kInProgress);
  EXPECT_EQ(begin(TestDigest("idem:other"), kNow + 1).state, IdempotencyState::kMismatch);

  ASSERT_TRUE(store.FinishIdempotent(key, 201, "application/json", R"({"Location":"/x"})",
                                     R"({"id":1})").ok());
  IdempotencyOutcome replay = begin(body, kNow + 2);
  EXPECT_EQ(replay.state, IdempotencyState::kReplay);
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.content_type, "application/json");
  EXPECT_EQ(replay.headers_json, R"({"Location":"/x"})");
  EXPECT_EQ(replay.body, R"({"id":1})");
  EXPECT_EQ(begin(TestDigest("idem:other"), kNow + 2).state, IdempotencyState::kMismatch);

  // After expiry the key is free again, for any request.
  EXPECT_EQ(begin(TestDigest("idem:other"), kNow + ttl).state, IdempotencyState::kStarted);
}

TYPED_TEST_P(StoreContractTest, IdempotencyAbandonAndStaleTakeover) {
  crypto::Digest key = TestDigest("idem:abandon");
  crypto::Digest body = TestDigest("idem:body");
  // this->store() each time: Reopen() below replaces the store.
  auto state = [&](std::int64_t now, std::int64_t stale_before) {
    Result<IdempotencyOutcome> r =
        this->store().BeginIdempotent(key, body, now, now + 86'400'000, stale_before);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->state : IdempotencyState::kMismatch;
  };
  EXPECT_EQ(state(kNow, kNow - 60'000), IdempotencyState::kStarted);
  ASSERT_TRUE(this->store().AbandonIdempotent(key).ok());
  EXPECT_EQ(state(kNow + 1, kNow - 60'000), IdempotencyState::kStarted);  // free again
  // Still running, but started before the stale cut-off: a retry takes it over.
  EXPECT_EQ(state(kNow + 2, kNow + 1), IdempotencyState::kInProgress);
  EXPECT_EQ(state(kNow + 3, kNow + 10), IdempotencyState::kStarted);
  // Records survive a reopen, and Prune removes expired ones.
  ASSERT_TRUE(this->store().FinishIdempotent(key, 200, "application/json", "{}", "{}").ok());
  this->Reopen();
  EXPECT_EQ(state(kNow + 4, kNow - 60'000), IdempotencyState::kReplay);
  ASSERT_TRUE(this->store().Prune(kNow + 3 + 86'400'000, 0).ok());
  EXPECT_EQ(state(kNow + 5, kNow - 60'000), IdempotencyState::kStarted);
}

TYPED_TEST_P(StoreContractTest, IdempotencyRaceHasOneOwner) {
  crypto::Digest key = TestDigest("idem:race");
  crypto::Digest body = TestDigest("idem:body");
  std::atomic<int> started{0};
  std::atomic<int> errors{0};
  RunConcurrently(16, [&](int) {
    Result<IdempotencyOutcome> r =
        this->store().BeginIdempotent(key, body, kNow, kNow + 86'400'000, kNow - 60'000);
    if (!r.ok()) {
      ++errors;
    } else if (r->state == IdempotencyState::kStarted) {
      ++started;
    }
  });
  EXPECT_EQ(started.load(), 1);
  EXPECT_EQ(errors.load(), 0);
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreContractTest, IdempotencyClaimsReplaysAndRejects, IdempotencyAbandonAndStaleTakeover,
    IdempotencyRaceHasOneOwner, EmptyStoreHasNothing, AgentRoundTrips, DuplicateAgentIsAnErrorValue,
    GrantRoundTrips, BadGrantIsAnErrorValue, RevokeReturnsOnlyWhatItRevokedNow,
    LoadActiveGrantsExcludesRevokedAndExpired, ListGrantsIsNewestFirstAndFiltered,
    SignInCreatesOnceThenFinds, OnlyTheFirstPromotableUserBecomesAdmin, FirstAdminRaceHasOneWinner,
    ConcurrentSignInsOfOneEmailMakeOneUser, MagicLinkIsSingleUseAndExpires,
    MagicLinkRaceHasOneWinner, SessionsExpireAndCanBeDeleted, BookkeepingMovesCountersAndLastSeen,
    PruneDeletesExpiredLinksAndSessions, EverythingSurvivesReopen, ConcurrentWritersAllLand,
    AFailingWriteDoesNotFailItsNeighbours, ConcurrentRevokesRevokeEachGrantOnce,
    ReadsSeeCompletedWritesWhileOthersWrite, ExceptionsInSinksComeBackAsErrors);

}  // namespace agentgate::store::contract
