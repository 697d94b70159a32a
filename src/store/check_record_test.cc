#include <gtest/gtest.h>

#include <string>

#include "store/store.h"

namespace agentgate::store {
namespace {

TEST(CheckRecordTest, AssignKeepsEveryFieldApart) {
  CheckRecord r;
  r.Assign("ag_1", "repo:read", "no_grant", "req_9", "203.0.113.7", "curl/8", "tok_2", "usr_3");
  EXPECT_EQ(r.agent_id(), "ag_1");
  EXPECT_EQ(r.action(), "repo:read");
  EXPECT_EQ(r.reason(), "no_grant");
  EXPECT_EQ(r.request_id(), "req_9");
  EXPECT_EQ(r.ip(), "203.0.113.7");
  EXPECT_EQ(r.user_agent(), "curl/8");
  EXPECT_EQ(r.actor_id(), "tok_2");
  EXPECT_EQ(r.user_id(), "usr_3");
}

TEST(CheckRecordTest, EmptyFieldsAndDefaults) {
  CheckRecord fresh;
  for (int f = 0; f < CheckRecord::kFieldCount; ++f) {
    EXPECT_EQ(fresh.Get(static_cast<CheckRecord::Field>(f)), "");
  }
  CheckRecord r;
  r.Assign("ag_1", "", "", "req", "", "ua");
  EXPECT_EQ(r.action(), "");
  EXPECT_EQ(r.request_id(), "req");
  EXPECT_EQ(r.ip(), "");
  EXPECT_EQ(r.user_agent(), "ua");
  EXPECT_EQ(r.actor_id(), "");
  EXPECT_EQ(r.actor_kind, "agent");
}

TEST(CheckRecordTest, SetReplacesOneFieldOnly) {
  CheckRecord r;
  r.Assign("ag_1", "repo:read", "", "req_1", "::1", "ua");
  r.Set(CheckRecord::kReason, "expired");
  r.Set(CheckRecord::kAgentId, "ag_longer_identifier");
  EXPECT_EQ(r.agent_id(), "ag_longer_identifier");
  EXPECT_EQ(r.action(), "repo:read");
  EXPECT_EQ(r.reason(), "expired");
  EXPECT_EQ(r.request_id(), "req_1");
  EXPECT_EQ(r.ip(), "::1");
  EXPECT_EQ(r.user_agent(), "ua");
}

TEST(CheckRecordTest, LongFieldsAreClippedToTheirLimits) {
  CheckRecord r;
  r.Assign(std::string(500, 'a'), std::string(5000, 'b'), "", "req", "ip",
           std::string(2000, 'u'), std::string(3000, 't'));
  EXPECT_EQ(r.agent_id().size(), 64u);
  EXPECT_EQ(r.action().size(), 256u);
  EXPECT_EQ(r.user_agent().size(), 256u);
  EXPECT_EQ(r.actor_id().size(), CheckRecord::kMaxFieldBytes);
  EXPECT_EQ(r.request_id(), "req");
}

TEST(CheckRecordTest, RepairMendsInvalidUtf8AndClippedCharacters) {
  CheckRecord r;
  // 255 ASCII bytes then a two-byte character: the clip at 256 splits it.
  std::string ua(255, 'x');
  ua += "\xC3\xA9";
  r.Assign("ag_\xff", "read", "", "req", "ip", ua);
  r.Repair();
  EXPECT_EQ(r.agent_id(), "ag_\xEF\xBF\xBD");  // U+FFFD
  EXPECT_EQ(r.user_agent(), std::string(255, 'x'));
  EXPECT_EQ(r.action(), "read");
  EXPECT_EQ(r.request_id(), "req");
}

TEST(CheckRecordTest, StaysSmall) {
  // Up to --max-pending records wait in memory; the budget assumes under 100 bytes each
  // plus one allocation for the text.
  EXPECT_LE(sizeof(CheckRecord), 96u);
}

}  // namespace
}  // namespace agentgate::store
