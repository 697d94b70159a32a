// Tests for the error catalogue, Error's fallbacks and Result<T>/Status.
#include "core/error.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "core/result.h"

namespace agentgate {
namespace {

bool IsLowerSnake(std::string_view s) {
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  char prev = 0;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || c == '_';
    if (!ok) return false;
    if (c == '_' && prev == '_') return false;
    prev = c;
  }
  return true;
}

TEST(ErrorCatalogueTest, HasOneEntryPerCodeInDeclarationOrder) {
  auto catalogue = ErrorCatalogue();
  ASSERT_EQ(catalogue.size(), static_cast<std::size_t>(Code::kPermissionRequestNotPending) + 1);
  EXPECT_EQ(catalogue.size(), 39u);
  for (std::size_t i = 0; i < catalogue.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(catalogue[i].code), i) << catalogue[i].name;
    EXPECT_EQ(&InfoFor(catalogue[i].code), &catalogue[i]) << catalogue[i].name;
  }
}

TEST(ErrorCatalogueTest, EveryEntryIsComplete) {
  for (const CodeInfo& info : ErrorCatalogue()) {
    SCOPED_TRACE(std::string(info.name));
    EXPECT_TRUE(IsLowerSnake(info.name));
    EXPECT_GE(info.http_status, 400);
    EXPECT_LE(info.http_status, 599);
    EXPECT_FALSE(info.meaning.empty());
    EXPECT_FALSE(info.remediation.empty());
    EXPECT_NE(info.meaning, info.remediation);
  }
}

TEST(ErrorCatalogueTest, NamesAreUnique) {
  std::set<std::string_view> names;
  for (const CodeInfo& info : ErrorCatalogue()) {
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate name " << info.name;
  }
  EXPECT_EQ(names.size(), ErrorCatalogue().size());
}

TEST(ErrorCatalogueTest, ReferenceCodesHaveTheReferenceStatuses) {
  const std::pair<Code, std::pair<std::string_view, int>> kReference[] = {
      {Code::kUnauthorized, {"unauthorized", 401}},
      {Code::kForbidden, {"forbidden", 403}},
      {Code::kNotFound, {"not_found", 404}},
      {Code::kMissingFields, {"missing_fields", 400}},
      {Code::kMissingParams, {"missing_params", 400}},
      {Code::kInvalidEmail, {"invalid_email", 400}},
      {Code::kInvalidName, {"invalid_name", 400}},
      {Code::kAgentNotFound, {"agent_not_found", 404}},
      {Code::kPermissionNotFound, {"permission_not_found", 404}},
      {Code::kRateLimited, {"rate_limited", 429}},
      {Code::kServerError, {"server_error", 500}},
  };
  for (const auto& [code, expected] : kReference) {
    const CodeInfo& info = InfoFor(code);
    EXPECT_EQ(info.code, code);
    EXPECT_EQ(info.name, expected.first);
    EXPECT_EQ(info.http_status, expected.second) << expected.first;
  }
}

TEST(ErrorCatalogueTest, ReferenceMessagesAreTheReferenceWording) {
  EXPECT_EQ(InfoFor(Code::kUnauthorized).meaning, "Missing or invalid credentials");
  EXPECT_EQ(InfoFor(Code::kAgentNotFound).meaning, "No active agent found with given ID");
  EXPECT_EQ(InfoFor(Code::kPermissionNotFound).meaning, "No active permission matching criteria");
  EXPECT_EQ(InfoFor(Code::kMissingFields).meaning, "Required fields missing from request body");
  EXPECT_EQ(InfoFor(Code::kMissingParams).meaning, "Required query parameters missing");
  EXPECT_EQ(InfoFor(Code::kInvalidEmail).meaning, "Email address is not valid format");
  EXPECT_EQ(InfoFor(Code::kRateLimited).meaning, "Too many requests");
  EXPECT_EQ(InfoFor(Code::kServerError).meaning, "Internal server error");
}

TEST(ErrorCatalogueTest, AgentgateAdditionsHaveTheDocumentedStatuses) {
  const std::pair<Code, std::pair<std::string_view, int>> kAdditions[] = {
      {Code::kInvalidJson, {"invalid_json", 400}},
      {Code::kInvalidField, {"invalid_field", 400}},
      {Code::kInvalidExpiresIn, {"invalid_expires_in", 400}},
      {Code::kInvalidToken, {"invalid_token", 401}},
      {Code::kMethodNotAllowed, {"method_not_allowed", 405}},
      {Code::kPayloadTooLarge, {"payload_too_large", 413}},
      {Code::kHeadersTooLarge, {"headers_too_large", 431}},
      {Code::kBadRequest, {"bad_request", 400}},
      {Code::kConflict, {"conflict", 409}},
      {Code::kUnavailable, {"unavailable", 503}},
      {Code::kTokenExpired, {"token_expired", 401}},
  };
  for (const auto& [code, expected] : kAdditions) {
    EXPECT_EQ(InfoFor(code).name, expected.first);
    EXPECT_EQ(InfoFor(code).http_status, expected.second) << expected.first;
  }
}

TEST(ErrorTest, DefaultIsServerError) {
  Error e;
  EXPECT_EQ(e.code, Code::kServerError);
  EXPECT_EQ(e.Name(), "server_error");
  EXPECT_EQ(e.HttpStatus(), 500);
  EXPECT_EQ(e.Message(), "Internal server error");
}

TEST(ErrorTest, EmptyMessageAndRemediationFallBackToTheCatalogue) {
  Error e = MakeError(Code::kAgentNotFound);
  EXPECT_EQ(e.Name(), "agent_not_found");
  EXPECT_EQ(e.HttpStatus(), 404);
  EXPECT_EQ(e.Message(), "No active agent found with given ID");
  EXPECT_EQ(e.Remediation(),
            "Register the agent first with POST /agent/register, and check the agent_id.");
  EXPECT_TRUE(e.message.empty());
  EXPECT_TRUE(e.remediation.empty());
}

TEST(ErrorTest, SpecificMessageAndRemediationWin) {
  Error e = MakeError(Code::kForbidden, "This secret belongs to another agent", "Use yours.");
  EXPECT_EQ(e.Name(), "forbidden");
  EXPECT_EQ(e.HttpStatus(), 403);
  EXPECT_EQ(e.Message(), "This secret belongs to another agent");
  EXPECT_EQ(e.Remediation(), "Use yours.");
}

TEST(ErrorTest, MessageOnlyKeepsCatalogueRemediation) {
  Error e = MakeError(Code::kMissingFields, "Missing fields: name, email");
  EXPECT_EQ(e.Message(), "Missing fields: name, email");
  EXPECT_EQ(e.Remediation(), InfoFor(Code::kMissingFields).remediation);
}

TEST(ErrorTest, RemediationOnlyKeepsCatalogueMessage) {
  Error e = MakeError(Code::kRateLimited, "", "Wait 42 seconds.");
  EXPECT_EQ(e.Message(), "Too many requests");
  EXPECT_EQ(e.Remediation(), "Wait 42 seconds.");
}

TEST(ResultTest, HoldsAValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  r.value() = 7;
  EXPECT_EQ(*r, 7);
}

TEST(ResultTest, HoldsAnError) {
  Result<int> r = MakeError(Code::kInvalidField, "Field 'x' must be a string");
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code, Code::kInvalidField);
  EXPECT_EQ(r.error().Message(), "Field 'x' must be a string");
  Error taken = r.take_error();
  EXPECT_EQ(taken.code, Code::kInvalidField);
  EXPECT_EQ(taken.message, "Field 'x' must be a string");
}

TEST(ResultTest, ArrowAndMoveOut) {
  Result<std::string> r = std::string("hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 5u);
  std::string moved = std::move(r).value();
  EXPECT_EQ(moved, "hello");
}

TEST(ResultTest, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(9);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 9);
}

TEST(ResultTest, StringResultBuiltFromAnErrorIsNotOk) {
  Result<std::string> r = MakeError(Code::kNotFound);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().Name(), "not_found");
}

TEST(StatusTest, OkAndError) {
  Status ok = Ok();
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));

  Status defaulted;
  EXPECT_TRUE(defaulted.ok());

  Status bad = MakeError(Code::kConflict, "already there");
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code, Code::kConflict);
  EXPECT_EQ(bad.error().HttpStatus(), 409);
  EXPECT_EQ(bad.error().Message(), "already there");
  Error taken = bad.take_error();
  EXPECT_EQ(taken.code, Code::kConflict);
  EXPECT_EQ(taken.message, "already there");
}

}  // namespace
}  // namespace agentgate
