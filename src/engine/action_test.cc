// Tests for actions: parsing and checking a request to an app, rendering an action's template
// with its input, redaction of run logs, registrable domains, retries and ranking by intent.
#include "engine/action.h"

#include <gtest/gtest.h>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <limits>
#include <string>

#include "crypto/base64.h"

namespace agentgate::engine {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

json::value Parse(std::string_view text) { return json::parse(text); }
json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

ApiRequest Template(std::string_view text) {
  auto r = ParseApiRequest(Parse(text), "config.request");
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().Message());
  return r.ok() ? *r : ApiRequest{};
}

Result<ApiRequest> Render(std::string_view tmpl, std::string_view input) {
  return RenderActionRequest(Template(tmpl), Obj(input));
}

void ExpectError(const Error& e, Code code, std::string_view message) {
  EXPECT_EQ(e.code, code) << e.Message();
  EXPECT_EQ(e.Message(), message);
}

// --- ParseApiRequest -------------------------------------------------------------------------

TEST(ParseApiRequestTest, DefaultsAndFields) {
  auto r = ParseApiRequest(Parse(R"({"path":"/v1/items"})"), "api");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/v1/items");
  EXPECT_TRUE(r->query.empty());
  EXPECT_TRUE(r->headers.empty());
  EXPECT_FALSE(r->body.has_value());

  r = ParseApiRequest(Parse(R"({"method":"pAtCh","path":"/v1/items/1?x=1",
      "query":{"s":"a b","n":5,"f":1.5,"b":true},"headers":{"X-Trace":"t1","Accept":"*/*"},
      "body":{"name":"n"}})"),
                      "api");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(r->method, "PATCH");
  EXPECT_EQ(r->path, "/v1/items/1?x=1");
  EXPECT_EQ(r->query, (Pairs{{"s", "a b"}, {"n", "5"}, {"f", "1.5"}, {"b", "true"}}));
  EXPECT_EQ(r->headers, (Pairs{{"X-Trace", "t1"}, {"Accept", "*/*"}}));
  ASSERT_TRUE(r->body.has_value());
  EXPECT_EQ(*r->body, Parse(R"({"name":"n"})"));

  // A string body is kept as a string (sent as is); a null body is no body.
  r = ParseApiRequest(Parse(R"({"method":"POST","path":"/x","body":"raw text"})"), "api");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->body, json::value("raw text"));
  r = ParseApiRequest(Parse(R"({"method":"GET","path":"/x","body":null,"query":null})"), "api");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->body.has_value());
}

TEST(ParseApiRequestTest, ErrorsNameTheFieldUnderWhere) {
  struct Case {
    const char* json;
    Code code;
    const char* message;
  };
  const Case kCases[] = {
      {R"("GET /x")", Code::kInvalidField, "Field 'config.request' must be an object"},
      {R"([])", Code::kInvalidField, "Field 'config.request' must be an object"},
      {R"({})", Code::kMissingFields, "Missing required fields: config.request.path"},
      {R"({"path":null})", Code::kMissingFields, "Missing required fields: config.request.path"},
      {R"({"path":5})", Code::kInvalidField, "Field 'config.request.path' must be a string"},
      {R"({"path":{}})", Code::kInvalidField, "Field 'config.request.path' must be a string"},
      {R"({"path":"x"})", Code::kInvalidField,
       "Field 'config.request.path' must start with '/' and be at most 2048 characters"},
      {R"({"path":"/x","url":"http://a"})", Code::kInvalidField,
       "Unknown field 'config.request.url'; allowed: method, path, query, headers, body"},
      {R"({"path":"/x","method":"TRACE"})", Code::kInvalidField,
       "Field 'config.request.method' must be GET, POST, PUT, PATCH, DELETE or HEAD"},
      {R"({"path":"/x","method":5})", Code::kInvalidField,
       "Field 'config.request.method' must be GET, POST, PUT, PATCH, DELETE or HEAD"},
      {R"({"path":"/x","query":"a=1"})", Code::kInvalidField,
       "Field 'config.request.query' must be an object"},
      {R"({"path":"/x","query":{"q":{"nested":1}}})", Code::kInvalidField,
       "Field 'config.request.query.q' must be a string, number or boolean"},
      {R"({"path":"/x","query":{"q":null}})", Code::kInvalidField,
       "Field 'config.request.query.q' must be a string, number or boolean"},
      {R"({"path":"/x","headers":["X: 1"]})", Code::kInvalidField,
       "Field 'config.request.headers' must be an object"},
      {R"({"path":"/x","headers":{"X-N":1}})", Code::kInvalidField,
       "Field 'config.request.headers.X-N' must be a string"},
      {R"({"path":"/x","headers":{"bad name":"v"}})", Code::kInvalidField,
       "Field 'config.request.headers.bad name' must be a header name with a value without line "
       "breaks"},
      {R"({"path":"/x","method":"get","body":{}})", Code::kInvalidField,
       "Field 'config.request.body' cannot be sent with GET"},
      {R"({"path":"/x","method":"HEAD","body":"x"})", Code::kInvalidField,
       "Field 'config.request.body' cannot be sent with HEAD"},
      {R"({"path":"//evil.example/x"})", Code::kEgressDenied,
       "config.request.path must be a path under the connector's base URL, not another URL"},
      {R"({"path":"/a/../admin"})", Code::kEgressDenied,
       "config.request.path must not climb out of the base URL"},
  };
  for (const Case& c : kCases) {
    auto r = ParseApiRequest(Parse(c.json), "config.request");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.error().code, c.code) << c.json << ": " << r.error().Message();
    EXPECT_EQ(r.error().Message(), c.message) << c.json;
  }
  // The inline /act form names "api".
  auto r = ParseApiRequest(Parse(R"({"path":"/x","method":"TRACE"})"), "api");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().Message(),
            "Field 'api.method' must be GET, POST, PUT, PATCH, DELETE or HEAD");
}

TEST(ParseApiRequestTest, RefusesHeaderInjection) {
  for (const char* value : {"a\r\nX-Evil: 1", "a\nb", "a\rb"}) {
    json::object api = Obj(R"({"path":"/x"})");
    api["headers"] = json::object{{"X-Note", value}};
    auto r = ParseApiRequest(api, "api");
    ASSERT_FALSE(r.ok()) << value;
    ExpectError(r.error(), Code::kInvalidField,
                "Field 'api.headers.X-Note' must be a header name with a value without line "
                "breaks");
  }
  json::object api = Obj(R"({"path":"/x"})");
  api["headers"] = json::object{{"X-Note", std::string("a\0b", 3)}};
  EXPECT_FALSE(ParseApiRequest(api, "api").ok());
  api["headers"] = json::object{{"X-Evil\r\nHost", "v"}};
  EXPECT_FALSE(ParseApiRequest(api, "api").ok());
}

TEST(ParseApiRequestTest, RefusesHeadersAgentgateSets) {
  for (const char* name : {"Host", "Authorization", "Cookie", "Proxy-Authorization",
                           "Content-Length", "Transfer-Encoding", "Connection", "TE", "Upgrade",
                           "Expect", "authorization", "HOST", "cOoKiE"}) {
    EXPECT_TRUE(ForbiddenHeader(name)) << name;
    json::object api = Obj(R"({"path":"/x"})");
    api["headers"] = json::object{{name, "v"}};
    auto r = ParseApiRequest(api, "api");
    ASSERT_FALSE(r.ok()) << name;
    ExpectError(r.error(), Code::kInvalidField,
                "Field 'api.headers." + std::string(name) +
                    "' cannot be set: agentgate sets it (credentials are injected from the "
                    "connection)");
  }
  for (const char* name :
       {"Accept", "Content-Type", "X-Api-Version", "Idempotency-Key", "Hosts", "X-Authorization"}) {
    EXPECT_FALSE(ForbiddenHeader(name)) << name;
  }
}

TEST(ParseApiRequestTest, PlaceholdersPassThePathCheck) {
  auto r = ParseApiRequest(
      Parse(R"({"path":"/users/{{ input.user.id }}/repos/{{input.repo}}?x={{input.x}}"})"),
      "config.request");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(r->path, "/users/{{ input.user.id }}/repos/{{input.repo}}?x={{input.x}}");
  // ...but not a traversal written around them.
  r = ParseApiRequest(Parse(R"({"path":"/{{input.a}}/../admin"})"), "config.request");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kEgressDenied);
  // Braces that are not a placeholder are checked as they are (here: a space).
  r = ParseApiRequest(Parse(R"({"path":"/{{ not one }}"})"), "config.request");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kInvalidField);
}

TEST(ApiRequestToJsonTest, RoundTripsAndShowsRepeatedNames) {
  const char* text = R"({"method":"POST","path":"/x","query":{"a":"1","b":"true"},
      "headers":{"X-A":"v"},"body":{"k":[1,2]}})";
  auto r = ParseApiRequest(Parse(text), "api");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::value(ApiRequestToJson(*r)), Parse(text));
  auto again = ParseApiRequest(json::value(ApiRequestToJson(*r)), "api");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->query, r->query);

  ApiRequest minimal;
  minimal.path = "/y";
  EXPECT_EQ(json::value(ApiRequestToJson(minimal)), Parse(R"({"method":"GET","path":"/y"})"));

  ApiRequest repeated;
  repeated.path = "/z";
  repeated.query = {{"tag", "a"}, {"n", "1"}, {"tag", "b"}, {"tag", "c"}};
  repeated.headers = {{"Accept", "a/b"}, {"Accept", "c/d"}};
  EXPECT_EQ(json::value(ApiRequestToJson(repeated)),
            Parse(R"({"method":"GET","path":"/z","query":{"tag":["a","b","c"],"n":"1"},
                      "headers":{"Accept":"a/b, c/d"}})"));
}

// --- CheckApiPath ----------------------------------------------------------------------------

TEST(CheckApiPathTest, AcceptsPathsUnderTheBase) {
  for (const char* path : {"/", "/v1/items", "/v1/items/", "/a.b/c..d/...", "/x?next=/../y",
                           "/search?q=a%2Fb", "/%41bc", "/a:b@c;d=e"}) {
    Status s = CheckApiPath(path);
    EXPECT_TRUE(s.ok()) << path << ": " << s.error().Message();
  }
  EXPECT_TRUE(CheckApiPath("/" + std::string(2047, 'a')).ok());
}

TEST(CheckApiPathTest, RefusesOtherHostsAndTraversal) {
  for (const char* path : {"//evil.example/x", "/x/http://evil", "/a\\b", "/..", "/.", "/a/../b",
                           "/a/./b", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2e/b", "/a/%2e./b",
                           "/a/%2e/b", "/a%2fb", "/a%2Fb", "/a%5cb", "/a/..?x=1"}) {
    Status s = CheckApiPath(path, "config.request.path");
    ASSERT_FALSE(s.ok()) << path;
    EXPECT_EQ(s.error().code, Code::kEgressDenied) << path;
    EXPECT_EQ(s.error().Message().rfind("config.request.path must ", 0), 0u) << s.error().Message();
  }
}

TEST(CheckApiPathTest, RefusesMalformedPaths) {
  for (const std::string& path :
       {std::string(""), std::string("x"), std::string("x/y"), "/" + std::string(2048, 'a'),
        std::string("/a b"), std::string("/a#b"), std::string("/a\tb"), std::string("/a\x7f"),
        std::string("/a\0b", 4)}) {
    Status s = CheckApiPath(path);
    ASSERT_FALSE(s.ok()) << path;
    EXPECT_EQ(s.error().code, Code::kInvalidField) << path;
    EXPECT_EQ(s.error().Message().rfind("Field 'api.path' must ", 0), 0u) << s.error().Message();
  }
}

// --- RenderActionRequest ---------------------------------------------------------------------

TEST(RenderActionRequestTest, PathPlaceholdersAreEncodedSegments) {
  auto r = Render(R"({"path":"/users/{{input.user.login}}/repos/{{ input.repo }}/{{input.n}}"})",
                  R"({"user":{"login":"octo cat"},"repo":"a?b#c;d","n":42})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(r->path, "/users/octo%20cat/repos/a%3Fb%23c%3Bd/42");
  EXPECT_TRUE(r->query.empty());  // every field was used by a placeholder
  r = Render(R"({"path":"/flags/{{input.on}}"})", R"({"on":true})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/flags/true");
}

TEST(RenderActionRequestTest, QueryAndHeaderPlaceholdersAreText) {
  auto r = Render(R"({"path":"/search","query":{"q":"{{input.q}}","limit":"{{input.limit}}",
                      "exact":"{{input.exact}}","label":"v-{{input.limit}}-x","fixed":"1"},
                      "headers":{"X-Trace":"trace {{ input.trace }}","X-Count":"{{input.limit}}"}})",
                  R"({"q":"a b&c=d","limit":10,"exact":false,"trace":"t-1","unused":"u"})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  // Query values stay raw here: the URL builder encodes them once.
  EXPECT_EQ(r->query, (Pairs{{"q", "a b&c=d"},
                             {"limit", "10"},
                             {"exact", "false"},
                             {"label", "v-10-x"},
                             {"fixed", "1"}}));
  EXPECT_EQ(r->headers, (Pairs{{"X-Trace", "trace t-1"}, {"X-Count", "10"}}));
  // The template has a query, so the unused field is not added to it (and a GET has no body).
  EXPECT_FALSE(r->body.has_value());
}

TEST(RenderActionRequestTest, BodyPlaceholderKeepsTheJsonType) {
  auto r = Render(R"({"method":"POST","path":"/contacts","body":{
      "name":"{{input.name}}","age":"{{ input.age }}","vip":"{{input.vip}}",
      "tags":"{{input.tags}}","address":"{{input.address}}","nothing":"{{input.none}}",
      "greeting":"Hello {{input.name}}, {{input.age}} {{input.tags}}",
      "nested":[{"city":"{{input.address.city}}"}],"literal":"{{not a placeholder}}","n":7}})",
                  R"({"name":"Ada","age":36,"vip":true,"tags":["a","b"],
                      "address":{"city":"London"},"none":null})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  ASSERT_TRUE(r->body.has_value());
  EXPECT_EQ(*r->body, Parse(R"({"name":"Ada","age":36,"vip":true,"tags":["a","b"],
      "address":{"city":"London"},"nothing":null,"greeting":"Hello Ada, 36 [\"a\",\"b\"]",
      "nested":[{"city":"London"}],"literal":"{{not a placeholder}}","n":7})"));
  EXPECT_TRUE((*r->body).at("age").is_int64());

  // A string body that is one placeholder becomes that value.
  r = Render(R"({"method":"PUT","path":"/doc","body":"{{input.doc}}"})",
             R"({"doc":{"title":"T"}})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(*r->body, Parse(R"({"title":"T"})"));
}

TEST(RenderActionRequestTest, DefaultPlacementPostGoesToTheBody) {
  // "list" is used by the path, so only the other fields form the body.
  auto r = Render(R"({"method":"POST","path":"/lists/{{input.list}}/members"})",
                  R"({"list":"l1","email":"a@example.com","tags":["x"],"extra":{"k":null}})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  ASSERT_TRUE(r->body.has_value());
  EXPECT_EQ(*r->body, Parse(R"({"email":"a@example.com","tags":["x"],"extra":{"k":null}})"));
  EXPECT_TRUE(r->query.empty());
  EXPECT_EQ(r->path, "/lists/l1/members");

  // Every field used: no body at all.
  r = Render(R"({"method":"PATCH","path":"/items/{{input.id}}"})", R"({"id":"7"})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->body.has_value());
  // A field used only by a header or query placeholder is not repeated in the body.
  r = Render(R"({"method":"PUT","path":"/x","query":{"v":"{{input.v}}"},
                 "headers":{"X-H":"{{input.h}}"}})",
             R"({"v":1,"h":"y","rest":2})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->body, Parse(R"({"rest":2})"));
  // With a body in the template, the unused fields go nowhere.
  r = Render(R"({"method":"POST","path":"/x","body":{"a":"{{input.a}}"}})", R"({"a":1,"b":2})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->body, Parse(R"({"a":1})"));
  EXPECT_TRUE(r->query.empty());
}

TEST(RenderActionRequestTest, DefaultPlacementGetGoesToTheQuery) {
  auto r = Render(R"({"path":"/repos/{{input.owner}}/issues?state=open"})",
                  R"({"owner":"me","q":"bug fix","limit":5,"ratio":0.5,"draft":false,
                      "labels":["a","b",3]})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(r->path, "/repos/me/issues?state=open");
  EXPECT_EQ(r->query, (Pairs{{"q", "bug fix"},
                             {"limit", "5"},
                             {"ratio", "0.5"},
                             {"draft", "false"},
                             {"labels", "a"},
                             {"labels", "b"},
                             {"labels", "3"}}));
  EXPECT_FALSE(r->body.has_value());

  r = Render(R"({"method":"DELETE","path":"/items/{{input.id}}"})", R"({"id":1,"force":true})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->query, (Pairs{{"force", "true"}}));
  EXPECT_FALSE(r->body.has_value());

  // Objects, nulls and nested arrays have no place in a query string.
  for (const char* input : {R"({"filter":{"a":1}})", R"({"filter":null})", R"({"filter":[[1]]})",
                            R"({"filter":[{"a":1}]})"}) {
    r = Render(R"({"path":"/search"})", input);
    ASSERT_FALSE(r.ok()) << input;
    ExpectError(r.error(), Code::kInvalidInput,
                "input.filter cannot go into the query string of a GET request: give a string, "
                "number, boolean or an array of them");
  }
  // Unless a placeholder takes the field elsewhere.
  r = Render(R"({"method":"GET","path":"/search","headers":{"X-F":"{{input.filter.a}}"}})",
             R"({"filter":{"a":1}})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_TRUE(r->query.empty());
}

TEST(RenderActionRequestTest, MissingFieldIsInvalidInputNamingIt) {
  struct Case {
    const char* tmpl;
    const char* input;
    const char* message;
  };
  const Case kCases[] = {
      {R"({"path":"/users/{{input.user.id}}"})", R"({"user":{}})",
       "input.user.id is required by the action's request"},
      {R"({"path":"/users/{{input.user.id}}"})", R"({"user":"x"})",
       "input.user.id is required by the action's request"},
      {R"({"path":"/users/{{input.user.id}}"})", R"({})",
       "input.user.id is required by the action's request"},
      {R"({"path":"/s","query":{"q":"{{input.q}}"}})", R"({})",
       "input.q is required by the action's request"},
      {R"({"path":"/s","headers":{"X-A":"a {{input.h}}"}})", R"({})",
       "input.h is required by the action's request"},
      {R"({"method":"POST","path":"/s","body":{"a":["{{input.b}}"]}})", R"({})",
       "input.b is required by the action's request"},
      {R"({"method":"POST","path":"/s","body":{"a":"x {{input.b}}"}})", R"({})",
       "input.b is required by the action's request"},
  };
  for (const Case& c : kCases) {
    auto r = Render(c.tmpl, c.input);
    ASSERT_FALSE(r.ok()) << c.tmpl;
    ExpectError(r.error(), Code::kInvalidInput, c.message);
  }
}

TEST(RenderActionRequestTest, InputCannotLeaveTheBaseUrl) {
  for (const char* input : {R"({"id":".."})", R"({"id":"."})"}) {
    auto r = Render(R"({"path":"/files/{{input.id}}/content"})", input);
    ASSERT_FALSE(r.ok()) << input;
    ExpectError(r.error(), Code::kEgressDenied,
                "The input takes the action's path out of the connector's base URL");
  }
  // A "/" in a value is percent-encoded as "%2F", which keeps it one segment...
  EXPECT_EQ(boost::urls::encode("a/b", boost::urls::unreserved_chars), "a%2Fb");
  // ...and CheckApiPath then refuses any "%2f" in the path (servers that decode it would see a
  // separator), so the input is refused rather than sent.
  auto r = Render(R"({"path":"/files/{{input.id}}"})", R"({"id":"../../admin"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kEgressDenied);
  r = Render(R"({"path":"/files/{{input.id}}"})", R"({"id":"a/b"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kEgressDenied);
  // Encoded look-alikes are encoded again ('%' is "%25"), so they stay harmless text.
  r = Render(R"({"path":"/files/{{input.id}}"})", R"({"id":"%2e%2e"})");
  ASSERT_TRUE(r.ok()) << r.error().Message();
  EXPECT_EQ(r->path, "/files/%252e%252e");
  // Dots inside a name are fine.
  r = Render(R"({"path":"/files/{{input.id}}"})", R"({"id":"a..b"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/files/a..b");
}

TEST(RenderActionRequestTest, RefusesValuesThatDoNotFit) {
  struct Case {
    const char* tmpl;
    const char* input;
    const char* message;
  };
  const Case kCases[] = {
      {R"({"path":"/u/{{input.id}}/x"})", R"({"id":""})",
       "input.id must not be empty: it is part of the path"},
      {R"({"path":"/u/{{input.id}}"})", R"({"id":{"a":1}})",
       "input.id must be a string, number or boolean to go into the path"},
      {R"({"path":"/u/{{input.id}}"})", R"({"id":null})",
       "input.id must be a string, number or boolean to go into the path"},
      {R"({"path":"/u","query":{"q":"{{input.q}}"}})", R"({"q":[1]})",
       "input.q must be a string, number or boolean to go into the query string"},
      {R"({"path":"/u","headers":{"X-A":"{{input.h}}"}})", R"({"h":{"a":1}})",
       "input.h must be a string, number or boolean to go into a header"},
      // Header injection through the input.
      {R"({"path":"/u","headers":{"X-A":"{{input.h}}"}})", R"({"h":"v\r\nX-Evil: 1"})",
       "input.h cannot go into a header: it has a line break or NUL"},
      {R"({"path":"/u","headers":{"X-A":"a {{input.h}}"}})", R"({"h":"v\nw"})",
       "input.h cannot go into a header: it has a line break or NUL"},
      {R"({"path":"/u","headers":{"X-A":"{{input.h}}"}})", R"({"h":"v\u0000w"})",
       "input.h cannot go into a header: it has a line break or NUL"},
  };
  for (const Case& c : kCases) {
    auto r = Render(c.tmpl, c.input);
    ASSERT_FALSE(r.ok()) << c.tmpl << " " << c.input;
    ExpectError(r.error(), Code::kInvalidInput, c.message);
  }
  // A path made too long by its input.
  json::object input;
  input["id"] = std::string(3000, 'a');
  auto r = RenderActionRequest(Template(R"({"path":"/u/{{input.id}}"})"), input);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Code::kInvalidInput);
}

TEST(RenderActionRequestTest, KeepsMethodAndLiteralParts) {
  auto r = Render(R"({"method":"delete","path":"/a/{{input.x}}","query":{"k":"v"},
                      "headers":{"Accept":"application/json"}})",
                  R"({"x":"1"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, "DELETE");
  EXPECT_EQ(r->query, (Pairs{{"k", "v"}}));
  EXPECT_EQ(r->headers, (Pairs{{"Accept", "application/json"}}));
  // Nothing to fill: the template as it is.
  r = Render(R"({"path":"/static"})", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/static");
  EXPECT_TRUE(r->query.empty());
}

// --- Redactor --------------------------------------------------------------------------------

constexpr std::string_view kSecret = "sk_live/Ab+c d\"e\\f";

TEST(RedactorTest, RedactsRawPercentEncodedAndJsonEscaped) {
  Redactor r;
  r.AddSecret(kSecret);
  EXPECT_EQ(r.Redact("key=" + std::string(kSecret) + "; twice " + std::string(kSecret)),
            "key=[REDACTED]; twice [REDACTED]");
  // Percent-encoded, upper- and lower-case hex, and as a form (space as '+').
  EXPECT_EQ(r.Redact("https://x/y?k=sk_live%2FAb%2Bc%20d%22e%5Cf&z=1"),
            "https://x/y?k=[REDACTED]&z=1");
  EXPECT_EQ(r.Redact("k=sk_live%2fAb%2bc%20d%22e%5cf"), "k=[REDACTED]");
  EXPECT_EQ(r.Redact("k=sk_live%2FAb%2Bc+d%22e%5Cf"), "k=[REDACTED]");
  // JSON-escaped: inside a serialized body.
  json::object body;
  body["token"] = kSecret;
  std::string serialized = json::serialize(body);
  ASSERT_EQ(serialized.find(kSecret), std::string::npos);  // the raw form is not in it
  EXPECT_EQ(r.Redact(serialized), R"({"token":"[REDACTED]"})");
  EXPECT_EQ(r.Redact(R"({"token":"sk_live\/Ab+c d\"e\\f"})"), R"({"token":"[REDACTED]"})");
  EXPECT_EQ(r.Redact("nothing secret here"), "nothing secret here");
}

TEST(RedactorTest, ShortValuesAreIgnoredAndLongestWins) {
  Redactor r;
  r.AddSecret("abc");
  r.AddSecret("");
  EXPECT_EQ(r.Redact("abc abcd"), "abc abcd");
  r.AddSecret("tok1");
  r.AddSecret("tok1-extended");
  EXPECT_EQ(r.Redact("a tok1-extended b tok1 c"), "a [REDACTED] b [REDACTED] c");
}

TEST(RedactorTest, RedactsBasicCredentials) {
  Redactor r;
  r.AddBasicCredentials("alice", "hunter22");
  std::string basic = crypto::Base64Encode(std::string("alice:hunter22"));
  EXPECT_EQ(r.Redact("Authorization: Basic " + basic), "Authorization: Basic [REDACTED]");
  EXPECT_EQ(r.Redact("password=hunter22"), "password=[REDACTED]");
  EXPECT_EQ(r.Redact("user alice"), "user alice");  // the user name is not a secret
}

TEST(RedactorTest, RedactsCredentialHeadersWhole) {
  Redactor r;
  r.AddSecret("secret-value");
  r.AddCredentialName("X-Custom-Token");
  Pairs in = {{"Authorization", "Bearer whatever"},
              {"cookie", "a=b"},
              {"Set-Cookie", "s=1"},
              {"X-API-KEY", "k"},
              {"Proxy-Authorization", "Basic x"},
              {"x-custom-token", "t"},
              {"X-Note", "has secret-value in it"},
              {"Accept", "application/json"}};
  EXPECT_EQ(r.RedactHeaders(in), (Pairs{{"Authorization", "[REDACTED]"},
                                        {"cookie", "[REDACTED]"},
                                        {"Set-Cookie", "[REDACTED]"},
                                        {"X-API-KEY", "[REDACTED]"},
                                        {"Proxy-Authorization", "[REDACTED]"},
                                        {"x-custom-token", "[REDACTED]"},
                                        {"X-Note", "has [REDACTED] in it"},
                                        {"Accept", "application/json"}}));
}

TEST(RedactorTest, RedactsCredentialQueryParameters) {
  Redactor r;
  r.AddCredentialName("api_key");
  r.AddSecret("s3cr3t-token");
  r.AddSecret("pa ss/word1");
  EXPECT_EQ(r.RedactUrl("https://api.example/v1/x?page=2&api_key=anything&q=a"),
            "https://api.example/v1/x?page=2&api_key=[REDACTED]&q=a");
  EXPECT_EQ(r.RedactUrl("https://api.example/x?API_KEY=abc#frag"),
            "https://api.example/x?API_KEY=[REDACTED]#frag");
  EXPECT_EQ(r.RedactUrl("https://api.example/x?api%5Fkey=abc"),
            "https://api.example/x?api%5Fkey=[REDACTED]");
  // Known secrets anywhere else in the URL, also percent-encoded.
  EXPECT_EQ(r.RedactUrl("https://api.example/s3cr3t-token/x?t=pa%20ss%2Fword1&n=1"),
            "https://api.example/[REDACTED]/x?t=[REDACTED]&n=1");
  EXPECT_EQ(r.RedactUrl("https://api.example/x?t=s3cr3t-token"),
            "https://api.example/x?t=[REDACTED]");
  EXPECT_EQ(r.RedactUrl("https://api.example/x"), "https://api.example/x");
  EXPECT_EQ(r.RedactUrl("https://api.example/x?api_key&a=1&&"),
            "https://api.example/x?api_key&a=1&&");
}

// --- RegistrableDomain -----------------------------------------------------------------------

TEST(RegistrableDomainTest, FromThePublicSuffixList) {
  EXPECT_EQ(RegistrableDomain("api.github.com"), "github.com");
  EXPECT_EQ(RegistrableDomain("github.com"), "github.com");
  EXPECT_EQ(RegistrableDomain("API.GitHub.COM."), "github.com");
  EXPECT_EQ(RegistrableDomain("x.y.co.uk"), "y.co.uk");
  EXPECT_EQ(RegistrableDomain("a.b.c.example.com"), "example.com");
  // github.io is itself a public suffix: each user's site is its own domain.
  EXPECT_EQ(RegistrableDomain("a.github.io"), "a.github.io");
  EXPECT_EQ(RegistrableDomain("x.a.github.io"), "a.github.io");
  EXPECT_EQ(RegistrableDomain("github.io"), "github.io");
  EXPECT_EQ(RegistrableDomain("co.uk"), "co.uk");
  EXPECT_EQ(RegistrableDomain("localhost"), "localhost");
  EXPECT_EQ(RegistrableDomain(""), "");
}

TEST(RegistrableDomainTest, IpLiteralsAreTheirOwnDomain) {
  EXPECT_EQ(RegistrableDomain("127.0.0.1"), "127.0.0.1");  // not "0.1"
  EXPECT_EQ(RegistrableDomain("10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(RegistrableDomain("127.1"), "127.1");
  EXPECT_EQ(RegistrableDomain("::1"), "::1");
  EXPECT_EQ(RegistrableDomain("[::1]"), "::1");
  EXPECT_EQ(RegistrableDomain("2001:DB8::1"), "2001:db8::1");
}

TEST(RegistrableDomainTest, SameRegistrableDomain) {
  EXPECT_TRUE(SameRegistrableDomain("api.github.com", "github.com"));
  EXPECT_TRUE(SameRegistrableDomain("api.github.com", "uploads.github.com"));
  EXPECT_TRUE(SameRegistrableDomain("a.github.io", "x.a.github.io"));
  EXPECT_FALSE(SameRegistrableDomain("a.github.io", "b.github.io"));
  EXPECT_FALSE(SameRegistrableDomain("a.y.co.uk", "b.z.co.uk"));
  EXPECT_FALSE(SameRegistrableDomain("github.com", "github.io"));
  EXPECT_FALSE(SameRegistrableDomain("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(SameRegistrableDomain("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(SameRegistrableDomain("::1", "127.0.0.1"));
  EXPECT_FALSE(SameRegistrableDomain("", ""));
}

// --- retries ---------------------------------------------------------------------------------

TEST(RetryTest, IdempotentMethods) {
  for (const char* m : {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}) {
    EXPECT_TRUE(IsIdempotentMethod(m)) << m;
  }
  for (const char* m : {"POST", "PATCH", "CONNECT", ""}) EXPECT_FALSE(IsIdempotentMethod(m)) << m;
}

TEST(RetryTest, RetryAfterIsHonoured) {
  RetryPolicy p;
  EXPECT_EQ(RetryDelayMs(429, 3, 1, 0, true, p), 3000);
  EXPECT_EQ(RetryDelayMs(503, 0, 1, 0, true, p), 0);
  EXPECT_EQ(RetryDelayMs(429, 20, 2, 5'000, true, p), 20'000);
}

TEST(RetryTest, ExponentialBackOffWithoutRetryAfter) {
  RetryPolicy p;
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 1, 0, true, p), 250);
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 2, 300, true, p), 500);
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 3, 900, true, p), 1000);
  EXPECT_EQ(RetryDelayMs(502, std::nullopt, 1, 0, true, p), 250);
  EXPECT_EQ(RetryDelayMs(504, std::nullopt, 1, 0, true, p), 250);
  EXPECT_EQ(RetryDelayMs(0, std::nullopt, 1, 0, true, p), 250);  // no answer at all
  // Capped at max_delay_ms.
  RetryPolicy many;
  many.max_attempts = 100;
  many.deadline_ms = 1'000'000;
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 6, 0, true, many), 8000);
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 80, 0, true, many), 8000);
}

TEST(RetryTest, NotRetried) {
  RetryPolicy p;
  for (int status : {200, 201, 400, 401, 403, 404, 409, 500, 501}) {
    EXPECT_EQ(RetryDelayMs(status, std::nullopt, 1, 0, true, p), std::nullopt) << status;
    EXPECT_EQ(RetryDelayMs(status, 1, 1, 0, true, p), std::nullopt) << status;
  }
  // A POST without an Idempotency-Key may not be repeated; with one it may.
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 1, 0, IsIdempotentMethod("POST"), p), std::nullopt);
  EXPECT_EQ(RetryDelayMs(0, std::nullopt, 1, 0, false, p), std::nullopt);
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 1, 0, true, p), 250);
  // Attempts used up: the fourth attempt was the last.
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 3, 0, true, p), 1000);
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 4, 0, true, p), std::nullopt);
}

TEST(RetryTest, Deadline) {
  RetryPolicy p;                                                        // 30 s
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 1, 29'750, true, p), 250);  // ends exactly at it
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 1, 29'751, true, p), std::nullopt);
  EXPECT_EQ(RetryDelayMs(503, std::nullopt, 1, 31'000, true, p), std::nullopt);
  EXPECT_EQ(RetryDelayMs(429, 10, 1, 20'000, true, p), 10'000);
  // A Retry-After past the deadline is not shortened: the call gives up.
  EXPECT_EQ(RetryDelayMs(429, 11, 1, 20'000, true, p), std::nullopt);
  EXPECT_EQ(RetryDelayMs(429, 60, 1, 0, true, p), std::nullopt);
  EXPECT_EQ(RetryDelayMs(429, std::numeric_limits<std::int64_t>::max(), 1, 0, true, p),
            std::nullopt);
}

// --- RankByIntent ----------------------------------------------------------------------------

TEST(RankByIntentTest, RanksTheMatchingActionFirst) {
  std::vector<std::string> texts = {"list-contacts List contacts",
                                    "create-contact Create contact Creates a new contact",
                                    "send-email Send email"};
  EXPECT_EQ(RankByIntent("create a contact", texts), (std::vector<std::size_t>{1, 0}));
  EXPECT_EQ(RankByIntent("Sending emails", texts), (std::vector<std::size_t>{2}));
  EXPECT_EQ(RankByIntent("list all my contacts", texts), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(RankByIntent("created contacts", texts), (std::vector<std::size_t>{1, 0}));
}

TEST(RankByIntentTest, NothingMatchesNothing) {
  std::vector<std::string> texts = {"list-contacts List contacts", "send-email Send email"};
  EXPECT_TRUE(RankByIntent("delete a repository", texts).empty());
  EXPECT_TRUE(RankByIntent("the a of to", texts).empty());  // only stop words
  EXPECT_TRUE(RankByIntent("", texts).empty());
  EXPECT_TRUE(RankByIntent("contacts", {}).empty());
}

TEST(RankByIntentTest, TiesKeepTheInputOrder) {
  std::vector<std::string> texts = {"x Update issue", "y Update issue", "z other"};
  EXPECT_EQ(RankByIntent("update an issue", texts), (std::vector<std::size_t>{0, 1}));
}

}  // namespace
}  // namespace agentgate::engine
