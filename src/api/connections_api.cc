// Connections: create (connect, import credentials, reconnect), list, read, rename, archive,
// restore and refresh; the hosted connect page and OAuth callback; /act with inline requests.
//
// States: BUILDING while a connection is made; CLIENT_ACTION_REQUIRED until its owner finishes
// the connect page; READY; DISCONNECTED when its authorization is gone (a refresh failed for
// good); CONFIGURATION_ERROR when the integration cannot connect (no OAuth client);
// SETUP_FAILED when the provider refused the code exchange. Reconnecting (connect with
// connectionId) keeps the record and its id and brings it back to READY.
#include <algorithm>
#include <array>
#include <boost/algorithm/string.hpp>
#include <cctype>
#include <charconv>
#include <map>

#include "api/engine_internal.h"
#include "api/fields.h"
#include "api/paging.h"
#include "api/service.h"
#include "core/time.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "engine/connector.h"
#include "engine/oauth.h"
#include "engine/single_flight.h"
#include "webhooks/egress.h"
#include "webhooks/sender.h"

namespace agentgate::embedded {
extern const std::string_view kConnectHtml;
extern const std::string_view kConnectJs;
extern const std::string_view kSdkJs;
}  // namespace agentgate::embedded

namespace agentgate::api {
using namespace engine_internal;
namespace {

constexpr std::int64_t kConnectSessionTtlMs = 30 * 60'000;
constexpr std::int64_t kRefreshMarginMs = 60'000;
constexpr std::int64_t kRefreshCooldownMs = 30'000;
constexpr std::string_view kConnectCookie = "agentgate_connect";
constexpr int kMaxConnectionsPerTenant = 1000;

std::string ErrorJson(std::string_view code, std::string_view message) {
  json::object o;
  o["code"] = code;
  o["message"] = ValidUtf8(message, 500);
  return Serialize(o);
}

// The hosted pages: strict CSP (scripts only from agentgate itself), no framing, no caching.
http::Response Page(int status, std::string html) {
  http::Response r;
  r.status = status;
  r.body = std::move(html);
  r.content_type = "text/html; charset=utf-8";
  r.Header("Content-Security-Policy",
           "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src "
           "'self'; img-src 'self' https: data:; form-action 'self'; base-uri 'none'; "
           "frame-ancestors 'none'");
  r.Header("X-Frame-Options", "DENY");
  r.Header("Referrer-Policy", "no-referrer");
  r.Header("Cache-Control", "no-store");
  return r;
}

// The connect page with a result for its script (the OAuth callback's outcome), or none.
http::Response ConnectPage(int status, const json::value& result) {
  std::string html(embedded::kConnectHtml);
  const std::string marker = "<script type=\"application/json\" id=\"agentgate-result\">";
  std::size_t at = html.find(marker);
  if (at != std::string::npos) html.insert(at + marker.size(), ScriptSafeJson(result));
  return Page(status, std::move(html));
}

}  // namespace

// --- connections as JSON ---------------------------------------------------------------------

std::vector<std::string> Service::AudienceOf(const store::ConnectionRecord& c) const {
  // A person's own connections concern them; an app's tenants are the admins' business (admin
  // endpoints hear every event).
  if (c.tenant_key.rfind("usr_", 0) == 0) return {c.tenant_key};
  return {};
}

json::object Service::ConnectionJson(const store::ConnectionRecord& c,
                                     const store::IntegrationRecord* integration,
                                     const std::string& ui_url) const {
  json::object out;
  out["id"] = c.id;
  out["key"] = c.key;
  out["name"] = c.name;
  out["state"] = c.state;
  out["disconnected"] = c.state == "DISCONNECTED";
  out["tenantKey"] = c.tenant_key;
  out["integrationId"] = c.integration_id;
  if (integration != nullptr) {
    out["integrationKey"] = integration->key;
    out["connectorKey"] = integration->connector_key;
    json::object i;
    i["id"] = integration->id;
    i["key"] = integration->key;
    i["name"] = integration->name;
    out["integration"] = std::move(i);
  }
  if (c.state == "CLIENT_ACTION_REQUIRED" || !ui_url.empty()) {
    json::object action;
    action["type"] = "connect";
    action["description"] =
        "The owner of this connection must open the connect page to sign in to the app.";
    action["uiUrl"] = ui_url.empty() ? json::value(nullptr) : json::value(ui_url);
    out["clientAction"] = std::move(action);
  }
  if (!c.error_json.empty()) {
    if (auto e = ParseJsonObject(c.error_json); e.ok()) out["error"] = std::move(*e);
  }
  out["fields"] = JsonOfMap(MapOfJson(c.fields_json));
  out["tokenExpiresAt"] = IsoOrNull(c.token_expires_at_ms);
  out["isArchived"] = c.archived_at_ms.has_value();
  out["archivedAt"] = IsoOrNull(c.archived_at_ms);
  out["createdAt"] = FormatIso8601(c.created_at_ms);
  out["updatedAt"] = FormatIso8601(c.updated_at_ms);
  return out;
}

json::object Service::ConnectionJsonOf(const store::ConnectionRecord& c,
                                       const std::string& ui_url) {
  auto integration = store_.FindIntegration(c.workspace_id, c.integration_id);
  const store::IntegrationRecord* i =
      integration.ok() && integration->has_value() ? &**integration : nullptr;
  return ConnectionJson(c, i, ui_url);
}

// The caller's connection named by id or key; archived ones too when include_archived.
Result<store::ConnectionRecord> Service::OwnConnection(const Principal& who,
                                                       const std::string& id_or_key,
                                                       bool include_archived) {
  auto by_id = store_.FindConnection(who.workspace_id, id_or_key);
  if (!by_id.ok()) return by_id.take_error();
  std::optional<store::ConnectionRecord> found = std::move(*by_id);
  // A manager without a tenant may reach every tenant's connection by id; everyone else only
  // their own tenant's.
  if (found && !(who.manager && who.tenant_key.empty()) && found->tenant_key != who.tenant_key) {
    found.reset();
  }
  if (!found && !who.tenant_key.empty()) {
    auto by_key = store_.FindConnectionByKey(who.workspace_id, who.tenant_key, id_or_key);
    if (!by_key.ok()) return by_key.take_error();
    found = std::move(*by_key);
  }
  if (!found || (found->archived_at_ms && !include_archived)) {
    return MakeError(Code::kConnectionNotFound,
                     "No connection '" + ValidUtf8(id_or_key, 100) + "' for this tenant");
  }
  return std::move(*found);
}

// A connect page link for the connection: a fresh single-use session.
Result<std::string> Service::NewConnectLink(const store::ConnectionRecord& c) {
  std::string token = crypto::NewToken(random_, "cs_");
  store::ConnectSessionRecord s;
  s.token_hash = crypto::Sha256(token);
  s.connection_id = c.id;
  s.workspace_id = c.workspace_id;
  s.tenant_key = c.tenant_key;
  s.created_at_ms = clock_.NowMs();
  s.expires_at_ms = s.created_at_ms + kConnectSessionTtlMs;
  if (Status st = store_.InsertConnectSession(s); !st.ok()) return st.take_error();
  return options_.base_url + "/connect?session=" + token;
}

// --- credentials ----------------------------------------------------------------------------

std::string Service::SealCredentials(const json::object& credentials) {
  return sealer_->Seal(Serialize(credentials), random_);
}

Result<json::object> Service::OpenCredentials(const store::ConnectionRecord& c) const {
  if (c.credentials_sealed.empty()) return json::object();
  auto plain = sealer_->Open(c.credentials_sealed);
  if (!plain.ok()) return plain.take_error();
  return ParseJsonObject(*plain);
}

// Stores a token response as the connection's credentials (keeping a refresh token the
// provider did not repeat).
void Service::ApplyTokens(store::ConnectionRecord& c, const engine::TokenSet& tokens,
                          const json::object& previous) {
  json::object creds;
  creds["accessToken"] = tokens.access_token;
  std::string refresh = tokens.refresh_token;
  if (refresh.empty()) {
    if (const json::value* r = previous.if_contains("refreshToken"); r && r->is_string()) {
      refresh = std::string(r->as_string());
    }
  }
  if (!refresh.empty()) creds["refreshToken"] = refresh;
  if (!tokens.token_type.empty()) creds["tokenType"] = tokens.token_type;
  if (!tokens.scope.empty()) creds["scope"] = tokens.scope;
  if (!tokens.extra.empty()) creds["extra"] = tokens.extra;
  if (tokens.expires_in_s) creds["lifetimeMs"] = *tokens.expires_in_s * 1000;
  c.credentials_sealed = SealCredentials(creds);
  std::int64_t now = clock_.NowMs();
  c.token_expires_at_ms = tokens.expires_in_s
                              ? std::optional<std::int64_t>(now + *tokens.expires_in_s * 1000)
                              : std::nullopt;
  c.refresh_failed_at_ms = 0;
  c.error_json.clear();
}

Result<engine::OAuthClient> Service::ClientOf(const store::IntegrationRecord& i,
                                              const engine::Connector& connector) const {
  engine::OAuthClient client;
  auto params = ParseJsonObject(i.parameters_json.empty() ? "{}" : i.parameters_json);
  if (params.ok()) {
    if (const json::value* id = params->if_contains("clientId"); id && id->is_string()) {
      client.client_id = std::string(id->as_string());
    }
  }
  if (client.client_id.empty()) {
    return MakeError(Code::kConflict, "The integration '" + i.key + "' has no OAuth client id",
                     "A manager sets it: PATCH /integrations/" + i.id +
                         "/parameters {\"clientId\": \"...\", \"clientSecret\": \"...\"}.");
  }
  if (!i.client_secret_sealed.empty()) {
    auto secret = sealer_->Open(i.client_secret_sealed);
    if (!secret.ok()) return secret.take_error();
    client.client_secret = std::move(*secret);
  }
  client.client_auth = connector.auth.client_auth == engine::ClientAuth::kBasic ? "basic" : "body";
  return client;
}

std::vector<std::string> Service::ScopesOf(const store::IntegrationRecord& i,
                                           const engine::Connector& connector) const {
  auto params = ParseJsonObject(i.parameters_json.empty() ? "{}" : i.parameters_json);
  if (params.ok()) {
    if (const json::value* s = params->if_contains("scopes"); s && s->is_array()) {
      std::vector<std::string> out;
      for (const auto& v : s->as_array()) {
        if (v.is_string()) out.emplace_back(v.as_string());
      }
      return out;
    }
  }
  return connector.auth.scopes;
}

// Writes a changed connection (optimistic: against the version it was read at), with events.
Result<bool> Service::SaveConnection(http::Request& req, Call& call, store::ConnectionRecord& c,
                                     int status, std::initializer_list<std::string_view> events) {
  std::int64_t expected = c.version;
  c.version = expected + 1;
  c.updated_at_ms = clock_.NowMs();
  store::Effects effects;
  if (!call.action.empty()) effects.activity.push_back(EventOf(req, call, status));
  for (std::string_view type : events) {
    AddEvent(effects, type, ConnectionJsonOf(c, ""), AudienceOf(c));
  }
  auto saved = store_.UpdateConnection(c, expected, effects);
  if (!saved.ok()) return saved.take_error();
  if (*saved) {
    call.recorded = call.recorded || !call.action.empty();
    NotifyWebhooks();
  }
  return *saved;
}

// --- the endpoints ----------------------------------------------------------------------------

http::Response Service::ListConnections(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  auto limit = ParseLimit(query, 100, 1000);
  if (!limit.ok()) return Fail(req, limit.take_error());
  store::ConnectionFilter f;
  f.workspace_id = call.who.workspace_id;
  f.tenant_key = call.who.tenant_key;
  f.limit = *limit + 1;
  f.search = query.Get("search").value_or("");
  if (f.search.size() > 200) return Fail(req, InvalidField("search", "is too long"));
  auto flag = [&](std::string_view name) {
    auto v = query.Get(name);
    return v && (*v == "1" || *v == "true");
  };
  f.include_archived = flag("includeArchived");
  std::optional<std::string> integration = query.Get("integrationId");
  if (!integration) integration = query.Get("integrationKey");
  if (integration) {
    auto i = FindIntegrationOf(call.who, *integration);
    if (!i.ok()) return Fail(req, i.take_error());
    f.integration_id = i->id;
  }
  if (auto cursor = query.Get("cursor"); cursor && !cursor->empty()) {
    auto c = ParseTimeCursor(*cursor);
    if (!c.ok()) return Fail(req, c.take_error());
    f.after_created_ms = c->first;
    f.after_id = std::move(c->second);
  }
  auto list = store_.ListConnections(f);
  if (!list.ok()) return Fail(req, list.take_error());
  bool more = static_cast<int>(list->size()) > *limit;
  if (more) list->resize(static_cast<std::size_t>(*limit));
  std::map<std::string, std::optional<store::IntegrationRecord>> integrations;
  json::array items;
  for (const auto& c : *list) {
    auto& i = integrations[c.integration_id];
    if (!i) {
      auto found = store_.FindIntegration(c.workspace_id, c.integration_id);
      if (found.ok() && found->has_value()) i = **found;
    }
    items.push_back(ConnectionJson(c, i ? &*i : nullptr, ""));
  }
  json::object out;
  out["items"] = std::move(items);
  out["cursor"] =
      more ? json::value(std::to_string(list->back().created_at_ms) + "." + list->back().id)
           : json::value(nullptr);
  return Json(200, Serialize(out));
}

http::Response Service::GetConnection(http::Request& req, Call& call) {
  http::Query query(req.query);
  auto flag = query.Get("includeArchived");
  auto c = OwnConnection(call.who, std::string(req.Param("connection_id")),
                         flag && (*flag == "1" || *flag == "true"));
  if (!c.ok()) return Fail(req, c.take_error());
  call.target = c->id;
  return Json(200, Serialize(ConnectionJsonOf(*c, "")));
}

http::Response Service::CreateConnection(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  const Principal& who = call.who;
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(
          *body, {"integrationKey", "integrationId", "connectorKey", "connectorId", "connectionId",
                  "connectionKey", "name", "credentials", "fields", "intent"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  if (who.tenant_key.empty()) {
    return Fail(
        req, MakeError(Code::kForbidden, "A manager token without a tenantKey owns no connections",
                       "Mint a token with a tenantKey ('agentgate token --tenantKey K')."));
  }
  std::optional<std::string> fields_given[6];
  const char* names[] = {"integrationKey", "integrationId", "connectorKey",
                         "connectorId",    "connectionId",  "connectionKey"};
  for (int k = 0; k < 6; ++k) {
    auto v = StringField(*body, names[k], 200);
    if (!v.ok()) return Fail(req, v.take_error());
    fields_given[k] = std::move(*v);
  }
  auto& [integration_key, integration_id, connector_key, connector_id, connection_id,
         connection_key] = fields_given;
  auto name = StringField(*body, "name", 200);
  if (!name.ok()) return Fail(req, name.take_error());
  if (body->contains("intent")) {
    return Fail(req, MakeError(Code::kInvalidField,
                               "Connecting by intent is not supported: agentgate does not build "
                               "connectors on the fly",
                               "Find the app with GET /integrations?connectors=1&search=... and "
                               "connect with its connectorKey."));
  }
  int what = (integration_key ? 1 : 0) + (integration_id ? 1 : 0) + (connector_key ? 1 : 0) +
             (connector_id ? 1 : 0) + (connection_id ? 1 : 0);
  if (what == 0) {
    return Fail(req, MakeError(Code::kMissingFields,
                               "Missing required fields: one of integrationKey, integrationId, "
                               "connectorKey, connectorId or connectionId"));
  }
  if (what > 1) {
    return Fail(req, MakeError(Code::kInvalidField,
                               "Give exactly one of integrationKey, integrationId, connectorKey, "
                               "connectorId and connectionId"));
  }
  if (connection_key && !ValidKey(*connection_key)) {
    return Fail(req, InvalidField("connectionKey", "must be 1-100 letters, digits and - _ . : @"));
  }
  auto credentials = StringMap(*body, "credentials");
  if (!credentials.ok()) return Fail(req, credentials.take_error());
  auto fields = StringMap(*body, "fields");
  if (!fields.ok()) return Fail(req, fields.take_error());

  // The connection to reconnect, if any: by id, or an existing one under connectionKey.
  std::optional<store::ConnectionRecord> existing;
  if (connection_id) {
    auto c = OwnConnection(who, *connection_id, false);
    if (!c.ok()) return Fail(req, c.take_error());
    existing = std::move(*c);
  }
  store::IntegrationRecord integration;
  if (existing) {
    auto i = FindIntegrationOf(who, existing->integration_id);
    if (!i.ok()) return Fail(req, i.take_error());
    integration = std::move(*i);
  } else if (integration_key || integration_id) {
    auto i = FindIntegrationOf(who, integration_key ? *integration_key : *integration_id);
    if (!i.ok()) return Fail(req, i.take_error());
    integration = std::move(*i);
  } else {
    auto connector =
        FindConnector(who.workspace_id, connector_key ? *connector_key : *connector_id);
    if (!connector) return Fail(req, MakeError(Code::kConnectorNotFound));
    auto i = IntegrationForConnector(req, call, *connector);
    if (!i.ok()) return Fail(req, i.take_error());
    integration = std::move(*i);
  }
  if (integration.archived_at_ms) {
    return Fail(req,
                MakeError(Code::kConflict, "The integration '" + integration.key + "' is archived",
                          "Restore it first: POST /integrations/" + integration.id + "/restore."));
  }
  auto connector = FindConnector(who.workspace_id, integration.connector_key);
  if (!connector) {
    return Fail(req, MakeError(Code::kConnectorNotFound, "The integration's connector '" +
                                                             integration.connector_key +
                                                             "' no longer exists"));
  }
  if (!existing && connection_key) {
    auto c = store_.FindConnectionByKey(who.workspace_id, who.tenant_key, *connection_key);
    if (!c.ok()) return Fail(req, c.take_error());
    if (c->has_value()) {
      if ((*c)->integration_id != integration.id) {
        return Fail(req, MakeError(Code::kConflict,
                                   "The connection '" + *connection_key +
                                       "' belongs to another integration",
                                   "Pick another connectionKey."));
      }
      if ((*c)->archived_at_ms) {
        return Fail(
            req, MakeError(Code::kConflict, "The connection '" + *connection_key + "' is archived",
                           "Restore it (POST /connections/" + (*c)->id +
                               "/restore) or pick another connectionKey."));
      }
      existing = std::move(**c);
    }
  }
  // Connection fields (e.g. a subdomain) known now; the connect page asks for missing ones.
  std::map<std::string, std::string> all_fields =
      existing ? MapOfJson(existing->fields_json) : std::map<std::string, std::string>();
  for (auto& [k, v] : *fields) {
    bool known =
        std::any_of(connector->connection_fields.begin(), connector->connection_fields.end(),
                    [&](const auto& f) { return f.key == k; });
    if (!known)
      return Fail(req, InvalidField("fields." + k.substr(0, 64),
                                    "is not a field of "
                                    "this connector"));
    all_fields[k] = v;
  }
  if (!fields->empty()) {
    if (Status s = engine::CheckFieldValues(connector->connection_fields, all_fields);
        !s.ok() && s.error().code != Code::kMissingFields) {
      return Fail(req, s.take_error());
    }
  }

  std::int64_t now = clock_.NowMs();
  store::ConnectionRecord c;
  bool is_new = !existing;
  if (existing) {
    c = *existing;
  } else {
    store::ConnectionFilter count;
    count.workspace_id = who.workspace_id;
    count.tenant_key = who.tenant_key;
    count.include_archived = true;
    count.limit = kMaxConnectionsPerTenant + 1;
    auto mine = store_.ListConnections(count);
    if (!mine.ok()) return Fail(req, mine.take_error());
    if (static_cast<int>(mine->size()) >= kMaxConnectionsPerTenant) {
      return Fail(req,
                  MakeError(Code::kConflict, "This tenant has the most connections allowed (" +
                                                 std::to_string(kMaxConnectionsPerTenant) + ")"));
    }
    c.id = NewId(random_, "conn_");
    c.workspace_id = who.workspace_id;
    c.tenant_key = who.tenant_key;
    std::array<std::uint8_t, 4> suffix;
    random_.Fill(suffix);
    c.key = connection_key.value_or(integration.key + "-" + crypto::HexEncode(suffix));
    c.name = name->value_or(connector->name);
    c.integration_id = integration.id;
    c.state = "BUILDING";
    c.created_at_ms = c.updated_at_ms = now;
  }
  if (name->has_value()) c.name = **name;
  c.fields_json = all_fields.empty() ? "" : Serialize(JsonOfMap(all_fields));
  call.target = c.id;

  // What connecting takes for this connector.
  std::string ui_url;
  bool became_ready = false;
  const std::string before = c.state;
  const engine::AuthType type = connector->auth.type;
  if (!credentials->empty()) {
    // Credentials handed over directly: API keys, or tokens a backend already holds.
    if (Status s = engine::CheckFieldValues(connector->connection_fields, all_fields); !s.ok()) {
      return Fail(req, s.take_error());
    }
    json::object creds;
    if (type == engine::AuthType::kApiKey || type == engine::AuthType::kBasic) {
      if (Status s = engine::CheckFieldValues(connector->auth.fields, *credentials); !s.ok()) {
        return Fail(req, s.take_error());
      }
      for (const auto& f : connector->auth.fields) {
        if (auto it = credentials->find(f.key); it != credentials->end()) creds[f.key] = it->second;
      }
      c.token_expires_at_ms.reset();
    } else {
      auto access = credentials->find("accessToken");
      if (access == credentials->end() || access->second.empty()) {
        return Fail(req, MakeError(Code::kMissingFields,
                                   "Missing required fields: credentials."
                                   "accessToken"));
      }
      for (const auto& [k, v] : *credentials) {
        if (k != "accessToken" && k != "refreshToken" && k != "expiresIn") {
          return Fail(req, InvalidField("credentials." + k.substr(0, 64),
                                        "is not one of accessToken, refreshToken, expiresIn"));
        }
      }
      engine::TokenSet tokens;
      tokens.access_token = access->second;
      if (auto r = credentials->find("refreshToken"); r != credentials->end()) {
        tokens.refresh_token = r->second;
      }
      if (auto e = credentials->find("expiresIn"); e != credentials->end()) {
        std::int64_t s = 0;
        auto [p, ec] = std::from_chars(e->second.data(), e->second.data() + e->second.size(), s);
        if (ec != std::errc() || p != e->second.data() + e->second.size() || s <= 0) {
          return Fail(req, InvalidField("credentials.expiresIn",
                                        "must be whole seconds, as a "
                                        "string"));
        }
        tokens.expires_in_s = s;
      }
      ApplyTokens(c, tokens, {});
    }
    if (type == engine::AuthType::kApiKey || type == engine::AuthType::kBasic) {
      c.credentials_sealed = SealCredentials(creds);
      c.refresh_failed_at_ms = 0;
    }
    c.state = "READY";
    c.error_json.clear();
    became_ready = true;
  } else if (type == engine::AuthType::kOAuth2ClientCredentials) {
    auto client = ClientOf(integration, *connector);
    if (!client.ok()) {
      c.state = "CONFIGURATION_ERROR";
      c.error_json = ErrorJson("missing_oauth_client", client.error().Message());
    } else {
      auto token_url = engine::ResolveUrl(connector->auth.token_url, all_fields);
      if (!token_url.ok()) return Fail(req, token_url.take_error());
      std::string scope;
      for (const auto& s : ScopesOf(integration, *connector)) {
        scope += (scope.empty() ? "" : connector->auth.scope_separator) + s;
      }
      engine::TokenResult r =
          Engine().token_endpoint->ClientCredentials(*token_url, *client, scope);
      if (r.ok()) {
        ApplyTokens(c, *r.tokens, {});
        c.state = "READY";
        became_ready = true;
      } else {
        c.state = "SETUP_FAILED";
        c.error_json = ErrorJson(r.failure.error, r.failure.description);
      }
    }
  } else {
    // The owner finishes in the browser: the OAuth redirect, or a form for keys.
    bool can_connect = true;
    if (type == engine::AuthType::kOAuth2) {
      auto client = ClientOf(integration, *connector);
      if (!client.ok()) {
        if (!is_new && c.state == "READY") return Fail(req, client.take_error());
        c.state = "CONFIGURATION_ERROR";
        c.error_json = ErrorJson("missing_oauth_client", client.error().Message());
        can_connect = false;
      }
    }
    if (can_connect) {
      if (Status s = store_.EndConnectSessions(c.id, now); !s.ok())
        return Fail(req, s.take_error());
      // A READY or DISCONNECTED connection keeps its state until the new sign-in finishes.
      if (c.state != "READY" && c.state != "DISCONNECTED") {
        c.state = "CLIENT_ACTION_REQUIRED";
        c.error_json.clear();
      }
    }
  }

  std::vector<std::string_view> events;
  if (is_new) events.push_back("connection.created");
  if (became_ready) {
    events.push_back("connection.ready");
    if (!is_new && (before == "DISCONNECTED" || !existing->credentials_sealed.empty())) {
      events.push_back("connection.reconnected");
    }
  }
  int status = is_new ? 201 : 200;
  if (is_new) {
    store::Effects effects;
    effects.activity.push_back(EventOf(req, call, status));
    for (auto type_name : events) {
      AddEvent(effects, type_name, ConnectionJson(c, &integration, ""), AudienceOf(c));
    }
    if (Status s = store_.InsertConnection(c, effects); !s.ok()) {
      if (s.error().code == Code::kConflict) {
        return Fail(req, MakeError(Code::kConflict, "A connection with key '" + c.key +
                                                        "' was made at the same time; retry"));
      }
      return Fail(req, s.take_error());
    }
    call.recorded = true;
    NotifyWebhooks();
  } else {
    std::int64_t expected = c.version;
    c.version = expected + 1;
    c.updated_at_ms = now;
    store::Effects effects;
    effects.activity.push_back(EventOf(req, call, status));
    for (auto type_name : events) {
      AddEvent(effects, type_name, ConnectionJson(c, &integration, ""), AudienceOf(c));
    }
    auto saved = store_.UpdateConnection(c, expected, effects);
    if (!saved.ok()) return Fail(req, saved.take_error());
    if (!*saved) {
      return Fail(req, MakeError(Code::kConflict, "The connection changed meanwhile; retry"));
    }
    call.recorded = true;
    NotifyWebhooks();
  }
  if (c.state == "CLIENT_ACTION_REQUIRED" ||
      (!became_ready && c.state != "CONFIGURATION_ERROR" && c.state != "SETUP_FAILED")) {
    auto link = NewConnectLink(c);
    if (!link.ok()) return Fail(req, link.take_error());
    ui_url = std::move(*link);
  }
  return Json(status, Serialize(ConnectionJson(c, &integration, ui_url)));
}

http::Response Service::UpdateConnection(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto c = OwnConnection(call.who, std::string(req.Param("connection_id")), false);
  if (!c.ok()) return Fail(req, c.take_error());
  call.target = c->id;
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"name"}); !s.ok()) return Fail(req, s.take_error());
  auto name = StringField(*body, "name", 200);
  if (!name.ok()) return Fail(req, name.take_error());
  if (name->has_value()) {
    if ((*name)->empty()) return Fail(req, InvalidField("name", "must not be empty"));
    c->name = **name;
  }
  auto saved = SaveConnection(req, call, *c, 200, {});
  if (!saved.ok()) return Fail(req, saved.take_error());
  if (!*saved)
    return Fail(req, MakeError(Code::kConflict, "The connection changed meanwhile; retry"));
  return Json(200, Serialize(ConnectionJsonOf(*c, "")));
}

http::Response Service::ArchiveConnection(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto c = OwnConnection(call.who, std::string(req.Param("connection_id")), true);
  if (!c.ok()) return Fail(req, c.take_error());
  call.target = c->id;
  if (!c->archived_at_ms) {
    c->archived_at_ms = clock_.NowMs();
    if (Status s = store_.EndConnectSessions(c->id, clock_.NowMs()); !s.ok()) {
      return Fail(req, s.take_error());
    }
    auto saved = SaveConnection(req, call, *c, 200, {"connection.archived"});
    if (!saved.ok()) return Fail(req, saved.take_error());
    if (!*saved) {
      return Fail(req, MakeError(Code::kConflict, "The connection changed meanwhile; retry"));
    }
  }
  return Json(200, Serialize(ConnectionJsonOf(*c, "")));
}

http::Response Service::RestoreConnection(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto c = OwnConnection(call.who, std::string(req.Param("connection_id")), true);
  if (!c.ok()) return Fail(req, c.take_error());
  call.target = c->id;
  if (c->archived_at_ms) {
    c->archived_at_ms.reset();
    auto saved = SaveConnection(req, call, *c, 200, {"connection.restored"});
    if (!saved.ok()) return Fail(req, saved.take_error());
    if (!*saved) {
      return Fail(req, MakeError(Code::kConflict, "The connection changed meanwhile; retry"));
    }
  }
  return Json(200, Serialize(ConnectionJsonOf(*c, "")));
}

http::Response Service::RefreshConnection(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto c = OwnConnection(call.who, std::string(req.Param("connection_id")), false);
  if (!c.ok()) return Fail(req, c.take_error());
  call.target = c->id;
  if (c->state != "READY") {
    return Fail(req, MakeError(c->state == "DISCONNECTED" ? Code::kConnectionDisconnected
                                                          : Code::kConnectionNotReady));
  }
  auto creds = OpenCredentials(*c);
  if (!creds.ok()) return Fail(req, creds.take_error());
  if (!creds->contains("refreshToken")) {
    return Fail(
        req, MakeError(Code::kConflict, "This connection has nothing to refresh (no refresh token)",
                       "API-key connections never expire; OAuth ones without a refresh "
                       "token are reconnected when they expire."));
  }
  std::string stale;
  if (const json::value* a = creds->if_contains("accessToken"); a && a->is_string()) {
    stale = std::string(a->as_string());
  }
  auto fresh = FreshConnection(*c, true, stale, /*ignore_cooldown=*/true);
  if (!fresh.ok()) return Fail(req, fresh.take_error());
  return Json(200, Serialize(ConnectionJsonOf(*fresh, "")));
}

// --- refresh ------------------------------------------------------------------------------

Result<store::ConnectionRecord> Service::FreshConnection(const store::ConnectionRecord& given,
                                                         bool force,
                                                         const std::string& stale_access_token,
                                                         bool ignore_cooldown) {
  if (!force && (!given.token_expires_at_ms ||
                 *given.token_expires_at_ms - clock_.NowMs() > kRefreshMarginMs)) {
    return given;
  }
  auto run = [&]() -> Result<store::ConnectionRecord> {
    // Read again: the flight before this one may have refreshed already.
    auto current = store_.FindConnection(given.workspace_id, given.id);
    if (!current.ok()) return current.take_error();
    if (!current->has_value()) return MakeError(Code::kConnectionNotFound);
    store::ConnectionRecord c = std::move(**current);
    if (c.state == "DISCONNECTED") {
      return MakeError(Code::kConnectionDisconnected,
                       "The connection '" + c.key + "' (" + c.id + ") is disconnected");
    }
    auto creds = OpenCredentials(c);
    if (!creds.ok()) return creds.take_error();
    std::string access, refresh;
    if (const json::value* a = creds->if_contains("accessToken"); a && a->is_string()) {
      access = std::string(a->as_string());
    }
    if (const json::value* r = creds->if_contains("refreshToken"); r && r->is_string()) {
      refresh = std::string(r->as_string());
    }
    std::int64_t now = clock_.NowMs();
    // Refreshed a minute before expiry, or halfway through a token's life when it lives less
    // than two minutes (so that a fresh short-lived token is not refreshed again at once).
    std::int64_t margin = kRefreshMarginMs;
    if (const json::value* l = creds->if_contains("lifetimeMs"); l && l->is_int64()) {
      margin = std::min(margin, l->as_int64() / 2);
    }
    bool expiring = c.token_expires_at_ms && *c.token_expires_at_ms - now <= margin;
    if (force ? access != stale_access_token : !expiring) return c;  // someone refreshed
    if (!ignore_cooldown && c.refresh_failed_at_ms != 0 &&
        now - c.refresh_failed_at_ms < kRefreshCooldownMs) {
      return MakeError(
          Code::kUpstreamError,
          "Refreshing this connection's token failed moments ago; it is tried again after " +
              std::to_string((kRefreshCooldownMs - (now - c.refresh_failed_at_ms)) / 1000 + 1) +
              " s");
    }
    auto integration = store_.FindIntegration(c.workspace_id, c.integration_id);
    if (!integration.ok()) return integration.take_error();
    if (!integration->has_value()) return MakeError(Code::kIntegrationNotFound);
    auto connector = FindConnector(c.workspace_id, (*integration)->connector_key);
    if (!connector) return MakeError(Code::kConnectorNotFound);
    Call internal;
    internal.who.kind = ActorKind::kTenantToken;
    internal.who.actor_id = "agentgate";
    http::Request req;
    req.request_id = "refresh";
    auto fail_for_good = [&](std::string code, std::string message) -> Error {
      c.state = "DISCONNECTED";
      c.error_json = ErrorJson(code, message);
      auto saved = SaveConnection(req, internal, c, 200, {"connection.disconnected"});
      if (saved.ok() && *saved) {
        logger_.Info("connection " + c.id + " disconnected: " + code);
      }
      return MakeError(Code::kConnectionDisconnected,
                       "The connection '" + c.key + "' (" + c.id + ") is disconnected: " + message);
    };
    if (refresh.empty() || connector->auth.type != engine::AuthType::kOAuth2) {
      if (connector->auth.type == engine::AuthType::kOAuth2ClientCredentials) {
        auto client = ClientOf(**integration, *connector);
        if (!client.ok()) return client.take_error();
        auto token_url = engine::ResolveUrl(connector->auth.token_url, MapOfJson(c.fields_json));
        if (!token_url.ok()) return token_url.take_error();
        std::string scope;
        for (const auto& s : ScopesOf(**integration, *connector)) {
          scope += (scope.empty() ? "" : connector->auth.scope_separator) + s;
        }
        auto r = Engine().token_endpoint->ClientCredentials(*token_url, *client, scope);
        if (!r.ok()) {
          if (r.failure.permanent) return fail_for_good(r.failure.error, r.failure.description);
          c.refresh_failed_at_ms = now;
          (void)SaveConnection(req, internal, c, 200, {});
          return MakeError(Code::kUpstreamError,
                           "Getting a new token failed: " + r.failure.description);
        }
        ApplyTokens(c, *r.tokens, *creds);
      } else {
        return fail_for_good("token_expired",
                             "the access token expired and there is no refresh "
                             "token");
      }
    } else {
      auto client = ClientOf(**integration, *connector);
      if (!client.ok()) return fail_for_good("missing_oauth_client", client.error().message);
      auto token_url = engine::ResolveUrl(connector->auth.token_url, MapOfJson(c.fields_json));
      if (!token_url.ok()) return token_url.take_error();
      auto r = Engine().token_endpoint->Refresh(*token_url, *client, refresh);
      if (!r.ok()) {
        if (r.failure.permanent) return fail_for_good(r.failure.error, r.failure.description);
        c.refresh_failed_at_ms = now;
        (void)SaveConnection(req, internal, c, 200, {});
        return MakeError(Code::kUpstreamError,
                         "Refreshing the token failed: " + r.failure.description);
      }
      ApplyTokens(c, *r.tokens, *creds);
    }
    auto saved = SaveConnection(req, internal, c, 200, {});
    if (!saved.ok()) return saved.take_error();
    if (!*saved) {
      // Changed meanwhile (renamed, archived): the new tokens still belong to it.
      auto again = store_.FindConnection(c.workspace_id, c.id);
      if (!again.ok()) return again.take_error();
      if (!again->has_value()) return MakeError(Code::kConnectionNotFound);
      store::ConnectionRecord latest = std::move(**again);
      latest.credentials_sealed = c.credentials_sealed;
      latest.token_expires_at_ms = c.token_expires_at_ms;
      latest.refresh_failed_at_ms = 0;
      auto retry = SaveConnection(req, internal, latest, 200, {});
      if (!retry.ok()) return retry.take_error();
      return latest;
    }
    return c;
  };
  return Engine().refreshes.Do(given.id, run);
}

// --- the connect page and the OAuth callback ---------------------------------------------------

http::Response Service::ConnectHtml(http::Request& req, Call& call) {
  return ConnectPage(200, nullptr);
}

http::Response Service::ConnectScript(http::Request& req, Call& call) {
  http::Response r;
  r.body = std::string(embedded::kConnectJs);
  r.content_type = "text/javascript; charset=utf-8";
  r.Header("Cache-Control", "no-cache");
  return r;
}

http::Response Service::SdkScript(http::Request& req, Call& call) {
  http::Response r;
  r.body = std::string(embedded::kSdkJs);
  r.content_type = "text/javascript; charset=utf-8";
  r.Header("Cache-Control", "no-cache");
  return r;
}

// The session named by ?session= (or the body's "session"), with its connection, integration
// and connector.
Result<Service::ConnectContext> Service::ConnectContextOf(std::string_view token) {
  if (token.substr(0, 3) != "cs_" || token.size() > 100) {
    return MakeError(Code::kNotFound, "This connect link is not valid",
                     "Ask the app for a new one (connect again).");
  }
  auto session = store_.FindConnectSession(crypto::Sha256(token), clock_.NowMs());
  if (!session.ok()) return session.take_error();
  if (!session->has_value()) {
    return MakeError(Code::kNotFound, "This connect link has expired or was used already",
                     "Start connecting again from the app.");
  }
  ConnectContext ctx;
  ctx.session = std::move(**session);
  auto c = store_.FindConnection(ctx.session.workspace_id, ctx.session.connection_id);
  if (!c.ok()) return c.take_error();
  if (!c->has_value() || (*c)->archived_at_ms) {
    return MakeError(Code::kConnectionNotFound, "The connection was archived");
  }
  ctx.connection = std::move(**c);
  auto i = store_.FindIntegration(ctx.connection.workspace_id, ctx.connection.integration_id);
  if (!i.ok()) return i.take_error();
  if (!i->has_value()) return MakeError(Code::kIntegrationNotFound);
  ctx.integration = std::move(**i);
  auto connector = FindConnector(ctx.connection.workspace_id, ctx.integration.connector_key);
  if (!connector) return MakeError(Code::kConnectorNotFound);
  ctx.connector = std::move(*connector);
  return ctx;
}

http::Response Service::ConnectInfo(http::Request& req, Call& call) {
  http::Query query(req.query);
  auto ctx = ConnectContextOf(query.Get("session").value_or(""));
  if (!ctx.ok()) return Fail(req, ctx.take_error());
  const engine::Connector& k = ctx->connector;
  json::object out;
  json::object connection;
  connection["id"] = ctx->connection.id;
  connection["name"] = ctx->connection.name;
  connection["state"] = ctx->connection.state;
  out["connection"] = std::move(connection);
  json::object connector;
  connector["key"] = k.key;
  connector["name"] = k.name;
  connector["authType"] = engine::AuthTypeName(k.auth.type);
  connector["logoUri"] = k.logo_uri.empty() ? json::value(nullptr) : json::value(k.logo_uri);
  connector["host"] =
      HostOf(k.auth.type == engine::AuthType::kOAuth2 ? k.auth.authorize_url : k.base_url);
  out["connector"] = std::move(connector);
  // The connector's fields, each with the value already known (never a secret's).
  auto field_json = [](const std::vector<engine::ConnectorField>& fields,
                       const std::map<std::string, std::string>& known) {
    json::array a = engine::FieldsToJson(fields);
    for (std::size_t i = 0; i < fields.size(); ++i) {
      auto it = known.find(fields[i].key);
      a[i].as_object()["value"] = it != known.end() && !fields[i].secret
                                      ? json::value(it->second)
                                      : json::value(nullptr);
    }
    return a;
  };
  out["connectionFields"] = field_json(k.connection_fields, MapOfJson(ctx->connection.fields_json));
  out["credentialFields"] =
      k.auth.type == engine::AuthType::kApiKey || k.auth.type == engine::AuthType::kBasic
          ? field_json(k.auth.fields, {})
          : json::array();
  out["redirect"] = k.auth.type == engine::AuthType::kOAuth2;
  http::Response r = Json(200, Serialize(out));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::ConnectCredentials(http::Request& req, Call& call) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"session", "fields", "credentials"}); !s.ok()) {
    return Fail(req, s.take_error());
  }
  auto token = StringField(*body, "session", 100);
  if (!token.ok()) return Fail(req, token.take_error());
  auto ctx = ConnectContextOf(token->value_or(""));
  if (!ctx.ok()) return Fail(req, ctx.take_error());
  const engine::Connector& k = ctx->connector;
  if (k.auth.type != engine::AuthType::kApiKey && k.auth.type != engine::AuthType::kBasic) {
    return Fail(req,
                MakeError(Code::kConflict, "This connector signs in by redirect, not by a form",
                          "Open /connect/authorize?session=... (the connect page's button)."));
  }
  auto fields = StringMap(*body, "fields");
  if (!fields.ok()) return Fail(req, fields.take_error());
  auto creds = StringMap(*body, "credentials");
  if (!creds.ok()) return Fail(req, creds.take_error());
  std::map<std::string, std::string> all_fields = MapOfJson(ctx->connection.fields_json);
  for (const auto& f : k.connection_fields) {
    if (auto it = fields->find(f.key); it != fields->end()) all_fields[f.key] = it->second;
  }
  if (Status s = engine::CheckFieldValues(k.connection_fields, all_fields); !s.ok()) {
    return Fail(req, s.take_error());
  }
  if (Status s = engine::CheckFieldValues(k.auth.fields, *creds); !s.ok()) {
    return Fail(req, s.take_error());
  }
  // Single use: the session ends here, whatever follows.
  if (Status s = store_.EndConnectSessions(ctx->connection.id, clock_.NowMs()); !s.ok()) {
    return Fail(req, s.take_error());
  }
  store::ConnectionRecord& c = ctx->connection;
  json::object sealed;
  for (const auto& f : k.auth.fields) {
    if (auto it = creds->find(f.key); it != creds->end()) sealed[f.key] = it->second;
  }
  std::string before = c.state;
  bool had = !c.credentials_sealed.empty();
  c.credentials_sealed = SealCredentials(sealed);
  c.fields_json = all_fields.empty() ? "" : Serialize(JsonOfMap(all_fields));
  c.state = "READY";
  c.error_json.clear();
  c.token_expires_at_ms.reset();
  call.who.kind = ActorKind::kTenantToken;
  call.who.actor_id = "tenant:" + c.tenant_key;
  call.target = c.id;
  auto saved =
      (before == "DISCONNECTED" || had)
          ? SaveConnection(req, call, c, 200, {"connection.ready", "connection.reconnected"})
          : SaveConnection(req, call, c, 200, {"connection.ready"});
  if (!saved.ok()) return Fail(req, saved.take_error());
  if (!*saved) return Fail(req, MakeError(Code::kConflict, "The connection changed meanwhile"));
  json::object out;
  out["connectionId"] = c.id;
  out["state"] = c.state;
  return Json(200, Serialize(out));
}

http::Response Service::ConnectAuthorize(http::Request& req, Call& call) {
  http::Query query(req.query);
  auto ctx = ConnectContextOf(query.Get("session").value_or(""));
  if (!ctx.ok()) {
    json::object result;
    result["ok"] = false;
    result["error"] = std::string(ctx.error().Message());
    return ConnectPage(ctx.error().HttpStatus(), result);
  }
  const engine::Connector& k = ctx->connector;
  auto page_error = [&](int status, std::string message) {
    json::object result;
    result["ok"] = false;
    result["connectionId"] = ctx->connection.id;
    result["error"] = std::move(message);
    return ConnectPage(status, result);
  };
  if (k.auth.type != engine::AuthType::kOAuth2) {
    return page_error(400, "This connector signs in with a form, not by redirect.");
  }
  std::map<std::string, std::string> all_fields = MapOfJson(ctx->connection.fields_json);
  for (const auto& f : k.connection_fields) {
    if (auto v = query.Get(f.key); v && !v->empty()) all_fields[f.key] = *v;
  }
  if (Status s = engine::CheckFieldValues(k.connection_fields, all_fields); !s.ok()) {
    return page_error(400, std::string(s.error().Message()));
  }
  auto client = ClientOf(ctx->integration, k);
  if (!client.ok()) return page_error(409, std::string(client.error().Message()));
  auto authorize = engine::ResolveUrl(k.auth.authorize_url, all_fields);
  if (!authorize.ok()) return page_error(400, std::string(authorize.error().Message()));
  std::string state = crypto::NewToken(random_, "st_");
  std::string browser = crypto::NewToken(random_, "");
  std::string verifier = engine::NewPkceVerifier(random_);
  std::string redirect_uri = options_.base_url + "/oauth/callback";
  auto started = store_.StartConnectSession(
      crypto::Sha256(query.Get("session").value_or("")), crypto::Sha256(state),
      crypto::Sha256(browser), sealer_->Seal(verifier, random_), redirect_uri, clock_.NowMs());
  if (!started.ok()) return Fail(req, started.take_error());
  if (!*started) return page_error(404, "This connect link has expired or was used already.");
  if (all_fields != MapOfJson(ctx->connection.fields_json)) {
    ctx->connection.fields_json = Serialize(JsonOfMap(all_fields));
    Call internal;
    (void)SaveConnection(req, internal, ctx->connection, 200, {});
  }
  std::vector<std::pair<std::string, std::string>> params = {{"response_type", "code"},
                                                             {"client_id", client->client_id},
                                                             {"redirect_uri", redirect_uri},
                                                             {"state", state}};
  std::string scope;
  for (const auto& s : ScopesOf(ctx->integration, k)) {
    scope += (scope.empty() ? "" : k.auth.scope_separator) + s;
  }
  if (!scope.empty()) params.emplace_back("scope", scope);
  if (k.auth.pkce) {
    params.emplace_back("code_challenge", engine::PkceChallenge(verifier));
    params.emplace_back("code_challenge_method", "S256");
  }
  for (const auto& [name, value] : k.auth.authorize_params) params.emplace_back(name, value);
  http::Response r;
  r.status = 302;
  r.body.clear();
  r.content_type = "text/plain";
  r.Header("Location", engine::WithQuery(*authorize, params));
  r.Header("Cache-Control", "no-store");
  r.Header("Referrer-Policy", "no-referrer");
  // Binds the callback to this browser (login CSRF): only the browser that started the redirect
  // carries the cookie back.
  std::string cookie = std::string(kConnectCookie) + "=" + browser +
                       "; Path=/oauth/callback; Max-Age=1800; HttpOnly; SameSite=Lax";
  if (options_.base_url.rfind("https://", 0) == 0) cookie += "; Secure";
  r.Header("Set-Cookie", std::move(cookie));
  return r;
}

http::Response Service::OAuthCallback(http::Request& req, Call& call) {
  http::Query query(req.query);
  auto result_page = [&](int status, bool ok, const std::string& connection_id,
                         const std::string& state, std::string message) {
    json::object result;
    result["ok"] = ok;
    result["connectionId"] =
        connection_id.empty() ? json::value(nullptr) : json::value(connection_id);
    result["state"] = state.empty() ? json::value(nullptr) : json::value(state);
    if (!ok) result["error"] = std::move(message);
    http::Response r = ConnectPage(status, result);
    r.Header("Set-Cookie", std::string(kConnectCookie) +
                               "=; Path=/oauth/callback; Max-Age=0; HttpOnly; SameSite=Lax");
    return r;
  };
  std::string state = query.Get("state").value_or("");
  if (state.empty() || state.size() > 200) {
    return result_page(400, false, "", "", "The sign-in came back without its state.");
  }
  auto session = store_.ConsumeConnectSession(crypto::Sha256(state), clock_.NowMs());
  if (!session.ok()) return Fail(req, session.take_error());
  if (!session->has_value()) {
    return result_page(400, false, "", "",
                       "This sign-in has expired or was finished already. Start again from the "
                       "app.");
  }
  store::ConnectSessionRecord s = std::move(**session);
  std::string browser(http::CookieValue(req.cookie, kConnectCookie));
  if (!s.browser_hash || browser.empty() ||
      !crypto::ConstantTimeEqual(crypto::Sha256(browser), *s.browser_hash)) {
    return result_page(400, false, s.connection_id, "",
                       "This sign-in was started in another browser. Start again from the app.");
  }
  auto c = store_.FindConnection(s.workspace_id, s.connection_id);
  if (!c.ok()) return Fail(req, c.take_error());
  if (!c->has_value() || (*c)->archived_at_ms) {
    return result_page(404, false, s.connection_id, "", "The connection was archived.");
  }
  store::ConnectionRecord conn = std::move(**c);
  call.who.kind = ActorKind::kTenantToken;
  call.who.actor_id = "tenant:" + conn.tenant_key;
  call.target = conn.id;
  if (auto error = query.Get("error"); error) {
    std::string description = query.Get("error_description").value_or(*error);
    conn.error_json = ErrorJson(ValidUtf8(*error, 100), description);
    (void)SaveConnection(req, call, conn, 400, {});
    return result_page(400, false, conn.id, conn.state,
                       "The app did not grant access: " + ValidUtf8(description, 300));
  }
  std::string code = query.Get("code").value_or("");
  if (code.empty()) {
    return result_page(400, false, conn.id, conn.state, "The sign-in came back without a code.");
  }
  auto integration = store_.FindIntegration(conn.workspace_id, conn.integration_id);
  if (!integration.ok()) return Fail(req, integration.take_error());
  if (!integration->has_value()) return Fail(req, MakeError(Code::kIntegrationNotFound));
  auto connector = FindConnector(conn.workspace_id, (*integration)->connector_key);
  if (!connector) return Fail(req, MakeError(Code::kConnectorNotFound));
  auto client = ClientOf(**integration, *connector);
  if (!client.ok()) return result_page(409, false, conn.id, conn.state, client.error().message);
  auto verifier = sealer_->Open(s.verifier_sealed);
  if (!verifier.ok()) return Fail(req, verifier.take_error());
  auto token_url = engine::ResolveUrl(connector->auth.token_url, MapOfJson(conn.fields_json));
  if (!token_url.ok()) return result_page(400, false, conn.id, conn.state, "bad token URL");
  engine::TokenResult r = Engine().token_endpoint->ExchangeCode(
      *token_url, *client, code, s.redirect_uri, connector->auth.pkce ? *verifier : "");
  const std::string before = conn.state;
  const bool had = !conn.credentials_sealed.empty();
  if (!r.ok()) {
    if (conn.state != "READY") conn.state = "SETUP_FAILED";
    conn.error_json = ErrorJson(r.failure.error, r.failure.description);
    (void)SaveConnection(req, call, conn, 400, {});
    return result_page(400, false, conn.id, conn.state,
                       "The app refused to finish the sign-in: " + r.failure.description);
  }
  ApplyTokens(conn, *r.tokens, {});
  conn.state = "READY";
  auto saved =
      (before == "DISCONNECTED" || had)
          ? SaveConnection(req, call, conn, 200, {"connection.ready", "connection.reconnected"})
          : SaveConnection(req, call, conn, 200, {"connection.ready"});
  if (!saved.ok()) return Fail(req, saved.take_error());
  return result_page(200, true, conn.id, conn.state, "");
}

}  // namespace agentgate::api
