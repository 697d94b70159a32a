#include "core/json_schema.h"

#include <gtest/gtest.h>

namespace agentgate {
namespace {

json::value Parse(std::string_view text) { return json::parse(text); }

std::optional<SchemaViolation> Validate(std::string_view schema, std::string_view value) {
  return ValidateAgainstSchema(Parse(schema), Parse(value));
}

constexpr std::string_view kAgentSchema = R"({
  "type": "object",
  "properties": {
    "agent_id": {"type": "string", "minLength": 3, "maxLength": 46, "pattern": "^ap_"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "mode": {"enum": ["fast", "safe"]},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": true},
    "scope": {"type": "object", "additionalProperties": {"type": "number"}}
  },
  "required": ["agent_id"],
  "additionalProperties": false
})";

TEST(JsonSchemaTest, AcceptsConformingValues) {
  EXPECT_FALSE(Validate(kAgentSchema, R"({"agent_id": "ap_123"})"));
  EXPECT_FALSE(Validate(kAgentSchema,
                        R"({"agent_id": "ap_1", "limit": 100, "mode": "safe", "tags": ["a", "b"],
                            "scope": {"max_amount": 5.5}})"));
  EXPECT_FALSE(Validate(kAgentSchema, R"({"agent_id": "ap_1", "limit": 2.0})"));  // integral
  EXPECT_FALSE(Validate("true", "[1]"));
  EXPECT_FALSE(Validate("{}", "null"));
}

TEST(JsonSchemaTest, PointsAtTheOffendingField) {
  auto v = Validate(kAgentSchema, R"({"agent_id": 42})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->pointer, "/agent_id");
  EXPECT_EQ(v->message, "must be a string, not integer");

  v = Validate(kAgentSchema, R"({})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->pointer, "/agent_id");
  EXPECT_EQ(v->message, "is required");

  v = Validate(kAgentSchema, R"({"agent_id": "ap_1", "tags": ["a", 7]})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->pointer, "/tags/1");
  EXPECT_EQ(PointerToFieldName(v->pointer), "tags[1]");

  v = Validate(kAgentSchema, R"({"agent_id": "ap_1", "scope": {"max_amount": "lots"}})");
  ASSERT_TRUE(v);
  EXPECT_EQ(PointerToFieldName(v->pointer), "scope.max_amount");

  v = Validate(kAgentSchema, R"({"agent_id": "ap_1", "extra": true})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->pointer, "/extra");
  EXPECT_EQ(v->message, "is not a known field");
}

TEST(JsonSchemaTest, Bounds) {
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap_1", "limit": 0})")->message,
            "must be at least 1");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap_1", "limit": 101})")->message,
            "must be at most 100");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap_1", "limit": 1.5})")->message,
            "must be an integer, not number");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap"})")->message,
            "must be at least 3 characters long");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "xx_1"})")->message,
            "must match the pattern \"^ap_\"");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap_1", "mode": "slow"})")->message,
            "must be one of: \"fast\", \"safe\"");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap_1", "tags": ["a", "a"]})")->message,
            "must not repeat items (\"a\")");
  EXPECT_EQ(Validate(kAgentSchema, R"({"agent_id": "ap_1", "tags": ["a", "b", "c"]})")->message,
            "must have at most 2 items");
  EXPECT_TRUE(Validate(R"({"exclusiveMinimum": 0})", "0"));
  EXPECT_FALSE(Validate(R"({"exclusiveMinimum": 0})", "0.1"));
  EXPECT_TRUE(Validate(R"({"multipleOf": 0.5})", "0.7"));
  EXPECT_FALSE(Validate(R"({"multipleOf": 0.5})", "1.5"));
}

TEST(JsonSchemaTest, LengthCountsCharactersNotBytes) {
  EXPECT_FALSE(Validate(R"({"maxLength": 2})", "\"\xC3\xA9\xC3\xA9\""));
  EXPECT_TRUE(Validate(R"({"maxLength": 1})", "\"\xC3\xA9\xC3\xA9\""));
}

TEST(JsonSchemaTest, TypeUnionsAndCombinators) {
  EXPECT_FALSE(Validate(R"({"type": ["string", "null"]})", "null"));
  EXPECT_EQ(Validate(R"({"type": ["string", "null"]})", "1")->message,
            "must be string or null, not integer");
  constexpr std::string_view kOneOf =
      R"({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "number", "minimum": 10}]})";
  EXPECT_FALSE(Validate(kOneOf, "\"x\""));
  EXPECT_FALSE(Validate(kOneOf, "12.5"));  // the number branch only
  EXPECT_TRUE(Validate(kOneOf, "2.5"));     // not integral, and below 10: no branch
}

TEST(JsonSchemaTest, OneOfCountsMatches) {
  constexpr std::string_view kOneOf = R"({"oneOf": [{"type": "integer"}, {"minimum": 0}]})";
  EXPECT_FALSE(Validate(kOneOf, "-3"));   // integer only
  EXPECT_FALSE(Validate(kOneOf, "0.5"));  // minimum only
  EXPECT_EQ(Validate(kOneOf, "3")->message, "matches more than one of the allowed shapes");
  EXPECT_TRUE(Validate(kOneOf, "-0.5"));
  EXPECT_TRUE(Validate(R"({"not": {"type": "string"}})", "\"s\""));
  EXPECT_TRUE(Validate(R"({"allOf": [{"type": "integer"}, {"minimum": 5}]})", "4"));
  EXPECT_FALSE(Validate(R"({"anyOf": [{"type": "integer"}, {"minimum": 5}]})", "6.5"));
  EXPECT_TRUE(Validate(R"({"anyOf": [{"type": "integer"}, {"minimum": 5}]})", "4.5"));
  EXPECT_TRUE(Validate(R"({"const": "x"})", "\"y\""));
  EXPECT_TRUE(Validate("false", "1"));
}

TEST(JsonSchemaTest, BadPatternsAndDeepValuesAreErrorsNotCrashes) {
  auto v = Validate(R"({"pattern": "(unclosed"})", "\"x\"");
  ASSERT_TRUE(v);
  EXPECT_NE(v->message.find("pattern is invalid"), std::string::npos);

  std::string deep_schema, deep_value;
  for (int i = 0; i < 100; ++i) {
    deep_schema += R"({"items": )";
    deep_value += "[";
  }
  deep_schema += "{}";
  deep_value += "1";
  for (int i = 0; i < 100; ++i) {
    deep_schema += "}";
    deep_value += "]";
  }
  json::parse_options options;
  options.max_depth = 1000;
  auto violation = ValidateAgainstSchema(json::parse(deep_schema, {}, options),
                                         json::parse(deep_value, {}, options));
  ASSERT_TRUE(violation);
  EXPECT_EQ(violation->message, "is nested too deeply");
}

TEST(JsonSchemaTest, FieldNames) {
  EXPECT_EQ(PointerToFieldName(""), "(the input)");
  EXPECT_EQ(PointerToFieldName("/a~1b/c~0d"), "a/b.c~d");
  EXPECT_EQ(PointerToFieldName("/items/0/name"), "items[0].name");
}

}  // namespace
}  // namespace agentgate
