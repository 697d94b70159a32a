// Tests for scope validation and evaluation: max_<field>, allowed_<field> and budget_<field>
// constraints, and the budget helpers (BudgetsOf, windows, units).
#include "authz/scope.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace agentgate::authz {
namespace {

json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

ScopeVerdict Eval(std::string_view scope, std::string_view context) {
  return EvaluateScope(Obj(scope), Obj(context));
}

// Expects a pass with no constraint or reason set.
void ExpectPass(std::string_view scope, std::string_view context) {
  ScopeVerdict v = Eval(scope, context);
  EXPECT_TRUE(v.satisfied) << scope << " with " << context << ": " << v.reason;
  EXPECT_EQ(v.constraint, "") << scope << " with " << context;
  EXPECT_EQ(v.reason, "") << scope << " with " << context;
}

// Expects a failure of `constraint` with exactly `reason`.
void ExpectFail(std::string_view scope, std::string_view context, std::string_view constraint,
                std::string_view reason) {
  ScopeVerdict v = Eval(scope, context);
  EXPECT_FALSE(v.satisfied) << scope << " with " << context;
  EXPECT_EQ(v.constraint, constraint) << scope << " with " << context;
  EXPECT_EQ(v.reason, reason) << scope << " with " << context;
}

// --- ValidateScope ---------------------------------------------------------------------------

TEST(ValidateScopeTest, AcceptsWellFormedScopes) {
  for (const char* scope : {
           "{}",
           R"({"max_spend":500})",
           R"({"max_spend":-3})",
           R"({"max_spend":1.5})",
           R"({"max_spend":18446744073709551615})",
           R"({"allowed_currency":["EUR","USD"]})",
           R"({"allowed_currency":[]})",
           R"({"note":"free text","region":{"x":1},"maximum":"n/a","allowed":"n/a"})",
           R"({"max_spend":500,"allowed_currency":["EUR"],"note":null})",
       }) {
    Status s = ValidateScope(Obj(scope));
    EXPECT_TRUE(s.ok()) << scope << ": " << s.error().Message();
  }
}

TEST(ValidateScopeTest, MaxMustBeANumber) {
  for (const char* scope : {R"({"max_spend":"500"})", R"({"max_spend":null})",
                            R"({"max_spend":true})", R"({"max_spend":[500]})",
                            R"({"max_spend":{"v":500}})"}) {
    Status s = ValidateScope(Obj(scope));
    ASSERT_FALSE(s.ok()) << scope;
    EXPECT_EQ(s.error().code, Code::kInvalidField) << scope;
    EXPECT_EQ(s.error().message, "scope.max_spend must be a number") << scope;
  }
}

TEST(ValidateScopeTest, AllowedMustBeAnArray) {
  for (const char* scope : {R"({"allowed_currency":"EUR"})", R"({"allowed_currency":null})",
                            R"({"allowed_currency":1})", R"({"allowed_currency":{"EUR":1}})"}) {
    Status s = ValidateScope(Obj(scope));
    ASSERT_FALSE(s.ok()) << scope;
    EXPECT_EQ(s.error().code, Code::kInvalidField) << scope;
    EXPECT_EQ(s.error().message, "scope.allowed_currency must be an array of allowed values")
        << scope;
  }
}

TEST(ValidateScopeTest, NamesTheFirstBadKey) {
  Status s = ValidateScope(Obj(R"({"note":1,"allowed_a":[1],"max_b":"x","allowed_c":2})"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "scope.max_b must be a number");
}

// scope.h: the field name after the prefix must be non-empty. A bare "max_" or "allowed_" was
// once accepted as an informational key, so its bound was silently never enforced.
TEST(ValidateScopeTest, RejectsAPrefixWithoutAFieldName) {
  for (const char* scope : {R"({"max_":5})", R"({"allowed_":[1]})"}) {
    Status s = ValidateScope(Obj(scope));
    ASSERT_FALSE(s.ok()) << scope;
    EXPECT_EQ(s.error().code, Code::kInvalidField) << scope;
    EXPECT_NE(s.error().message.find(json::parse(scope).as_object().begin()->key()),
              std::string::npos)
        << s.error().message;
  }
}

// --- EvaluateScope: max_ ---------------------------------------------------------------------

TEST(EvaluateScopeMaxTest, EqualPassesAboveFails) {
  ExpectPass(R"({"max_spend":500})", R"({"spend":500})");
  ExpectPass(R"({"max_spend":500})", R"({"spend":499})");
  ExpectPass(R"({"max_spend":500})", R"({"spend":0})");
  ExpectFail(R"({"max_spend":500})", R"({"spend":501})", "max_spend",
             "Scope constraint max_spend failed: spend is 501, the maximum is 500");
  ExpectFail(R"({"max_spend":500})", R"({"spend":700})", "max_spend",
             "Scope constraint max_spend failed: spend is 700, the maximum is 500");
}

TEST(EvaluateScopeMaxTest, MissingOrNullFieldFails) {
  ExpectFail(R"({"max_spend":500})", "{}", "max_spend",
             "Scope constraint max_spend failed: context has no 'spend'");
  ExpectFail(R"({"max_spend":500})", R"({"spend":null})", "max_spend",
             "Scope constraint max_spend failed: context has no 'spend'");
  ExpectFail(R"({"max_spend":500})", R"({"Spend":1,"max_spend":1})", "max_spend",
             "Scope constraint max_spend failed: context has no 'spend'");
}

TEST(EvaluateScopeMaxTest, NonNumberFails) {
  ExpectFail(R"({"max_spend":500})", R"({"spend":"100"})", "max_spend",
             "Scope constraint max_spend failed: spend is \"100\", not a number");
  ExpectFail(R"({"max_spend":500})", R"({"spend":true})", "max_spend",
             "Scope constraint max_spend failed: spend is true, not a number");
  ExpectFail(R"({"max_spend":500})", R"({"spend":[1]})", "max_spend",
             "Scope constraint max_spend failed: spend is [1], not a number");
  ExpectFail(R"({"max_spend":500})", R"({"spend":{"amount":1}})", "max_spend",
             "Scope constraint max_spend failed: spend is {\"amount\":1}, not a number");
}

TEST(EvaluateScopeMaxTest, BoundThatIsNotANumberFailsClosed) {
  ExpectFail(R"({"max_spend":"500"})", R"({"spend":1})", "max_spend",
             "Scope constraint max_spend failed: the bound is not a number");
}

TEST(EvaluateScopeMaxTest, NegativeNumbers) {
  ExpectPass(R"({"max_t":-5})", R"({"t":-5})");
  ExpectPass(R"({"max_t":-5})", R"({"t":-6})");
  ExpectPass(R"({"max_t":-5})", R"({"t":-9223372036854775808})");
  ExpectFail(R"({"max_t":-5})", R"({"t":-4})", "max_t",
             "Scope constraint max_t failed: t is -4, the maximum is -5");
  ExpectFail(R"({"max_t":-5})", R"({"t":0})", "max_t",
             "Scope constraint max_t failed: t is 0, the maximum is -5");
  ExpectPass(R"({"max_t":0})", R"({"t":-0.5})");
}

TEST(EvaluateScopeMaxTest, IntegerAgainstDouble) {
  ExpectPass(R"({"max_spend":500.0})", R"({"spend":500})");
  ExpectPass(R"({"max_spend":500})", R"({"spend":500.0})");
  ExpectPass(R"({"max_spend":99.5})", R"({"spend":99})");
  ExpectPass(R"({"max_spend":100})", R"({"spend":99.99})");
  EXPECT_FALSE(Eval(R"({"max_spend":99.5})", R"({"spend":100})").satisfied);
  EXPECT_FALSE(Eval(R"({"max_spend":100})", R"({"spend":100.01})").satisfied);
  ExpectPass(R"({"max_spend":1e300})", R"({"spend":1e299})");
  EXPECT_FALSE(Eval(R"({"max_spend":1e299})", R"({"spend":1e300})").satisfied);
}

// Numbers in the reason read as people write them ("99.5"), not as Boost prints doubles
// ("9.95E1").
TEST(EvaluateScopeMaxTest, ReasonShowsDecimalsAsWritten) {
  ExpectFail(R"({"max_spend":99.5})", R"({"spend":100})", "max_spend",
             "Scope constraint max_spend failed: spend is 100, the maximum is 99.5");
  ExpectFail(R"({"max_spend":100})", R"({"spend":100.25})", "max_spend",
             "Scope constraint max_spend failed: spend is 100.25, the maximum is 100");
  ExpectFail(R"({"max_spend":500.0})", R"({"spend":501})", "max_spend",
             "Scope constraint max_spend failed: spend is 501, the maximum is 500.0");
  ExpectFail(R"({"max_spend":-0.5})", R"({"spend":0})", "max_spend",
             "Scope constraint max_spend failed: spend is 0, the maximum is -0.5");
}

TEST(EvaluateScopeMaxTest, LargeIntegersCompareExactly) {
  // 2^53 + 1 and 2^53 + 2 are the same double; as integers they differ.
  ExpectPass(R"({"max_n":9007199254740993})", R"({"n":9007199254740993})");
  ExpectFail(R"({"max_n":9007199254740993})", R"({"n":9007199254740994})", "max_n",
             "Scope constraint max_n failed: n is 9007199254740994, the maximum is "
             "9007199254740993");
  ExpectPass(R"({"max_n":9223372036854775807})", R"({"n":9223372036854775807})");
  EXPECT_FALSE(Eval(R"({"max_n":9223372036854775806})", R"({"n":9223372036854775807})").satisfied);
}

TEST(EvaluateScopeMaxTest, Uint64ValuesAsParsed) {
  // Parsed JSON keeps numbers above INT64_MAX as uint64.
  ExpectPass(R"({"max_n":18446744073709551615})", R"({"n":18446744073709551615})");
  ExpectPass(R"({"max_n":18446744073709551615})", R"({"n":9223372036854775807})");
  ExpectPass(R"({"max_n":18446744073709551615})", R"({"n":-1})");
  ExpectFail(R"({"max_n":9223372036854775808})", R"({"n":9223372036854775809})", "max_n",
             "Scope constraint max_n failed: n is 9223372036854775809, the maximum is "
             "9223372036854775808");
  ExpectFail(R"({"max_n":100})", R"({"n":18446744073709551615})", "max_n",
             "Scope constraint max_n failed: n is 18446744073709551615, the maximum is 100");
  ExpectPass(R"({"max_n":1.8446744073709552e19})", R"({"n":18446744073709551615})");
}

// Regression: LessOrEqual once assumed a uint64 number is always >= 2^63. That holds for parsed
// JSON but not for values built in code (json::value(std::uint64_t{3}) is uint64), as an
// in-process caller of PermissionIndex::Decide may build them.
TEST(EvaluateScopeMaxTest, Uint64ValuesBuiltInCode) {
  json::object bound_u;
  bound_u["max_n"] = std::uint64_t{3};
  json::object ctx_i;
  ctx_i["n"] = std::int64_t{5};
  EXPECT_FALSE(EvaluateScope(bound_u, ctx_i).satisfied) << "int64 5 passed a uint64 bound of 3";

  json::object bound_i;
  bound_i["max_n"] = std::int64_t{5};
  json::object ctx_u;
  ctx_u["n"] = std::uint64_t{2};
  EXPECT_TRUE(EvaluateScope(bound_i, ctx_u).satisfied) << "uint64 2 failed an int64 bound of 5";

  // Equal across kinds passes; a negative int64 is below any uint64 and vice versa.
  bound_u["max_n"] = std::uint64_t{5};
  EXPECT_TRUE(EvaluateScope(bound_u, ctx_i).satisfied);
  ctx_i["n"] = std::int64_t{-1};
  EXPECT_TRUE(EvaluateScope(bound_u, ctx_i).satisfied);
  bound_i["max_n"] = std::int64_t{-1};
  ctx_u["n"] = std::uint64_t{0};
  EXPECT_FALSE(EvaluateScope(bound_i, ctx_u).satisfied);
}

TEST(EvaluateScopeAllowedTest, Uint64AndInt64OfEqualValueMatch) {
  json::object scope;
  scope["allowed_n"] = json::array{std::uint64_t{5}, std::uint64_t{18446744073709551615ULL}};
  json::object ctx;
  ctx["n"] = std::int64_t{5};
  EXPECT_TRUE(EvaluateScope(scope, ctx).satisfied);
  ctx["n"] = std::int64_t{6};
  EXPECT_FALSE(EvaluateScope(scope, ctx).satisfied);
  ctx["n"] = std::int64_t{-1};
  EXPECT_FALSE(EvaluateScope(scope, ctx).satisfied);
}

// --- EvaluateScope: allowed_ -----------------------------------------------------------------

TEST(EvaluateScopeAllowedTest, ScalarInList) {
  ExpectPass(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":"USD"})");
  ExpectPass(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":"EUR"})");
  ExpectFail(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":"GBP"})",
             "allowed_currency",
             "Scope constraint allowed_currency failed: currency is \"GBP\", allowed are "
             "[\"EUR\",\"USD\"]");
  ExpectFail(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":"eur"})",
             "allowed_currency",
             "Scope constraint allowed_currency failed: currency is \"eur\", allowed are "
             "[\"EUR\",\"USD\"]");
}

TEST(EvaluateScopeAllowedTest, MissingOrNullFieldFails) {
  ExpectFail(R"({"allowed_currency":["EUR"]})", "{}", "allowed_currency",
             "Scope constraint allowed_currency failed: context has no 'currency'");
  ExpectFail(R"({"allowed_currency":["EUR", null]})", R"({"currency":null})",
             "allowed_currency",
             "Scope constraint allowed_currency failed: context has no 'currency'");
}

TEST(EvaluateScopeAllowedTest, EmptyListAllowsNothing) {
  ExpectFail(R"({"allowed_region":[]})", R"({"region":"eu"})", "allowed_region",
             "Scope constraint allowed_region failed: region is \"eu\", allowed are []");
}

TEST(EvaluateScopeAllowedTest, ArrayContextNeedsEveryElement) {
  ExpectPass(R"({"allowed_currency":["EUR","USD","GBP"]})", R"({"currency":["EUR","GBP"]})");
  ExpectPass(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":["USD","USD"]})");
  ExpectFail(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":["EUR","JPY"]})",
             "allowed_currency",
             "Scope constraint allowed_currency failed: currency is [\"EUR\",\"JPY\"], allowed "
             "are [\"EUR\",\"USD\"]");
  ExpectFail(R"({"allowed_currency":["EUR","USD"]})", R"({"currency":["JPY","EUR"]})",
             "allowed_currency",
             "Scope constraint allowed_currency failed: currency is [\"JPY\",\"EUR\"], allowed "
             "are [\"EUR\",\"USD\"]");
}

TEST(EvaluateScopeAllowedTest, NumbersCompareByValue) {
  ExpectPass(R"({"allowed_n":[1,2]})", R"({"n":1})");
  ExpectPass(R"({"allowed_n":[1,2]})", R"({"n":1.0})");
  ExpectPass(R"({"allowed_n":[1.0,2.0]})", R"({"n":2})");
  ExpectPass(R"({"allowed_n":[1,2]})", R"({"n":[2.0,1]})");
  ExpectFail(R"({"allowed_n":[1,2]})", R"({"n":3})", "allowed_n",
             "Scope constraint allowed_n failed: n is 3, allowed are [1,2]");
  EXPECT_FALSE(Eval(R"({"allowed_n":[1,2]})", R"({"n":1.5})").satisfied);
  EXPECT_FALSE(Eval(R"({"allowed_n":[1,2]})", R"({"n":-1})").satisfied);
}

TEST(EvaluateScopeAllowedTest, KindsDoNotMix) {
  ExpectFail(R"({"allowed_n":[1]})", R"({"n":"1"})", "allowed_n",
             "Scope constraint allowed_n failed: n is \"1\", allowed are [1]");
  ExpectFail(R"({"allowed_n":["1"]})", R"({"n":1})", "allowed_n",
             "Scope constraint allowed_n failed: n is 1, allowed are [\"1\"]");
  ExpectFail(R"({"allowed_flag":[true]})", R"({"flag":1})", "allowed_flag",
             "Scope constraint allowed_flag failed: flag is 1, allowed are [true]");
  ExpectPass(R"({"allowed_flag":[true]})", R"({"flag":true})");
  ExpectPass(R"({"allowed_point":[{"x":1,"y":2}]})", R"({"point":{"x":1,"y":2}})");
}

// Regression: integers were once compared as doubles, so two different integers above 2^53
// that round to the same double matched.
TEST(EvaluateScopeAllowedTest, LargeIntegersAreNotRoundedToDoubles) {
  ExpectPass(R"({"allowed_account":[9007199254740992]})", R"({"account":9007199254740992})");
  ExpectFail(R"({"allowed_account":[9007199254740992]})", R"({"account":9007199254740993})",
             "allowed_account",
             "Scope constraint allowed_account failed: account is 9007199254740993, allowed "
             "are [9007199254740992]");
}

TEST(EvaluateScopeAllowedTest, ListThatIsNotAnArrayFailsClosed) {
  ExpectFail(R"({"allowed_currency":"EUR"})", R"({"currency":"EUR"})", "allowed_currency",
             "Scope constraint allowed_currency failed: the allowed list is not an array");
}

TEST(EvaluateScopeAllowedTest, LongValuesAreTruncatedInTheReason) {
  std::string value(100, 'x');
  ScopeVerdict v = Eval(R"({"allowed_s":["a"]})", R"({"s":")" + value + R"("})");
  EXPECT_FALSE(v.satisfied);
  EXPECT_EQ(v.constraint, "allowed_s");
  EXPECT_EQ(v.reason, "Scope constraint allowed_s failed: s is \"" + std::string(60, 'x') +
                          "..., allowed are [\"a\"]");
}

// --- EvaluateScope: general ------------------------------------------------------------------

TEST(EvaluateScopeTest, NonEnforcedKeysAreIgnored) {
  ExpectPass(R"({"note":"x","region":"eu","maximum":1,"max":2,"allowed":[],"Max_spend":1,)"
             R"("MAX_spend":1,"allowedcurrency":[],"maxspend":0})",
             R"({"spend":1000,"currency":"JPY"})");
  ExpectPass(R"({"note":"x"})", "{}");
  ExpectPass("{}", R"({"anything":1})");
  ExpectPass("{}", "{}");
}

TEST(EvaluateScopeTest, ExtraContextFieldsAreIgnored) {
  ExpectPass(R"({"max_spend":10})", R"({"spend":1,"other":"whatever","max_spend":999})");
}

TEST(EvaluateScopeTest, AllConstraintsMustHold) {
  const char* scope = R"({"max_spend":500,"allowed_currency":["EUR"],"note":"n"})";
  ExpectPass(scope, R"({"spend":500,"currency":"EUR"})");
  ExpectFail(scope, R"({"spend":501,"currency":"EUR"})", "max_spend",
             "Scope constraint max_spend failed: spend is 501, the maximum is 500");
  ExpectFail(scope, R"({"spend":1,"currency":"USD"})", "allowed_currency",
             "Scope constraint allowed_currency failed: currency is \"USD\", allowed are "
             "[\"EUR\"]");
}

TEST(EvaluateScopeTest, FirstFailureInScopeOrderWins) {
  EXPECT_EQ(Eval(R"({"max_a":1,"max_b":1})", R"({"a":2,"b":2})").constraint, "max_a");
  EXPECT_EQ(Eval(R"({"max_b":1,"max_a":1})", R"({"a":2,"b":2})").constraint, "max_b");
  EXPECT_EQ(Eval(R"({"allowed_c":[1],"max_a":1})", R"({"a":2})").constraint, "allowed_c");
}

TEST(EvaluateScopeTest, ReasonAndConstraintNameTheKey) {
  struct Case {
    const char* scope;
    const char* context;
    const char* key;
  };
  const Case kCases[] = {
      {R"({"max_amount_usd":5})", R"({"amount_usd":6})", "max_amount_usd"},
      {R"({"max_amount_usd":5})", R"({})", "max_amount_usd"},
      {R"({"allowed_repo":["a/b"]})", R"({"repo":"c/d"})", "allowed_repo"},
      {R"({"allowed_repo":["a/b"]})", R"({"repo":["a/b","x"]})", "allowed_repo"},
  };
  for (const Case& c : kCases) {
    ScopeVerdict v = Eval(c.scope, c.context);
    EXPECT_FALSE(v.satisfied) << c.scope;
    EXPECT_EQ(v.constraint, c.key) << c.scope;
    EXPECT_EQ(v.reason.rfind(std::string("Scope constraint ") + c.key + " failed: ", 0), 0u)
        << v.reason;
  }
}

// --- budget_ ---------------------------------------------------------------------------------

TEST(ValidateScopeBudgetTest, AcceptsWellFormedBudgets) {
  for (const char* scope : {
           R"({"budget_spend":{"limit":500,"period":"30d"}})",
           R"({"budget_spend":{"period":"1h","limit":0.5}})",
           R"({"budget_spend":{"limit":1,"period":"3650d"}})",
           R"({"budget_spend":{"limit":1,"period":"60s"},"max_spend":10,"note":"x"})",
       }) {
    Status s = ValidateScope(Obj(scope));
    EXPECT_TRUE(s.ok()) << scope << ": " << s.error().Message();
  }
}

TEST(ValidateScopeBudgetTest, RefusesBadBudgetsNamingTheKey) {
  struct Case {
    const char* scope;
    const char* message;
  };
  const std::string kLimit = "scope.budget_spend.limit must be a number greater than 0";
  const std::string kPeriod =
      "scope.budget_spend.period must be a whole number followed by s, m, h or d (e.g. \"30d\", "
      "\"1h\"), at most 3650d";
  const std::string kObject =
      "scope.budget_spend must be an object {\"limit\": number, \"period\": \"30d\"}";
  const Case kCases[] = {
      {R"({"budget_spend":{"period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":0,"period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":0.0,"period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":-5,"period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":"500","period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":null,"period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":true,"period":"30d"}})", kLimit.c_str()},
      {R"({"budget_spend":{"limit":5,"period":"30x"}})", kPeriod.c_str()},
      {R"({"budget_spend":{"limit":5,"period":"0d"}})", kPeriod.c_str()},
      {R"({"budget_spend":{"limit":5,"period":"-1d"}})", kPeriod.c_str()},
      {R"({"budget_spend":{"limit":5,"period":"3651d"}})", kPeriod.c_str()},
      {R"({"budget_spend":{"limit":5,"period":""}})",
       "scope.budget_spend.period must be a whole number followed by s, m, h or d (e.g. \"30d\", "
       "\"1h\"), at most 3650d"},
      {R"({"budget_spend":{"limit":5,"period":30}})",
       "scope.budget_spend.period must be a duration such as \"30d\" or \"1h\""},
      {R"({"budget_spend":{"limit":5}})",
       "scope.budget_spend.period must be a duration such as \"30d\" or \"1h\""},
      {R"({"budget_spend":{"limit":5,"period":"30d","currency":"EUR"}})",
       "scope.budget_spend has an unknown field 'currency'; allowed: limit, period"},
      {R"({"budget_spend":500})", kObject.c_str()},
      {R"({"budget_spend":null})", kObject.c_str()},
      {R"({"budget_spend":[500,"30d"]})", kObject.c_str()},
      {R"({"budget_":{"limit":5,"period":"30d"}})",
       "scope.budget_ names no field: write e.g. max_spend, allowed_currency or budget_spend"},
  };
  for (const Case& c : kCases) {
    Status s = ValidateScope(Obj(c.scope));
    ASSERT_FALSE(s.ok()) << c.scope;
    EXPECT_EQ(s.error().code, Code::kInvalidField) << c.scope;
    EXPECT_EQ(s.error().message, c.message) << c.scope;
  }
}

TEST(EvaluateScopeBudgetTest, WithinTheLimitPasses) {
  const char* scope = R"({"budget_spend":{"limit":500,"period":"30d"}})";
  ExpectPass(scope, R"({"spend":0})");
  ExpectPass(scope, R"({"spend":499.99})");
  ExpectPass(scope, R"({"spend":500})");
  ExpectPass(R"({"budget_spend":{"limit":0.5,"period":"1h"}})", R"({"spend":0.5})");
}

TEST(EvaluateScopeBudgetTest, OverTheLimitFails) {
  ExpectFail(R"({"budget_spend":{"limit":500,"period":"30d"}})", R"({"spend":500.01})",
             "budget_spend",
             "Scope constraint budget_spend failed: spend is 500.01, the budget is 500 per 30d");
  ExpectFail(R"({"budget_spend":{"limit":0.5,"period":"1h"}})", R"({"spend":1})", "budget_spend",
             "Scope constraint budget_spend failed: spend is 1, the budget is 0.5 per 1h");
}

TEST(EvaluateScopeBudgetTest, MissingFieldFailsClosed) {
  const char* scope = R"({"budget_spend":{"limit":500,"period":"30d"}})";
  ExpectFail(scope, "{}", "budget_spend",
             "Scope constraint budget_spend failed: context has no 'spend'");
  ExpectFail(scope, R"({"spend":null})", "budget_spend",
             "Scope constraint budget_spend failed: context has no 'spend'");
}

TEST(EvaluateScopeBudgetTest, NegativeAndNonNumbersFail) {
  const char* scope = R"({"budget_spend":{"limit":500,"period":"30d"}})";
  // A negative amount would refund the budget: refused, not netted.
  ExpectFail(scope, R"({"spend":-1})", "budget_spend",
             "Scope constraint budget_spend failed: spend is -1, a budget is only spent by "
             "amounts of 0 or more");
  ExpectFail(scope, R"({"spend":-0.01})", "budget_spend",
             "Scope constraint budget_spend failed: spend is -0.01, a budget is only spent by "
             "amounts of 0 or more");
  ExpectFail(scope, R"({"spend":"100"})", "budget_spend",
             "Scope constraint budget_spend failed: spend is \"100\", not a number");
}

TEST(EvaluateScopeBudgetTest, MalformedBudgetFailsClosed) {
  for (const char* scope : {R"({"budget_spend":500})",
                            R"({"budget_spend":{"limit":0,"period":"1d"}})",
                            R"({"budget_spend":{"limit":5,"period":"soon"}})"}) {
    ExpectFail(scope, R"({"spend":1})", "budget_spend",
               "Scope constraint budget_spend failed: the budget is not {limit > 0, period}");
  }
}

TEST(EvaluateScopeBudgetTest, OrderWithOtherConstraints) {
  const char* scope =
      R"({"budget_spend":{"limit":100,"period":"1d"},"max_spend":50,"allowed_currency":["EUR"]})";
  ExpectPass(scope, R"({"spend":50,"currency":"EUR"})");
  EXPECT_EQ(Eval(scope, R"({"spend":150,"currency":"EUR"})").constraint, "budget_spend");
  EXPECT_EQ(Eval(scope, R"({"spend":60,"currency":"EUR"})").constraint, "max_spend");
}

TEST(BudgetsOfTest, ListsBudgetsInScopeOrder) {
  std::vector<Budget> budgets = BudgetsOf(Obj(R"({
      "max_spend": 5,
      "budget_spend": {"limit": 500, "period": "30d"},
      "note": "x",
      "budget_calls": {"period": "1h", "limit": 0.25},
      "budget_": {"limit": 1, "period": "1d"},
      "budget_broken": {"limit": -1, "period": "1d"}
  })"));
  ASSERT_EQ(budgets.size(), 2u);
  EXPECT_EQ(budgets[0].key, "budget_spend");
  EXPECT_EQ(budgets[0].field, "spend");
  EXPECT_EQ(budgets[0].limit, 500);
  EXPECT_EQ(budgets[0].period_ms, 30LL * 86'400'000);
  EXPECT_EQ(budgets[1].key, "budget_calls");
  EXPECT_EQ(budgets[1].field, "calls");
  EXPECT_EQ(budgets[1].limit, 0.25);
  EXPECT_EQ(budgets[1].period_ms, 3'600'000);
  EXPECT_TRUE(BudgetsOf(Obj(R"({"max_spend":5})")).empty());
}

TEST(BudgetWindowStartTest, WindowsRunBackToBackFromTheAnchor) {
  const std::int64_t anchor = 1'700'000'000'123;
  const std::int64_t day = 86'400'000;
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor), anchor);
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor + 1), anchor);
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor + day - 1), anchor);
  // Exactly one period later a new window begins.
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor + day), anchor + day);
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor + day + 1), anchor + day);
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor + 3 * day - 1), anchor + 2 * day);
  EXPECT_EQ(BudgetWindowStart(anchor, day, anchor + 3 * day), anchor + 3 * day);
  EXPECT_EQ(BudgetWindowStart(anchor, 3650 * day, anchor + 3651 * day), anchor + 3650 * day);
}

TEST(BudgetWindowStartTest, NowBeforeTheAnchorIsTheFirstWindow) {
  const std::int64_t anchor = 1'700'000'000'000;
  EXPECT_EQ(BudgetWindowStart(anchor, 60'000, anchor - 1), anchor);
  EXPECT_EQ(BudgetWindowStart(anchor, 60'000, anchor - 10 * 60'000), anchor);
  EXPECT_EQ(BudgetWindowStart(anchor, 60'000, 0), anchor);
}

TEST(BudgetUnitsTest, SumsInUnitsAreExact) {
  // In doubles 0.1 + 0.2 != 0.3; in units each amount rounds to whole millionths first.
  EXPECT_NE(0.1 + 0.2, 0.3);
  EXPECT_EQ(ToBudgetUnits(0.1) + ToBudgetUnits(0.2), ToBudgetUnits(0.3));
  EXPECT_EQ(ToBudgetUnits(0.3), 300'000);
  std::int64_t total = 0;
  for (int i = 0; i < 10; ++i) total += ToBudgetUnits(0.1);
  EXPECT_EQ(total, ToBudgetUnits(1));
  EXPECT_EQ(FromBudgetUnits(ToBudgetUnits(0.1) + ToBudgetUnits(0.2)), 0.3);
}

TEST(BudgetUnitsTest, RoundsToSixDecimalsHalfAwayFromZero) {
  EXPECT_EQ(ToBudgetUnits(0), 0);
  EXPECT_EQ(ToBudgetUnits(1), 1'000'000);
  EXPECT_EQ(ToBudgetUnits(12.345678), 12'345'678);
  EXPECT_EQ(ToBudgetUnits(0.0000004), 0);
  EXPECT_EQ(ToBudgetUnits(0.0000006), 1);
  EXPECT_EQ(ToBudgetUnits(0.0000025), 3);  // 2.5 units, up
  EXPECT_EQ(ToBudgetUnits(-0.0000025), -3);
  EXPECT_EQ(ToBudgetUnits(-1.5), -1'500'000);
  EXPECT_EQ(FromBudgetUnits(1'500'000), 1.5);
  EXPECT_EQ(FromBudgetUnits(-1), -0.000001);
}

TEST(BudgetUnitsTest, HugeAmountsSaturate) {
  EXPECT_EQ(ToBudgetUnits(1e300), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(ToBudgetUnits(-1e300), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(ToBudgetUnits(9e12), 9'000'000'000'000'000'000);
}

}  // namespace
}  // namespace agentgate::authz
