// Tests for the router and for the request helpers of message.h: query parsing, cookies,
// bearer tokens and the error response shape.
#include "http/router.h"

#include <deque>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "http/message.h"

namespace agentgate::http {
namespace {

// A request whose path and query view into its own target, as the server builds them.
// Request views do not own their bytes; the targets of test requests live here.
std::deque<std::string>& TargetStorage() {
  static std::deque<std::string> storage;
  return storage;
}

Request MakeRequest(Method method, std::string target) {
  Request r;
  r.method = method;
  r.target = TargetStorage().emplace_back(std::move(target));
  std::string_view t = r.target;
  auto q = t.find('?');
  r.path = t.substr(0, q);
  r.query = q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
  return r;
}

Handler Named(std::string name) {
  return [name](Request&) {
    Response r;
    r.body = name;
    return r;
  };
}

// The name of the handler that answers, or "" when no route matched.
std::string Call(const Match& m, Request& req) {
  return m.route ? m.route->handler(req).body : "";
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(Method::kGet, "/", Dispatch::kInline, Named("root"));
    router_.Add(Method::kGet, "/health", Dispatch::kInline, Named("health"));
    router_.Add(Method::kGet, "/permission/check", Dispatch::kInline, Named("check_get"));
    router_.Add(Method::kPost, "/permission/check", Dispatch::kInline, Named("check_post"));
    router_.Add(Method::kPost, "/agent/register", Dispatch::kBlocking, Named("register"));
    router_.Add(Method::kGet, "/agent/:agent_id", Dispatch::kInline, Named("agent"));
    router_.Add(Method::kGet, "/orgs/:org/agents/:agent_id", Dispatch::kBlocking,
                Named("org_agent"));
  }

  Router router_;
};

TEST_F(RouterTest, MatchesLiteralRoutes) {
  Request req = MakeRequest(Method::kGet, "/health");
  Match m = router_.Find(req);
  ASSERT_NE(m.route, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "");
  EXPECT_EQ(m.route->pattern, "/health");
  EXPECT_EQ(m.route->method, Method::kGet);
  EXPECT_EQ(m.route->dispatch, Dispatch::kInline);
  EXPECT_EQ(Call(m, req), "health");
  EXPECT_TRUE(req.params.empty());
}

TEST_F(RouterTest, MatchesTheRoot) {
  Request req = MakeRequest(Method::kGet, "/");
  Match m = router_.Find(req);
  EXPECT_EQ(Call(m, req), "root");
}

TEST_F(RouterTest, MethodSelectsTheRoute) {
  Request get = MakeRequest(Method::kGet, "/permission/check?agent_id=ap_1&action=x");
  Match mg = router_.Find(get);
  EXPECT_EQ(Call(mg, get), "check_get");
  Request post = MakeRequest(Method::kPost, "/permission/check");
  Match mp = router_.Find(post);
  EXPECT_EQ(Call(mp, post), "check_post");
}

TEST_F(RouterTest, LiteralBeatsALaterParamRoute) {
  Request req = MakeRequest(Method::kPost, "/agent/register");
  Match m = router_.Find(req);
  EXPECT_EQ(Call(m, req), "register");
  EXPECT_EQ(m.route->dispatch, Dispatch::kBlocking);
  EXPECT_TRUE(req.params.empty());
}

TEST_F(RouterTest, CapturesParams) {
  Request req = MakeRequest(Method::kGet, "/agent/ap_0123456789abcdef?x=1");
  Match m = router_.Find(req);
  ASSERT_EQ(Call(m, req), "agent");
  ASSERT_EQ(req.params.size(), 1u);
  EXPECT_EQ(req.params[0].first, "agent_id");
  EXPECT_EQ(req.params[0].second, "ap_0123456789abcdef");
  EXPECT_EQ(req.Param("agent_id"), "ap_0123456789abcdef");
  EXPECT_EQ(req.Param("other"), "");
}

TEST_F(RouterTest, CapturesSeveralParams) {
  Request req = MakeRequest(Method::kGet, "/orgs/acme/agents/ap_1");
  Match m = router_.Find(req);
  ASSERT_EQ(Call(m, req), "org_agent");
  ASSERT_EQ(req.params.size(), 2u);
  EXPECT_EQ(req.Param("org"), "acme");
  EXPECT_EQ(req.Param("agent_id"), "ap_1");
}

TEST_F(RouterTest, ParamsFromAFailedCandidateDoNotLeak) {
  // "/orgs/acme/agents" partly matches the two-param route, then nothing matches.
  Request req = MakeRequest(Method::kGet, "/orgs/acme/agents");
  req.params.emplace_back("stale", "value");
  Match m = router_.Find(req);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_FALSE(m.path_known);
  EXPECT_TRUE(req.params.empty());
}

TEST_F(RouterTest, ParamNeedsANonEmptySegment) {
  for (const char* target : {"/agent/", "/agent", "/agent//", "/agent/ap_1/", "/agent/ap_1/x",
                             "/orgs//agents/ap_1"}) {
    Request req = MakeRequest(Method::kGet, target);
    Match m = router_.Find(req);
    EXPECT_EQ(m.route, nullptr) << target;
    EXPECT_FALSE(m.path_known) << target;
    EXPECT_EQ(m.allow, "") << target;
  }
}

TEST_F(RouterTest, UnknownPathIs404) {
  for (const char* target : {"/nope", "/healthz", "/health/", "//health", "/Health",
                             "/permission", "/permission/check/x", ""}) {
    Request req = MakeRequest(Method::kGet, target);
    Match m = router_.Find(req);
    EXPECT_EQ(m.route, nullptr) << target;
    EXPECT_FALSE(m.path_known) << target;
    EXPECT_EQ(m.allow, "") << target;
  }
}

TEST_F(RouterTest, KnownPathWithAnotherMethodIs405WithAllow) {
  Request req = MakeRequest(Method::kDelete, "/permission/check");
  Match m = router_.Find(req);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, HEAD, POST, OPTIONS");

  Request put_health = MakeRequest(Method::kPut, "/health");
  Match mh = router_.Find(put_health);
  EXPECT_EQ(mh.route, nullptr);
  EXPECT_TRUE(mh.path_known);
  EXPECT_EQ(mh.allow, "GET, HEAD, OPTIONS");
}

TEST_F(RouterTest, AllowListsEveryRouteThatMatchesThePath) {
  // GET /agent/:agent_id also matches /agent/register.
  Request req = MakeRequest(Method::kPatch, "/agent/register");
  Match m = router_.Find(req);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "POST, GET, HEAD, OPTIONS");
  EXPECT_TRUE(req.params.empty());

  Request get = MakeRequest(Method::kGet, "/agent/register");
  Match mg = router_.Find(get);
  EXPECT_EQ(Call(mg, get), "agent");
  EXPECT_EQ(get.Param("agent_id"), "register");
}

TEST_F(RouterTest, HeadMatchesGet) {
  Request req = MakeRequest(Method::kHead, "/agent/ap_9");
  Match m = router_.Find(req);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->method, Method::kGet);
  EXPECT_EQ(Call(m, req), "agent");
  EXPECT_EQ(req.Param("agent_id"), "ap_9");

  // HEAD on a POST-only path is a 405.
  Router post_only;
  post_only.Add(Method::kPost, "/auth/logout", Dispatch::kBlocking, Named("logout"));
  Request head = MakeRequest(Method::kHead, "/auth/logout");
  Match mh = post_only.Find(head);
  EXPECT_EQ(mh.route, nullptr);
  EXPECT_TRUE(mh.path_known);
  EXPECT_EQ(mh.allow, "POST, OPTIONS");
}

TEST_F(RouterTest, OptionsIsNotRoutedButTheAllowListKnowsThePath) {
  Request req = MakeRequest(Method::kOptions, "/health");
  Match m = router_.Find(req);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, HEAD, OPTIONS");
}

TEST(RouterEmptyTest, NothingMatches) {
  Router router;
  Request req = MakeRequest(Method::kGet, "/");
  Match m = router.Find(req);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_FALSE(m.path_known);
  EXPECT_EQ(m.allow, "");
}

TEST(MethodNameTest, NamesEveryMethod) {
  EXPECT_EQ(MethodName(Method::kGet), "GET");
  EXPECT_EQ(MethodName(Method::kHead), "HEAD");
  EXPECT_EQ(MethodName(Method::kPost), "POST");
  EXPECT_EQ(MethodName(Method::kPut), "PUT");
  EXPECT_EQ(MethodName(Method::kPatch), "PATCH");
  EXPECT_EQ(MethodName(Method::kDelete), "DELETE");
  EXPECT_EQ(MethodName(Method::kOptions), "OPTIONS");
  EXPECT_EQ(MethodName(Method::kOther), "OTHER");
}

// --- Query -----------------------------------------------------------------------------------

TEST(QueryTest, ParsesPairs) {
  Query q("agent_id=ap_1&action=read:email");
  EXPECT_TRUE(q.valid());
  EXPECT_EQ(q.Get("agent_id"), "ap_1");
  EXPECT_EQ(q.Get("action"), "read:email");
  EXPECT_EQ(q.Get("missing"), std::nullopt);
  EXPECT_EQ(q.Get("Agent_id"), std::nullopt);
}

TEST(QueryTest, PercentDecodes) {
  Query q("action=send%3Aemail&to=a%40b.com&path=%2Fx%2Fy&utf=%C3%A9&sp=a%20b&k%65y=v");
  ASSERT_TRUE(q.valid());
  EXPECT_EQ(q.Get("action"), "send:email");
  EXPECT_EQ(q.Get("to"), "a@b.com");
  EXPECT_EQ(q.Get("path"), "/x/y");
  EXPECT_EQ(q.Get("utf"), "\xC3\xA9");
  EXPECT_EQ(q.Get("sp"), "a b");
  EXPECT_EQ(q.Get("key"), "v");
}

TEST(QueryTest, EncodedAmpersandAndEqualsStayInTheValue) {
  Query q("token=a%26b%3Dc&next=1");
  ASSERT_TRUE(q.valid());
  EXPECT_EQ(q.Get("token"), "a&b=c");
  EXPECT_EQ(q.Get("next"), "1");
}

TEST(QueryTest, EmptyAndValuelessKeys) {
  Query empty("");
  EXPECT_TRUE(empty.valid());
  EXPECT_EQ(empty.Get("a"), std::nullopt);

  Query q("a=&b&c=3");
  ASSERT_TRUE(q.valid());
  EXPECT_EQ(q.Get("a"), "");
  EXPECT_EQ(q.Get("b"), "");
  EXPECT_EQ(q.Get("c"), "3");
}

TEST(QueryTest, RepeatedKeyIsFlaggedAndTheFirstValueKept) {
  Query q("agent_id=ap_1&action=x&agent_id=ap_2");
  bool repeated = false;
  EXPECT_EQ(q.Get("agent_id", &repeated), "ap_1");
  EXPECT_TRUE(repeated);

  bool single = false;
  EXPECT_EQ(q.Get("action", &single), "x");
  EXPECT_FALSE(single);

  bool absent = false;
  EXPECT_EQ(q.Get("nope", &absent), std::nullopt);
  EXPECT_FALSE(absent);

  // Without the flag pointer a repeated key still answers.
  EXPECT_EQ(q.Get("agent_id"), "ap_1");
}

TEST(QueryTest, BadPercentEncodingIsInvalid) {
  for (const char* raw : {"a=%zz", "a=%4", "a=%", "%g0=1"}) {
    Query q(raw);
    EXPECT_FALSE(q.valid()) << raw;
    EXPECT_EQ(q.Get("a"), std::nullopt) << raw;
  }
}

// --- CookieValue -----------------------------------------------------------------------------

TEST(CookieValueTest, FindsOneOfSeveral) {
  std::string_view header = "theme=dark; ap_session=sess_abc123; lang=en";
  EXPECT_EQ(CookieValue(header, "ap_session"), "sess_abc123");
  EXPECT_EQ(CookieValue(header, "theme"), "dark");
  EXPECT_EQ(CookieValue(header, "lang"), "en");
  EXPECT_EQ(CookieValue("ap_session=only", "ap_session"), "only");
}

TEST(CookieValueTest, AbsentIsEmpty) {
  EXPECT_EQ(CookieValue("", "ap_session"), "");
  EXPECT_EQ(CookieValue("theme=dark", "ap_session"), "");
  EXPECT_EQ(CookieValue("xap_session=1; ap_session_old=2", "ap_session"), "");
  EXPECT_EQ(CookieValue("ap_session", "ap_session"), "");
  EXPECT_EQ(CookieValue(";;;", "ap_session"), "");
}

TEST(CookieValueTest, ToleratesSpacesAndTabs) {
  EXPECT_EQ(CookieValue("a=1;ap_session=tok", "ap_session"), "tok");
  EXPECT_EQ(CookieValue("a=1;   ap_session=tok", "ap_session"), "tok");
  EXPECT_EQ(CookieValue("a=1;\tap_session=tok\t", "ap_session"), "tok");
  EXPECT_EQ(CookieValue("a=1; ap_session=tok  ; b=2", "ap_session"), "tok");
  EXPECT_EQ(CookieValue("  ap_session =tok", "ap_session"), "tok");
}

// Regression: whitespace after the name was trimmed but not before the value, so
// "ap_session = tok" gave " tok".
TEST(CookieValueTest, TrimsSpaceAroundTheEqualsSign) {
  EXPECT_EQ(CookieValue("ap_session = tok", "ap_session"), "tok");
}

TEST(CookieValueTest, UnquotesAndKeepsTheRest) {
  EXPECT_EQ(CookieValue("ap_session=\"tok\"", "ap_session"), "tok");
  EXPECT_EQ(CookieValue("ap_session=\"\"", "ap_session"), "");
  EXPECT_EQ(CookieValue("ap_session=\"tok", "ap_session"), "\"tok");
  EXPECT_EQ(CookieValue("ap_session=a=b", "ap_session"), "a=b");
  EXPECT_EQ(CookieValue("ap_session=", "ap_session"), "");
}

TEST(CookieValueTest, FirstOccurrenceWins) {
  EXPECT_EQ(CookieValue("ap_session=first; ap_session=second", "ap_session"), "first");
}

// --- BearerToken -----------------------------------------------------------------------------

TEST(BearerTokenTest, ExtractsTheToken) {
  EXPECT_EQ(BearerToken("Bearer sk_ap_abc"), "sk_ap_abc");
}

TEST(BearerTokenTest, SchemeIsCaseInsensitive) {
  EXPECT_EQ(BearerToken("bearer sk_ap_abc"), "sk_ap_abc");
  EXPECT_EQ(BearerToken("BEARER sk_ap_abc"), "sk_ap_abc");
  EXPECT_EQ(BearerToken("bEaReR sk_ap_abc"), "sk_ap_abc");
}

TEST(BearerTokenTest, ToleratesExtraSpaces) {
  EXPECT_EQ(BearerToken("Bearer    sk_ap_abc"), "sk_ap_abc");
  EXPECT_EQ(BearerToken("Bearer sk_ap_abc   "), "sk_ap_abc");
}

TEST(BearerTokenTest, TokenCaseIsKept) {
  EXPECT_EQ(BearerToken("Bearer SK_AP_ABC"), "SK_AP_ABC");
}

TEST(BearerTokenTest, OtherSchemesAndMalformedHeadersAreEmpty) {
  for (const char* header : {"", "Bearer", "Bearer ", "Bearer     ", "Basic dXNlcjpwYXNz",
                             "Token sk_ap_abc", "Bearersk_ap_abc", "sk_ap_abc",
                             "Bearer-sk_ap_abc", "Bear sk_ap_abc", "Digest username=x",
                             "Bearer\tsk_ap_abc"}) {
    EXPECT_EQ(BearerToken(header), "") << "\"" << header << "\"";
  }
}

// --- ErrorResponse ---------------------------------------------------------------------------

TEST(ErrorResponseTest, HasTheFiveFieldsAndTheDocsUrl) {
  Response r = ErrorResponse(MakeError(Code::kAgentNotFound), "req_5f2c0d9e",
                             "http://127.0.0.1:8080");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  boost::json::value v = boost::json::parse(r.body);
  ASSERT_TRUE(v.is_object());
  const boost::json::object& o = v.as_object();
  EXPECT_EQ(o.size(), 5u);
  EXPECT_EQ(o.at("error").as_string(), "agent_not_found");
  EXPECT_EQ(o.at("message").as_string(), "No active agent found with given ID");
  EXPECT_EQ(o.at("docs").as_string(), "http://127.0.0.1:8080/docs/errors#agent_not_found");
  EXPECT_EQ(o.at("remediation").as_string(),
            "Register the agent first with POST /agent/register, and check the agent_id.");
  EXPECT_EQ(o.at("request_id").as_string(), "req_5f2c0d9e");
  // Field order as in DESIGN.md.
  EXPECT_EQ(r.body.rfind("{\"error\":", 0), 0u);
}

TEST(ErrorResponseTest, UsesSpecificTextAndEscapesIt) {
  Error e = MakeError(Code::kInvalidField, "Field \"scope\" must be an object\n\ttab \\ ctl\x01",
                      "Send {\"scope\": {}}");
  Response r = ErrorResponse(e, "req_1", "https://gate.example.com");
  EXPECT_EQ(r.status, 400);
  boost::json::object o = boost::json::parse(r.body).as_object();
  EXPECT_EQ(o.at("error").as_string(), "invalid_field");
  EXPECT_EQ(o.at("message").as_string(), "Field \"scope\" must be an object\n\ttab \\ ctl\x01");
  EXPECT_EQ(o.at("remediation").as_string(), "Send {\"scope\": {}}");
  EXPECT_EQ(o.at("docs").as_string(), "https://gate.example.com/docs/errors#invalid_field");
  EXPECT_EQ(o.at("request_id").as_string(), "req_1");
}

TEST(ErrorResponseTest, StatusFollowsTheCatalogueForEveryCode) {
  for (const CodeInfo& info : ErrorCatalogue()) {
    Response r = ErrorResponse(MakeError(info.code), "req_x", "http://h");
    EXPECT_EQ(r.status, info.http_status) << info.name;
    boost::json::object o = boost::json::parse(r.body).as_object();
    EXPECT_EQ(o.at("error").as_string(), info.name);
    EXPECT_EQ(o.at("message").as_string(), info.meaning);
    EXPECT_EQ(o.at("remediation").as_string(), info.remediation);
    EXPECT_EQ(o.at("docs").as_string(), "http://h/docs/errors#" + std::string(info.name));
  }
}

}  // namespace
}  // namespace agentgate::http

namespace agentgate::http {
namespace {

// Request views point into Beast's header storage, where the byte after the query is not NUL.
TEST(QueryTest, StopsAtTheEndOfTheViewNotAtATerminator) {
  const std::string buffer = "token=abc*garbage&x=1";
  Query q(std::string_view(buffer).substr(0, 9));
  EXPECT_EQ(q.Get("token"), std::optional<std::string>("abc"));
  EXPECT_EQ(q.Get("x"), std::nullopt);
}

}  // namespace
}  // namespace agentgate::http
