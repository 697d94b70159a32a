// Tests for the connector format (ParseConnector / ConnectorToJson), templates, credential
// injection, URL resolution and the shipped catalog.
#include "engine/connector.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <span>
#include <string>

namespace agentgate::embedded {
extern const std::span<const std::string_view> kConnectorFilesNames;
extern const std::span<const std::string_view> kConnectorFilesTexts;
}  // namespace agentgate::embedded

namespace agentgate::engine {
namespace {

using Vars = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

json::value Parse(std::string_view text) { return json::parse(text); }

// A valid oauth2 connector with one connection field, the base the error cases edit.
constexpr std::string_view kOAuthSpec = R"({
  "key": "acme",
  "name": "Acme",
  "description": "Acme's API.",
  "categories": ["developer-tools"],
  "docsUrl": "https://docs.acme.example/api",
  "baseUrl": "https://{tenant}.acme.example/api/v1",
  "headers": {"Accept": "application/json"},
  "connectionFields": [{"key": "tenant", "label": "Tenant", "pattern": "^[a-z0-9-]+$"}],
  "auth": {
    "type": "oauth2",
    "authorizeUrl": "https://{tenant}.acme.example/oauth/authorize",
    "tokenUrl": "https://auth.acme.example/oauth/token",
    "scopes": ["read", "write"]
  },
  "test": {"method": "GET", "path": "/me"}
})";

constexpr std::string_view kApiKeySpec = R"({
  "key": "keyed",
  "name": "Keyed",
  "baseUrl": "https://api.keyed.example",
  "auth": {"type": "api_key"}
})";

constexpr std::string_view kBasicSpec = R"({
  "key": "basic-one",
  "name": "Basic",
  "baseUrl": "https://api.basic.example",
  "auth": {"type": "basic"}
})";

json::value Edited(std::string_view base, const std::function<void(json::object&)>& edit) {
  json::value v = Parse(base);
  edit(v.as_object());
  return v;
}

json::object& AuthOf(json::object& spec) { return spec["auth"].as_object(); }

Connector MustParse(const json::value& spec) {
  auto c = ParseConnector(spec);
  EXPECT_TRUE(c.ok()) << Serialize(spec) << ": " << (c.ok() ? "" : c.error().Message());
  return c.ok() ? std::move(*c) : Connector{};
}

// Expects invalid_field naming `field` ("Field 'auth.tokenUrl' ...").
void ExpectInvalid(const json::value& spec, const std::string& field) {
  auto c = ParseConnector(spec);
  ASSERT_FALSE(c.ok()) << "accepted " << Serialize(spec);
  EXPECT_EQ(c.error().code, Code::kInvalidField) << c.error().Message();
  EXPECT_NE(std::string(c.error().Message()).find("Field '" + field + "'"), std::string::npos)
      << "expected field " << field << ", got: " << c.error().Message();
}

// ConnectorToJson without id/custom parses back to the same view.
void ExpectRoundTrip(const Connector& c) {
  json::object view = ConnectorToJson(c);
  ASSERT_TRUE(view.contains("id"));
  ASSERT_TRUE(view.contains("custom"));
  json::object spec = view;
  spec.erase("id");
  spec.erase("custom");
  auto again = ParseConnector(spec);
  ASSERT_TRUE(again.ok()) << c.key << ": " << again.error().Message() << "\n" << Serialize(spec);
  again->id = c.id;
  again->custom = c.custom;
  EXPECT_EQ(json::value(ConnectorToJson(*again)), json::value(view)) << c.key;
}

const Catalog& Shipped() {
  static const Catalog catalog = [] {
    auto c = Catalog::Builtin();
    if (!c.ok()) ADD_FAILURE() << c.error().Message();
    return c.ok() ? std::move(*c) : Catalog::FromConnectors({}).value();
  }();
  return catalog;
}

// --- The shipped catalog ------------------------------------------------------------------------

TEST(ConnectorCatalogTest, BuiltinParsesEveryShippedFile) {
  auto catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok()) << catalog.error().Message();
  EXPECT_GE(catalog->all().size(), 20u);
  EXPECT_EQ(catalog->all().size(), embedded::kConnectorFilesNames.size());
  EXPECT_EQ(embedded::kConnectorFilesNames.size(), embedded::kConnectorFilesTexts.size());
}

TEST(ConnectorCatalogTest, EachFileParsesOnItsOwnAndItsKeyIsItsFileName) {
  std::set<std::string> keys;
  for (std::size_t i = 0; i < embedded::kConnectorFilesNames.size(); ++i) {
    std::string name(embedded::kConnectorFilesNames[i]);
    boost::system::error_code ec;
    json::value spec = json::parse(embedded::kConnectorFilesTexts[i], ec);
    ASSERT_FALSE(ec) << name << ".json: " << ec.message();
    auto c = ParseConnector(spec);
    ASSERT_TRUE(c.ok()) << name << ".json: " << c.error().Message();
    EXPECT_EQ(c->key, name);
    EXPECT_TRUE(keys.insert(c->key).second) << "duplicate key " << c->key;
  }
}

TEST(ConnectorCatalogTest, ShippedConnectorsRoundTripAndCarryIds) {
  for (const Connector& c : Shipped().all()) {
    EXPECT_EQ(c.id, "cnr_" + c.key);
    EXPECT_FALSE(c.custom);
    ExpectRoundTrip(c);
  }
}

TEST(ConnectorCatalogTest, ShipsTheProvidersWeList) {
  for (const char* key :
       {"github", "gitlab", "slack", "gmail", "google-sheets", "google-drive", "microsoft-graph",
        "hubspot", "salesforce", "linear", "jira", "notion", "asana", "zendesk", "intercom",
        "shopify", "stripe", "airtable", "dropbox", "discord", "trello", "sendgrid"}) {
    EXPECT_NE(Shipped().Find(key), nullptr) << key;
  }
}

TEST(ConnectorCatalogTest, AllIsSortedByKey) {
  const auto& all = Shipped().all();
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].key, all[i].key);
}

TEST(ConnectorCatalogTest, ShippedSpecificsAreWhatTheProvidersDocument) {
  const Connector* google = Shipped().Find("gmail");
  ASSERT_NE(google, nullptr);
  EXPECT_EQ(google->auth.authorize_params.at("access_type"), "offline");
  EXPECT_EQ(google->auth.authorize_params.at("prompt"), "consent");

  const Connector* jira = Shipped().Find("jira");
  ASSERT_NE(jira, nullptr);
  EXPECT_EQ(jira->auth.authorize_params.at("audience"), "api.atlassian.com");
  EXPECT_NE(std::find(jira->auth.scopes.begin(), jira->auth.scopes.end(), "offline_access"),
            jira->auth.scopes.end());

  const Connector* notion = Shipped().Find("notion");
  ASSERT_NE(notion, nullptr);
  EXPECT_EQ(notion->auth.client_auth, ClientAuth::kBasic);
  EXPECT_TRUE(notion->headers.count("Notion-Version"));

  const Connector* airtable = Shipped().Find("airtable");
  ASSERT_NE(airtable, nullptr);
  EXPECT_TRUE(airtable->auth.pkce);

  EXPECT_EQ(Shipped().Find("stripe")->auth.type, AuthType::kApiKey);
  EXPECT_EQ(Shipped().Find("zendesk")->auth.type, AuthType::kBasic);
  EXPECT_EQ(Shipped().Find("trello")->auth.in, KeyLocation::kQuery);
  EXPECT_EQ(Shipped().Find("paypal")->auth.type, AuthType::kOAuth2ClientCredentials);
}

TEST(ConnectorCatalogTest, FindAndSearch) {
  const Catalog& c = Shipped();
  ASSERT_NE(c.Find("github"), nullptr);
  EXPECT_EQ(c.Find("github")->name, "GitHub");
  EXPECT_EQ(c.Find("nope"), nullptr);
  EXPECT_EQ(c.Find(""), nullptr);
  EXPECT_EQ(c.Find("GitHub"), nullptr);

  EXPECT_EQ(c.Search("").size(), c.all().size());
  EXPECT_TRUE(c.Search("zzzz-no-such-thing").empty());

  std::set<std::string> crm;
  for (const Connector* x : c.Search("CRM")) crm.insert(x->key);  // a category, any case
  EXPECT_TRUE(crm.count("hubspot"));
  EXPECT_TRUE(crm.count("salesforce"));

  std::set<std::string> google;
  for (const Connector* x : c.Search("google")) google.insert(x->key);
  EXPECT_TRUE(google.count("gmail"));  // by description ("Google Workspace")
  EXPECT_TRUE(google.count("google-sheets"));

  auto tickets = c.Search("TICKETS");  // by description
  EXPECT_FALSE(tickets.empty());
  for (std::size_t i = 1; i < tickets.size(); ++i) EXPECT_LT(tickets[i - 1]->key, tickets[i]->key);
}

TEST(ConnectorCatalogTest, FromConnectorsRefusesDuplicateKeys) {
  Connector a = MustParse(Parse(kApiKeySpec));
  Connector b = a;
  auto catalog = Catalog::FromConnectors({a, b});
  ASSERT_FALSE(catalog.ok());
  EXPECT_EQ(catalog.error().code, Code::kConflict);
}

// --- ParseConnector: accepted forms and defaults -------------------------------------------------

TEST(ConnectorParseTest, OAuthDefaults) {
  Connector c = MustParse(Parse(kOAuthSpec));
  EXPECT_EQ(c.id, "");
  EXPECT_FALSE(c.custom);
  EXPECT_EQ(c.auth.type, AuthType::kOAuth2);
  EXPECT_EQ(c.auth.scope_separator, " ");
  EXPECT_FALSE(c.auth.pkce);
  EXPECT_EQ(c.auth.client_auth, ClientAuth::kBody);
  EXPECT_TRUE(c.auth.refresh);
  EXPECT_EQ(c.auth.header, "Authorization");
  EXPECT_EQ(c.auth.value_template, "Bearer {accessToken}");
  ASSERT_TRUE(c.test.has_value());
  EXPECT_EQ(c.test->method, "GET");
  ExpectRoundTrip(c);

  json::object view = ConnectorToJson(c);
  EXPECT_EQ(view.at("auth").at("clientAuth"), "body");
  EXPECT_EQ(view.at("auth").at("refresh"), true);
  EXPECT_TRUE(view.at("logoUri").is_null());
  EXPECT_EQ(view.at("connectionFields").at(0).at("required"), true);
}

TEST(ConnectorParseTest, ApiKeyAndBasicDefaults) {
  Connector k = MustParse(Parse(kApiKeySpec));
  EXPECT_EQ(k.auth.in, KeyLocation::kHeader);
  EXPECT_EQ(k.auth.header, "Authorization");
  EXPECT_EQ(k.auth.value_template, "Bearer {apiKey}");
  ASSERT_EQ(k.auth.fields.size(), 1u);
  EXPECT_EQ(k.auth.fields[0].key, "apiKey");
  EXPECT_TRUE(k.auth.fields[0].secret);
  EXPECT_FALSE(k.test.has_value());
  ExpectRoundTrip(k);

  Connector b = MustParse(Parse(kBasicSpec));
  ASSERT_EQ(b.auth.fields.size(), 2u);
  EXPECT_EQ(b.auth.fields[0].key, "username");
  EXPECT_FALSE(b.auth.fields[0].secret);
  EXPECT_EQ(b.auth.fields[1].key, "password");
  EXPECT_TRUE(b.auth.fields[1].secret);
  EXPECT_EQ(b.auth.username_template, "{username}");
  EXPECT_EQ(b.auth.password_template, "{password}");
  ExpectRoundTrip(b);
}

TEST(ConnectorParseTest, ClientCredentialsAndQueryKeysRoundTrip) {
  Connector cc = MustParse(Parse(R"({
    "key": "m2m", "name": "M2M", "baseUrl": "https://api.m2m.example",
    "connectionFields": [{"key": "tenant", "label": "Tenant"}],
    "auth": {"type": "oauth2_client_credentials",
             "tokenUrl": "https://login.m2m.example/{tenant}/token",
             "scopes": ["https://api.m2m.example/.default"], "clientAuth": "basic"}})"));
  EXPECT_EQ(cc.auth.type, AuthType::kOAuth2ClientCredentials);
  ExpectRoundTrip(cc);
  json::object view = ConnectorToJson(cc);
  EXPECT_FALSE(view.at("auth").as_object().contains("authorizeUrl"));
  EXPECT_FALSE(view.at("auth").as_object().contains("pkce"));

  Connector q = MustParse(Parse(R"({
    "key": "q", "name": "Q", "baseUrl": "https://api.q.example/",
    "auth": {"type": "api_key", "in": "query", "name": "key", "query": {"token": "{token}"},
             "fields": [{"key": "apiKey", "label": "Key"},
                        {"key": "token", "label": "Token", "secret": true}]}})"));
  EXPECT_EQ(q.base_url, "https://api.q.example");  // trailing '/' dropped
  EXPECT_EQ(q.auth.value_template, "{apiKey}");   // the query default
  EXPECT_EQ(q.auth.header, "");
  ExpectRoundTrip(q);
}

TEST(ConnectorParseTest, HttpOnlyForLoopbackHosts) {
  for (const char* base : {"http://localhost:8080", "http://127.0.0.1:9000/api",
                           "http://[::1]:8443", "http://LOCALHOST"}) {
    json::value spec = Edited(kApiKeySpec, [&](json::object& o) { o["baseUrl"] = base; });
    auto c = ParseConnector(spec);
    EXPECT_TRUE(c.ok()) << base << ": " << (c.ok() ? "" : c.error().Message());
  }
  for (const char* base : {"http://api.example.com", "http://127.0.0.2", "http://10.0.0.1",
                           "http://localhost.evil.example"}) {
    ExpectInvalid(Edited(kApiKeySpec, [&](json::object& o) { o["baseUrl"] = base; }), "baseUrl");
  }
}

TEST(ConnectorParseTest, NullMeansAbsent) {
  Connector c = MustParse(Edited(kOAuthSpec, [](json::object& o) {
    o["logoUri"] = nullptr;
    o["test"] = nullptr;
    o["headers"] = nullptr;
  }));
  EXPECT_FALSE(c.test.has_value());
  EXPECT_TRUE(c.headers.empty());
}

// --- ParseConnector: each refusal names its field ----------------------------------------------

struct BadCase {
  std::string_view base;
  std::function<void(json::object&)> edit;
  std::string field;
};

TEST(ConnectorParseTest, EveryRefusalNamesTheField) {
  const std::string long_name(101, 'n');
  const std::string long_key(64, 'k');
  const std::string long_scope(201, 's');
  json::array many_scopes;
  for (int i = 0; i < 51; ++i) many_scopes.emplace_back("s" + std::to_string(i));

  const std::vector<BadCase> cases = {
      // top level
      {kOAuthSpec, [](json::object& o) { o["color"] = "blue"; }, "color"},
      {kOAuthSpec, [](json::object& o) { o["id"] = "cnr_x"; }, "id"},
      {kOAuthSpec, [](json::object& o) { o["custom"] = true; }, "custom"},
      {kOAuthSpec, [](json::object& o) { o.erase("key"); }, "key"},
      {kOAuthSpec, [](json::object& o) { o["key"] = "Acme"; }, "key"},
      {kOAuthSpec, [](json::object& o) { o["key"] = "-acme"; }, "key"},
      {kOAuthSpec, [&](json::object& o) { o["key"] = long_key; }, "key"},
      {kOAuthSpec, [](json::object& o) { o["name"] = ""; }, "name"},
      {kOAuthSpec, [&](json::object& o) { o["name"] = long_name; }, "name"},
      {kOAuthSpec, [](json::object& o) { o["name"] = 7; }, "name"},
      {kOAuthSpec, [](json::object& o) { o["description"] = "a\x01z"; }, "description"},
      {kOAuthSpec, [](json::object& o) { o["categories"] = json::array{"Dev Tools"}; },
       "categories[0]"},
      {kOAuthSpec, [](json::object& o) { o["categories"] = json::array{"a", "a"}; },
       "categories[1]"},
      {kOAuthSpec, [](json::object& o) { o["docsUrl"] = "http://docs.acme.example"; }, "docsUrl"},
      {kOAuthSpec, [](json::object& o) { o["logoUri"] = "javascript:alert(1)"; }, "logoUri"},
      // baseUrl
      {kOAuthSpec, [](json::object& o) { o.erase("baseUrl"); }, "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "ftp://acme.example"; }, "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "api.acme.example/v1"; }, "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://u:p@api.acme.example"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://api.acme.example/#frag"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://api.acme.example/v1?x=1"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://api.acme.example/a b"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://{region}.acme.example"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://{tenant.acme.example"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "https://tenant}.acme.example"; },
       "baseUrl"},
      {kOAuthSpec, [](json::object& o) { o["baseUrl"] = "{tenant}://acme.example"; }, "baseUrl"},
      {kOAuthSpec,
       [](json::object& o) {
         o["connectionFields"].as_array()[0].as_object()["required"] = false;
       },
       "baseUrl"},
      // headers
      {kOAuthSpec, [](json::object& o) { o["headers"] = json::object{{"Bad Header", "x"}}; },
       "headers.Bad Header"},
      {kOAuthSpec, [](json::object& o) { o["headers"] = json::object{{"X-A", "a\r\nB: c"}}; },
       "headers.X-A"},
      {kOAuthSpec, [](json::object& o) { o["headers"] = json::object{{"Host", "evil"}}; },
       "headers.Host"},
      {kOAuthSpec, [](json::object& o) { o["headers"] = json::object{{"authorization", "x"}}; },
       "headers.authorization"},
      {kOAuthSpec, [](json::object& o) { o["headers"] = json::object{{"X-N", 1}}; },
       "headers.X-N"},
      // connectionFields
      {kOAuthSpec,
       [](json::object& o) { o["connectionFields"].as_array()[0].as_object()["key"] = "1x"; },
       "connectionFields[0].key"},
      {kOAuthSpec,
       [](json::object& o) {
         o["connectionFields"].as_array().push_back(json::object{{"key", "tenant"}, {"label", "T"}});
       },
       "connectionFields[1].key"},
      {kOAuthSpec,
       [](json::object& o) { o["connectionFields"].as_array()[0].as_object()["pattern"] = "("; },
       "connectionFields[0].pattern"},
      {kOAuthSpec,
       [](json::object& o) { o["connectionFields"].as_array()[0].as_object()["color"] = 1; },
       "connectionFields[0].color"},
      {kOAuthSpec,
       [](json::object& o) { o["connectionFields"].as_array()[0].as_object().erase("label"); },
       "connectionFields[0].label"},
      {kOAuthSpec,
       [](json::object& o) {
         o["connectionFields"].as_array()[0].as_object()["secret"] = "yes";
       },
       "connectionFields[0].secret"},
      // auth, common
      {kOAuthSpec, [](json::object& o) { o.erase("auth"); }, "auth"},
      {kOAuthSpec, [](json::object& o) { o["auth"] = "oauth2"; }, "auth"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["type"] = "oauth1"; }, "auth.type"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o).erase("type"); }, "auth.type"},
      // oauth2
      {kOAuthSpec, [](json::object& o) { AuthOf(o).erase("tokenUrl"); }, "auth.tokenUrl"},
      {kOAuthSpec,
       [](json::object& o) { AuthOf(o)["tokenUrl"] = "https://{nope}.acme.example/token"; },
       "auth.tokenUrl"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o).erase("authorizeUrl"); }, "auth.authorizeUrl"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["authorizeUrl"] = "not a url"; },
       "auth.authorizeUrl"},
      {kOAuthSpec, [&](json::object& o) { AuthOf(o)["scopes"] = many_scopes; }, "auth.scopes"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["scopes"] = "read write"; }, "auth.scopes"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["scopes"] = json::array{"read", "a b"}; },
       "auth.scopes[1]"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["scopes"] = json::array{""}; },
       "auth.scopes[0]"},
      {kOAuthSpec, [&](json::object& o) { AuthOf(o)["scopes"] = json::array{long_scope}; },
       "auth.scopes[0]"},
      {kOAuthSpec,
       [](json::object& o) {
         AuthOf(o)["scopeSeparator"] = ",";
         AuthOf(o)["scopes"] = json::array{"a,b"};
       },
       "auth.scopes[0]"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["scopeSeparator"] = ""; },
       "auth.scopeSeparator"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["clientAuth"] = "header"; }, "auth.clientAuth"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["pkce"] = "yes"; }, "auth.pkce"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["refresh"] = 1; }, "auth.refresh"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["template"] = "Bearer {token}"; },
       "auth.template"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["template"] = "Bearer"; }, "auth.template"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["template"] = "Bearer {accessToken"; },
       "auth.template"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["header"] = "X Token"; }, "auth.header"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["header"] = "Content-Length"; },
       "auth.header"},
      {kOAuthSpec,
       [](json::object& o) { AuthOf(o)["authorizeParams"] = json::object{{"state", "x"}}; },
       "auth.authorizeParams.state"},
      {kOAuthSpec,
       [](json::object& o) { AuthOf(o)["authorizeParams"] = json::object{{"prompt", 1}}; },
       "auth.authorizeParams.prompt"},
      {kOAuthSpec, [](json::object& o) { AuthOf(o)["fields"] = json::array{}; }, "auth.fields"},
      // oauth2_client_credentials
      {kOAuthSpec,
       [](json::object& o) { AuthOf(o)["type"] = "oauth2_client_credentials"; },
       "auth.authorizeUrl"},
      // api_key
      {kApiKeySpec, [](json::object& o) { AuthOf(o)["template"] = "Bearer {secret}"; },
       "auth.template"},
      {kApiKeySpec, [](json::object& o) { AuthOf(o)["in"] = "body"; }, "auth.in"},
      {kApiKeySpec, [](json::object& o) { AuthOf(o)["in"] = "query"; }, "auth.name"},
      {kApiKeySpec,
       [](json::object& o) {
         AuthOf(o)["in"] = "query";
         AuthOf(o)["name"] = "key";
         AuthOf(o)["header"] = "X-Key";
       },
       "auth.header"},
      {kApiKeySpec, [](json::object& o) { AuthOf(o)["name"] = "key"; }, "auth.name"},
      {kApiKeySpec,
       [](json::object& o) {
         AuthOf(o)["fields"] = json::array{json::object{{"key", "apiKey"}, {"label", "Key"}},
                                           json::object{{"key", "extra"}, {"label", "Extra"}}};
       },
       "auth.fields[1].key"},
      {kApiKeySpec, [](json::object& o) { AuthOf(o)["fields"] = json::array{}; }, "auth.fields"},
      {kApiKeySpec,
       [](json::object& o) { AuthOf(o)["query"] = json::object{{"token", "{nope}"}}; },
       "auth.query.token"},
      {kApiKeySpec, [](json::object& o) { AuthOf(o)["scopes"] = json::array{}; }, "auth.scopes"},
      // basic
      {kBasicSpec, [](json::object& o) { AuthOf(o)["usernameTemplate"] = "{user}"; },
       "auth.usernameTemplate"},
      {kBasicSpec, [](json::object& o) { AuthOf(o)["usernameTemplate"] = "a:{username}"; },
       "auth.usernameTemplate"},
      {kBasicSpec, [](json::object& o) { AuthOf(o)["fields"] = json::array{}; }, "auth.fields"},
      {kBasicSpec, [](json::object& o) { AuthOf(o)["header"] = "X-Auth"; }, "auth.header"},
      {kBasicSpec,
       [](json::object& o) { o["headers"] = json::object{{"Authorization", "Basic x"}}; },
       "headers.Authorization"},
      // test
      {kOAuthSpec, [](json::object& o) { o["test"] = json::object{{"method", "DELETE"},
                                                                  {"path", "/me"}}; },
       "test.method"},
      {kOAuthSpec, [](json::object& o) { o["test"] = json::object{{"path", "me"}}; },
       "test.path"},
      {kOAuthSpec, [](json::object& o) { o["test"] = json::object{{"method", "GET"}}; },
       "test.path"},
      {kOAuthSpec, [](json::object& o) { o["test"] = json::object{{"path", "//evil.example/"}}; },
       "test.path"},
      {kOAuthSpec,
       [](json::object& o) { o["test"] = json::object{{"path", "/me"}, {"body", "{}"}}; },
       "test.body"},
  };
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.field);
    ExpectInvalid(Edited(c.base, c.edit), c.field);
  }
}

TEST(ConnectorParseTest, NonObjectIsRefused) {
  for (const char* text : {"[]", "\"github\"", "null", "1"}) {
    auto c = ParseConnector(Parse(text));
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code, Code::kInvalidField);
  }
}

// --- Templates ----------------------------------------------------------------------------------

TEST(ConnectorTemplateTest, RendersPlaceholders) {
  auto r = RenderTemplate("Bearer {accessToken}", {{"accessToken", "abc"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "Bearer abc");
  r = RenderTemplate("{a}/{b}-{a}", {{"a", "1"}, {"b", "2"}, {"unused", "x"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "1/2-1");
  r = RenderTemplate("no placeholders", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "no placeholders");
  r = RenderTemplate("", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "");
  // Values are inserted as they are, never re-scanned.
  r = RenderTemplate("{a}", {{"a", "{b}"}, {"b", "x"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "{b}");
}

TEST(ConnectorTemplateTest, RefusesUnknownNamesAndStrayBraces) {
  for (const char* tmpl : {"{missing}", "Bearer {", "Bearer }", "{}", "{1a}", "{a b}", "{{a}}",
                           "{a}}"}) {
    auto r = RenderTemplate(tmpl, {{"a", "1"}});
    ASSERT_FALSE(r.ok()) << tmpl;
    EXPECT_EQ(r.error().code, Code::kInvalidField) << tmpl;
  }
}

TEST(ConnectorTemplateTest, ListsPlaceholdersInOrder) {
  auto names = TemplatePlaceholders("https://{sub}.x.example/{id}/{sub}");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"sub", "id", "sub"}));
  EXPECT_FALSE(TemplatePlaceholders("{open").ok());
}

// --- Credential injection -----------------------------------------------------------------------

TEST(ConnectorInjectTest, OAuth2BearerAndStaticHeaders) {
  const Connector* github = Shipped().Find("github");
  ASSERT_NE(github, nullptr);
  auto inj = InjectCredentials(*github, {{"accessToken", "gho_123"}, {"refreshToken", "ignored"}});
  ASSERT_TRUE(inj.ok()) << inj.error().Message();
  EXPECT_EQ(inj->headers, (Pairs{{"Accept", "application/vnd.github+json"},
                                 {"X-GitHub-Api-Version", "2022-11-28"},
                                 {"Authorization", "Bearer gho_123"}}));
  EXPECT_TRUE(inj->query.empty());
}

TEST(ConnectorInjectTest, OAuth2CustomHeader) {
  const Connector* shopify = Shipped().Find("shopify");
  ASSERT_NE(shopify, nullptr);
  auto inj = InjectCredentials(*shopify, {{"accessToken", "shpat_1"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"X-Shopify-Access-Token", "shpat_1"}}));
}

TEST(ConnectorInjectTest, ClientCredentials) {
  const Connector* paypal = Shipped().Find("paypal");
  ASSERT_NE(paypal, nullptr);
  auto inj = InjectCredentials(*paypal, {{"accessToken", "A21"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"Authorization", "Bearer A21"}}));
}

TEST(ConnectorInjectTest, OAuthNeedsAnAccessTokenWithoutLineBreaks) {
  const Connector* github = Shipped().Find("github");
  ASSERT_NE(github, nullptr);
  auto missing = InjectCredentials(*github, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Code::kMissingFields);
  EXPECT_NE(std::string(missing.error().Message()).find("accessToken"), std::string::npos);

  auto empty = InjectCredentials(*github, {{"accessToken", ""}});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Code::kMissingFields);

  auto split = InjectCredentials(*github, {{"accessToken", "t\r\nX-Evil: 1"}});
  ASSERT_FALSE(split.ok());
  EXPECT_EQ(split.error().code, Code::kInvalidField);
}

TEST(ConnectorInjectTest, ApiKeyInAHeader) {
  const Connector* stripe = Shipped().Find("stripe");
  ASSERT_NE(stripe, nullptr);
  auto inj = InjectCredentials(*stripe, {{"apiKey", "sk_test_abc"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"Authorization", "Bearer sk_test_abc"}}));

  const Connector* anthropic = Shipped().Find("anthropic");
  ASSERT_NE(anthropic, nullptr);
  inj = InjectCredentials(*anthropic, {{"apiKey", "sk-ant-1"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-ant-1"}}));

  auto missing = InjectCredentials(*stripe, {{"accessToken", "x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Code::kMissingFields);
}

TEST(ConnectorInjectTest, ApiKeyInTheQuery) {
  const Connector* trello = Shipped().Find("trello");
  ASSERT_NE(trello, nullptr);
  auto inj = InjectCredentials(*trello, {{"apiKey", "K"}, {"token", "T&x=1"}});
  ASSERT_TRUE(inj.ok()) << inj.error().Message();
  EXPECT_TRUE(inj->headers.empty());
  // Raw values: the HTTP client percent-encodes them.
  EXPECT_EQ(inj->query, (Pairs{{"key", "K"}, {"token", "T&x=1"}}));

  auto missing = InjectCredentials(*trello, {{"apiKey", "K"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Code::kMissingFields);
  EXPECT_NE(std::string(missing.error().Message()).find("token"), std::string::npos);
}

TEST(ConnectorInjectTest, OptionalFieldsRenderEmpty) {
  Connector c = MustParse(Parse(R"({
    "key": "opt", "name": "Opt", "baseUrl": "https://api.opt.example",
    "auth": {"type": "api_key", "header": "X-Key", "template": "{apiKey}{suffix}",
             "fields": [{"key": "apiKey", "label": "Key"},
                        {"key": "suffix", "label": "Suffix", "required": false}]}})"));
  auto inj = InjectCredentials(c, {{"apiKey", "k"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"X-Key", "k"}}));
}

TEST(ConnectorInjectTest, BasicIsBase64OfUserColonPassword) {
  Connector plain = MustParse(Parse(kBasicSpec));
  auto inj = InjectCredentials(plain, {{"username", "Aladdin"}, {"password", "open sesame"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}));

  // The three padding cases of base64: "a:", "ab:", "abc:" with an empty (optional) password.
  Connector empty_password = MustParse(Edited(kBasicSpec, [](json::object& o) {
    AuthOf(o)["fields"] = json::array{json::object{{"key", "username"}, {"label", "User"}},
                                      json::object{{"key", "password"},
                                                   {"label", "Password"},
                                                   {"required", false}}};
  }));
  for (auto [user, expected] : std::vector<std::pair<std::string, std::string>>{
           {"a", "YTo="}, {"ab", "YWI6"}, {"abc", "YWJjOg=="}}) {
    auto r = InjectCredentials(empty_password, {{"username", user}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->headers, (Pairs{{"Authorization", "Basic " + expected}})) << user;
  }

  auto colon = InjectCredentials(plain, {{"username", "a:b"}, {"password", "x"}});
  ASSERT_FALSE(colon.ok());
  EXPECT_EQ(colon.error().code, Code::kInvalidField);
}

TEST(ConnectorInjectTest, BasicTemplatesZendeskAndMailgun) {
  const Connector* zendesk = Shipped().Find("zendesk");
  ASSERT_NE(zendesk, nullptr);
  auto inj = InjectCredentials(*zendesk, {{"email", "a@b.com"}, {"apiToken", "tok"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"Authorization", "Basic YUBiLmNvbS90b2tlbjp0b2s="}}));

  const Connector* mailgun = Shipped().Find("mailgun");
  ASSERT_NE(mailgun, nullptr);
  inj = InjectCredentials(*mailgun, {{"apiKey", "key-123"}});
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(inj->headers, (Pairs{{"Authorization", "Basic YXBpOmtleS0xMjM="}}));
}

// --- URL resolution and host injection ---------------------------------------------------------

TEST(ConnectorResolveUrlTest, FillsConnectionFields) {
  const Connector* zendesk = Shipped().Find("zendesk");
  ASSERT_NE(zendesk, nullptr);
  auto url = ResolveUrl(zendesk->base_url, {{"subdomain", "acme"}});
  ASSERT_TRUE(url.ok()) << url.error().Message();
  EXPECT_EQ(*url, "https://acme.zendesk.com/api/v2");

  const Connector* jira = Shipped().Find("jira");
  ASSERT_NE(jira, nullptr);
  url = ResolveUrl(jira->base_url, {{"cloudId", "1324a887-45db-1bf4-1e99-ef0ff456d421"}});
  ASSERT_TRUE(url.ok()) << url.error().Message();
  EXPECT_EQ(*url, "https://api.atlassian.com/ex/jira/1324a887-45db-1bf4-1e99-ef0ff456d421/rest/api/3");

  url = ResolveUrl("https://api.github.com", {});
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(*url, "https://api.github.com");
}

TEST(ConnectorResolveUrlTest, RefusesHostInjection) {
  const std::string tmpl = "https://{subdomain}.zendesk.com/api/v2";
  for (const char* value :
       {"evil.example/", "evil.example#", "evil.example?", "user@evil.example", "evil.example:443",
        "evil.example\\", "evil%2eexample", "a b", "evil.example/x?", "[::1]", "x\r\nHost: y"}) {
    auto url = ResolveUrl(tmpl, {{"subdomain", value}});
    ASSERT_FALSE(url.ok()) << value << " gave " << *url;
    EXPECT_EQ(url.error().code, Code::kInvalidField) << value;
    EXPECT_NE(std::string(url.error().Message()).find("'subdomain'"), std::string::npos) << value;
  }
}

TEST(ConnectorResolveUrlTest, RefusesPathTraversal) {
  const std::string tmpl = "https://api.atlassian.com/ex/jira/{cloudId}/rest/api/3";
  for (const char* value : {"..", ".", "../admin", "a/b", "a?b", "a#b", "%2e%2e"}) {
    auto url = ResolveUrl(tmpl, {{"cloudId", value}});
    ASSERT_FALSE(url.ok()) << value;
    EXPECT_EQ(url.error().code, Code::kInvalidField) << value;
  }
}

TEST(ConnectorResolveUrlTest, MissingValuesAndRevalidation) {
  auto url = ResolveUrl("https://{subdomain}.zendesk.com", {});
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.error().code, Code::kMissingFields);
  EXPECT_NE(std::string(url.error().Message()).find("subdomain"), std::string::npos);

  url = ResolveUrl("https://{subdomain}.zendesk.com", {{"subdomain", ""}});
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.error().code, Code::kMissingFields);

  // The rendered URL is checked as a whole: http only to loopback hosts.
  url = ResolveUrl("http://{host}:8080", {{"host", "evil.example"}});
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.error().code, Code::kInvalidField);
  url = ResolveUrl("http://{host}:8080", {{"host", "localhost"}});
  ASSERT_TRUE(url.ok()) << url.error().Message();

  url = ResolveUrl("{scheme}://acme.example", {{"scheme", "https"}});
  ASSERT_FALSE(url.ok());
  url = ResolveUrl("https://{open.example", {{"open", "x"}});
  ASSERT_FALSE(url.ok());
}

// --- Field values -------------------------------------------------------------------------------

TEST(ConnectorFieldValuesTest, RequiredPatternAndControlCharacters) {
  const Connector* zendesk = Shipped().Find("zendesk");
  ASSERT_NE(zendesk, nullptr);
  const auto& fields = zendesk->connection_fields;
  EXPECT_TRUE(CheckFieldValues(fields, {{"subdomain", "acme-eu"}}).ok());

  Status s = CheckFieldValues(fields, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Code::kMissingFields);

  // The whole value must match, not a part of it.
  s = CheckFieldValues(fields, {{"subdomain", "acme.evil.example"}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Code::kInvalidField);
  EXPECT_NE(std::string(s.error().Message()).find("'subdomain'"), std::string::npos);

  s = CheckFieldValues(zendesk->auth.fields, {{"email", "a@b.com"}, {"apiToken", "x\ny"}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Code::kInvalidField);
}

}  // namespace
}  // namespace agentgate::engine
