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
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
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

// A check by the agent itself. Positional, because GCC warns about the fields aggregate
// initialization leaves out.
inline CheckRecord TestCheck(const std::string& agent_id, const std::string& action, bool allowed,
                             const std::string& reason, std::int64_t at_ms,
                             std::int32_t latency_us) {
  CheckRecord check;
  check.Assign(agent_id, action, reason, "", "", "");
  check.allowed = allowed;
  check.at_ms = at_ms;
  check.latency_us = latency_us;
  return check;
}

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

// Ids of ListAgentsOf's answer for "me@example.com" / usr_me, in order.
inline std::vector<std::string> AgentsOfMe(Store& store, AgentListFilter::Relation relation,
                                           int limit = 50,
                                           std::optional<std::pair<std::int64_t, std::string>>
                                               before = std::nullopt) {
  AgentListFilter filter;
  filter.email = "me@example.com";
  filter.user_id = "usr_me";
  filter.relation = relation;
  filter.now_ms = kNow;
  filter.limit = limit;
  filter.before = std::move(before);
  Result<std::vector<AgentListing>> listed = store.ListAgentsOf(filter);
  EXPECT_TRUE(listed.ok()) << listed.error().message;
  std::vector<std::string> ids;
  if (listed.ok()) {
    for (const AgentListing& a : *listed) ids.push_back(a.agent.id);
  }
  return ids;
}

TYPED_TEST_P(StoreContractTest, ListAgentsOfOwnedAndGranted) {
  using Relation = AgentListFilter::Relation;
  // ap_own: mine; ap_both: mine and granted by me; ap_gr: granted by me (revoked and active);
  // ap_old: granted by me once, revoked; ap_other: someone else's, granted by someone else.
  std::int64_t at = kNow - 10'000;
  for (const char* id : {"ap_own", "ap_both", "ap_gr", "ap_old", "ap_other"}) {
    AgentRecord agent = TestAgent(id);
    agent.created_at_ms = at += 1000;
    if (std::string(id) == "ap_own" || std::string(id) == "ap_both") {
      agent.developer_email = "me@example.com";
    }
    ASSERT_TRUE(this->store().InsertAgent(agent).ok());
  }
  auto mine = [](std::string id, std::string agent) {
    GrantRecord g = TestGrant(std::move(id), std::move(agent));
    g.granted_by = "usr_me";
    g.granted_by_email = "me@example.com";
    return g;
  };
  GrantRecord expired = mine("g_exp", "ap_gr");
  expired.expires_at_ms = kNow - 1;
  this->InsertGrants({mine("g_both", "ap_both"), mine("g_gr1", "ap_gr"), mine("g_gr2", "ap_gr"),
                      expired, mine("g_old", "ap_old"), TestGrant("g_other", "ap_other"),
                      TestGrant("g_other_own", "ap_own")});
  ASSERT_TRUE(this->store().RevokeGrants({"g_old"}, kNow - 5, "usr_me").ok());

  EXPECT_EQ(AgentsOfMe(this->store(), Relation::kAny),
            (std::vector<std::string>{"ap_old", "ap_gr", "ap_both", "ap_own"}));
  EXPECT_EQ(AgentsOfMe(this->store(), Relation::kOwned),
            (std::vector<std::string>{"ap_both", "ap_own"}));
  EXPECT_EQ(AgentsOfMe(this->store(), Relation::kGranted),
            (std::vector<std::string>{"ap_old", "ap_gr", "ap_both"}));

  AgentListFilter filter;
  filter.email = "me@example.com";
  filter.user_id = "usr_me";
  filter.now_ms = kNow;
  Result<std::vector<AgentListing>> listed = this->store().ListAgentsOf(filter);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 4u);
  const AgentListing& old = (*listed)[0];
  EXPECT_FALSE(old.owned);
  EXPECT_TRUE(old.granted);
  EXPECT_EQ(old.active_permissions, 0);  // revoked
  const AgentListing& gr = (*listed)[1];
  EXPECT_EQ(gr.active_permissions, 2);   // the expired one does not count
  EXPECT_EQ(gr.agent.name, TestAgent("ap_gr").name);
  const AgentListing& both = (*listed)[2];
  EXPECT_TRUE(both.owned);
  EXPECT_TRUE(both.granted);
  EXPECT_EQ(both.active_permissions, 1);
  const AgentListing& own = (*listed)[3];
  EXPECT_TRUE(own.owned);
  EXPECT_FALSE(own.granted);  // someone else's grant to my agent is not mine
  EXPECT_EQ(own.active_permissions, 0);
  EXPECT_EQ(own.agent.developer_email, "me@example.com");

  // Paging: newest first, continuing strictly after the cursor.
  EXPECT_EQ(AgentsOfMe(this->store(), Relation::kAny, 2),
            (std::vector<std::string>{"ap_old", "ap_gr"}));
  EXPECT_EQ(AgentsOfMe(this->store(), Relation::kAny, 2,
                       std::make_pair(gr.agent.created_at_ms, gr.agent.id)),
            (std::vector<std::string>{"ap_both", "ap_own"}));
  // Someone with nothing sees nothing.
  filter.email = "nobody@example.com";
  filter.user_id = "usr_nobody";
  listed = this->store().ListAgentsOf(filter);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
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
  first.checks = {TestCheck("ap_1", "read:g_1", true, "", kNow, 12),
                  TestCheck("ap_1", "write", false, "no_grant", kNow + 1, 30),
                  TestCheck("ap_unknown", "read", false, "agent_not_found", kNow + 2, 5)};
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
  batch.checks = {TestCheck("ap_1", "read", true, "", kNow, 3)};
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

// --- effects, access tokens, activity and webhooks
// ------------------------------------------------

// For ASSERT_TRUE(IsOk(...)): the error message shows in the failure.
inline ::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.error().message;
}
template <class T>
::testing::AssertionResult IsOk(const Result<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().message;
}

inline ::testing::AssertionResult IsConflict(const Status& s) {
  if (s.ok()) return ::testing::AssertionFailure() << "succeeded";
  if (s.error().code == Code::kConflict) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not a conflict: " << s.error().message;
}

inline constexpr std::int64_t kNoCursor = std::numeric_limits<std::int64_t>::max();

inline ActivityEvent TestEvent(const std::string& action, std::int64_t at_ms,
                               const std::string& target = "") {
  ActivityEvent e;
  e.at_ms = at_ms;
  e.actor_kind = "session";
  e.actor_id = "usr_ann";
  e.user_id = "usr_ann";
  e.action = action;
  e.target = target.empty() ? "target:" + action : target;
  e.agent_id = "ap_1";
  e.outcome = "success";
  e.status = 201;
  e.error = "";
  e.request_id = "req_" + action;
  e.ip = "192.0.2.7";
  e.user_agent = "contract-test/1";
  e.latency_us = 42;
  return e;
}

inline void ExpectSameEvent(const ActivityEvent& actual, const ActivityEvent& expected) {
  EXPECT_EQ(actual.at_ms, expected.at_ms);
  EXPECT_EQ(actual.actor_kind, expected.actor_kind);
  EXPECT_EQ(actual.actor_id, expected.actor_id);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.action, expected.action);
  EXPECT_EQ(actual.target, expected.target);
  EXPECT_EQ(actual.agent_id, expected.agent_id);
  EXPECT_EQ(actual.outcome, expected.outcome);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.error, expected.error);
  EXPECT_EQ(actual.request_id, expected.request_id);
  EXPECT_EQ(actual.ip, expected.ip);
  EXPECT_EQ(actual.user_agent, expected.user_agent);
  EXPECT_EQ(actual.latency_us, expected.latency_us);
}

inline OutboundEvent TestOutbound(const std::string& id, const std::string& type,
                                  const std::string& audience_user_ids_json = "",
                                  const std::string& audience_emails_json = "",
                                  std::int64_t at_ms = kNow) {
  OutboundEvent e;
  e.id = id;
  e.type = type;
  e.payload_json = R"({"type":")" + type + R"(","data":{"id":")" + id + R"("}})";
  e.at_ms = at_ms;
  e.audience_user_ids_json = audience_user_ids_json;
  e.audience_emails_json = audience_emails_json;
  return e;
}

inline ApiTokenRecord TestToken(const std::string& id, const std::string& user_id,
                                std::int64_t created_at_ms = kNow - 100,
                                std::optional<std::int64_t> expires_at_ms = std::nullopt) {
  ApiTokenRecord t;
  t.id = id;
  t.user_id = user_id;
  t.name = "token " + id;
  t.abilities_json = R"(["permission:check","agent:create"])";
  t.token_hash = TestDigest("token:" + id);
  t.token_prefix = "agt_" + id;
  t.created_by = user_id;
  t.created_at_ms = created_at_ms;
  t.expires_at_ms = expires_at_ms;
  return t;
}

// The stored fields; user_email and user_is_admin are checked where they matter.
inline void ExpectSameToken(const ApiTokenRecord& actual, const ApiTokenRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.abilities_json, expected.abilities_json);
  EXPECT_EQ(actual.token_hash, expected.token_hash);
  EXPECT_EQ(actual.token_prefix, expected.token_prefix);
  EXPECT_EQ(actual.created_by, expected.created_by);
  EXPECT_EQ(actual.created_at_ms, expected.created_at_ms);
  EXPECT_EQ(actual.expires_at_ms, expected.expires_at_ms);
  EXPECT_EQ(actual.last_used_ms, expected.last_used_ms);
  EXPECT_EQ(actual.revoked_at_ms, expected.revoked_at_ms);
}

inline WebhookEndpoint TestWebhook(const std::string& id, const std::string& user_id,
                                   const std::string& events_json = R"(["*"])",
                                   const std::string& audience = "own",
                                   std::int64_t created_at_ms = kNow - 1000) {
  WebhookEndpoint e;
  e.id = id;
  e.user_id = user_id;
  e.audience = audience;
  e.url = "https://hooks.example.com/" + id;
  e.description = "receives for " + id;
  e.events_json = events_json;
  e.secret_sealed = "sealed:" + id;
  e.created_at_ms = created_at_ms;
  e.updated_at_ms = created_at_ms;
  return e;
}

inline void ExpectSameWebhook(const WebhookEndpoint& actual, const WebhookEndpoint& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.audience, expected.audience);
  EXPECT_EQ(actual.url, expected.url);
  EXPECT_EQ(actual.description, expected.description);
  EXPECT_EQ(actual.events_json, expected.events_json);
  EXPECT_EQ(actual.secret_sealed, expected.secret_sealed);
  EXPECT_EQ(actual.previous_secret_sealed, expected.previous_secret_sealed);
  EXPECT_EQ(actual.previous_secret_until_ms, expected.previous_secret_until_ms);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.disabled_reason, expected.disabled_reason);
  EXPECT_EQ(actual.created_at_ms, expected.created_at_ms);
  EXPECT_EQ(actual.updated_at_ms, expected.updated_at_ms);
}

inline ActivityFilter AnyActivity() { return ActivityFilter{}; }

// The log as ListActivity gives it (newest first).
inline std::vector<ActivityEvent> ActivityLog(Store& store, const ActivityFilter& filter) {
  Result<std::vector<ActivityEvent>> events = store.ListActivity(filter);
  EXPECT_TRUE(events.ok()) << events.error().message;
  return events.ok() ? *events : std::vector<ActivityEvent>{};
}

inline std::vector<std::string> Targets(const std::vector<ActivityEvent>& events) {
  std::vector<std::string> targets;
  for (const ActivityEvent& e : events) targets.push_back(e.target);
  return targets;
}

inline std::vector<std::string> Actions(const std::vector<ActivityEvent>& events) {
  std::vector<std::string> actions;
  for (const ActivityEvent& e : events) actions.push_back(e.action);
  return actions;
}

inline std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Every message of an endpoint, newest first.
inline std::vector<WebhookMessage> Messages(Store& store, const std::string& endpoint_id) {
  Result<std::vector<WebhookMessage>> messages =
      store.ListWebhookMessages(endpoint_id, kNoCursor, 1000);
  EXPECT_TRUE(messages.ok()) << messages.error().message;
  return messages.ok() ? *messages : std::vector<WebhookMessage>{};
}

inline std::vector<std::string> MsgIds(const std::vector<WebhookMessage>& messages) {
  std::vector<std::string> ids;
  for (const WebhookMessage& m : messages) ids.push_back(m.msg_id);
  return ids;
}

// The endpoint's message with this webhook-id (a default one, with a failure, if none).
inline WebhookMessage MessageOf(Store& store, const std::string& endpoint_id,
                                const std::string& msg_id) {
  for (WebhookMessage& m : Messages(store, endpoint_id)) {
    if (m.msg_id == msg_id) return m;
  }
  ADD_FAILURE() << "no message " << msg_id << " for " << endpoint_id;
  return WebhookMessage{};
}

inline std::vector<WebhookAttempt> Attempts(Store& store, const std::string& endpoint_id,
                                            std::int64_t before_id = kNoCursor, int limit = 1000) {
  Result<std::vector<WebhookAttempt>> attempts =
      store.ListWebhookAttempts(endpoint_id, before_id, limit);
  EXPECT_TRUE(attempts.ok()) << attempts.error().message;
  return attempts.ok() ? *attempts : std::vector<WebhookAttempt>{};
}

inline std::vector<DueWebhookMessage> Claim(Store& store, std::int64_t now_ms,
                                            std::int64_t lease_until_ms, int limit = 100) {
  Result<std::vector<DueWebhookMessage>> due =
      store.ClaimDueWebhookMessages(now_ms, lease_until_ms, limit);
  EXPECT_TRUE(due.ok()) << due.error().message;
  return due.ok() ? *due : std::vector<DueWebhookMessage>{};
}

inline std::vector<std::string> MsgIds(const std::vector<DueWebhookMessage>& due) {
  std::vector<std::string> ids;
  for (const DueWebhookMessage& d : due) ids.push_back(d.message.msg_id);
  return ids;
}

// An attempt at a claimed message, as a delivery worker reports it.
inline WebhookAttempt AttemptAt(const WebhookMessage& message, int status, std::int64_t at_ms,
                                const std::string& error = "", int attempt = 1,
                                const std::string& trigger = "auto") {
  WebhookAttempt a;
  a.message_row = message.row;
  a.endpoint_id = message.endpoint_id;
  a.attempt = attempt;
  a.at_ms = at_ms;
  a.status = status;
  a.error = error;
  a.duration_ms = 17;
  a.response_excerpt = "answer to " + message.msg_id;
  a.trigger = trigger;
  return a;
}

inline std::vector<ApiTokenRecord> ActiveTokens(Store& store, std::int64_t now_ms) {
  std::vector<ApiTokenRecord> tokens;
  Status s = store.LoadActiveApiTokens(
      now_ms, [&](ApiTokenRecord&& token) { tokens.push_back(std::move(token)); });
  EXPECT_TRUE(s.ok()) << s.error().message;
  std::sort(tokens.begin(), tokens.end(),
            [](const ApiTokenRecord& a, const ApiTokenRecord& b) { return a.id < b.id; });
  return tokens;
}

inline std::vector<std::string> TokenIds(const std::vector<ApiTokenRecord>& tokens) {
  std::vector<std::string> ids;
  for (const ApiTokenRecord& t : tokens) ids.push_back(t.id);
  return ids;
}

inline std::vector<std::string> TokenIds(Store& store, const std::string& user_id,
                                         bool include_revoked) {
  Result<std::vector<ApiTokenRecord>> tokens = store.ListApiTokens(user_id, include_revoked);
  EXPECT_TRUE(tokens.ok()) << tokens.error().message;
  return tokens.ok() ? TokenIds(*tokens) : std::vector<std::string>{};
}

inline std::vector<std::string> WebhookIds(Store& store, const std::string& user_id) {
  Result<std::vector<WebhookEndpoint>> endpoints = store.ListWebhooks(user_id);
  EXPECT_TRUE(endpoints.ok()) << endpoints.error().message;
  std::vector<std::string> ids;
  if (endpoints.ok()) {
    for (const WebhookEndpoint& e : *endpoints) ids.push_back(e.id);
  }
  return ids;
}

// Signs in ann (the first admin), bob and carol, who own the tokens and endpoints below.
inline ::testing::AssertionResult SignInPeople(Store& store) {
  for (auto [email, id, admin] : {std::tuple{"ann@example.com", "usr_ann", true},
                                  std::tuple{"bob@example.com", "usr_bob", false},
                                  std::tuple{"carol@example.com", "usr_carol", false}}) {
    Result<UserRecord> user = store.SignInUser(email, id, kNow - kDayMs, admin);
    if (!user.ok()) return ::testing::AssertionFailure() << user.error().message;
    if (user->id != id) return ::testing::AssertionFailure() << "unexpected id " << user->id;
  }
  return ::testing::AssertionSuccess();
}

// One activity event and one webhook event (to every "all" endpoint), named after the write.
inline Effects EffectsNamed(const std::string& name) {
  Effects effects;
  effects.activity.push_back(TestEvent(name, kNow));
  effects.events.push_back(TestOutbound("msg_" + name, name));
  return effects;
}

TYPED_TEST_P(StoreContractTest, WritesRecordTheirEffectsOnlyWhenTheySucceed) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_all", "usr_ann", R"(["*"])", "all"), {})));

  ASSERT_TRUE(IsOk(store.InsertAgent(TestAgent("ap_1"), EffectsNamed("agent.registered"))));
  EXPECT_TRUE(IsConflict(store.InsertAgent(TestAgent("ap_1"), EffectsNamed("dup.agent"))));
  ASSERT_TRUE(
      IsOk(store.InsertGrant(TestGrant("g_1", "ap_1"), EffectsNamed("permission.granted"))));
  EXPECT_TRUE(IsConflict(store.InsertGrant(TestGrant("g_1", "ap_1"), EffectsNamed("dup.grant"))));
  ASSERT_TRUE(
      IsOk(store.InsertApiToken(TestToken("tok_1", "usr_ann"), EffectsNamed("token.created"))));
  ApiTokenRecord same_id = TestToken("tok_1", "usr_bob");
  same_id.token_hash = TestDigest("token:another");
  EXPECT_TRUE(IsConflict(store.InsertApiToken(same_id, EffectsNamed("dup.token"))));

  Result<bool> revoked = store.RevokeApiToken("tok_1", kNow, EffectsNamed("token.revoked"));
  ASSERT_TRUE(IsOk(revoked));
  EXPECT_TRUE(*revoked);
  Result<bool> again = store.RevokeApiToken("tok_1", kNow + 1, EffectsNamed("dup.revoke"));
  ASSERT_TRUE(IsOk(again));
  EXPECT_FALSE(*again);
  Result<bool> unknown = store.RevokeApiToken("tok_nope", kNow, EffectsNamed("unknown.revoke"));
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_FALSE(*unknown);

  using V = std::vector<std::string>;
  std::vector<ActivityEvent> log = ActivityLog(store, AnyActivity());
  EXPECT_EQ(Actions(log),
            (V{"token.revoked", "token.created", "permission.granted", "agent.registered"}));
  EXPECT_EQ(MsgIds(Messages(store, "whe_all")),
            (V{"msg_token.revoked", "msg_token.created", "msg_permission.granted",
               "msg_agent.registered"}));
  // Events come back whole, with increasing sequence numbers.
  ASSERT_EQ(log.size(), 4u);
  ExpectSameEvent(log.back(), TestEvent("agent.registered", kNow));
  for (std::size_t i = 1; i < log.size(); ++i) EXPECT_GT(log[i - 1].seq, log[i].seq);
}

TYPED_TEST_P(StoreContractTest, RevokeGrantsRecordsTheEffectsOfWhatItRevokedNow) {
  Store& store = this->store();
  this->InsertAgents({"ap_1"});
  this->InsertGrants({TestGrant("g_1", "ap_1"), TestGrant("g_2", "ap_1"), TestGrant("g_3", "ap_1"),
                      TestGrant("g_4", "ap_1")});
  ASSERT_TRUE(IsOk(store.RevokeGrants({"g_1"}, kNow, "usr_ann")));

  std::vector<std::vector<std::string>> calls;
  auto effects_for = [&](const std::vector<std::string>& ids) {
    calls.push_back(ids);
    Effects effects;
    for (const std::string& id : ids)
      effects.activity.push_back(TestEvent("permission.revoke", kNow, id));
    return effects;
  };
  using V = std::vector<std::string>;
  Result<V> now = store.RevokeGrants({"g_1", "g_2", "g_missing", "g_3", "g_2"}, kNow + 1, "usr_ann",
                                     effects_for);
  ASSERT_TRUE(IsOk(now));
  EXPECT_EQ(Sorted(*now), (V{"g_2", "g_3"}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Sorted(calls[0]), (V{"g_2", "g_3"}));
  EXPECT_EQ(Sorted(Targets(ActivityLog(store, AnyActivity()))), (V{"g_2", "g_3"}));

  // Nothing revoked now: no call, nothing recorded.
  Result<V> none =
      store.RevokeGrants({"g_1", "g_2", "g_missing"}, kNow + 2, "usr_ann", effects_for);
  ASSERT_TRUE(IsOk(none));
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(calls.size(), 1u);
  EXPECT_EQ(ActivityLog(store, AnyActivity()).size(), 2u);

  // Effects that cannot be made undo the revocation: the write and its effects are one.
  Result<V> failed = store.RevokeGrants(
      {"g_4"}, kNow + 3, "usr_ann", [](const V&) -> Effects { throw std::runtime_error("boom"); });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Code::kServerError);
  Result<std::optional<GrantRecord>> g4 = store.FindGrant("g_4");
  ASSERT_TRUE(g4.ok() && g4->has_value());
  EXPECT_EQ((*g4)->revoked_at_ms, std::nullopt);
  EXPECT_EQ(ActiveGrantIds(store, kNow + 3), V{"g_4"});
}

TYPED_TEST_P(StoreContractTest, WebhookEventsFanOutBySubscriptionAndAudience) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  WebhookEndpoint disabled = TestWebhook("whe_ann_off", "usr_ann");
  disabled.status = "disabled";
  disabled.disabled_reason = "paused";
  for (const WebhookEndpoint& endpoint : {
           TestWebhook("whe_ann_any", "usr_ann"),
           TestWebhook("whe_ann_granted", "usr_ann", R"(["permission.granted"])"),
           TestWebhook("whe_ann_agents", "usr_ann", R"(["agent.registered","agent.deleted"])"),
           disabled,
           TestWebhook("whe_bob", "usr_bob"),
           TestWebhook("whe_carol_all", "usr_carol", R"(["permission.granted"])", "all"),
       }) {
    ASSERT_TRUE(IsOk(store.InsertWebhook(endpoint, {}))) << endpoint.id;
  }
  Effects effects;
  effects.events = {
      TestOutbound("msg_1", "permission.granted", R"(["usr_ann"])"),
      TestOutbound("msg_2", "permission.granted", "", R"(["bob@example.com"])"),
      TestOutbound("msg_3", "permission.revoked", R"(["usr_ann","usr_nobody"])"),
      TestOutbound("msg_4", "agent.registered", R"(["usr_bob"])", R"(["ann@example.com"])"),
      TestOutbound("msg_5", "permission.granted"),  // concerns nobody in particular
  };
  ASSERT_TRUE(IsOk(store.InsertAgent(TestAgent("ap_1"), effects)));

  using V = std::vector<std::string>;
  auto received = [&](const std::string& endpoint_id) {
    return Sorted(MsgIds(Messages(store, endpoint_id)));
  };
  EXPECT_EQ(received("whe_ann_any"), (V{"msg_1", "msg_3", "msg_4"}));
  EXPECT_EQ(received("whe_ann_granted"), (V{"msg_1"}));
  EXPECT_EQ(received("whe_ann_agents"), (V{"msg_4"}));
  EXPECT_EQ(received("whe_ann_off"), V{});
  EXPECT_EQ(received("whe_bob"), (V{"msg_2", "msg_4"}));
  EXPECT_EQ(received("whe_carol_all"), (V{"msg_1", "msg_2", "msg_5"}));

  // A queued message carries the event whole, ready for its first attempt.
  std::vector<WebhookMessage> granted = Messages(store, "whe_ann_granted");
  ASSERT_EQ(granted.size(), 1u);
  const WebhookMessage& m = granted[0];
  EXPECT_EQ(m.endpoint_id, "whe_ann_granted");
  EXPECT_EQ(m.event_type, "permission.granted");
  EXPECT_EQ(m.payload, TestOutbound("msg_1", "permission.granted").payload_json);
  EXPECT_EQ(m.created_at_ms, kNow);
  EXPECT_EQ(m.status, "pending");
  EXPECT_EQ(m.attempts, 0);
  EXPECT_EQ(m.next_attempt_at_ms, kNow);
  EXPECT_EQ(m.last_status, 0);
  EXPECT_EQ(m.last_error, "");
  EXPECT_EQ(m.next_trigger, "auto");
  // One event, one webhook-id, whichever endpoint it goes to.
  EXPECT_EQ(MessageOf(store, "whe_carol_all", "msg_1").payload, m.payload);
}

TYPED_TEST_P(StoreContractTest, AccessTokensRoundTripListAndRevoke) {
  ASSERT_TRUE(SignInPeople(this->store()));
  ApiTokenRecord first = TestToken("tok_1", "usr_ann", kNow - 300);
  ApiTokenRecord second = TestToken("tok_2", "usr_ann", kNow - 200, kNow + 1000);
  second.created_by = "tok_1";
  second.last_used_ms = kNow - 5;
  second.abilities_json = R"(["*"])";
  ApiTokenRecord expiring = TestToken("tok_3", "usr_ann", kNow - 100, kNow);  // gone at kNow
  ApiTokenRecord bobs = TestToken("tok_4", "usr_bob", kNow - 50);
  for (const ApiTokenRecord& token : {first, second, expiring, bobs}) {
    ASSERT_TRUE(IsOk(this->store().InsertApiToken(token, {}))) << token.id;
  }
  ApiTokenRecord same_hash = TestToken("tok_5", "usr_bob");
  same_hash.token_hash = first.token_hash;
  EXPECT_TRUE(IsConflict(this->store().InsertApiToken(same_hash, {})));
  ApiTokenRecord same_id = TestToken("tok_1", "usr_bob");
  same_id.token_hash = TestDigest("token:fresh");
  EXPECT_TRUE(IsConflict(this->store().InsertApiToken(same_id, {})));
  EXPECT_FALSE(this->store().InsertApiToken(TestToken("tok_6", "usr_nobody"), {}).ok());

  using V = std::vector<std::string>;
  auto find = [&](const std::string& id) {
    Result<std::optional<ApiTokenRecord>> found = this->store().FindApiToken(id);
    EXPECT_TRUE(found.ok()) << found.error().message;
    return found.ok() ? *found : std::nullopt;
  };
  std::optional<ApiTokenRecord> found = find("tok_2");
  ASSERT_TRUE(found.has_value());
  ExpectSameToken(*found, second);
  EXPECT_EQ(found->user_email, "ann@example.com");
  EXPECT_TRUE(found->user_is_admin);
  found = find("tok_4");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->user_email, "bob@example.com");
  EXPECT_FALSE(found->user_is_admin);
  EXPECT_FALSE(find("tok_nope").has_value());
  EXPECT_FALSE(find("tok_5").has_value());

  EXPECT_EQ(TokenIds(this->store(), "usr_ann", false), (V{"tok_3", "tok_2", "tok_1"}));
  EXPECT_EQ(TokenIds(this->store(), "usr_bob", false), (V{"tok_4"}));
  EXPECT_EQ(TokenIds(this->store(), "usr_nobody", true), V{});

  Result<bool> revoked = this->store().RevokeApiToken("tok_1", kNow, {});
  ASSERT_TRUE(IsOk(revoked));
  EXPECT_TRUE(*revoked);
  Result<bool> again = this->store().RevokeApiToken("tok_1", kNow + 1, {});
  ASSERT_TRUE(IsOk(again));
  EXPECT_FALSE(*again);
  EXPECT_EQ(TokenIds(this->store(), "usr_ann", false), (V{"tok_3", "tok_2"}));
  EXPECT_EQ(TokenIds(this->store(), "usr_ann", true), (V{"tok_3", "tok_2", "tok_1"}));

  // Active: neither revoked nor expired, with the owner.
  std::vector<ApiTokenRecord> active = ActiveTokens(this->store(), kNow);
  ASSERT_EQ(TokenIds(active), (V{"tok_2", "tok_4"}));
  ExpectSameToken(active[0], second);
  EXPECT_EQ(active[0].user_email, "ann@example.com");
  EXPECT_TRUE(active[0].user_is_admin);
  EXPECT_EQ(active[1].user_email, "bob@example.com");
  EXPECT_FALSE(active[1].user_is_admin);
  EXPECT_EQ(TokenIds(ActiveTokens(this->store(), kNow - 1)), (V{"tok_2", "tok_3", "tok_4"}));
  EXPECT_EQ(TokenIds(ActiveTokens(this->store(), kNow + 1000)), (V{"tok_4"}));

  this->Reopen();
  found = find("tok_1");
  ASSERT_TRUE(found.has_value());
  first.revoked_at_ms = kNow;  // the first revocation is the one on record
  ExpectSameToken(*found, first);
  found = find("tok_2");
  ASSERT_TRUE(found.has_value());
  ExpectSameToken(*found, second);
  EXPECT_EQ(TokenIds(ActiveTokens(this->store(), kNow)), (V{"tok_2", "tok_4"}));
  EXPECT_EQ(TokenIds(this->store(), "usr_ann", true), (V{"tok_3", "tok_2", "tok_1"}));
  Result<bool> after_reopen = this->store().RevokeApiToken("tok_1", kNow + 2, {});
  ASSERT_TRUE(IsOk(after_reopen));
  EXPECT_FALSE(*after_reopen);
}

TYPED_TEST_P(StoreContractTest, TokenLastUsedOnlyMovesForward) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  ASSERT_TRUE(IsOk(store.InsertApiToken(TestToken("tok_1", "usr_ann"), {})));
  auto last_used = [&]() -> std::int64_t {
    Result<std::optional<ApiTokenRecord>> found = store.FindApiToken("tok_1");
    EXPECT_TRUE(found.ok() && found->has_value());
    return found.ok() && found->has_value() ? (*found)->last_used_ms : -1;
  };
  EXPECT_EQ(last_used(), 0);
  Bookkeeping batch;
  batch.token_last_used = {{"tok_1", kNow + 10}, {"tok_1", kNow + 5}, {"tok_unknown", kNow}};
  ASSERT_TRUE(IsOk(store.FlushBookkeeping(batch)));
  EXPECT_EQ(last_used(), kNow + 10);
  batch.token_last_used = {{"tok_1", kNow}};
  ASSERT_TRUE(IsOk(store.FlushBookkeeping(batch)));
  EXPECT_EQ(last_used(), kNow + 10);
  batch.token_last_used = {{"tok_1", kNow + 20}};
  ASSERT_TRUE(IsOk(store.FlushBookkeeping(batch)));
  EXPECT_EQ(last_used(), kNow + 20);
  std::vector<ApiTokenRecord> active = ActiveTokens(store, kNow);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].last_used_ms, kNow + 20);
}

TYPED_TEST_P(StoreContractTest, BookkeepingWritesChecksAndActivityInArrivalOrder) {
  Store& store = this->store();
  // Arrival (order_ns) and wall-clock time disagree on purpose: the sequence follows arrival.
  CheckRecord by_agent = TestCheck("ap_1", "repo:read", true, "", kNow + 50, 11);
  by_agent.order_ns = 10;
  by_agent.Set(CheckRecord::kRequestId, "req_a");
  by_agent.Set(CheckRecord::kIp, "198.51.100.1");
  by_agent.Set(CheckRecord::kUserAgent, "agent/1");
  CheckRecord by_token = TestCheck("ap_2", "repo:write", false, "no_grant", kNow + 40, 22);
  by_token.order_ns = 30;
  by_token.actor_kind = "api_token";
  by_token.Set(CheckRecord::kActorId, "tok_1");
  by_token.Set(CheckRecord::kUserId, "usr_ann");
  CheckRecord last_check = TestCheck("ap_1", "repo:delete", false, "expired", kNow + 30, 33);
  last_check.order_ns = 50;
  ActivityEvent first_event = TestEvent("agent.view", kNow + 20, "e_20");
  first_event.order_ns = 20;
  ActivityEvent second_event = TestEvent("agent.view", kNow + 10, "e_40");
  second_event.order_ns = 40;
  ActivityEvent last_event = TestEvent("agent.view", kNow, "e_60");
  last_event.order_ns = 60;
  Bookkeeping batch;
  batch.checks = {by_agent, by_token, last_check};
  batch.activity = {first_event, second_event, last_event};
  ASSERT_TRUE(IsOk(store.FlushBookkeeping(batch)));

  using V = std::vector<std::string>;
  std::vector<ActivityEvent> log = ActivityLog(store, AnyActivity());
  EXPECT_EQ(Targets(log), (V{"e_60", "repo:delete", "e_40", "repo:write", "e_20", "repo:read"}));
  for (std::size_t i = 1; i < log.size(); ++i) EXPECT_GT(log[i - 1].seq, log[i].seq);
  ASSERT_EQ(log.size(), 6u);

  // A check is an activity event with action permission.check; the agent is the actor unless
  // a token asked.
  ActivityEvent expected;
  expected.at_ms = kNow + 50;
  expected.actor_kind = "agent";
  expected.actor_id = "ap_1";
  expected.user_id = "";
  expected.action = "permission.check";
  expected.target = "repo:read";
  expected.agent_id = "ap_1";
  expected.outcome = "success";
  expected.status = 200;
  expected.error = "";
  expected.request_id = "req_a";
  expected.ip = "198.51.100.1";
  expected.user_agent = "agent/1";
  expected.latency_us = 11;
  ExpectSameEvent(log[5], expected);
  EXPECT_EQ(log[3].actor_kind, "api_token");
  EXPECT_EQ(log[3].actor_id, "tok_1");
  EXPECT_EQ(log[3].user_id, "usr_ann");
  EXPECT_EQ(log[3].agent_id, "ap_2");
  EXPECT_EQ(log[3].outcome, "denied");
  EXPECT_EQ(log[3].error, "no_grant");
  ExpectSameEvent(log[4], first_event);

  // Appended later, so later in the log, whatever its time.
  ASSERT_TRUE(IsOk(store.AppendActivity({})));
  ASSERT_TRUE(IsOk(store.AppendActivity({TestEvent("token.created", kNow - 1000, "late")})));
  log = ActivityLog(store, AnyActivity());
  ASSERT_EQ(log.size(), 7u);
  EXPECT_EQ(log[0].target, "late");
  EXPECT_GT(log[0].seq, log[1].seq);
}

TYPED_TEST_P(StoreContractTest, ListActivityFiltersAndPages) {
  Store& store = this->store();
  auto event = [](const std::string& target, const std::string& actor_kind,
                  const std::string& actor_id, const std::string& user_id,
                  const std::string& action, const std::string& agent_id,
                  const std::string& outcome, std::int64_t at_ms) {
    ActivityEvent e = TestEvent(action, at_ms, target);
    e.actor_kind = actor_kind;
    e.actor_id = actor_id;
    e.user_id = user_id;
    e.agent_id = agent_id;
    e.outcome = outcome;
    return e;
  };
  ASSERT_TRUE(IsOk(store.AppendActivity({
      event("e0", "session", "usr_ann", "usr_ann", "agent.register", "ap_1", "success", kNow),
      event("e1", "api_token", "tok_1", "usr_ann", "permission.grant", "ap_1", "success",
            kNow + 10),
  })));
  ASSERT_TRUE(IsOk(store.AppendActivity({
      event("e2", "agent", "ap_2", "", "permission.check", "ap_2", "denied", kNow + 20),
      event("e3", "session", "usr_bob", "usr_bob", "permission.grant", "ap_2", "error", kNow + 30),
      event("e4", "anonymous", "", "", "auth.sign_in", "", "denied", kNow + 40),
  })));

  using V = std::vector<std::string>;
  auto targets = [&](const std::function<void(ActivityFilter&)>& set) {
    ActivityFilter filter;
    set(filter);
    return Targets(ActivityLog(store, filter));
  };
  EXPECT_EQ(targets([](ActivityFilter&) {}), (V{"e4", "e3", "e2", "e1", "e0"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.actor_kind = "session"; }), (V{"e3", "e0"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.actor_id = "tok_1"; }), (V{"e1"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.agent_id = "ap_2"; }), (V{"e3", "e2"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.action = "permission.grant"; }), (V{"e3", "e1"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.outcome = "denied"; }), (V{"e4", "e2"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.outcome = "nothing"; }), V{});
  EXPECT_EQ(targets([](ActivityFilter& f) {
              f.action = "permission.grant";
              f.actor_kind = "session";
            }),
            (V{"e3"}));
  // since is inclusive, until exclusive.
  EXPECT_EQ(targets([](ActivityFilter& f) {
              f.since_ms = kNow + 10;
              f.until_ms = kNow + 30;
            }),
            (V{"e2", "e1"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.since_ms = kNow + 40; }), (V{"e4"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.until_ms = kNow + 1; }), (V{"e0"}));
  EXPECT_EQ(targets([](ActivityFilter& f) { f.until_ms = kNow; }), V{});
  EXPECT_EQ(targets([](ActivityFilter& f) { f.limit = 0; }), V{});

  // Paging with the cursor: each page starts below the last seq of the previous one.
  V paged;
  std::int64_t cursor = kNoCursor;
  int pages = 0;
  for (; pages < 10; ++pages) {
    ActivityFilter filter;
    filter.limit = 2;
    filter.before_seq = cursor;
    std::vector<ActivityEvent> page = ActivityLog(store, filter);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    for (const ActivityEvent& e : page) paged.push_back(e.target);
    cursor = page.back().seq;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(paged, (V{"e4", "e3", "e2", "e1", "e0"}));
  std::vector<ActivityEvent> all = ActivityLog(store, AnyActivity());
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(targets([&](ActivityFilter& f) {
              f.agent_id = "ap_1";
              f.before_seq = all[3].seq;  // e1
            }),
            (V{"e0"}));
}

TYPED_TEST_P(StoreContractTest, ListActivityShowsPeopleWhatConcernsThem) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  AgentRecord mine = TestAgent("ap_mine");
  mine.developer_email = "ann@example.com";
  ASSERT_TRUE(IsOk(store.InsertAgent(mine)));
  this->InsertAgents({"ap_granted", "ap_other"});
  GrantRecord by_ann = TestGrant("g_ann", "ap_granted");
  by_ann.granted_by = "usr_ann";
  GrantRecord by_bob = TestGrant("g_bob", "ap_other");
  by_bob.granted_by = "usr_bob";
  this->InsertGrants({by_ann, by_bob});

  auto event = [](const std::string& target, const std::string& user_id,
                  const std::string& agent_id) {
    ActivityEvent e = TestEvent("something", kNow, target);
    e.actor_kind = user_id.empty() ? (agent_id.empty() ? "anonymous" : "agent") : "session";
    e.actor_id = user_id.empty() ? agent_id : user_id;
    e.user_id = user_id;
    e.agent_id = agent_id;
    return e;
  };
  ASSERT_TRUE(IsOk(store.AppendActivity({
      event("ann_own", "usr_ann", ""),
      event("granted_agent", "", "ap_granted"),
      event("mine_agent", "", "ap_mine"),
      event("bob_on_granted", "usr_bob", "ap_granted"),
      event("other_agent", "", "ap_other"),
      event("bob_own", "usr_bob", ""),
      event("anonymous", "", ""),
  })));

  using V = std::vector<std::string>;
  auto visible = [&](const std::string& user_id, const std::string& email,
                     const std::string& agent_id = "") {
    ActivityFilter filter;
    filter.visible_to_user_id = user_id;
    filter.visible_to_email = email;
    filter.agent_id = agent_id;
    return Sorted(Targets(ActivityLog(store, filter)));
  };
  EXPECT_EQ(visible("usr_ann", "ann@example.com"),
            Sorted({"ann_own", "granted_agent", "mine_agent", "bob_on_granted"}));
  EXPECT_EQ(visible("usr_bob", "bob@example.com"),
            Sorted({"bob_on_granted", "other_agent", "bob_own"}));
  EXPECT_EQ(visible("usr_carol", "carol@example.com"), V{});
  EXPECT_EQ(visible("usr_ann", "ann@example.com", "ap_other"), V{});
  EXPECT_EQ(visible("usr_ann", "ann@example.com", "ap_mine"), V{"mine_agent"});
  // Without the visibility fields, everything.
  EXPECT_EQ(ActivityLog(store, AnyActivity()).size(), 7u);
}

TYPED_TEST_P(StoreContractTest, PruneDeletesOldActivity) {
  Store& store = this->store();
  ASSERT_TRUE(IsOk(store.AppendActivity({TestEvent("a", kNow - 2000, "old"),
                                         TestEvent("a", kNow - 1000, "at_cutoff"),
                                         TestEvent("a", kNow, "new")})));
  Bookkeeping batch;
  batch.checks = {TestCheck("ap_1", "old_check", true, "", kNow - 1001, 1),
                  TestCheck("ap_1", "new_check", true, "", kNow - 999, 1)};
  ASSERT_TRUE(IsOk(store.FlushBookkeeping(batch)));
  ASSERT_TRUE(IsOk(store.Prune(kNow, kNow - 1000)));
  EXPECT_EQ(Sorted(Targets(ActivityLog(store, AnyActivity()))),
            Sorted({"at_cutoff", "new", "new_check"}));
}

TYPED_TEST_P(StoreContractTest, WebhookEndpointsRoundTripUpdateAndDelete) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  WebhookEndpoint a =
      TestWebhook("whe_a", "usr_ann", R"(["permission.granted"])", "own", kNow - 300);
  a.previous_secret_sealed = "sealed:old";
  a.previous_secret_until_ms = kNow + 5000;
  WebhookEndpoint b = TestWebhook("whe_b", "usr_bob", R"(["*"])", "own", kNow - 200);
  WebhookEndpoint c = TestWebhook("whe_c", "usr_ann", R"(["*"])", "all", kNow - 100);
  Effects created;
  created.activity = {TestEvent("webhook.create", kNow, "whe_a")};
  ASSERT_TRUE(IsOk(store.InsertWebhook(a, created)));
  ASSERT_TRUE(IsOk(store.InsertWebhook(b, {})));
  ASSERT_TRUE(IsOk(store.InsertWebhook(c, {})));
  EXPECT_TRUE(IsConflict(store.InsertWebhook(TestWebhook("whe_a", "usr_bob"), {})));

  Result<std::optional<WebhookEndpoint>> found = store.FindWebhook("whe_a");
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameWebhook(**found, a);
  Result<std::optional<WebhookEndpoint>> missing = store.FindWebhook("whe_nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  using V = std::vector<std::string>;
  EXPECT_EQ(WebhookIds(store, "usr_ann"), (V{"whe_a", "whe_c"}));
  EXPECT_EQ(WebhookIds(store, ""), (V{"whe_a", "whe_b", "whe_c"}));
  EXPECT_EQ(WebhookIds(store, "usr_nobody"), V{});

  Effects first;
  first.events = {TestOutbound("msg_1", "permission.granted", R"(["usr_ann"])")};
  ASSERT_TRUE(IsOk(store.InsertAgent(TestAgent("ap_1"), first)));
  EXPECT_EQ(MsgIds(Messages(store, "whe_a")), V{"msg_1"});

  // An update replaces the mutable fields, and the subscriptions follow events_json.
  WebhookEndpoint changed = a;
  changed.url = "https://hooks.example.com/elsewhere";
  changed.description = "moved";
  changed.events_json = R"(["agent.registered"])";
  changed.secret_sealed = "sealed:new";
  changed.previous_secret_sealed = "sealed:whe_a";
  changed.previous_secret_until_ms = kNow + 86'400'000;
  changed.updated_at_ms = kNow;
  Effects updated;
  updated.activity = {TestEvent("webhook.update", kNow, "whe_a")};
  ASSERT_TRUE(IsOk(store.UpdateWebhook(changed, updated)));
  found = store.FindWebhook("whe_a");
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameWebhook(**found, changed);
  Effects second;
  second.events = {TestOutbound("msg_2", "permission.granted", R"(["usr_ann"])"),
                   TestOutbound("msg_3", "agent.registered", R"(["usr_ann"])")};
  ASSERT_TRUE(IsOk(store.InsertAgent(TestAgent("ap_2"), second)));
  EXPECT_EQ(MsgIds(Messages(store, "whe_a")), (V{"msg_3", "msg_1"}));

  // Disabling fails the pending messages, and only those.
  WebhookMessage delivered = MessageOf(store, "whe_a", "msg_3");
  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(AttemptAt(delivered, 200, kNow + 5),
                                              AttemptOutcome::kDelivered, 0, "")));
  WebhookEndpoint disabled = changed;
  disabled.status = "disabled";
  disabled.disabled_reason = "paused by owner";
  disabled.updated_at_ms = kNow + 10;
  ASSERT_TRUE(IsOk(store.UpdateWebhook(disabled, {})));
  found = store.FindWebhook("whe_a");
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameWebhook(**found, disabled);
  WebhookMessage failed = MessageOf(store, "whe_a", "msg_1");
  EXPECT_EQ(failed.status, "failed");
  EXPECT_NE(failed.last_error.find("paused by owner"), std::string::npos) << failed.last_error;
  EXPECT_EQ(MessageOf(store, "whe_a", "msg_3").status, "delivered");
  for (const WebhookMessage& m : Messages(store, "whe_c")) EXPECT_EQ(m.status, "pending");
  EXPECT_EQ(Messages(store, "whe_c").size(), 3u);

  // Deleting takes the endpoint's log with it.
  Effects deleted;
  deleted.activity = {TestEvent("webhook.delete", kNow, "whe_a")};
  Result<bool> gone = store.DeleteWebhook("whe_a", deleted);
  ASSERT_TRUE(IsOk(gone));
  EXPECT_TRUE(*gone);
  Effects not_deleted;
  not_deleted.activity = {TestEvent("webhook.delete.again", kNow, "whe_a")};
  Result<bool> again = store.DeleteWebhook("whe_a", not_deleted);
  ASSERT_TRUE(IsOk(again));
  EXPECT_FALSE(*again);
  missing = store.FindWebhook("whe_a");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(WebhookIds(store, "usr_ann"), V{"whe_c"});
  EXPECT_EQ(Messages(store, "whe_a").size(), 0u);
  EXPECT_EQ(Attempts(store, "whe_a").size(), 0u);
  EXPECT_EQ(Messages(store, "whe_c").size(), 3u);
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())),
            (V{"webhook.delete", "webhook.update", "webhook.create"}));
  // A new endpoint under the same id starts with an empty log.
  ASSERT_TRUE(IsOk(store.InsertWebhook(a, {})));
  EXPECT_EQ(Messages(store, "whe_a").size(), 0u);
  EXPECT_EQ(Attempts(store, "whe_a").size(), 0u);
}

TYPED_TEST_P(StoreContractTest, ClaimingDueWebhookMessagesLeasesThem) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  WebhookEndpoint on = TestWebhook("whe_on", "usr_ann", R"(["permission.granted"])");
  WebhookEndpoint off = TestWebhook("whe_off", "usr_ann");
  off.status = "disabled";
  off.disabled_reason = "paused";
  ASSERT_TRUE(IsOk(store.InsertWebhook(on, {})));
  ASSERT_TRUE(IsOk(store.InsertWebhook(off, {})));
  // Queued directly, whatever the endpoint subscribes to.
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_on", TestOutbound("msg_due", "webhook.test", "", "", kNow - 10), "test")));
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_on", TestOutbound("msg_later", "permission.granted", "", "", kNow + 100), "auto")));
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_off", TestOutbound("msg_off", "webhook.test", "", "", kNow - 10), "test")));

  using V = std::vector<std::string>;
  std::vector<DueWebhookMessage> first = Claim(store, kNow, kNow + 1000);
  ASSERT_EQ(MsgIds(first), V{"msg_due"});
  const WebhookMessage& m = first[0].message;
  EXPECT_EQ(m.endpoint_id, "whe_on");
  EXPECT_EQ(m.event_type, "webhook.test");
  EXPECT_EQ(m.payload, TestOutbound("msg_due", "webhook.test").payload_json);
  EXPECT_EQ(m.created_at_ms, kNow - 10);
  EXPECT_EQ(m.status, "pending");
  EXPECT_EQ(m.attempts, 0);
  EXPECT_EQ(m.next_attempt_at_ms, kNow - 10);
  EXPECT_EQ(m.next_trigger, "test");
  ExpectSameWebhook(first[0].endpoint, on);

  // Leased: nobody else takes it until the lease ends.
  EXPECT_EQ(MsgIds(Claim(store, kNow + 1, kNow + 1001)), V{});
  EXPECT_EQ(MsgIds(Claim(store, kNow + 100, kNow + 1100)), V{"msg_later"});
  EXPECT_EQ(MsgIds(Claim(store, kNow + 999, kNow + 2000)), V{});
  EXPECT_EQ(MsgIds(Claim(store, kNow + 1000, kNow + 2000)), V{"msg_due"});
  EXPECT_EQ(MsgIds(Claim(store, kNow + 1100, kNow + 3000)), V{"msg_later"});

  // Up to limit at a time.
  std::vector<DueWebhookMessage> one = Claim(store, kNow + 5000, kNow + 6000, 1);
  ASSERT_EQ(one.size(), 1u);
  std::vector<DueWebhookMessage> rest = Claim(store, kNow + 5000, kNow + 6000, 10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(Sorted({one[0].message.msg_id, rest[0].message.msg_id}), (V{"msg_due", "msg_later"}));

  // The disabled endpoint's message waits until it is enabled again.
  WebhookEndpoint enabled = off;
  enabled.status = "enabled";
  enabled.disabled_reason = "";
  ASSERT_TRUE(IsOk(store.UpdateWebhook(enabled, {})));
  EXPECT_EQ(Sorted(MsgIds(Claim(store, kNow + 6000, kNow + 7000))),
            (V{"msg_due", "msg_later", "msg_off"}));
}

TYPED_TEST_P(StoreContractTest, RecordWebhookAttemptAppliesEachOutcome) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_a", "usr_ann"), {})));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_b", "usr_bob"), {})));
  for (const char* id : {"msg_ok", "msg_retry", "msg_fail", "msg_gone"}) {
    ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
        "whe_a", TestOutbound(id, "permission.granted", "", "", kNow - 10), "auto")));
  }
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_a", TestOutbound("msg_waiting", "permission.granted", "", "", kNow + 50'000), "auto")));
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_b", TestOutbound("msg_b", "permission.granted", "", "", kNow - 10), "auto")));

  using V = std::vector<std::string>;
  std::vector<DueWebhookMessage> claimed = Claim(store, kNow, kNow + 60'000);
  ASSERT_EQ(Sorted(MsgIds(claimed)), (V{"msg_b", "msg_fail", "msg_gone", "msg_ok", "msg_retry"}));
  auto claimed_message = [&](const std::string& msg_id) {
    for (const DueWebhookMessage& due : claimed) {
      if (due.message.msg_id == msg_id) return due.message;
    }
    return WebhookMessage{};
  };

  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(AttemptAt(claimed_message("msg_ok"), 200, kNow + 1),
                                              AttemptOutcome::kDelivered, 0, "")));
  ASSERT_TRUE(IsOk(
      store.RecordWebhookAttempt(AttemptAt(claimed_message("msg_retry"), 503, kNow + 2, "HTTP 503"),
                                 AttemptOutcome::kRetry, kNow + 5000, "")));
  ASSERT_TRUE(IsOk(
      store.RecordWebhookAttempt(AttemptAt(claimed_message("msg_fail"), 0, kNow + 3, "timeout"),
                                 AttemptOutcome::kFailed, 0, "")));

  WebhookMessage ok = MessageOf(store, "whe_a", "msg_ok");
  EXPECT_EQ(ok.status, "delivered");
  EXPECT_EQ(ok.attempts, 1);
  EXPECT_EQ(ok.last_status, 200);
  EXPECT_EQ(ok.last_error, "");
  WebhookMessage retry = MessageOf(store, "whe_a", "msg_retry");
  EXPECT_EQ(retry.status, "pending");
  EXPECT_EQ(retry.attempts, 1);
  EXPECT_EQ(retry.next_attempt_at_ms, kNow + 5000);
  EXPECT_EQ(retry.last_status, 503);
  EXPECT_EQ(retry.last_error, "HTTP 503");
  EXPECT_EQ(retry.next_trigger, "auto");
  WebhookMessage fail = MessageOf(store, "whe_a", "msg_fail");
  EXPECT_EQ(fail.status, "failed");
  EXPECT_EQ(fail.attempts, 1);
  EXPECT_EQ(fail.last_status, 0);
  EXPECT_EQ(fail.last_error, "timeout");

  // A retry is due at its time, not when the claim's lease would have ended.
  EXPECT_EQ(MsgIds(Claim(store, kNow + 4999, kNow + 70'000)), V{});
  std::vector<DueWebhookMessage> retried = Claim(store, kNow + 5000, kNow + 70'000);
  ASSERT_EQ(MsgIds(retried), V{"msg_retry"});
  EXPECT_EQ(retried[0].message.attempts, 1);

  // 410 Gone: the endpoint is disabled with the reason, and its other pending messages fail.
  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(
      AttemptAt(claimed_message("msg_gone"), 410, kNow + 6000, "HTTP 410"), AttemptOutcome::kGone,
      0, "receiver answered 410 Gone")));
  Result<std::optional<WebhookEndpoint>> endpoint = store.FindWebhook("whe_a");
  ASSERT_TRUE(endpoint.ok() && endpoint->has_value());
  EXPECT_EQ((*endpoint)->status, "disabled");
  EXPECT_EQ((*endpoint)->disabled_reason, "receiver answered 410 Gone");
  WebhookMessage gone = MessageOf(store, "whe_a", "msg_gone");
  EXPECT_EQ(gone.status, "failed");
  EXPECT_EQ(gone.attempts, 1);
  EXPECT_EQ(gone.last_status, 410);
  for (const char* id : {"msg_waiting", "msg_retry"}) {
    WebhookMessage m = MessageOf(store, "whe_a", id);
    EXPECT_EQ(m.status, "failed") << id;
    EXPECT_NE(m.last_error.find("receiver answered 410 Gone"), std::string::npos)
        << id << ": " << m.last_error;
  }
  EXPECT_EQ(MessageOf(store, "whe_a", "msg_ok").status, "delivered");
  EXPECT_EQ(MessageOf(store, "whe_a", "msg_fail").last_error, "timeout");
  WebhookMessage other = MessageOf(store, "whe_b", "msg_b");
  EXPECT_EQ(other.status, "pending");
  EXPECT_EQ(other.attempts, 0);
  Result<std::optional<WebhookEndpoint>> b = store.FindWebhook("whe_b");
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->status, "enabled");
  EXPECT_EQ(MsgIds(Claim(store, kNow + 60'000, kNow + 80'000)), V{"msg_b"});

  // The attempts log, newest first, page by page.
  std::vector<WebhookAttempt> attempts = Attempts(store, "whe_a");
  ASSERT_EQ(attempts.size(), 4u);
  std::vector<std::string> attempted;
  for (const WebhookAttempt& a : attempts) attempted.push_back(a.msg_id);
  EXPECT_EQ(attempted, (V{"msg_gone", "msg_fail", "msg_retry", "msg_ok"}));
  for (std::size_t i = 1; i < attempts.size(); ++i) EXPECT_GT(attempts[i - 1].id, attempts[i].id);
  const WebhookAttempt& newest = attempts[0];
  WebhookAttempt expected = AttemptAt(claimed_message("msg_gone"), 410, kNow + 6000, "HTTP 410");
  EXPECT_EQ(newest.message_row, expected.message_row);
  EXPECT_EQ(newest.event_type, "permission.granted");
  EXPECT_EQ(newest.endpoint_id, "whe_a");
  EXPECT_EQ(newest.attempt, 1);
  EXPECT_EQ(newest.at_ms, kNow + 6000);
  EXPECT_EQ(newest.status, 410);
  EXPECT_EQ(newest.error, "HTTP 410");
  EXPECT_EQ(newest.duration_ms, expected.duration_ms);
  EXPECT_EQ(newest.response_excerpt, expected.response_excerpt);
  EXPECT_EQ(newest.trigger, "auto");
  std::vector<WebhookAttempt> page = Attempts(store, "whe_a", attempts[1].id, 1);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].msg_id, "msg_retry");
  EXPECT_EQ(Attempts(store, "whe_b").size(), 0u);

  // Messages page the same way.
  Result<std::vector<WebhookMessage>> p1 = store.ListWebhookMessages("whe_a", kNoCursor, 2);
  ASSERT_TRUE(IsOk(p1));
  EXPECT_EQ(MsgIds(*p1), (V{"msg_waiting", "msg_gone"}));
  Result<std::vector<WebhookMessage>> p2 = store.ListWebhookMessages("whe_a", p1->back().row, 2);
  ASSERT_TRUE(IsOk(p2));
  EXPECT_EQ(MsgIds(*p2), (V{"msg_fail", "msg_retry"}));
  Result<std::vector<WebhookMessage>> p3 = store.ListWebhookMessages("whe_a", p2->back().row, 2);
  ASSERT_TRUE(IsOk(p3));
  EXPECT_EQ(MsgIds(*p3), V{"msg_ok"});
}

TYPED_TEST_P(StoreContractTest, ReplayQueuesAMessageAgain) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_a", "usr_ann"), {})));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_b", "usr_bob"), {})));
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_a", TestOutbound("msg_1", "permission.granted", "", "", kNow - 10), "auto")));
  ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
      "whe_b", TestOutbound("msg_2", "permission.granted", "", "", kNow - 10), "auto")));
  using V = std::vector<std::string>;
  std::vector<DueWebhookMessage> claimed = Claim(store, kNow, kNow + 1000);
  ASSERT_EQ(Sorted(MsgIds(claimed)), (V{"msg_1", "msg_2"}));
  WebhookMessage first = MessageOf(store, "whe_a", "msg_1");
  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(AttemptAt(first, 500, kNow + 1, "HTTP 500", 1),
                                              AttemptOutcome::kFailed, 0, "")));

  Result<bool> replayed = store.ReplayWebhookMessage("whe_a", "msg_1", kNow + 100);
  ASSERT_TRUE(IsOk(replayed));
  EXPECT_TRUE(*replayed);
  WebhookMessage queued = MessageOf(store, "whe_a", "msg_1");
  EXPECT_EQ(queued.status, "pending");
  EXPECT_EQ(queued.attempts, 0);
  EXPECT_EQ(queued.next_attempt_at_ms, kNow + 100);
  EXPECT_EQ(queued.next_trigger, "replay");

  // Unknown messages, and messages of other endpoints, are not replayed.
  for (auto [endpoint, msg] : {std::pair{"whe_b", "msg_1"}, std::pair{"whe_a", "msg_2"},
                               std::pair{"whe_a", "msg_nope"}, std::pair{"whe_nope", "msg_1"}}) {
    Result<bool> r = store.ReplayWebhookMessage(endpoint, msg, kNow + 100);
    ASSERT_TRUE(IsOk(r));
    EXPECT_FALSE(*r) << endpoint << " " << msg;
  }
  WebhookMessage untouched = MessageOf(store, "whe_b", "msg_2");
  EXPECT_EQ(untouched.next_trigger, "auto");
  EXPECT_EQ(untouched.next_attempt_at_ms, kNow - 10);

  // It is due at the replay time, and says why it is sent.
  EXPECT_EQ(MsgIds(Claim(store, kNow + 99, kNow + 200)), V{});
  std::vector<DueWebhookMessage> due = Claim(store, kNow + 100, kNow + 200);
  ASSERT_EQ(MsgIds(due), V{"msg_1"});
  EXPECT_EQ(due[0].message.next_trigger, "replay");
  EXPECT_EQ(due[0].message.attempts, 0);
  ASSERT_TRUE(
      IsOk(store.RecordWebhookAttempt(AttemptAt(due[0].message, 200, kNow + 101, "", 1, "replay"),
                                      AttemptOutcome::kDelivered, 0, "")));
  WebhookMessage delivered = MessageOf(store, "whe_a", "msg_1");
  EXPECT_EQ(delivered.status, "delivered");
  EXPECT_EQ(delivered.attempts, 1);
  std::vector<WebhookAttempt> attempts = Attempts(store, "whe_a");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].trigger, "replay");
  EXPECT_EQ(attempts[1].trigger, "auto");
}

TYPED_TEST_P(StoreContractTest, PruneRemovesFinishedWebhookMessagesButNeverPendingOnes) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_a", "usr_ann"), {})));
  for (auto [id, at] :
       {std::pair{"msg_old_delivered", kNow - 5000}, std::pair{"msg_old_failed", kNow - 5000},
        std::pair{"msg_old_pending", kNow - 5000}, std::pair{"msg_new_delivered", kNow - 500}}) {
    ASSERT_TRUE(IsOk(store.EnqueueWebhookMessage(
        "whe_a", TestOutbound(id, "permission.granted", "", "", at), "auto")));
  }
  ASSERT_EQ(Claim(store, kNow - 400, kNow - 300).size(), 4u);
  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(
      AttemptAt(MessageOf(store, "whe_a", "msg_old_delivered"), 200, kNow - 2000),
      AttemptOutcome::kDelivered, 0, "")));
  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(
      AttemptAt(MessageOf(store, "whe_a", "msg_old_failed"), 500, kNow - 2000),
      AttemptOutcome::kFailed, 0, "")));
  ASSERT_TRUE(IsOk(store.RecordWebhookAttempt(
      AttemptAt(MessageOf(store, "whe_a", "msg_new_delivered"), 200, kNow),
      AttemptOutcome::kDelivered, 0, "")));

  ASSERT_TRUE(IsOk(store.Prune(kNow, kNow - 1000)));
  using V = std::vector<std::string>;
  EXPECT_EQ(Sorted(MsgIds(Messages(store, "whe_a"))), (V{"msg_new_delivered", "msg_old_pending"}));
  std::vector<WebhookAttempt> attempts = Attempts(store, "whe_a");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].msg_id, "msg_new_delivered");
  // The pending one is still delivered.
  EXPECT_EQ(MsgIds(Claim(store, kNow, kNow + 1000)), V{"msg_old_pending"});
}

TYPED_TEST_P(StoreContractTest, ClaimExpiredGrantsReportsEachExpiryOnce) {
  ASSERT_TRUE(SignInPeople(this->store()));
  ASSERT_TRUE(IsOk(this->store().InsertWebhook(
      TestWebhook("whe_ann", "usr_ann", R"(["permission.expired"])"), {})));
  this->InsertAgents({"ap_1"});
  GrantRecord past = TestGrant("g_past", "ap_1", kNow - 500, kNow - 10);
  past.granted_by = "usr_ann";
  this->InsertGrants({
      past,
      TestGrant("g_now", "ap_1", kNow - 500, kNow),  // expiry is exclusive: expired at kNow
      TestGrant("g_soon", "ap_1", kNow - 500, kNow + 10),
      TestGrant("g_later", "ap_1", kNow - 500, kNow + 20),
      TestGrant("g_forever", "ap_1"),
      TestGrant("g_revoked", "ap_1", kNow - 500, kNow - 10),
  });
  ASSERT_TRUE(IsOk(this->store().RevokeGrants({"g_revoked"}, kNow - 100, "usr_ann")));

  std::vector<std::vector<std::string>> calls;
  auto effects_for = [&](const std::vector<GrantRecord>& expired) {
    calls.push_back(Ids(expired));
    Effects effects;
    for (const GrantRecord& g : expired) {
      effects.activity.push_back(TestEvent("permission.expire", kNow, g.id));
      effects.events.push_back(
          TestOutbound("msg_" + g.id, "permission.expired", R"([")" + g.granted_by + R"("])"));
    }
    return effects;
  };
  auto claim = [&](std::int64_t now_ms, int limit) {
    Result<std::vector<GrantRecord>> expired =
        this->store().ClaimExpiredGrants(now_ms, limit, effects_for);
    EXPECT_TRUE(expired.ok()) << expired.error().message;
    return expired.ok() ? *expired : std::vector<GrantRecord>{};
  };

  using V = std::vector<std::string>;
  std::vector<GrantRecord> first = claim(kNow, 100);
  EXPECT_EQ(Sorted(Ids(first)), (V{"g_now", "g_past"}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Sorted(calls[0]), (V{"g_now", "g_past"}));
  for (const GrantRecord& g : first) {
    if (g.id == "g_past") ExpectSameGrant(g, past);
  }
  EXPECT_EQ(Sorted(Targets(ActivityLog(this->store(), AnyActivity()))), (V{"g_now", "g_past"}));
  EXPECT_EQ(MsgIds(Messages(this->store(), "whe_ann")), V{"msg_g_past"});  // ann granted only it

  // Reported once.
  EXPECT_TRUE(claim(kNow, 100).empty());
  EXPECT_EQ(ActivityLog(this->store(), AnyActivity()).size(), 2u);

  // Up to limit at a time.
  std::vector<GrantRecord> one = claim(kNow + 20, 1);
  std::vector<GrantRecord> other = claim(kNow + 20, 1);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(Sorted({one[0].id, other[0].id}), (V{"g_later", "g_soon"}));
  EXPECT_TRUE(claim(kNow + 20, 1).empty());

  // Claiming an expiry is not revoking.
  EXPECT_EQ(ActiveGrantIds(this->store(), kNow - 20),
            (V{"g_forever", "g_later", "g_now", "g_past", "g_soon"}));

  this->Reopen();
  EXPECT_TRUE(claim(kNow + 100 * kDayMs, 100).empty());
  EXPECT_EQ(ActivityLog(this->store(), AnyActivity()).size(), 4u);
}

// --- integration engine -------------------------------------------------------------------------

inline WorkspaceRecord TestWorkspace(const std::string& id) {
  WorkspaceRecord w;
  w.id = id;
  w.key = "key-" + id;
  w.name = "Workspace " + id;
  w.secret_sealed = "v2:k1:secret-" + id;
  w.created_at_ms = kNow;
  w.updated_at_ms = kNow;
  return w;
}

inline IntegrationRecord TestIntegration(const std::string& ws, const std::string& id,
                                         const std::string& key) {
  IntegrationRecord i;
  i.id = id;
  i.workspace_id = ws;
  i.key = key;
  i.name = "Integration " + key;
  i.connector_key = key;
  i.parameters_json = R"({"clientId":"abc"})";
  i.created_at_ms = kNow;
  i.updated_at_ms = kNow;
  return i;
}

inline ConnectionRecord TestConnection(const std::string& ws, const std::string& tenant,
                                       const std::string& id, const std::string& key,
                                       const std::string& integration_id, std::int64_t at_ms) {
  ConnectionRecord c;
  c.id = id;
  c.workspace_id = ws;
  c.tenant_key = tenant;
  c.key = key;
  c.name = "Conn " + key;
  c.integration_id = integration_id;
  c.state = "READY";
  c.credentials_sealed = "v2:k1:creds-" + id;
  c.created_at_ms = at_ms;
  c.updated_at_ms = at_ms;
  return c;
}

TYPED_TEST_P(StoreContractTest, WorkspacesAreMadeOnceAndTheirSecretRotates) {
  Store& store = this->store();
  Result<WorkspaceRecord> first = store.EnsureWorkspace(TestWorkspace("ws_1"));
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->secret_sealed, "v2:k1:secret-ws_1");
  WorkspaceRecord other = TestWorkspace("ws_1");
  other.secret_sealed = "different";
  Result<WorkspaceRecord> again = store.EnsureWorkspace(other);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->secret_sealed, "v2:k1:secret-ws_1") << "the first workspace stays";
  ASSERT_TRUE(store.UpdateWorkspaceSecret("ws_1", "rotated", kNow + 5, Effects{}).ok());
  Result<std::vector<WorkspaceRecord>> all = store.ListWorkspaces();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].secret_sealed, "rotated");
  EXPECT_EQ((*all)[0].updated_at_ms, kNow + 5);
  EXPECT_EQ(store.UpdateWorkspaceSecret("ws_nope", "x", kNow, Effects{}).error().code,
            Code::kNotFound);
  TenantRecord tenant{"ws_1", "t1", "", "", kNow, kNow};
  ASSERT_TRUE(store.TouchTenant(tenant).ok());
  tenant.name = "Acme";
  tenant.last_seen_ms = kNow + 10;
  ASSERT_TRUE(store.TouchTenant(tenant).ok());
}

TYPED_TEST_P(StoreContractTest, IntegrationsAndConnectorsRoundTrip) {
  Store& store = this->store();
  ASSERT_TRUE(store.EnsureWorkspace(TestWorkspace("ws_1")).ok());
  ASSERT_TRUE(store.EnsureWorkspace(TestWorkspace("ws_2")).ok());
  IntegrationRecord gh = TestIntegration("ws_1", "int_1", "github");
  ASSERT_TRUE(store.InsertIntegration(gh, Effects{}).ok());
  EXPECT_EQ(store.InsertIntegration(TestIntegration("ws_1", "int_2", "github"), Effects{})
                .error()
                .code,
            Code::kConflict)
      << "keys are unique per workspace";
  ASSERT_TRUE(store.InsertIntegration(TestIntegration("ws_2", "int_3", "github"), Effects{}).ok());

  auto by_key = store.FindIntegration("ws_1", "github");
  ASSERT_TRUE(by_key.ok() && by_key->has_value());
  EXPECT_EQ((*by_key)->id, "int_1");
  auto by_id = store.FindIntegration("ws_1", "int_1");
  ASSERT_TRUE(by_id.ok() && by_id->has_value());
  EXPECT_EQ((*by_id)->parameters_json, R"({"clientId":"abc"})");
  auto other_ws = store.FindIntegration("ws_1", "int_3");
  ASSERT_TRUE(other_ws.ok());
  EXPECT_FALSE(other_ws->has_value()) << "another workspace's integration is invisible";

  gh.archived_at_ms = kNow + 1;
  gh.client_secret_sealed = "v2:k1:s";
  ASSERT_TRUE(store.UpdateIntegration(gh, Effects{}).ok());
  auto active = store.ListIntegrations("ws_1", false);
  ASSERT_TRUE(active.ok());
  EXPECT_TRUE(active->empty());
  auto all = store.ListIntegrations("ws_1", true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].archived_at_ms, kNow + 1);
  EXPECT_EQ((*all)[0].client_secret_sealed, "v2:k1:s");

  ConnectorRecord custom{"cnr_1", "ws_1", "mycrm", R"({"key":"mycrm"})", kNow, kNow};
  ASSERT_TRUE(store.InsertConnector(custom, Effects{}).ok());
  custom.id = "cnr_2";
  EXPECT_EQ(store.InsertConnector(custom, Effects{}).error().code, Code::kConflict);
  auto connectors = store.ListConnectors("ws_1");
  ASSERT_TRUE(connectors.ok());
  ASSERT_EQ(connectors->size(), 1u);
  EXPECT_EQ((*connectors)[0].spec_json, R"({"key":"mycrm"})");
  EXPECT_TRUE(store.ListConnectors("ws_2")->empty());
}

TYPED_TEST_P(StoreContractTest, ConnectionsAreIsolatedPagedAndVersioned) {
  Store& store = this->store();
  ASSERT_TRUE(store.EnsureWorkspace(TestWorkspace("ws_1")).ok());
  ASSERT_TRUE(store.InsertIntegration(TestIntegration("ws_1", "int_1", "github"), Effects{}).ok());
  for (int i = 0; i < 5; ++i) {
    std::string n = std::to_string(i);
    ASSERT_TRUE(store
                    .InsertConnection(TestConnection("ws_1", i % 2 == 0 ? "alice" : "bob",
                                                     "conn_" + n, "gh-" + n, "int_1", kNow + i),
                                      Effects{})
                    .ok());
  }
  EXPECT_EQ(store.InsertConnection(TestConnection("ws_1", "alice", "conn_x", "gh-0", "int_1", kNow),
                                   Effects{})
                .error()
                .code,
            Code::kConflict)
      << "keys are unique per tenant";
  ASSERT_TRUE(
      store.InsertConnection(TestConnection("ws_1", "bob", "conn_y", "gh-0", "int_1", kNow + 9),
                             Effects{})
          .ok())
      << "another tenant may use the same key";

  ConnectionFilter f;
  f.workspace_id = "ws_1";
  f.tenant_key = "alice";
  auto alice = store.ListConnections(f);
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->size(), 3u);
  for (const auto& c : *alice) EXPECT_EQ(c.tenant_key, "alice");
  f.limit = 2;
  auto page1 = store.ListConnections(f);
  ASSERT_EQ(page1->size(), 2u);
  f.after_created_ms = page1->back().created_at_ms;
  f.after_id = page1->back().id;
  auto page2 = store.ListConnections(f);
  ASSERT_EQ(page2->size(), 1u);
  EXPECT_EQ((*page2)[0].id, "conn_4");
  ConnectionFilter search;
  search.workspace_id = "ws_1";
  search.search = "GH-3";
  auto found = store.ListConnections(search);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].tenant_key, "bob");

  auto by_key = store.FindConnectionByKey("ws_1", "bob", "gh-0");
  ASSERT_TRUE(by_key.ok() && by_key->has_value());
  EXPECT_EQ((*by_key)->id, "conn_y");
  auto missing = store.FindConnection("ws_other", "conn_0");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ConnectionRecord c = **store.FindConnection("ws_1", "conn_0");
  EXPECT_EQ(c.version, 0);
  ConnectionRecord next = c;
  next.version = 1;
  next.state = "DISCONNECTED";
  next.token_expires_at_ms = kNow + 3600;
  next.archived_at_ms = kNow + 7;
  Result<bool> won = store.UpdateConnection(next, 0, Effects{});
  ASSERT_TRUE(won.ok());
  EXPECT_TRUE(*won);
  ConnectionRecord stale = c;
  stale.version = 1;
  stale.state = "READY";
  Result<bool> lost = store.UpdateConnection(stale, 0, Effects{});
  ASSERT_TRUE(lost.ok());
  EXPECT_FALSE(*lost) << "a write based on an old version is refused";
  ConnectionRecord now = **store.FindConnection("ws_1", "conn_0");
  EXPECT_EQ(now.state, "DISCONNECTED");
  EXPECT_EQ(now.token_expires_at_ms, kNow + 3600);
  EXPECT_EQ(now.version, 1);
  f.after_created_ms = -1;
  f.after_id.clear();
  f.limit = 100;
  EXPECT_EQ(store.ListConnections(f)->size(), 2u) << "archived connections are hidden";
  f.include_archived = true;
  EXPECT_EQ(store.ListConnections(f)->size(), 3u);
}

TYPED_TEST_P(StoreContractTest, ConnectSessionsAreSingleUseAndExpire) {
  Store& store = this->store();
  ASSERT_TRUE(store.EnsureWorkspace(TestWorkspace("ws_1")).ok());
  ASSERT_TRUE(store.InsertIntegration(TestIntegration("ws_1", "int_1", "github"), Effects{}).ok());
  ASSERT_TRUE(
      store.InsertConnection(TestConnection("ws_1", "t", "conn_1", "k", "int_1", kNow), Effects{})
          .ok());
  ConnectSessionRecord session;
  session.token_hash = crypto::Sha256("token");
  session.connection_id = "conn_1";
  session.workspace_id = "ws_1";
  session.tenant_key = "t";
  session.created_at_ms = kNow;
  session.expires_at_ms = kNow + 1000;
  ASSERT_TRUE(store.InsertConnectSession(session).ok());
  auto found = store.FindConnectSession(session.token_hash, kNow);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_FALSE((*found)->state_hash.has_value());
  EXPECT_FALSE(store.FindConnectSession(session.token_hash, kNow + 1000)->has_value())
      << "expired";

  crypto::Digest state = crypto::Sha256("state");
  crypto::Digest browser = crypto::Sha256("browser");
  EXPECT_FALSE(*store.ConsumeConnectSession(state, kNow) ? true : false) << "not started yet";
  Result<bool> started =
      store.StartConnectSession(session.token_hash, state, browser, "v2:k:verifier",
                                "http://x/oauth/callback", kNow + 1);
  ASSERT_TRUE(started.ok());
  EXPECT_TRUE(*started);
  auto consumed = store.ConsumeConnectSession(state, kNow + 2);
  ASSERT_TRUE(consumed.ok() && consumed->has_value());
  EXPECT_EQ((*consumed)->connection_id, "conn_1");
  EXPECT_EQ((*consumed)->verifier_sealed, "v2:k:verifier");
  EXPECT_EQ((*consumed)->browser_hash, browser);
  EXPECT_FALSE(store.ConsumeConnectSession(state, kNow + 3)->has_value()) << "single use";
  EXPECT_FALSE(*store.StartConnectSession(session.token_hash, state, browser, "", "", kNow + 3))
      << "a used session cannot start again";

  ConnectSessionRecord second = session;
  second.token_hash = crypto::Sha256("token2");
  ASSERT_TRUE(store.InsertConnectSession(second).ok());
  ASSERT_TRUE(store.EndConnectSessions("conn_1", kNow + 4).ok());
  EXPECT_FALSE(store.FindConnectSession(second.token_hash, kNow + 5)->has_value());
}

TYPED_TEST_P(StoreContractTest, ResealAllRewritesEverySealedValue) {
  Store& store = this->store();
  ASSERT_TRUE(store.EnsureWorkspace(TestWorkspace("ws_1")).ok());
  IntegrationRecord integration = TestIntegration("ws_1", "int_1", "github");
  integration.client_secret_sealed = "old:client";
  ASSERT_TRUE(store.InsertIntegration(integration, Effects{}).ok());
  ConnectionRecord c = TestConnection("ws_1", "t", "conn_1", "k", "int_1", kNow);
  c.credentials_sealed = "old:creds";
  ASSERT_TRUE(store.InsertConnection(c, Effects{}).ok());
  ConnectionRecord empty = TestConnection("ws_1", "t", "conn_2", "k2", "int_1", kNow);
  empty.credentials_sealed = "";
  ASSERT_TRUE(store.InsertConnection(empty, Effects{}).ok());
  std::vector<std::string> seen;
  auto reseal = [&](const std::string& sealed) -> Result<std::optional<std::string>> {
    seen.push_back(sealed);
    if (sealed.rfind("old:", 0) == 0) return std::optional<std::string>("new:" + sealed.substr(4));
    return std::optional<std::string>();
  };
  Result<std::int64_t> changed = store.ResealAll(reseal);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_EQ(*changed, 2);
  EXPECT_EQ(seen.size(), 3u) << "the workspace secret, client secret and credentials; not empties";
  EXPECT_EQ((*store.FindConnection("ws_1", "conn_1"))->credentials_sealed, "new:creds");
  EXPECT_EQ((*store.FindIntegration("ws_1", "int_1"))->client_secret_sealed, "new:client");
  auto failing = [](const std::string&) -> Result<std::optional<std::string>> {
    return MakeError(Code::kServerError, "cannot open");
  };
  EXPECT_FALSE(store.ResealAll(failing).ok());
}

// --- actions, runs and budgets ------------------------------------------------------------------

// An action of workspace ws: universal when integration_id and connection_id are "".
inline ActionRecord TestAction(const std::string& ws, const std::string& id, const std::string& key,
                               const std::string& integration_id = "",
                               const std::string& connection_id = "",
                               std::int64_t created_at_ms = kNow) {
  ActionRecord a;
  a.id = id;
  a.workspace_id = ws;
  a.key = key;
  a.name = "Action " + id;
  a.description = "does " + key;
  a.type = "api-request-to-external-app";
  a.integration_id = integration_id;
  a.connection_id = connection_id;
  a.config_json = R"({"request":{"method":"GET","path":"/)" + key + R"("}})";
  a.input_schema_json = R"({"type":"object"})";
  a.created_at_ms = created_at_ms;
  a.updated_at_ms = created_at_ms;
  return a;
}

inline void ExpectSameAction(const ActionRecord& actual, const ActionRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.workspace_id, expected.workspace_id);
  EXPECT_EQ(actual.key, expected.key);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.description, expected.description);
  EXPECT_EQ(actual.type, expected.type);
  EXPECT_EQ(actual.integration_id, expected.integration_id);
  EXPECT_EQ(actual.connection_id, expected.connection_id);
  EXPECT_EQ(actual.config_json, expected.config_json);
  EXPECT_EQ(actual.input_schema_json, expected.input_schema_json);
  EXPECT_EQ(actual.output_schema_json, expected.output_schema_json);
  EXPECT_EQ(actual.archived_at_ms, expected.archived_at_ms);
  EXPECT_EQ(actual.created_at_ms, expected.created_at_ms);
  EXPECT_EQ(actual.updated_at_ms, expected.updated_at_ms);
}

inline ActionFilter ActionsOf(const std::string& ws, const std::string& connection_id = "",
                              const std::string& surface_integration_id = "") {
  ActionFilter f;
  f.workspace_id = ws;
  f.connection_id = connection_id;
  f.surface_integration_id = surface_integration_id;
  return f;
}

inline std::vector<std::string> ActionIds(Store& store, const ActionFilter& filter) {
  Result<std::vector<ActionRecord>> actions = store.ListActions(filter);
  EXPECT_TRUE(actions.ok()) << actions.error().message;
  std::vector<std::string> ids;
  if (!actions.ok()) return ids;
  for (const ActionRecord& a : *actions) ids.push_back(a.id);
  return ids;
}

inline ActionRunRecord TestRun(const std::string& ws, const std::string& id,
                               const std::string& tenant, std::int64_t started_at_ms) {
  ActionRunRecord r;
  r.id = id;
  r.workspace_id = ws;
  r.tenant_key = tenant;
  r.action_id = "act_1";
  r.action_key = "list-repos";
  r.connection_id = "conn_1";
  r.integration_id = "int_1";
  r.actor_kind = "agent";
  r.actor_id = "ap_1";
  r.agent_id = "ap_1";
  r.grant_id = "g_1";
  r.status = "success";
  r.input_json = R"({"org":"acme"})";
  r.output_json = R"({"repos":[]})";
  r.details_json = R"({"requests":[]})";
  r.started_at_ms = started_at_ms;
  r.finished_at_ms = started_at_ms + 25;
  return r;
}

inline void ExpectSameRun(const ActionRunRecord& actual, const ActionRunRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.workspace_id, expected.workspace_id);
  EXPECT_EQ(actual.tenant_key, expected.tenant_key);
  EXPECT_EQ(actual.action_id, expected.action_id);
  EXPECT_EQ(actual.action_key, expected.action_key);
  EXPECT_EQ(actual.connection_id, expected.connection_id);
  EXPECT_EQ(actual.integration_id, expected.integration_id);
  EXPECT_EQ(actual.actor_kind, expected.actor_kind);
  EXPECT_EQ(actual.actor_id, expected.actor_id);
  EXPECT_EQ(actual.agent_id, expected.agent_id);
  EXPECT_EQ(actual.grant_id, expected.grant_id);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.input_json, expected.input_json);
  EXPECT_EQ(actual.output_json, expected.output_json);
  EXPECT_EQ(actual.error_json, expected.error_json);
  EXPECT_EQ(actual.details_json, expected.details_json);
  EXPECT_EQ(actual.started_at_ms, expected.started_at_ms);
  EXPECT_EQ(actual.finished_at_ms, expected.finished_at_ms);
}

inline ActionRunFilter RunsOf(const std::string& ws, const std::string& tenant = "") {
  ActionRunFilter f;
  f.workspace_id = ws;
  f.tenant_key = tenant;
  return f;
}

inline std::vector<std::string> RunIds(Store& store, const ActionRunFilter& filter) {
  Result<std::vector<ActionRunRecord>> runs = store.ListActionRuns(filter);
  EXPECT_TRUE(runs.ok()) << runs.error().message;
  std::vector<std::string> ids;
  if (!runs.ok()) return ids;
  for (const ActionRunRecord& r : *runs) ids.push_back(r.id);
  return ids;
}

inline BudgetCharge Charge(const std::string& grant_id, const std::string& field,
                           std::int64_t amount, std::int64_t limit,
                           std::int64_t window_start_ms = kNow) {
  BudgetCharge c;
  c.grant_id = grant_id;
  c.field = field;
  c.window_start_ms = window_start_ms;
  c.amount = amount;
  c.limit = limit;
  return c;
}

inline std::int64_t Used(Store& store, const std::string& grant_id, const std::string& field,
                         std::int64_t window_start_ms = kNow) {
  Result<std::int64_t> used = store.BudgetUsed(grant_id, field, window_start_ms);
  EXPECT_TRUE(used.ok()) << used.error().message;
  return used.ok() ? *used : -1;
}

TYPED_TEST_P(StoreContractTest, ActionsRoundTripUpdateArchiveAndRestore) {
  Store& store = this->store();
  ASSERT_TRUE(IsOk(store.EnsureWorkspace(TestWorkspace("ws_1"))));
  ASSERT_TRUE(IsOk(store.EnsureWorkspace(TestWorkspace("ws_2"))));
  ActionRecord action = TestAction("ws_1", "act_1", "list-repos", "int_1");
  ASSERT_TRUE(IsOk(store.InsertAction(action, EffectsNamed("action.created"))));
  EXPECT_TRUE(IsConflict(store.InsertAction(TestAction("ws_1", "act_1", "other"), {})))
      << "ids are unique";

  Result<std::optional<ActionRecord>> found = store.FindAction("ws_1", "act_1");
  ASSERT_TRUE(IsOk(found));
  ASSERT_TRUE(found->has_value());
  ExpectSameAction(**found, action);
  Result<std::optional<ActionRecord>> elsewhere = store.FindAction("ws_2", "act_1");
  ASSERT_TRUE(IsOk(elsewhere));
  EXPECT_FALSE(elsewhere->has_value()) << "another workspace's action is invisible";
  EXPECT_FALSE(store.FindAction("ws_1", "act_nope")->has_value());

  ActionRecord changed = action;
  changed.key = "list-repositories";
  changed.name = "List repositories";
  changed.description = "";
  changed.config_json = R"({"request":{"path":"/user/repos"}})";
  changed.input_schema_json = "";
  changed.output_schema_json = R"({"type":"array"})";
  changed.updated_at_ms = kNow + 10;
  ASSERT_TRUE(IsOk(store.UpdateAction(changed, EffectsNamed("action.updated"))));
  ExpectSameAction(**store.FindAction("ws_1", "act_1"), changed);

  ActionRecord archived = changed;
  archived.archived_at_ms = kNow + 20;
  archived.updated_at_ms = kNow + 20;
  ASSERT_TRUE(IsOk(store.UpdateAction(archived, {})));
  ExpectSameAction(**store.FindAction("ws_1", "act_1"), archived);
  EXPECT_TRUE(ActionIds(store, ActionsOf("ws_1")).empty()) << "archived actions are hidden";

  ActionRecord restored = archived;
  restored.archived_at_ms.reset();
  restored.updated_at_ms = kNow + 30;
  ASSERT_TRUE(IsOk(store.UpdateAction(restored, {})));
  ExpectSameAction(**store.FindAction("ws_1", "act_1"), restored);
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1")), std::vector<std::string>{"act_1"});

  EXPECT_FALSE(store.UpdateAction(TestAction("ws_1", "act_nope", "x"), EffectsNamed("dup")).ok())
      << "updating a missing action fails";
  EXPECT_FALSE(store.UpdateAction(TestAction("ws_2", "act_1", "x"), {}).ok())
      << "nor can another workspace update it";
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())),
            (std::vector<std::string>{"action.updated", "action.created"}))
      << "effects are recorded with successful writes only";
}

TYPED_TEST_P(StoreContractTest, ActionKeysAreUniquePerScopeAmongUnarchived) {
  Store& store = this->store();
  ASSERT_TRUE(IsOk(store.EnsureWorkspace(TestWorkspace("ws_1"))));
  ASSERT_TRUE(IsOk(store.EnsureWorkspace(TestWorkspace("ws_2"))));
  // One key at every level: universal, two integrations, two connections.
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_u", "send"), {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_i1", "send", "int_1"), {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_i2", "send", "int_2"), {})));
  ASSERT_TRUE(
      IsOk(store.InsertAction(TestAction("ws_1", "act_c1", "send", "int_1", "conn_1"), {})));
  ASSERT_TRUE(
      IsOk(store.InsertAction(TestAction("ws_1", "act_c2", "send", "int_1", "conn_2"), {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_2", "act_w2", "send"), {})))
      << "another workspace has its own keys";

  // The same key again in a scope that has it.
  Status universal = store.InsertAction(TestAction("ws_1", "act_u2", "send"), {});
  EXPECT_TRUE(IsConflict(universal));
  EXPECT_NE(universal.error().message.find("send"), std::string::npos)
      << "the conflict names the key: " << universal.error().message;
  EXPECT_TRUE(IsConflict(store.InsertAction(TestAction("ws_1", "act_i1b", "send", "int_1"), {})));
  EXPECT_TRUE(
      IsConflict(store.InsertAction(TestAction("ws_1", "act_c1b", "send", "int_1", "conn_1"), {})));
  // Keyless actions never clash.
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_n1", ""), {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_n2", ""), {})));

  // An update that moves an action onto a taken key clashes too.
  ActionRecord moved = TestAction("ws_1", "act_n1", "send");
  EXPECT_TRUE(IsConflict(store.UpdateAction(moved, {})));
  EXPECT_EQ((*store.FindAction("ws_1", "act_n1"))->key, "") << "nothing was written";

  // Archiving frees the key; restoring the archived one then clashes with its successor.
  ActionRecord old = TestAction("ws_1", "act_u", "send");
  old.archived_at_ms = kNow + 1;
  ASSERT_TRUE(IsOk(store.UpdateAction(old, {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_u3", "send"), {})))
      << "an archived action does not block its key";
  ActionRecord restore = old;
  restore.archived_at_ms.reset();
  EXPECT_TRUE(IsConflict(store.UpdateAction(restore, {})));
  EXPECT_TRUE((*store.FindAction("ws_1", "act_u"))->archived_at_ms.has_value())
      << "the refused restore left it archived";
  // Two archived actions may share a key.
  ActionRecord also_archived = TestAction("ws_1", "act_u3", "send");
  also_archived.archived_at_ms = kNow + 2;
  ASSERT_TRUE(IsOk(store.UpdateAction(also_archived, {})));
  ASSERT_TRUE(IsOk(store.UpdateAction(restore, {}))) << "restorable once the key is free";
}

TYPED_TEST_P(StoreContractTest, ListActionsFollowsTheSurfaceAndPages) {
  Store& store = this->store();
  ASSERT_TRUE(IsOk(store.EnsureWorkspace(TestWorkspace("ws_1"))));
  ASSERT_TRUE(IsOk(store.EnsureWorkspace(TestWorkspace("ws_2"))));
  // Inserted out of order; act_b and act_c share a created_at (the id breaks the tie).
  ASSERT_TRUE(
      IsOk(store.InsertAction(TestAction("ws_1", "act_c", "c1", "int_1", "conn_1", kNow + 2), {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_1", "act_a", "u", "", "", kNow + 1), {})));
  ASSERT_TRUE(
      IsOk(store.InsertAction(TestAction("ws_1", "act_b", "i1", "int_1", "", kNow + 2), {})));
  ASSERT_TRUE(
      IsOk(store.InsertAction(TestAction("ws_1", "act_d", "i2", "int_2", "", kNow + 3), {})));
  ASSERT_TRUE(
      IsOk(store.InsertAction(TestAction("ws_1", "act_e", "c2", "int_1", "conn_2", kNow + 4), {})));
  ActionRecord archived = TestAction("ws_1", "act_f", "u", "", "", kNow + 5);
  archived.archived_at_ms = kNow + 6;
  ASSERT_TRUE(IsOk(store.InsertAction(archived, {})));
  ASSERT_TRUE(IsOk(store.InsertAction(TestAction("ws_2", "act_z", "u", "", "", kNow), {})));

  using V = std::vector<std::string>;
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1")), (V{"act_a", "act_b", "act_c", "act_d", "act_e"}))
      << "no surface: every unarchived action, oldest first";
  ActionFilter with_archived = ActionsOf("ws_1");
  with_archived.include_archived = true;
  EXPECT_EQ(ActionIds(store, with_archived),
            (V{"act_a", "act_b", "act_c", "act_d", "act_e", "act_f"}));
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1", "", "int_1")), (V{"act_a", "act_b"}))
      << "an integration's surface: universal and its integration-level actions";
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1", "", "int_3")), (V{"act_a"}));
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1", "conn_1", "int_1")), (V{"act_a", "act_b", "act_c"}))
      << "a connection's surface adds its own actions, not other connections'";
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1", "conn_2", "int_1")), (V{"act_a", "act_b", "act_e"}));
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_1", "conn_1", "")), (V{"act_a", "act_c"}))
      << "a connection without its integration: universal and its own";
  EXPECT_EQ(ActionIds(store, ActionsOf("ws_2")), (V{"act_z"}));

  ActionFilter by_key = ActionsOf("ws_1", "conn_1", "int_1");
  by_key.key = "i1";
  EXPECT_EQ(ActionIds(store, by_key), (V{"act_b"}));
  by_key.key = "i2";
  EXPECT_TRUE(ActionIds(store, by_key).empty()) << "the key filter stays within the surface";
  ActionFilter by_key_archived = ActionsOf("ws_1");
  by_key_archived.key = "u";
  EXPECT_EQ(ActionIds(store, by_key_archived), (V{"act_a"}));
  by_key_archived.include_archived = true;
  EXPECT_EQ(ActionIds(store, by_key_archived), (V{"act_a", "act_f"}));

  ActionFilter page = ActionsOf("ws_1");
  page.limit = 2;
  V seen;
  for (int round = 0; round < 5; ++round) {
    Result<std::vector<ActionRecord>> got = store.ListActions(page);
    ASSERT_TRUE(IsOk(got));
    if (got->empty()) break;
    for (const ActionRecord& a : *got) seen.push_back(a.id);
    page.after_created_ms = got->back().created_at_ms;
    page.after_id = got->back().id;
  }
  EXPECT_EQ(seen, (V{"act_a", "act_b", "act_c", "act_d", "act_e"}))
      << "pages of two cover everything once, ties included";
  page.limit = 0;
  EXPECT_TRUE(ActionIds(store, page).empty());
}

TYPED_TEST_P(StoreContractTest, ActionRunBatchesAreAllOrNothing) {
  Store& store = this->store();
  std::vector<ActionRunRecord> batch = {TestRun("ws_1", "run_b1", "alice", kNow + 1),
                                        TestRun("ws_1", "run_b2", "bob", kNow + 2)};
  ASSERT_TRUE(IsOk(store.InsertActionRuns(batch, EffectsNamed("action.run"))));
  for (const char* id : {"run_b1", "run_b2"}) {
    Result<std::optional<ActionRunRecord>> found = store.FindActionRun("ws_1", id);
    ASSERT_TRUE(found.ok());
    EXPECT_TRUE(found->has_value()) << id;
  }
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())), std::vector<std::string>{"action.run"});
  // A batch with a clash writes none of its runs, nor its effects.
  std::vector<ActionRunRecord> clashing = {TestRun("ws_1", "run_b3", "carol", kNow + 3),
                                           TestRun("ws_1", "run_b1", "carol", kNow + 4)};
  EXPECT_TRUE(IsConflict(store.InsertActionRuns(clashing, EffectsNamed("dup.run"))));
  Result<std::optional<ActionRunRecord>> missing = store.FindActionRun("ws_1", "run_b3");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())), std::vector<std::string>{"action.run"});
}

TYPED_TEST_P(StoreContractTest, ActionRunsRoundTripFilterAndPage) {
  Store& store = this->store();
  ActionRunRecord first = TestRun("ws_1", "run_1", "alice", kNow + 1);
  ActionRunRecord failed = TestRun("ws_1", "run_2", "bob", kNow + 2);
  failed.status = "error";
  failed.output_json = "";
  failed.error_json = R"({"code":"upstream_error","message":"502"})";
  failed.agent_id = "";
  failed.grant_id = "";
  failed.actor_kind = "tenant_token";
  failed.actor_id = "bob";
  ActionRunRecord inline_run = TestRun("ws_1", "run_3", "alice", kNow + 3);
  inline_run.action_id = "";
  inline_run.action_key = "";
  inline_run.connection_id = "conn_2";
  // run_4 and run_5 start at the same instant: the id orders them.
  ActionRunRecord tie_a = TestRun("ws_1", "run_4", "alice", kNow + 4);
  tie_a.agent_id = "ap_2";
  ActionRunRecord tie_b = TestRun("ws_1", "run_5", "alice", kNow + 4);
  tie_b.action_id = "act_2";
  ActionRunRecord other_ws = TestRun("ws_2", "run_6", "alice", kNow + 5);
  for (const ActionRunRecord* r : {&first, &failed, &inline_run, &tie_a, &tie_b, &other_ws}) {
    ASSERT_TRUE(IsOk(store.InsertActionRun(*r, {})));
  }
  ASSERT_TRUE(IsOk(store.InsertActionRun(TestRun("ws_1", "run_7", "carol", kNow + 6),
                                         EffectsNamed("action.run"))));
  EXPECT_TRUE(IsConflict(
      store.InsertActionRun(TestRun("ws_1", "run_7", "carol", kNow + 7), EffectsNamed("dup.run"))));
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())), std::vector<std::string>{"action.run"});

  Result<std::optional<ActionRunRecord>> found = store.FindActionRun("ws_1", "run_2");
  ASSERT_TRUE(IsOk(found));
  ASSERT_TRUE(found->has_value());
  ExpectSameRun(**found, failed);
  EXPECT_FALSE(store.FindActionRun("ws_2", "run_2")->has_value()) << "workspaces are apart";
  EXPECT_FALSE(store.FindActionRun("ws_1", "run_nope")->has_value());

  using V = std::vector<std::string>;
  EXPECT_EQ(RunIds(store, RunsOf("ws_1")),
            (V{"run_7", "run_5", "run_4", "run_3", "run_2", "run_1"}))
      << "newest first; (started_at, id) descending";
  EXPECT_EQ(RunIds(store, RunsOf("ws_1", "alice")), (V{"run_5", "run_4", "run_3", "run_1"}));
  EXPECT_EQ(RunIds(store, RunsOf("ws_2")), (V{"run_6"}));
  EXPECT_TRUE(RunIds(store, RunsOf("ws_1", "nobody")).empty());
  ActionRunFilter f = RunsOf("ws_1");
  f.agent_id = "ap_2";
  EXPECT_EQ(RunIds(store, f), (V{"run_4"}));
  f = RunsOf("ws_1");
  f.action_id = "act_2";
  EXPECT_EQ(RunIds(store, f), (V{"run_5"}));
  f = RunsOf("ws_1");
  f.connection_id = "conn_2";
  EXPECT_EQ(RunIds(store, f), (V{"run_3"}));
  f = RunsOf("ws_1");
  f.status = "error";
  EXPECT_EQ(RunIds(store, f), (V{"run_2"}));
  f = RunsOf("ws_1", "alice");
  f.action_id = "act_1";
  f.agent_id = "ap_1";
  EXPECT_EQ(RunIds(store, f), (V{"run_1"})) << "filters combine";

  for (const std::string& tenant : {std::string(), std::string("alice")}) {
    ActionRunFilter page = RunsOf("ws_1", tenant);
    page.limit = 2;
    V seen;
    for (int round = 0; round < 5; ++round) {
      Result<std::vector<ActionRunRecord>> got = store.ListActionRuns(page);
      ASSERT_TRUE(IsOk(got));
      if (got->empty()) break;
      for (const ActionRunRecord& r : *got) seen.push_back(r.id);
      page.before_started_ms = got->back().started_at_ms;
      page.before_id = got->back().id;
    }
    EXPECT_EQ(seen, RunIds(store, RunsOf("ws_1", tenant)))
        << "pages of two cover everything once, ties included (tenant \"" << tenant << "\")";
  }
  f = RunsOf("ws_1");
  f.limit = 0;
  EXPECT_TRUE(RunIds(store, f).empty());
}

TYPED_TEST_P(StoreContractTest, DeleteActionRunsBeforeDeletesOnlyOlderRuns) {
  Store& store = this->store();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(IsOk(store.InsertActionRun(
        TestRun(i % 2 == 0 ? "ws_1" : "ws_2", "run_" + std::to_string(i), "t", kNow + i), {})));
  }
  Result<std::int64_t> deleted = store.DeleteActionRunsBefore(kNow + 3);
  ASSERT_TRUE(IsOk(deleted));
  EXPECT_EQ(*deleted, 3) << "every workspace's runs that started before the cutoff";
  EXPECT_EQ(RunIds(store, RunsOf("ws_1")), std::vector<std::string>{"run_4"});
  EXPECT_EQ(RunIds(store, RunsOf("ws_2")), std::vector<std::string>{"run_3"})
      << "a run that started at the cutoff stays";
  Result<std::int64_t> none = store.DeleteActionRunsBefore(kNow + 3);
  ASSERT_TRUE(IsOk(none));
  EXPECT_EQ(*none, 0);
}

TYPED_TEST_P(StoreContractTest, ChargeBudgetsIsAllOrNothing) {
  Store& store = this->store();
  EXPECT_EQ(Used(store, "g_1", "spend"), 0) << "nothing charged yet";
  Result<BudgetOutcome> first = store.ChargeBudgets({Charge("g_1", "spend", 30, 100)});
  ASSERT_TRUE(IsOk(first));
  EXPECT_TRUE(first->charged);
  EXPECT_EQ(first->used, std::vector<std::int64_t>{30});

  // The second charge does not fit: neither is applied, and used reports the totals as they are.
  Result<BudgetOutcome> refused =
      store.ChargeBudgets({Charge("g_1", "spend", 10, 100), Charge("g_1", "calls", 2, 1)});
  ASSERT_TRUE(IsOk(refused));
  EXPECT_FALSE(refused->charged);
  EXPECT_EQ(refused->failed, 1u);
  EXPECT_EQ(refused->used, (std::vector<std::int64_t>{30, 0}));
  EXPECT_EQ(Used(store, "g_1", "spend"), 30) << "the first charge was not kept";
  EXPECT_EQ(Used(store, "g_1", "calls"), 0);

  // Exactly up to the limit is allowed; one more is not.
  Result<BudgetOutcome> exact =
      store.ChargeBudgets({Charge("g_1", "spend", 70, 100), Charge("g_1", "calls", 1, 1)});
  ASSERT_TRUE(IsOk(exact));
  EXPECT_TRUE(exact->charged);
  EXPECT_EQ(exact->used, (std::vector<std::int64_t>{100, 1}));
  Result<BudgetOutcome> over = store.ChargeBudgets({Charge("g_1", "spend", 1, 100)});
  ASSERT_TRUE(IsOk(over));
  EXPECT_FALSE(over->charged);
  EXPECT_EQ(over->failed, 0u);
  EXPECT_EQ(over->used, std::vector<std::int64_t>{100});

  // Windows, fields and grants are apart.
  EXPECT_TRUE(store.ChargeBudgets({Charge("g_1", "spend", 5, 100, kNow + kDayMs)})->charged);
  EXPECT_EQ(Used(store, "g_1", "spend", kNow + kDayMs), 5);
  EXPECT_TRUE(store.ChargeBudgets({Charge("g_2", "spend", 100, 100)})->charged);
  EXPECT_EQ(Used(store, "g_1", "spend"), 100);

  // Two charges of one window in one call add up.
  Result<BudgetOutcome> twice =
      store.ChargeBudgets({Charge("g_3", "spend", 6, 10), Charge("g_3", "spend", 5, 10)});
  ASSERT_TRUE(IsOk(twice));
  EXPECT_FALSE(twice->charged);
  EXPECT_EQ(twice->failed, 1u);
  EXPECT_EQ(Used(store, "g_3", "spend"), 0);
  Result<BudgetOutcome> both =
      store.ChargeBudgets({Charge("g_3", "spend", 6, 10), Charge("g_3", "spend", 4, 10)});
  ASSERT_TRUE(IsOk(both));
  EXPECT_TRUE(both->charged);
  EXPECT_EQ(both->used, (std::vector<std::int64_t>{6, 10}));
  EXPECT_EQ(Used(store, "g_3", "spend"), 10);

  Result<BudgetOutcome> nothing = store.ChargeBudgets({});
  ASSERT_TRUE(IsOk(nothing));
  EXPECT_TRUE(nothing->charged);
  EXPECT_TRUE(nothing->used.empty());
}

TYPED_TEST_P(StoreContractTest, RefundBudgetsNeverGoesBelowZero) {
  Store& store = this->store();
  ASSERT_TRUE(store.ChargeBudgets({Charge("g_1", "spend", 40, 100), Charge("g_1", "calls", 1, 5)})
                  ->charged);
  ASSERT_TRUE(IsOk(store.RefundBudgets({Charge("g_1", "spend", 15, 100)})));
  EXPECT_EQ(Used(store, "g_1", "spend"), 25);
  EXPECT_EQ(Used(store, "g_1", "calls"), 1);
  ASSERT_TRUE(
      IsOk(store.RefundBudgets({Charge("g_1", "spend", 1000, 100), Charge("g_1", "calls", 1, 5)})));
  EXPECT_EQ(Used(store, "g_1", "spend"), 0) << "floored at zero";
  EXPECT_EQ(Used(store, "g_1", "calls"), 0);
  ASSERT_TRUE(IsOk(store.RefundBudgets({Charge("g_9", "spend", 5, 100)})))
      << "refunding a window never charged is harmless";
  EXPECT_EQ(Used(store, "g_9", "spend"), 0);
  EXPECT_TRUE(store.ChargeBudgets({Charge("g_1", "spend", 100, 100)})->charged)
      << "the refunded room can be spent again";
}

TYPED_TEST_P(StoreContractTest, ConcurrentChargesNeverPassTheLimit) {
  constexpr int kThreads = 8;
  constexpr int kCharges = 100;  // in total, over the threads
  constexpr std::int64_t kLimit = 50;
  std::atomic<int> next{0};
  std::atomic<int> charged{0};
  std::atomic<int> failures{0};
  RunConcurrently(kThreads, [&](int) {
    while (next.fetch_add(1) < kCharges) {
      Result<BudgetOutcome> outcome =
          this->store().ChargeBudgets({Charge("g_1", "spend", 1, kLimit)});
      if (!outcome.ok()) {
        ++failures;
      } else if (outcome->charged) {
        ++charged;
      }
    }
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(charged.load(), kLimit);
  EXPECT_EQ(Used(this->store(), "g_1", "spend"), kLimit);
}


// --- permission requests ----------------------------------------------------------------------

inline PermissionRequestRecord TestRequest(const std::string& id, const std::string& agent_id,
                                           const std::string& action = "invoices:pay",
                                           const std::string& to = "ann@example.com",
                                           std::int64_t created_at_ms = kNow - 1000,
                                           std::int64_t expires_at_ms = kNow + kDayMs) {
  PermissionRequestRecord r;
  r.id = id;
  r.agent_id = agent_id;
  r.action = action;
  r.reason = "needs " + action;
  r.scope_json = R"({"max_amount":500})";
  r.expires_in = "7d";
  r.requested_from = to;
  r.created_at_ms = created_at_ms;
  r.expires_at_ms = expires_at_ms;
  return r;
}

inline std::vector<std::string> RequestIds(const std::vector<PermissionRequestRecord>& list) {
  std::vector<std::string> ids;
  for (const auto& r : list) ids.push_back(r.id);
  return ids;
}

// A decision of request id as decider made at at_ms.
inline PermissionRequestRecord Decision(const std::string& id, const std::string& status,
                                        std::int64_t at_ms, const std::string& grant_id = "",
                                        const std::string& decline_reason = "") {
  PermissionRequestRecord d;
  d.id = id;
  d.status = status;
  d.decided_at_ms = at_ms;
  d.decided_by = "ann@example.com";
  d.grant_id = grant_id;
  d.decline_reason = decline_reason;
  return d;
}

TYPED_TEST_P(StoreContractTest, PermissionRequestsRoundTripDeduplicateAndCap) {
  Store& store = this->store();
  this->InsertAgents({"ap_1", "ap_2"});
  PermissionRequestRecord first = TestRequest("preq_1", "ap_1");
  Result<CreateRequestResult> created = store.CreatePermissionRequest(first, 3, kNow, {});
  ASSERT_TRUE(IsOk(created));
  EXPECT_EQ(created->outcome, CreateRequestOutcome::kCreated);

  Result<std::optional<PermissionRequestRecord>> found = store.FindPermissionRequest("preq_1");
  ASSERT_TRUE(IsOk(found));
  ASSERT_TRUE(found->has_value());
  const PermissionRequestRecord& r = **found;
  EXPECT_EQ(r.agent_id, "ap_1");
  EXPECT_EQ(r.action, "invoices:pay");
  EXPECT_EQ(r.reason, "needs invoices:pay");
  EXPECT_EQ(r.scope_json, R"({"max_amount":500})");
  EXPECT_EQ(r.expires_in, "7d");
  EXPECT_EQ(r.requested_from, "ann@example.com");
  EXPECT_EQ(r.status, "pending");
  EXPECT_EQ(r.created_at_ms, kNow - 1000);
  EXPECT_EQ(r.expires_at_ms, kNow + kDayMs);
  EXPECT_FALSE(r.decided_at_ms.has_value());
  EXPECT_EQ(r.grant_id, "");
  auto none = store.FindPermissionRequest("preq_nope");
  ASSERT_TRUE(IsOk(none));
  EXPECT_FALSE(none->has_value());

  // The same agent, action and addressee: the pending one comes back, nothing is inserted and
  // its effects are not recorded.
  Result<CreateRequestResult> dup =
      store.CreatePermissionRequest(TestRequest("preq_dup", "ap_1"), 3, kNow, EffectsNamed("dup"));
  ASSERT_TRUE(IsOk(dup));
  EXPECT_EQ(dup->outcome, CreateRequestOutcome::kDuplicate);
  EXPECT_EQ(dup->request.id, "preq_1");
  EXPECT_FALSE(store.FindPermissionRequest("preq_dup")->has_value());
  EXPECT_TRUE(ActivityLog(store, AnyActivity()).empty());
  auto pending = store.FindPendingPermissionRequest("ap_1", "invoices:pay", "ann@example.com", kNow);
  ASSERT_TRUE(IsOk(pending));
  ASSERT_TRUE(pending->has_value());
  EXPECT_EQ((*pending)->id, "preq_1");
  // Another addressee or action is no duplicate; the cap counts live pending ones per agent.
  ASSERT_EQ(store.CreatePermissionRequest(TestRequest("preq_2", "ap_1", "invoices:pay",
                                                      "bob@example.com"), 3, kNow, {})
                ->outcome,
            CreateRequestOutcome::kCreated);
  ASSERT_EQ(store.CreatePermissionRequest(TestRequest("preq_3", "ap_1", "mail:send"), 3, kNow,
                                          EffectsNamed("request.created"))
                ->outcome,
            CreateRequestOutcome::kCreated);
  EXPECT_EQ(*store.CountPendingPermissionRequests("ap_1", kNow), 3);
  EXPECT_EQ(*store.CountPendingPermissionRequests("ap_2", kNow), 0);
  Result<CreateRequestResult> over =
      store.CreatePermissionRequest(TestRequest("preq_4", "ap_1", "x"), 3, kNow, {});
  ASSERT_TRUE(IsOk(over));
  EXPECT_EQ(over->outcome, CreateRequestOutcome::kTooMany);
  EXPECT_FALSE(store.FindPermissionRequest("preq_4")->has_value());
  // Another agent has its own cap.
  EXPECT_EQ(store.CreatePermissionRequest(TestRequest("preq_5", "ap_2", "x"), 3, kNow, {})->outcome,
            CreateRequestOutcome::kCreated);
  // Lapsed requests no longer count, nor block a new one for the same action.
  EXPECT_EQ(*store.CountPendingPermissionRequests("ap_1", kNow + kDayMs), 0);
  Result<CreateRequestResult> after_lapse = store.CreatePermissionRequest(
      TestRequest("preq_6", "ap_1", "invoices:pay", "ann@example.com", kNow + kDayMs,
                  kNow + 2 * kDayMs),
      3, kNow + kDayMs, {});
  ASSERT_TRUE(IsOk(after_lapse));
  EXPECT_EQ(after_lapse->outcome, CreateRequestOutcome::kCreated);
  // Only the created one recorded its effects.
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())), std::vector<std::string>{"request.created"});
  // Unknown agent: an error value.
  EXPECT_FALSE(store.CreatePermissionRequest(TestRequest("preq_x", "ap_nope"), 3, kNow, {}).ok());
}

TYPED_TEST_P(StoreContractTest, PermissionRequestListsFilterByStatusAsReadAndPage) {
  Store& store = this->store();
  this->InsertAgents({"ap_1", "ap_2"});
  // preq_1 oldest ... preq_5 newest; preq_2 lapses at kNow.
  std::vector<PermissionRequestRecord> all = {
      TestRequest("preq_1", "ap_1", "a", "ann@example.com", kNow - 5000),
      TestRequest("preq_2", "ap_1", "b", "ann@example.com", kNow - 4000, kNow),
      TestRequest("preq_3", "ap_2", "c", "ann@example.com", kNow - 3000),
      TestRequest("preq_4", "ap_1", "d", "bob@example.com", kNow - 2000),
      TestRequest("preq_5", "ap_2", "e", "ann@example.com", kNow - 1000),
  };
  for (const auto& r : all) {
    ASSERT_EQ(store.CreatePermissionRequest(r, 20, kNow - 6000, {})->outcome,
              CreateRequestOutcome::kCreated);
  }
  ASSERT_TRUE(IsOk(store.DecidePermissionRequest(Decision("preq_3", "declined", kNow - 10), {}, {})));
  auto list = [&](PermissionRequestFilter f) {
    f.now_ms = kNow;
    Result<std::vector<PermissionRequestRecord>> got = store.ListPermissionRequests(f);
    EXPECT_TRUE(got.ok()) << got.error().message;
    return got.ok() ? RequestIds(*got) : std::vector<std::string>{};
  };
  using V = std::vector<std::string>;
  PermissionRequestFilter ann;
  ann.requested_from = "ann@example.com";
  EXPECT_EQ(list(ann), (V{"preq_5", "preq_3", "preq_2", "preq_1"}));
  PermissionRequestFilter f = ann;
  f.status = "pending";
  EXPECT_EQ(list(f), (V{"preq_5", "preq_1"}));
  f.status = "expired";  // lapsed, though still stored as pending
  EXPECT_EQ(list(f), (V{"preq_2"}));
  f.status = "declined";
  EXPECT_EQ(list(f), (V{"preq_3"}));
  f.status = "approved";
  EXPECT_EQ(list(f), V{});
  f = ann;
  f.agent_id = "ap_1";
  EXPECT_EQ(list(f), (V{"preq_2", "preq_1"}));
  PermissionRequestFilter agent;
  agent.agent_id = "ap_1";
  EXPECT_EQ(list(agent), (V{"preq_4", "preq_2", "preq_1"}));
  EXPECT_EQ(list(PermissionRequestFilter{}), (V{"preq_5", "preq_4", "preq_3", "preq_2", "preq_1"}));
  // Pages: two at a time, continuing before the last (created_at, id).
  PermissionRequestFilter page = ann;
  page.limit = 2;
  EXPECT_EQ(list(page), (V{"preq_5", "preq_3"}));
  page.before_created_ms = kNow - 3000;
  page.before_id = "preq_3";
  EXPECT_EQ(list(page), (V{"preq_2", "preq_1"}));
  page.before_created_ms = kNow - 5000;
  page.before_id = "preq_1";
  EXPECT_EQ(list(page), V{});
}

TYPED_TEST_P(StoreContractTest, DecidingIsConditionalAndAtomicWithTheGrant) {
  Store& store = this->store();
  ASSERT_TRUE(SignInPeople(store));
  ASSERT_TRUE(IsOk(store.InsertWebhook(TestWebhook("whe_all", "usr_ann", R"(["*"])", "all"), {})));
  this->InsertAgents({"ap_1"});
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(TestRequest("preq_1", "ap_1"), 20, kNow, {})));
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(
      TestRequest("preq_2", "ap_1", "mail:send", "ann@example.com", kNow - 1000, kNow + 10), 20,
      kNow, {})));

  GrantRecord grant = TestGrant("g_1", "ap_1");
  Result<DecideRequestResult> approved = store.DecidePermissionRequest(
      Decision("preq_1", "approved", kNow, "g_1"), grant, EffectsNamed("request.approved"));
  ASSERT_TRUE(IsOk(approved));
  EXPECT_TRUE(approved->decided);
  EXPECT_EQ(approved->request.status, "approved");
  EXPECT_EQ(approved->request.decided_at_ms, kNow);
  EXPECT_EQ(approved->request.decided_by, "ann@example.com");
  EXPECT_EQ(approved->request.grant_id, "g_1");
  EXPECT_EQ(approved->request.reason, "needs invoices:pay");  // the rest as it was
  auto g = store.FindGrant("g_1");
  ASSERT_TRUE(IsOk(g));
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->agent_id, "ap_1");

  // Deciding again: nothing written, the request as it stands comes back.
  Result<DecideRequestResult> again = store.DecidePermissionRequest(
      Decision("preq_1", "declined", kNow + 1, "", "no"), std::nullopt, EffectsNamed("again"));
  ASSERT_TRUE(IsOk(again));
  EXPECT_FALSE(again->decided);
  EXPECT_EQ(again->request.status, "approved");
  EXPECT_EQ(again->request.decline_reason, "");
  // A lapsed request cannot be decided, and its grant is not inserted.
  Result<DecideRequestResult> lapsed = store.DecidePermissionRequest(
      Decision("preq_2", "approved", kNow + 10, "g_2"), TestGrant("g_2", "ap_1"),
      EffectsNamed("lapsed"));
  ASSERT_TRUE(IsOk(lapsed));
  EXPECT_FALSE(lapsed->decided);
  EXPECT_EQ(lapsed->request.status, "pending");
  EXPECT_FALSE(store.FindGrant("g_2")->has_value());
  // Unknown: not decided, and no request.
  Result<DecideRequestResult> unknown =
      store.DecidePermissionRequest(Decision("preq_nope", "approved", kNow), std::nullopt, {});
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_FALSE(unknown->decided);
  EXPECT_EQ(unknown->request.id, "");
  // A grant that cannot be inserted undoes the decision.
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(TestRequest("preq_3", "ap_1", "z"), 20, kNow, {})));
  Result<DecideRequestResult> bad = store.DecidePermissionRequest(
      Decision("preq_3", "approved", kNow, "g_1"), TestGrant("g_1", "ap_1"), EffectsNamed("bad"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ((*store.FindPermissionRequest("preq_3"))->status, "pending");

  using V = std::vector<std::string>;
  EXPECT_EQ(Actions(ActivityLog(store, AnyActivity())), V{"request.approved"});
  EXPECT_EQ(MsgIds(Messages(store, "whe_all")), V{"msg_request.approved"});
}

TYPED_TEST_P(StoreContractTest, ConcurrentDecisionsHaveExactlyOneWinner) {
  Store& store = this->store();
  this->InsertAgents({"ap_1"});
  constexpr int kRounds = 10;
  constexpr int kThreads = 8;
  for (int round = 0; round < kRounds; ++round) {
    std::string id = "preq_" + std::to_string(round);
    ASSERT_TRUE(IsOk(store.CreatePermissionRequest(
        TestRequest(id, "ap_1", "act:" + std::to_string(round)), 20, kNow, {})));
    std::atomic<int> wins{0};
    std::atomic<int> failures{0};
    RunConcurrently(kThreads, [&](int t) {
      // Even threads approve (each with its own grant), odd ones decline.
      bool approve = t % 2 == 0;
      std::string grant_id = id + "_g" + std::to_string(t);
      std::optional<GrantRecord> grant;
      if (approve) grant = TestGrant(grant_id, "ap_1");
      Result<DecideRequestResult> r = store.DecidePermissionRequest(
          Decision(id, approve ? "approved" : "declined", kNow + t, approve ? grant_id : ""),
          grant, EffectsNamed("decide:" + id));
      if (!r.ok()) {
        ++failures;
      } else if (r->decided) {
        ++wins;
      }
    });
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(wins.load(), 1) << id;
    PermissionRequestRecord stored = **store.FindPermissionRequest(id);
    // Exactly the winner's grant exists, and only when the winner approved.
    GrantFilter grants;
    grants.agent_id = "ap_1";
    grants.active_only = false;
    int made = 0;
    Result<std::vector<GrantRecord>> listed = store.ListGrants(grants);
    ASSERT_TRUE(IsOk(listed));
    for (const GrantRecord& g : *listed) {
      if (g.id.rfind(id + "_g", 0) == 0) {
        ++made;
        EXPECT_EQ(g.id, stored.grant_id);
      }
    }
    EXPECT_EQ(made, stored.status == "approved" ? 1 : 0) << stored.status;
  }
  EXPECT_EQ(ActivityLog(store, AnyActivity()).size(), static_cast<std::size_t>(kRounds));
}

TYPED_TEST_P(StoreContractTest, ExpiringRequestsReportsEachLapseOnce) {
  Store& store = this->store();
  this->InsertAgents({"ap_1"});
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(
      TestRequest("preq_1", "ap_1", "a", "ann@example.com", kNow - 3000, kNow - 10), 20, kNow - 3000,
      {})));
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(
      TestRequest("preq_2", "ap_1", "b", "ann@example.com", kNow - 2000, kNow - 5), 20, kNow - 3000,
      {})));
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(
      TestRequest("preq_3", "ap_1", "c", "ann@example.com", kNow - 1000, kNow + 1000), 20,
      kNow - 3000, {})));
  ASSERT_TRUE(IsOk(store.CreatePermissionRequest(
      TestRequest("preq_4", "ap_1", "d", "ann@example.com", kNow - 1000, kNow - 1), 20, kNow - 3000,
      {})));
  ASSERT_TRUE(IsOk(store.DecidePermissionRequest(Decision("preq_4", "declined", kNow - 2), {}, {})));

  std::vector<std::string> seen_by_effects;
  auto effects_for = [&](const std::vector<PermissionRequestRecord>& expired) {
    Effects effects;
    for (const auto& r : expired) {
      seen_by_effects.push_back(r.id);
      effects.activity.push_back(TestEvent("permission_request.expire", kNow));
    }
    return effects;
  };
  Result<std::vector<PermissionRequestRecord>> first =
      store.ExpirePermissionRequests(kNow, 1, effects_for);
  ASSERT_TRUE(IsOk(first));
  using V = std::vector<std::string>;
  EXPECT_EQ(RequestIds(*first), V{"preq_1"});  // the earliest lapse first, up to the limit
  EXPECT_EQ((*first)[0].status, "expired");
  Result<std::vector<PermissionRequestRecord>> rest =
      store.ExpirePermissionRequests(kNow, 100, effects_for);
  ASSERT_TRUE(IsOk(rest));
  EXPECT_EQ(RequestIds(*rest), V{"preq_2"});
  EXPECT_TRUE(store.ExpirePermissionRequests(kNow, 100, effects_for)->empty());
  EXPECT_EQ(seen_by_effects, (V{"preq_1", "preq_2"}));
  EXPECT_EQ(ActivityLog(store, AnyActivity()).size(), 2u);
  EXPECT_EQ((*store.FindPermissionRequest("preq_2"))->status, "expired");
  EXPECT_EQ((*store.FindPermissionRequest("preq_3"))->status, "pending");
  EXPECT_EQ((*store.FindPermissionRequest("preq_4"))->status, "declined");
  // Stored as expired, it still cannot be decided.
  EXPECT_FALSE(store.DecidePermissionRequest(Decision("preq_1", "approved", kNow - 20), {}, {})
                   ->decided);
}

TYPED_TEST_P(StoreContractTest, LatestGranterCountsRevokedAndExpiredGrants) {
  Store& store = this->store();
  this->InsertAgents({"ap_1", "ap_2"});
  auto none = store.LatestGranterOf("ap_1");
  ASSERT_TRUE(IsOk(none));
  EXPECT_FALSE(none->has_value());
  GrantRecord older = TestGrant("g_1", "ap_1", kNow - 3000);
  older.granted_by_email = "old@example.com";
  GrantRecord newer = TestGrant("g_2", "ap_1", kNow - 2000, kNow - 1000);  // expired since
  newer.granted_by_email = "new@example.com";
  GrantRecord other = TestGrant("g_3", "ap_2", kNow - 1000);
  other.granted_by_email = "other@example.com";
  this->InsertGrants({older, newer, other});
  ASSERT_TRUE(IsOk(store.RevokeGrants({"g_2"}, kNow, "usr_x")));
  auto latest = store.LatestGranterOf("ap_1");
  ASSERT_TRUE(IsOk(latest));
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ(**latest, "new@example.com");
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreContractTest, IdempotencyClaimsReplaysAndRejects, IdempotencyAbandonAndStaleTakeover,
    IdempotencyRaceHasOneOwner, EmptyStoreHasNothing, AgentRoundTrips, ListAgentsOfOwnedAndGranted,
    DuplicateAgentIsAnErrorValue,
    GrantRoundTrips, BadGrantIsAnErrorValue, RevokeReturnsOnlyWhatItRevokedNow,
    LoadActiveGrantsExcludesRevokedAndExpired, ListGrantsIsNewestFirstAndFiltered,
    SignInCreatesOnceThenFinds, OnlyTheFirstPromotableUserBecomesAdmin, FirstAdminRaceHasOneWinner,
    ConcurrentSignInsOfOneEmailMakeOneUser, MagicLinkIsSingleUseAndExpires,
    MagicLinkRaceHasOneWinner, SessionsExpireAndCanBeDeleted, BookkeepingMovesCountersAndLastSeen,
    PruneDeletesExpiredLinksAndSessions, EverythingSurvivesReopen, ConcurrentWritersAllLand,
    AFailingWriteDoesNotFailItsNeighbours, ConcurrentRevokesRevokeEachGrantOnce,
    ReadsSeeCompletedWritesWhileOthersWrite, ExceptionsInSinksComeBackAsErrors,
    WritesRecordTheirEffectsOnlyWhenTheySucceed, RevokeGrantsRecordsTheEffectsOfWhatItRevokedNow,
    WebhookEventsFanOutBySubscriptionAndAudience, AccessTokensRoundTripListAndRevoke,
    TokenLastUsedOnlyMovesForward, BookkeepingWritesChecksAndActivityInArrivalOrder,
    ListActivityFiltersAndPages, ListActivityShowsPeopleWhatConcernsThem, PruneDeletesOldActivity,
    WebhookEndpointsRoundTripUpdateAndDelete, ClaimingDueWebhookMessagesLeasesThem,
    RecordWebhookAttemptAppliesEachOutcome, ReplayQueuesAMessageAgain,
    PruneRemovesFinishedWebhookMessagesButNeverPendingOnes, ClaimExpiredGrantsReportsEachExpiryOnce,
    WorkspacesAreMadeOnceAndTheirSecretRotates, IntegrationsAndConnectorsRoundTrip,
    ConnectionsAreIsolatedPagedAndVersioned, ConnectSessionsAreSingleUseAndExpire,
    ResealAllRewritesEverySealedValue, ActionsRoundTripUpdateArchiveAndRestore,
    ActionKeysAreUniquePerScopeAmongUnarchived, ListActionsFollowsTheSurfaceAndPages,
    ActionRunsRoundTripFilterAndPage, ActionRunBatchesAreAllOrNothing,
    DeleteActionRunsBeforeDeletesOnlyOlderRuns,
    ChargeBudgetsIsAllOrNothing, RefundBudgetsNeverGoesBelowZero,
    ConcurrentChargesNeverPassTheLimit, PermissionRequestsRoundTripDeduplicateAndCap,
    PermissionRequestListsFilterByStatusAsReadAndPage, DecidingIsConditionalAndAtomicWithTheGrant,
    ConcurrentDecisionsHaveExactlyOneWinner, ExpiringRequestsReportsEachLapseOnce,
    LatestGranterCountsRevokedAndExpiredGrants);

}  // namespace agentgate::store::contract
