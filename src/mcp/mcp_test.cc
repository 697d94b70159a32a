#include <gtest/gtest.h>

#include <set>

#include "core/json_schema.h"
#include "mcp/server.h"
#include "mcp/tools.h"

namespace agentgate::embedded {
extern const std::string_view kOpenApiJson;
}  // namespace agentgate::embedded

namespace agentgate::mcp {
namespace {

const ToolRegistry& Registry() {
  static const ToolRegistry registry = [] {
    auto r = ToolRegistry::FromOpenApi(embedded::kOpenApiJson);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return std::move(*r);
  }();
  return registry;
}

bool Mentions(const json::value& v, std::string_view key) {
  if (const json::object* o = v.if_object()) {
    for (const auto& [k, sub] : *o) {
      if (k == key || Mentions(sub, key)) return true;
    }
  } else if (const json::array* a = v.if_array()) {
    for (const auto& sub : *a) {
      if (Mentions(sub, key)) return true;
    }
  }
  return false;
}

TEST(ToolRegistryTest, EveryEntryResolvesToAnOperationWithObjectSchemas) {
  const ToolRegistry& registry = Registry();
  ASSERT_EQ(registry.tools().size(), ToolSpecs().size());
  std::set<std::string> names;
  for (const Tool& tool : registry.tools()) {
    SCOPED_TRACE(std::string(tool.spec->name));
    EXPECT_TRUE(names.insert(std::string(tool.spec->name)).second) << "duplicate name";
    const json::object& d = tool.definition;
    EXPECT_EQ(d.at("inputSchema").at("type"), "object");
    EXPECT_EQ(d.at("outputSchema").at("type"), "object");
    // The answer, or on isError the structured error.
    EXPECT_EQ(d.at("outputSchema").at("anyOf").as_array().size(), 2u);
    EXPECT_FALSE(d.at("description").as_string().empty());
    // Self-contained JSON Schema: no references out, no OpenAPI-only keywords.
    EXPECT_FALSE(Mentions(d.at("inputSchema"), "$ref"));
    EXPECT_FALSE(Mentions(d.at("outputSchema"), "$ref"));
    EXPECT_FALSE(Mentions(d.at("outputSchema"), "example"));
    // Models' tool schemas may not start with a combinator.
    EXPECT_FALSE(d.at("inputSchema").as_object().contains("anyOf"));
    EXPECT_FALSE(d.at("inputSchema").as_object().contains("oneOf"));
  }
  for (std::string_view reference_tool :
       {"register_agent", "check_permission", "grant_permission", "revoke_permission",
        "get_agent_status", "list_permissions", "list_activity"}) {
    EXPECT_TRUE(registry.Find(reference_tool)) << reference_tool;
  }
}

TEST(ToolRegistryTest, InputSchemasCombinePathQueryAndBodyFields) {
  const Tool* revoke = Registry().Find("revoke_permission");
  ASSERT_TRUE(revoke);
  const json::object& props = revoke->input_schema.at("properties").as_object();
  // The body is "either agent_id and action, or permission_id": every field, none required.
  EXPECT_TRUE(props.contains("agent_id"));
  EXPECT_TRUE(props.contains("action"));
  EXPECT_TRUE(props.contains("permission_id"));
  EXPECT_FALSE(revoke->input_schema.as_object().contains("required"));

  const Tool* check = Registry().Find("check_permission");
  ASSERT_TRUE(check);
  // agent_id may be left out (an agent's own id fills it), action may not.
  EXPECT_EQ(json::serialize(check->input_schema.at("required")), R"(["action"])");
  EXPECT_TRUE(ValidateAgainstSchema(check->input_schema, json::parse(R"({"action": 1})")));
  EXPECT_TRUE(ValidateAgainstSchema(check->input_schema, json::parse(R"({"actoin": "x"})")));
  EXPECT_FALSE(ValidateAgainstSchema(check->input_schema,
                                     json::parse(R"({"action": "book", "context": {"n": 1}})")));

  const Tool* replay = Registry().Find("replay_webhook_message");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->path_params.size(), 2u);
}

TEST(ToolRegistryTest, CallsAreBuiltFromArguments) {
  const Tool* activity = Registry().Find("list_activity");
  ASSERT_TRUE(activity);
  HttpCall call = ToolRegistry::ToHttpCall(
      *activity, json::parse(R"({"action": "permission.check", "limit": 5, "since": "a b&c"})")
                     .as_object());
  EXPECT_EQ(call.method, http::Method::kGet);
  EXPECT_EQ(call.target, "/v1/activity?action=permission.check&since=a%20b%26c&limit=5");
  EXPECT_EQ(call.body, "");

  const Tool* agent = Registry().Find("get_agent_status");
  call = ToolRegistry::ToHttpCall(*agent, json::parse(R"({"agent_id": "ap_1/../x"})").as_object());
  EXPECT_EQ(call.target, "/agent/ap_1%2F..%2Fx");  // a path field cannot leave its segment

  const Tool* update = Registry().Find("update_webhook");
  call = ToolRegistry::ToHttpCall(
      *update, json::parse(R"({"webhook_id": "wh_1", "description": "new"})").as_object());
  EXPECT_EQ(call.method, http::Method::kPatch);
  EXPECT_EQ(call.target, "/v1/webhooks/wh_1");
  EXPECT_EQ(call.body, R"({"description":"new"})");
}

TEST(ToolRegistryTest, ActionToolsRouteSelectorsAndBodies) {
  for (std::string_view name :
       {"act", "list-actions", "get-action", "create-action", "update-action", "delete-action",
        "run-action", "get-action-run-log", "list-action-run-logs", "export-workspace",
        "import-workspace"}) {
    EXPECT_TRUE(Registry().Find(name)) << name;
  }
  // act: exactly one of api, id, key and code is the route's rule, so none is required here.
  const Tool* act = Registry().Find("act");
  ASSERT_TRUE(act);
  const json::object& props = act->input_schema.at("properties").as_object();
  for (std::string_view field : {"api", "id", "key", "input", "meta", "connectionKey"}) {
    EXPECT_TRUE(props.contains(field)) << field;
  }
  EXPECT_FALSE(act->input_schema.as_object().contains("required"));
  EXPECT_TRUE(ValidateAgainstSchema(act->input_schema, json::parse(R"({"key": "k", "input": 1})")));

  const Tool* run = Registry().Find("run-action");
  ASSERT_TRUE(run);
  HttpCall call = ToolRegistry::ToHttpCall(
      *run, json::parse(R"({"selector": "create refund", "connectionKey": "s", "input": {"n": 1}})")
                .as_object());
  EXPECT_EQ(call.method, http::Method::kPost);
  EXPECT_EQ(call.target, "/actions/create%20refund/run");
  EXPECT_EQ(call.body, R"({"connectionKey":"s","input":{"n":1}})");

  const Tool* get = Registry().Find("get-action");
  call = ToolRegistry::ToHttpCall(
      *get,
      json::parse(R"({"selector": "create-refund", "integrationKey": "stripe"})").as_object());
  EXPECT_EQ(call.target, "/actions/create-refund?integrationKey=stripe");
  EXPECT_EQ(call.body, "");

  const Tool* log = Registry().Find("get-action-run-log");
  call = ToolRegistry::ToHttpCall(
      *log, json::parse(R"({"id": "run_1", "includeDetails": "true"})").as_object());
  EXPECT_EQ(call.target, "/action-run-logs/run_1?includeDetails=true");

  const Tool* update = Registry().Find("update-action");
  call = ToolRegistry::ToHttpCall(
      *update, json::parse(R"({"selector": "act_1", "name": "New"})").as_object());
  EXPECT_EQ(call.method, http::Method::kPatch);
  EXPECT_EQ(call.body, R"({"name":"New"})");
}

TEST(ToolRegistryTest, AnUnknownOperationIsReported) {
  EXPECT_FALSE(ToolRegistry::FromOpenApi(R"({"paths": {}})").ok());
  EXPECT_FALSE(ToolRegistry::FromOpenApi("not json").ok());
}

// ---- the server --------------------------------------------------------------------------

class CountingRandom final : public crypto::Random {
 public:
  void Fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(++n_);
  }

 private:
  std::uint32_t n_ = 0;
};

class FakeHost final : public ToolHost {
 public:
  http::Response Run(const Tool& tool, const HttpCall& call) override {
    calls.push_back(std::string(tool.spec->name) + " " + std::string(http::MethodName(call.method)) +
                    " " + call.target + " " + call.body);
    http::Response r;
    r.status = status;
    r.body = body;
    return r;
  }
  std::string Refused(const Tool& tool, std::string_view message) override {
    refused.push_back(std::string(tool.spec->name) + ": " + std::string(message));
    return R"({"error":"invalid_field","message":")" + std::string(message) + R"("})";
  }
  int status = 200;
  std::string body = R"({"allowed":true})";
  std::vector<std::string> calls;
  std::vector<std::string> refused;
};

class McpServerTest : public ::testing::Test {
 protected:
  McpServerTest() : server_(Registry(), Info(), random_, clock_, Limits()) {}
  static ServerInfo Info() {
    ServerInfo info;
    info.version = "9.9";
    return info;
  }
  static SessionLimits Limits() {
    SessionLimits limits;
    limits.max_per_principal = 3;
    limits.idle_ms = 60'000;
    return limits;
  }

  Outgoing Post(std::string_view body, std::string_view session = {},
                std::string_view principal = "tok_a", std::string_view version = {},
                std::string_view accept = "application/json, text/event-stream") {
    Incoming in;
    in.body = body;
    in.session_id = session;
    in.protocol_version = version;
    in.accept = accept;
    in.content_type = "application/json";
    in.principal = std::string(principal);
    return server_.Post(in, host_);
  }
  std::string Initialize(std::string_view version = "2025-11-25",
                         std::string_view principal = "tok_a") {
    Outgoing out = Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{)"
                        R"("protocolVersion":")" + std::string(version) + R"("}})",
                        {}, principal);
    EXPECT_EQ(out.status, 200) << out.body;
    EXPECT_FALSE(out.session_id.empty());
    return out.session_id;
  }
  static json::value Body(const Outgoing& out) { return json::parse(out.body); }
  static int ErrorCode(const Outgoing& out) {
    return static_cast<int>(Body(out).at("error").at("code").as_int64());
  }

  ManualClock clock_{1'000'000};
  CountingRandom random_;
  FakeHost host_;
  McpServer server_;
};

TEST_F(McpServerTest, InitializeNegotiatesTheVersion) {
  Outgoing out = Post(R"({"jsonrpc":"2.0","id":1,"method":"initialize",)"
                      R"("params":{"protocolVersion":"2025-06-18","capabilities":{}}})");
  ASSERT_EQ(out.status, 200);
  json::value body = Body(out);
  EXPECT_EQ(body.at("id"), 1);
  EXPECT_EQ(body.at("result").at("protocolVersion"), "2025-06-18");
  EXPECT_EQ(body.at("result").at("serverInfo").at("version"), "9.9");
  EXPECT_TRUE(body.at("result").at("capabilities").as_object().contains("tools"));
  EXPECT_EQ(out.session_id.rfind("mcs_", 0), 0u);

  out = Post(R"({"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"1999-01-01"}})");
  EXPECT_EQ(Body(out).at("result").at("protocolVersion"), "2025-11-25");  // ours; client decides

  out = Post(R"({"jsonrpc":"2.0","id":2,"method":"initialize","params":{}})");
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(ErrorCode(out), kInvalidParams);
  EXPECT_EQ(Body(out).at("id"), 2);
}

TEST_F(McpServerTest, SessionsAreRequiredAndBoundToTheirCaller) {
  Outgoing out = Post(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(ErrorCode(out), kBadRequest);
  EXPECT_EQ(Body(out).at("id"), 1);

  std::string session = Initialize();
  out = Post(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})", session);
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(Body(out).at("result").at("tools").as_array().size(), ToolSpecs().size());

  // Another credential cannot use it.
  out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session, "tok_b");
  EXPECT_EQ(out.status, 404);
  EXPECT_EQ(ErrorCode(out), kSessionNotFound);
  out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "mcs_unknown");
  EXPECT_EQ(out.status, 404);

  // Deleted: gone.
  Incoming del;
  del.session_id = session;
  del.principal = "tok_b";
  EXPECT_EQ(server_.Delete(del).status, 404);
  del.principal = "tok_a";
  EXPECT_EQ(server_.Delete(del).status, 204);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session).status, 404);
  del.session_id = {};
  EXPECT_EQ(server_.Delete(del).status, 400);
}

TEST_F(McpServerTest, IdleSessionsExpireAndEachCallerKeepsAFew) {
  std::string session = Initialize();
  clock_.Advance(59'000);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session).status, 200);
  clock_.Advance(61'000);
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session).status, 404);

  std::string first = Initialize();
  clock_.Advance(1);
  Initialize();
  clock_.Advance(1);
  Initialize();
  clock_.Advance(1);
  Initialize();  // the fourth of tok_a's: the least recently used gives way
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", first).status, 404);
  std::string other = Initialize("2025-11-25", "ap_x");
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", other, "ap_x").status, 200);
}

TEST_F(McpServerTest, ProtocolVersionHeader) {
  std::string session = Initialize("2025-06-18");
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session, "tok_a", "2025-06-18").status,
            200);
  Outgoing out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session, "tok_a", "2030-01-01");
  EXPECT_EQ(out.status, 400);
  EXPECT_NE(Body(out).at("error").at("message").as_string().find("Unsupported protocol version"),
            std::string::npos);
  out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", session, "tok_a", "2025-11-25");
  EXPECT_EQ(out.status, 400);  // not the negotiated one
}

TEST_F(McpServerTest, MalformedMessagesGetTheSpecificationsErrors) {
  std::string s = Initialize();
  Outgoing out = Post("{not json", s);
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(ErrorCode(out), kParseError);
  EXPECT_TRUE(Body(out).at("id").is_null());

  for (std::string_view bad : {R"({"id":1,"method":"ping"})", R"({"jsonrpc":"1.0","id":1,"method":"ping"})",
                               R"({"jsonrpc":"2.0","id":null,"method":"ping"})",
                               R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",
                               R"({"jsonrpc":"2.0","id":{},"method":"ping"})",
                               R"({"jsonrpc":"2.0","id":1,"method":7})",
                               R"({"jsonrpc":"2.0","id":1,"method":"ping","params":[1]})",
                               R"({"jsonrpc":"2.0","id":1})", "42", R"("ping")"}) {
    SCOPED_TRACE(std::string(bad));
    out = Post(bad, s);
    EXPECT_EQ(out.status, 400);
    EXPECT_EQ(ErrorCode(out), kInvalidRequest);
  }
  out = Post(R"({"jsonrpc":"2.0","id":7,"method":"resources/list"})", s);
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(ErrorCode(out), kMethodNotFound);
  EXPECT_EQ(Body(out).at("id"), 7);
  out = Post(R"({"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"cursor":"x"}})", s);
  EXPECT_EQ(ErrorCode(out), kInvalidParams);
  // Notifications and responses get 202 and no body.
  out = Post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", s);
  EXPECT_EQ(out.status, 202);
  EXPECT_EQ(out.body, "");
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":5,"result":{}})", s).status, 202);
  // And the session still serves.
  EXPECT_EQ(Post(R"({"jsonrpc":"2.0","id":9,"method":"ping"})", s).status, 200);
}

TEST_F(McpServerTest, BatchesOnlyInTheRevisionThatHadThem) {
  std::string modern = Initialize("2025-11-25");
  Outgoing out = Post(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", modern);
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(ErrorCode(out), kInvalidRequest);

  std::string old = Initialize("2025-03-26");
  out = Post(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},)"
             R"({"jsonrpc":"2.0","id":2,"method":"nope"},{"bad":true}])", old);
  ASSERT_EQ(out.status, 200);
  json::array answers = Body(out).as_array();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].at("id"), 1);
  EXPECT_EQ(answers[1].at("error").at("code"), kMethodNotFound);
  EXPECT_EQ(answers[2].at("error").at("code"), kInvalidRequest);

  EXPECT_EQ(Post("[]", old).status, 400);
  EXPECT_EQ(Post(R"([{"jsonrpc":"2.0","method":"notifications/initialized"}])", old).status, 202);
  out = Post(R"([{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}])", old);
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(ErrorCode(out), kInvalidRequest);
}

TEST_F(McpServerTest, ToolCallsRunThroughTheHost) {
  std::string s = Initialize();
  Outgoing out = Post(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"check_permission",)"
                      R"("arguments":{"agent_id":"ap_0123456789abcdef","action":"book"}}})", s);
  ASSERT_EQ(out.status, 200);
  json::value result = Body(out).at("result");
  EXPECT_EQ(result.at("isError"), false);
  EXPECT_EQ(result.at("structuredContent").at("allowed"), true);
  EXPECT_EQ(result.at("content").at(0).at("type"), "text");
  EXPECT_EQ(result.at("content").at(0).at("text"), R"({"allowed":true})");
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(host_.calls[0],
            R"(check_permission POST /permission/check {"agent_id":"ap_0123456789abcdef","action":"book"})");

  // The API's error is the tool's error, structured.
  host_.status = 403;
  host_.body = R"({"error":"token_missing_ability","message":"no"})";
  out = Post(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_stats"}})", s);
  result = Body(out).at("result");
  EXPECT_EQ(result.at("isError"), true);
  EXPECT_EQ(result.at("structuredContent").at("error"), "token_missing_ability");
}

TEST_F(McpServerTest, AnAgentsOwnIdFillsTheSelfField) {
  Incoming in;
  in.body = R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}})";
  in.principal = "ap_0123456789abcdef";
  in.agent_id = "ap_0123456789abcdef";
  Outgoing init = server_.Post(in, host_);
  in.session_id = init.session_id;
  in.body = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_agent_status","arguments":{}}})";
  Outgoing out = server_.Post(in, host_);
  EXPECT_EQ(out.status, 200);
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(host_.calls[0], "get_agent_status GET /agent/ap_0123456789abcdef ");
}

TEST_F(McpServerTest, BadArgumentsAreToolErrorsFrom20251125AndProtocolErrorsBefore) {
  std::string modern = Initialize("2025-11-25");
  std::string call = R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"check_permission",)"
                     R"("arguments":{"action":42}}})";
  Outgoing out = Post(call, modern);
  ASSERT_EQ(out.status, 200);
  json::value result = Body(out).at("result");
  EXPECT_EQ(result.at("isError"), true);
  EXPECT_EQ(result.at("structuredContent").at("error"), "invalid_field");
  EXPECT_EQ(result.at("structuredContent").at("message"),
            "Invalid arguments for tool check_permission: action must be a string, not integer");
  EXPECT_TRUE(host_.calls.empty());
  ASSERT_EQ(host_.refused.size(), 1u);

  std::string older = Initialize("2025-06-18");
  out = Post(call, older);
  EXPECT_EQ(ErrorCode(out), kInvalidParams);
  EXPECT_EQ(Body(out).at("error").at("data").at("field"), "action");

  // Unknown tools and malformed params are protocol errors in every revision.
  out = Post(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"rm_rf"}})", modern);
  EXPECT_EQ(ErrorCode(out), kInvalidParams);
  out = Post(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_stats","arguments":[1]}})", modern);
  EXPECT_EQ(ErrorCode(out), kInvalidParams);
  out = Post(R"({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{}})", modern);
  EXPECT_EQ(ErrorCode(out), kInvalidParams);
  EXPECT_TRUE(host_.calls.empty());
}

TEST_F(McpServerTest, AnswersAsJsonOrEventStreamAsAccepted) {
  std::string s = Initialize();
  Outgoing out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", s, "tok_a", {}, "text/event-stream");
  EXPECT_EQ(out.content_type, "text/event-stream");
  EXPECT_EQ(out.body, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n");
  out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", s, "tok_a", {}, "application/json");
  EXPECT_EQ(out.content_type, "application/json");
  out = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", s, "tok_a", {}, "text/html");
  EXPECT_EQ(out.status, 406);

  Incoming in;
  in.body = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
  in.session_id = s;
  in.principal = "tok_a";
  in.content_type = "text/plain";
  EXPECT_EQ(server_.Post(in, host_).status, 415);
}

}  // namespace
}  // namespace agentgate::mcp
