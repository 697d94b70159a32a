// The integration engine's HTTP API: workspace credentials and tenant tokens, connectors,
// integrations, connections, the browser connect flow and /act with inline requests.
//
// Scope. Every engine call runs in one workspace and, for connections, one tenant: a tenant token
// (HS256 JWT signed with the workspace secret) names both; a signed-in person (session, or access
// token with connection:manage) is their own tenant (their user id) in the default workspace. A
// tenant never sees another tenant's connections: every lookup is by (workspace, tenant, id).
//
// Credentials of connections are sealed (AES-256-GCM with a key id) before they reach the store,
// never returned by any endpoint, and refreshed single-flight per connection.
#include <algorithm>
#include <array>
#include <boost/algorithm/string.hpp>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "api/engine_internal.h"
#include "api/fields.h"
#include "api/paging.h"
#include "api/service.h"
#include "core/time.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/jwt.h"
#include "engine/connector.h"
#include "engine/oauth.h"
#include "engine/single_flight.h"
#include "webhooks/egress.h"
#include "webhooks/sender.h"

namespace agentgate::api {
using namespace engine_internal;
namespace {

constexpr std::string_view kDefaultWorkspaceId = "ws_default";
constexpr std::int64_t kMaxTokenTtlS = 24 * 3600;

// Seconds of an expiresIn: the reference's "5m" / "1h" form (ParseExpiresIn), whole seconds as
// digits ("3600") or a JSON integer; nullopt when malformed or not positive.
std::optional<std::int64_t> ExpiresInSeconds(const json::value& v) {
  if (v.is_int64()) return v.as_int64() > 0 ? std::optional(v.as_int64()) : std::nullopt;
  if (!v.is_string()) return std::nullopt;
  std::string_view text = v.as_string();
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (!text.empty() && ec == std::errc() && p == text.data() + text.size()) {
    return n > 0 ? std::optional(n) : std::nullopt;
  }
  auto parsed = ParseExpiresIn(text);
  return parsed.ok() ? std::optional(*parsed) : std::nullopt;
}

}  // namespace

// --- the engine's state
// ---------------------------------------------------------------------------

Service::EngineState& Service::Engine() const { return *engine_; }

Status Service::LoadEngine() {
  if (!engine_) engine_.reset(new EngineState());
  EngineState& e = *engine_;
  auto catalog = engine::Catalog::Builtin();
  if (!catalog.ok()) return catalog.take_error();
  e.catalog = std::move(*catalog);
  e.token_endpoint = std::make_unique<engine::TokenEndpoint>(options_.allow_private_egress, 15'000);
  if (sealer_ == nullptr) {
    return MakeError(Code::kServerError, "the integration engine needs the data directory's key");
  }
  auto listed = store_.ListWorkspaces();
  if (!listed.ok()) return listed.take_error();
  if (listed->empty()) {
    store::WorkspaceRecord w;
    w.id = std::string(kDefaultWorkspaceId);
    w.key = crypto::NewUuid(random_);
    w.name = "Default";
    w.secret_sealed = sealer_->Seal(crypto::NewToken(random_, "wss_"), random_);
    w.created_at_ms = w.updated_at_ms = clock_.NowMs();
    auto made = store_.EnsureWorkspace(w);
    if (!made.ok()) return made.take_error();
    listed = store_.ListWorkspaces();
    if (!listed.ok()) return listed.take_error();
  }
  std::unique_lock lock(e.mu);
  e.workspaces.clear();
  for (const auto& w : *listed) {
    auto secret = sealer_->Open(w.secret_sealed);
    if (!secret.ok()) {
      return MakeError(Code::kServerError, "cannot open the secret of workspace " + w.id + ": " +
                                               std::string(secret.error().Message()));
    }
    e.workspaces.push_back({w.id, w.key, w.name, std::move(*secret)});
    auto custom = store_.ListConnectors(w.id);
    if (!custom.ok()) return custom.take_error();
    for (const auto& c : *custom) {
      auto spec = ParseJsonObject(c.spec_json);
      if (!spec.ok()) continue;
      auto parsed = engine::ParseConnector(json::value(*spec));
      if (!parsed.ok()) {
        logger_.Warn("custom connector " + c.key +
                     " no longer parses: " + std::string(parsed.error().Message()));
        continue;
      }
      parsed->id = c.id;
      parsed->custom = true;
      e.custom[w.id].push_back(std::move(*parsed));
    }
  }
  return Ok();
}

void Service::EngineStateDeleter::operator()(EngineState* state) const { delete state; }

// --- routes ------------------------------------------------------------------------------------

void Service::RegisterEngineRoutes(http::Router& router) {
  using http::Dispatch;
  using http::Method;
  constexpr bool kIdem = true;
  constexpr Dispatch kB = Dispatch::kBlocking;
  const RouteSpec routes[] = {
      // Workspace credentials and tokens.
      {Method::kGet, "/v1/credentials", kB, "workspace.credentials", Access::kManager,
       kWorkspaceManage, false, &Service::GetCredentials},
      {Method::kPost, "/v1/credentials/rotate", kB, "workspace.rotate_secret", Access::kManager,
       kWorkspaceManage, kIdem, &Service::RotateWorkspaceSecret},
      {Method::kPost, "/v1/credentials/token", kB, "workspace.token", Access::kTenant,
       kConnectionManage, false, &Service::MintTenantToken},
      {Method::kPost, "/v1/keys/rotate", kB, "workspace.rotate_key", Access::kManager,
       kWorkspaceManage, kIdem, &Service::RotateKeys},
      // Connectors and integrations.
      {Method::kGet, "/connectors", kB, "connector.list", Access::kTenant, kConnectionManage, false,
       &Service::ListConnectors},
      {Method::kPost, "/connectors", kB, "connector.create", Access::kManager, kWorkspaceManage,
       kIdem, &Service::CreateConnector},
      {Method::kGet, "/integrations", kB, "integration.list", Access::kTenant, kConnectionManage,
       false, &Service::ListIntegrations},
      {Method::kPost, "/integrations", kB, "integration.create", Access::kManager, kWorkspaceManage,
       kIdem, &Service::CreateIntegration},
      {Method::kGet, "/integrations/:integration_id", kB, "integration.view", Access::kTenant,
       kConnectionManage, false, &Service::GetIntegration},
      {Method::kPatch, "/integrations/:integration_id", kB, "integration.update", Access::kManager,
       kWorkspaceManage, kIdem, &Service::UpdateIntegration},
      {Method::kDelete, "/integrations/:integration_id", kB, "integration.archive",
       Access::kManager, kWorkspaceManage, kIdem, &Service::ArchiveIntegration},
      {Method::kPost, "/integrations/:integration_id/restore", kB, "integration.restore",
       Access::kManager, kWorkspaceManage, kIdem, &Service::RestoreIntegration},
      {Method::kGet, "/integrations/:integration_id/parameters", kB, "integration.parameters",
       Access::kManager, kWorkspaceManage, false, &Service::GetIntegrationParameters},
      {Method::kPatch, "/integrations/:integration_id/parameters", kB,
       "integration.update_parameters", Access::kManager, kWorkspaceManage, kIdem,
       &Service::UpdateIntegrationParameters},
      // Connections.
      {Method::kGet, "/connections", kB, "connection.list", Access::kTenant, kConnectionManage,
       false, &Service::ListConnections},
      {Method::kPost, "/connections", kB, "connection.connect", Access::kTenant, kConnectionManage,
       kIdem, &Service::CreateConnection},
      {Method::kGet, "/connections/:connection_id", kB, "connection.view", Access::kTenant,
       kConnectionManage, false, &Service::GetConnection},
      {Method::kPatch, "/connections/:connection_id", kB, "connection.update", Access::kTenant,
       kConnectionManage, kIdem, &Service::UpdateConnection},
      {Method::kDelete, "/connections/:connection_id", kB, "connection.archive", Access::kTenant,
       kConnectionManage, kIdem, &Service::ArchiveConnection},
      {Method::kPost, "/connections/:connection_id/restore", kB, "connection.restore",
       Access::kTenant, kConnectionManage, kIdem, &Service::RestoreConnection},
      {Method::kPost, "/connections/:connection_id/refresh", kB, "connection.refresh",
       Access::kTenant, kConnectionManage, kIdem, &Service::RefreshConnection},
      {Method::kPost, "/act", kB, "act", Access::kTenantOrAgent, kAct, kIdem, &Service::Act},
      // Actions and their runs.
      {Method::kGet, "/actions", kB, "action.list", Access::kTenant, kConnectionManage, false,
       &Service::ListActions},
      {Method::kPost, "/actions", kB, "action.create", Access::kManager, kWorkspaceManage, kIdem,
       &Service::CreateAction},
      {Method::kGet, "/actions/:selector", kB, "action.view", Access::kTenant, kConnectionManage,
       false, &Service::GetAction},
      {Method::kPatch, "/actions/:selector", kB, "action.update", Access::kManager,
       kWorkspaceManage, kIdem, &Service::UpdateAction},
      {Method::kPut, "/actions/:selector", kB, "action.replace", Access::kManager,
       kWorkspaceManage, kIdem, &Service::ReplaceAction},
      {Method::kDelete, "/actions/:selector", kB, "action.archive", Access::kManager,
       kWorkspaceManage, kIdem, &Service::DeleteAction},
      {Method::kPost, "/actions/:action_id/restore", kB, "action.restore", Access::kManager,
       kWorkspaceManage, kIdem, &Service::RestoreAction},
      {Method::kPost, "/actions/:selector/run", kB, "action.run", Access::kTenantOrAgent, kAct,
       kIdem, &Service::RunAction},
      {Method::kGet, "/action-run-logs", kB, "action_run.list", Access::kTenant,
       kConnectionManage, false, &Service::ListActionRuns},
      {Method::kGet, "/action-run-logs/:run_id", kB, "action_run.view", Access::kTenant,
       kConnectionManage, false, &Service::GetActionRun},
      {Method::kGet, "/action-run-logs/:run_id/details", kB, "action_run.view", Access::kTenant,
       kConnectionManage, false, &Service::GetActionRunDetails},
      // The workspace's configuration as one document.
      {Method::kGet, "/export", kB, "workspace.export", Access::kManager, kWorkspaceManage, false,
       &Service::ExportWorkspace},
      {Method::kPost, "/import", kB, "workspace.import", Access::kManager, kWorkspaceManage, kIdem,
       &Service::ImportWorkspace},
      // The browser connect flow: the connect session token (or OAuth state) authorizes.
      {Method::kGet, "/connect", kB, "", Access::kOpen, 0, false, &Service::ConnectHtml},
      {Method::kGet, "/connect/connect.js", kB, "", Access::kOpen, 0, false,
       &Service::ConnectScript},
      {Method::kGet, "/connect/session", kB, "", Access::kOpen, 0, false, &Service::ConnectInfo},
      {Method::kPost, "/connect/credentials", kB, "connection.connect_form", Access::kOpen, 0,
       false, &Service::ConnectCredentials},
      {Method::kGet, "/connect/authorize", kB, "", Access::kOpen, 0, false,
       &Service::ConnectAuthorize},
      {Method::kGet, "/oauth/callback", kB, "connection.oauth_callback", Access::kOpen, 0, false,
       &Service::OAuthCallback},
      {Method::kGet, "/sdk/agentgate.js", kB, "", Access::kOpen, 0, false, &Service::SdkScript},
  };
  for (const RouteSpec& spec : routes) AddRoute(router, spec);
}

// --- identity ---------------------------------------------------------------------------------

Result<Principal> Service::IdentifyJwt(std::string_view token) {
  EngineState& e = Engine();
  auto peek = crypto::PeekJwtPayload(token);
  if (!peek.ok()) return peek.take_error();
  const json::value* wk = peek->if_contains("workspaceKey");
  if (wk == nullptr || !wk->is_string()) {
    return MakeError(Code::kUnauthorized, "The token has no workspaceKey",
                     "Sign {workspaceKey, tenantKey} with the workspace secret (HS256); "
                     "'agentgate credentials' prints both.");
  }
  EngineState::Workspace ws;
  {
    std::shared_lock lock(e.mu);
    auto it = std::find_if(e.workspaces.begin(), e.workspaces.end(),
                           [&](const auto& w) { return w.key == wk->as_string(); });
    if (it == e.workspaces.end()) {
      return MakeError(Code::kUnauthorized, "No workspace has the token's workspaceKey",
                       "Use the workspaceKey from GET /v1/credentials ('agentgate credentials').");
    }
    ws = *it;
  }
  std::int64_t now_ms = clock_.NowMs();
  auto claims = crypto::VerifyJwtHs256(token, ws.secret, now_ms / 1000);
  if (!claims.ok()) return claims.take_error();
  Principal who;
  who.kind = ActorKind::kTenantToken;
  who.workspace_id = ws.id;
  const json::value* admin = claims->if_contains("isAdmin");
  if (admin != nullptr && !admin->is_null() && !admin->is_bool()) {
    return MakeError(Code::kUnauthorized, "The token's isAdmin must be true or false");
  }
  who.manager = admin != nullptr && admin->is_bool() && admin->as_bool();
  const json::value* tenant = claims->if_contains("tenantKey");
  if (tenant != nullptr && !tenant->is_null()) {
    if (!tenant->is_string() || !ValidKey(tenant->as_string(), 200)) {
      return MakeError(Code::kUnauthorized,
                       "The token's tenantKey must be 1-200 characters of letters, digits and "
                       "- _ . : @");
    }
    who.tenant_key = std::string(tenant->as_string());
  }
  if (who.tenant_key.empty() && !who.manager) {
    return MakeError(Code::kUnauthorized, "The token names no tenantKey",
                     "A tenant token carries {workspaceKey, tenantKey}; a manager token "
                     "{workspaceKey, isAdmin: true}.");
  }
  who.actor_id = who.manager && who.tenant_key.empty() ? "manager" : "tenant:" + who.tenant_key;
  who.admin = who.manager;
  if (!who.tenant_key.empty()) {
    std::string name;
    if (const json::value* n = claims->if_contains("name"); n != nullptr && n->is_string()) {
      name = ValidUtf8(n->as_string(), 200);
    }
    std::string fields;
    if (const json::value* f = claims->if_contains("fields"); f != nullptr && f->is_object()) {
      fields = Serialize(*f);
      if (fields.size() > 4096) fields.clear();
    }
    TouchTenant(ws.id, who.tenant_key, name, fields, now_ms);
  }
  return who;
}

void Service::TouchTenant(const std::string& workspace_id, const std::string& tenant_key,
                          const std::string& name, const std::string& fields, std::int64_t now_ms) {
  EngineState& e = Engine();
  {
    std::lock_guard lock(e.tenants_mu);
    auto& last = e.tenants_seen[{workspace_id, tenant_key}];
    // Tenants come into being on first use; later uses are noted at most once a minute.
    if (last != 0 && now_ms - last < 60'000 && name.empty() && fields.empty()) return;
    last = now_ms;
    if (e.tenants_seen.size() > 100'000) e.tenants_seen.clear();
  }
  if (Status s = store_.TouchTenant({workspace_id, tenant_key, name, fields, now_ms, now_ms});
      !s.ok()) {
    logger_.Warn("cannot record tenant " + tenant_key + ": " + std::string(s.error().Message()));
  }
}

void Service::ScopePerson(Principal& who) const {
  who.workspace_id = std::string(kDefaultWorkspaceId);
  who.tenant_key = who.user_id;
  who.manager = who.admin;
}

// --- workspace credentials and tokens ------------------------------------------------------------

std::optional<Service::EngineWorkspace> Service::WorkspaceOf(const Principal& who) const {
  EngineState& e = Engine();
  std::shared_lock lock(e.mu);
  for (const auto& w : e.workspaces) {
    if (w.id == who.workspace_id) return EngineWorkspace{w.id, w.key, w.name, w.secret};
  }
  return std::nullopt;
}

json::object Service::CredentialsJson(const Principal& who) const {
  auto ws = WorkspaceOf(who);
  json::object out;
  out["apiUri"] = options_.base_url;
  out["workspaceKey"] = ws ? ws->key : "";
  out["workspaceSecret"] = ws ? ws->secret : "";
  out["tenantKey"] = who.tenant_key.empty() ? json::value(nullptr) : json::value(who.tenant_key);
  return out;
}

http::Response Service::GetCredentials(http::Request& req, Call& call) {
  http::Response r = Json(200, Serialize(CredentialsJson(call.who)));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::RotateWorkspaceSecret(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  EngineState& e = Engine();
  std::string secret = crypto::NewToken(random_, "wss_");
  std::int64_t now = clock_.NowMs();
  call.target = call.who.workspace_id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  if (Status s = store_.UpdateWorkspaceSecret(call.who.workspace_id, sealer_->Seal(secret, random_),
                                              now, effects);
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  call.recorded = true;
  {
    std::unique_lock lock(e.mu);
    for (auto& w : e.workspaces) {
      if (w.id == call.who.workspace_id) w.secret = secret;
    }
  }
  http::Response r = Json(200, Serialize(CredentialsJson(call.who)));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::MintTenantToken(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  const Principal& who = call.who;
  auto body = req.body.empty() ? Result<json::object>(json::object()) : ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"tenantKey", "manager", "expiresIn", "name"}); !s.ok()) {
    return Fail(req, s.take_error());
  }
  auto tenant = StringField(*body, "tenantKey");
  if (!tenant.ok()) return Fail(req, tenant.take_error());
  auto name = StringField(*body, "name");
  if (!name.ok()) return Fail(req, name.take_error());
  bool manager = false;
  if (const json::value* m = body->if_contains("manager"); m != nullptr && !m->is_null()) {
    if (!m->is_bool()) return Fail(req, InvalidField("manager", "must be true or false"));
    manager = m->as_bool();
  }
  std::int64_t ttl_s = 3600;
  if (const json::value* x = body->if_contains("expiresIn"); x != nullptr && !x->is_null()) {
    std::optional<std::int64_t> s = ExpiresInSeconds(*x);
    if (!s || *s > kMaxTokenTtlS) {
      return Fail(req, InvalidField("expiresIn",
                                    "must be a duration like \"5m\", \"1h\" or seconds, at most "
                                    "24h"));
    }
    ttl_s = *s;
  }
  // A manager token names no tenant unless asked to; a tenant token defaults to the caller's.
  std::string tenant_key = tenant->value_or(manager ? std::string() : who.tenant_key);
  if (tenant->has_value() && !ValidKey(**tenant, 200)) {
    return Fail(req, InvalidField("tenantKey", "must be 1-200 letters, digits and - _ . : @"));
  }
  // Anyone in a tenant may mint tokens for that tenant; other tenants and manager tokens need a
  // manager.
  if (!who.manager && (manager || tenant_key != who.tenant_key)) {
    return Fail(req, MakeError(Code::kForbidden,
                               "Only a workspace manager may mint manager tokens or tokens for "
                               "another tenant",
                               "Mint a token for your own tenant (leave out tenantKey)."));
  }
  if (!manager && tenant_key.empty()) {
    return Fail(req, MakeError(Code::kMissingFields, "Missing required fields: tenantKey",
                               "Name the tenant, or ask for {\"manager\": true}."));
  }
  auto ws = WorkspaceOf(who);
  if (!ws) return Fail(req, MakeError(Code::kServerError, "the caller's workspace is gone"));
  std::int64_t now_s = clock_.NowMs() / 1000;
  json::object payload;
  payload["workspaceKey"] = ws->key;
  if (!tenant_key.empty()) payload["tenantKey"] = tenant_key;
  if (manager) payload["isAdmin"] = true;
  if (name->has_value()) payload["name"] = **name;
  payload["iat"] = now_s;
  payload["exp"] = now_s + ttl_s;
  json::object out;
  out["token"] = crypto::SignJwtHs256(Serialize(payload), ws->secret);
  out["tenantKey"] = tenant_key.empty() ? json::value(nullptr) : json::value(tenant_key);
  out["manager"] = manager;
  out["expiresAt"] = FormatIso8601((now_s + ttl_s) * 1000);
  call.target = tenant_key.empty() ? "manager" : tenant_key;
  http::Response r = Json(200, Serialize(out));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::RotateKeys(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  std::string previous(sealer_->CurrentKid());
  auto kid = sealer_->Rotate(random_);
  if (!kid.ok()) return Fail(req, kid.take_error());
  call.target = *kid;
  // Every sealed value is opened with the key it names and sealed again under the new one, in
  // one transaction; the old key stays on disk, so backups made before remain readable.
  auto resealed =
      store_.ResealAll([this](const std::string& sealed) -> Result<std::optional<std::string>> {
        if (!sealer_->NeedsReseal(sealed)) return std::optional<std::string>();
        auto plain = sealer_->Open(sealed);
        if (!plain.ok()) return plain.take_error();
        return std::optional<std::string>(sealer_->Seal(*plain, random_));
      });
  if (!resealed.ok()) return Fail(req, resealed.take_error());
  logger_.Info("master key rotated from " + previous + " to " + *kid + "; " +
               std::to_string(*resealed) + " secrets re-encrypted");
  json::object out;
  out["kid"] = *kid;
  out["previousKid"] = previous;
  out["resealed"] = *resealed;
  return Json(200, Serialize(out));
}

// --- connectors -------------------------------------------------------------------------------

std::optional<engine::Connector> Service::FindConnector(const std::string& workspace_id,
                                                        std::string_view key_or_id) const {
  EngineState& e = Engine();
  std::string_view key = key_or_id;
  if (const engine::Connector* c = e.catalog->Find(key)) return *c;
  std::shared_lock lock(e.mu);
  if (auto it = e.custom.find(workspace_id); it != e.custom.end()) {
    for (const auto& c : it->second) {
      if (c.key == key_or_id || c.id == key_or_id) return c;
    }
  }
  if (key_or_id.substr(0, 4) == "cnr_") {
    if (const engine::Connector* c = e.catalog->Find(key_or_id.substr(4))) return *c;
  }
  return std::nullopt;
}

std::vector<engine::Connector> Service::ConnectorsOf(const std::string& workspace_id,
                                                     std::string_view search) const {
  EngineState& e = Engine();
  std::vector<engine::Connector> out;
  for (const engine::Connector* c : e.catalog->Search(search)) out.push_back(*c);
  std::shared_lock lock(e.mu);
  if (auto it = e.custom.find(workspace_id); it != e.custom.end()) {
    auto custom = engine::Catalog::FromConnectors(it->second);
    if (custom.ok()) {
      for (const engine::Connector* c : custom->Search(search)) out.push_back(*c);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

http::Response Service::ListConnectors(http::Request& req, Call& call) {
  http::Query query(req.query);
  std::string search = query.Get("search").value_or("");
  json::array data;
  for (const auto& c : ConnectorsOf(call.who.workspace_id, search)) {
    data.push_back(engine::ConnectorToJson(c));
  }
  json::object out;
  out["items"] = std::move(data);
  return Json(200, Serialize(out));
}

http::Response Service::CreateConnector(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto parsed = engine::ParseConnector(json::value(*body));
  if (!parsed.ok()) return Fail(req, parsed.take_error());
  if (FindConnector(call.who.workspace_id, parsed->key)) {
    return Fail(
        req, MakeError(Code::kConflict, "A connector with key '" + parsed->key + "' exists already",
                       "Pick another key; shipped connectors cannot be replaced."));
  }
  std::int64_t now = clock_.NowMs();
  parsed->id = NewId(random_, "cnr_");
  parsed->custom = true;
  store::ConnectorRecord rec;
  rec.id = parsed->id;
  rec.workspace_id = call.who.workspace_id;
  rec.key = parsed->key;
  json::object spec = engine::ConnectorToJson(*parsed);
  spec.erase("id");
  spec.erase("custom");
  rec.spec_json = Serialize(spec);
  rec.created_at_ms = rec.updated_at_ms = now;
  call.target = rec.id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  if (Status s = store_.InsertConnector(rec, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  {
    EngineState& e = Engine();
    std::unique_lock lock(e.mu);
    e.custom[rec.workspace_id].push_back(*parsed);
  }
  return Json(201, Serialize(engine::ConnectorToJson(*parsed)));
}

// --- integrations -----------------------------------------------------------------------------

json::object Service::IntegrationJson(const store::IntegrationRecord& i, bool manager) const {
  json::object out;
  out["id"] = i.id;
  out["key"] = i.key;
  out["name"] = i.name;
  out["connectorKey"] = i.connector_key;
  auto connector = FindConnector(i.workspace_id, i.connector_key);
  out["connectorId"] = connector ? json::value(connector->id) : json::value(nullptr);
  out["authType"] =
      connector ? json::value(engine::AuthTypeName(connector->auth.type)) : json::value(nullptr);
  out["logoUri"] = connector && !connector->logo_uri.empty() ? json::value(connector->logo_uri)
                                                             : json::value(nullptr);
  out["isSynthetic"] = false;
  out["isArchived"] = i.archived_at_ms.has_value();
  out["archivedAt"] = IsoOrNull(i.archived_at_ms);
  out["createdAt"] = FormatIso8601(i.created_at_ms);
  out["updatedAt"] = FormatIso8601(i.updated_at_ms);
  if (manager) out["parameters"] = ParametersJson(i);
  return out;
}

json::object Service::ParametersJson(const store::IntegrationRecord& i) const {
  json::object params;
  if (auto p = ParseJsonObject(i.parameters_json.empty() ? "{}" : i.parameters_json); p.ok()) {
    params = std::move(*p);
  }
  params["hasClientSecret"] = !i.client_secret_sealed.empty();
  return params;
}

Result<store::IntegrationRecord> Service::FindIntegrationOf(const Principal& who,
                                                            const std::string& id_or_key) {
  auto found = store_.FindIntegration(who.workspace_id, id_or_key);
  if (!found.ok()) return found.take_error();
  if (!found->has_value()) {
    return MakeError(Code::kIntegrationNotFound,
                     "No integration '" + ValidUtf8(id_or_key, 100) + "' in the workspace");
  }
  return std::move(**found);
}

// The integration for a connector: the one keyed like the connector, else the workspace's first
// integration of that connector, else a new one made on demand (keyed like the connector, or
// with a suffix when another connector's integration holds that key).
Result<store::IntegrationRecord> Service::IntegrationForConnector(
    http::Request& req, Call& call, const engine::Connector& connector) {
  auto all = store_.ListIntegrations(call.who.workspace_id, /*include_archived=*/true);
  if (!all.ok()) return all.take_error();
  const store::IntegrationRecord* same_key = nullptr;
  const store::IntegrationRecord* first = nullptr;
  for (const auto& i : *all) {
    if (i.connector_key != connector.key) continue;
    if (i.key == connector.key) same_key = &i;
    if (first == nullptr && !i.archived_at_ms) first = &i;
  }
  if (same_key != nullptr) return *same_key;
  if (first != nullptr) return *first;
  bool key_taken =
      std::any_of(all->begin(), all->end(), [&](const auto& i) { return i.key == connector.key; });
  store::IntegrationRecord i;
  i.id = NewId(random_, "int_");
  i.workspace_id = call.who.workspace_id;
  i.key = key_taken ? connector.key + "-" + i.id.substr(4, 6) : connector.key;
  i.name = connector.name;
  i.connector_key = connector.key;
  i.parameters_json = "{}";
  i.created_at_ms = i.updated_at_ms = clock_.NowMs();
  Status s = store_.InsertIntegration(i, {});
  if (!s.ok() && s.error().code == Code::kConflict) {
    // Made by a concurrent connect meanwhile.
    return FindIntegrationOf(call.who, i.key);
  }
  if (!s.ok()) return s.take_error();
  return i;
}

http::Response Service::ListIntegrations(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  std::string search = query.Get("search").value_or("");
  auto flag = [&](std::string_view name) {
    auto v = query.Get(name);
    return v && (*v == "1" || *v == "true");
  };
  auto limit = ParseLimit(query, 100, 1000);
  if (!limit.ok()) return Fail(req, limit.take_error());
  auto list = store_.ListIntegrations(call.who.workspace_id, flag("includeArchived"));
  if (!list.ok()) return Fail(req, list.take_error());
  auto matches = [&](std::string_view a, std::string_view b) {
    return search.empty() || boost::algorithm::icontains(a, search) ||
           boost::algorithm::icontains(b, search);
  };
  json::array items;
  std::vector<std::string> have;  // connectors with an integration, archived ones included
  if (auto every = store_.ListIntegrations(call.who.workspace_id, true); every.ok()) {
    for (const auto& i : *every) have.push_back(i.connector_key);
  }
  for (const auto& i : *list) {
    if (matches(i.key, i.name)) items.push_back(IntegrationJson(i, call.who.manager));
  }
  if (flag("connectors") || flag("externalApps")) {
    // Candidates: connectors without an integration yet; connecting to one makes it.
    for (const auto& c : ConnectorsOf(call.who.workspace_id, search)) {
      if (std::find(have.begin(), have.end(), c.key) != have.end()) continue;
      json::object o;
      o["id"] = nullptr;
      o["key"] = c.key;
      o["name"] = c.name;
      o["connectorKey"] = c.key;
      o["connectorId"] = c.id;
      o["externalAppKey"] = c.key;
      o["authType"] = engine::AuthTypeName(c.auth.type);
      o["logoUri"] = c.logo_uri.empty() ? json::value(nullptr) : json::value(c.logo_uri);
      o["isSynthetic"] = true;
      o["isArchived"] = false;
      items.push_back(std::move(o));
    }
  }
  // One page: the cursor is the number of items already given.
  std::size_t start = 0;
  if (auto cursor = query.Get("cursor"); cursor && !cursor->empty()) {
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(cursor->data(), cursor->data() + cursor->size(), n);
    if (ec != std::errc() || p != cursor->data() + cursor->size()) {
      return Fail(req, MakeError(Code::kInvalidField, "cursor is not one this server gave out"));
    }
    start = std::min(n, items.size());
  }
  json::array page;
  for (std::size_t k = start; k < items.size() && page.size() < static_cast<std::size_t>(*limit);
       ++k) {
    page.push_back(items[k]);
  }
  std::size_t next = start + page.size();
  json::object out;
  out["items"] = std::move(page);
  out["cursor"] = next < items.size() ? json::value(std::to_string(next)) : json::value(nullptr);
  return Json(200, Serialize(out));
}

Result<std::string> Service::ParseParameters(const json::object& body,
                                             store::IntegrationRecord& i) {
  json::object params;
  if (auto p = ParseJsonObject(i.parameters_json.empty() ? "{}" : i.parameters_json); p.ok()) {
    params = std::move(*p);
  }
  if (Status s = OnlyFields(body, {"clientId", "clientSecret", "scopes"}); !s.ok()) {
    return s.take_error();
  }
  auto client_id = StringField(body, "clientId", 500);
  if (!client_id.ok()) return client_id.take_error();
  if (client_id->has_value()) params["clientId"] = **client_id;
  if (body.contains("clientId") && body.at("clientId").is_null()) params.erase("clientId");
  auto client_secret = StringField(body, "clientSecret", 2000);
  if (!client_secret.ok()) return client_secret.take_error();
  if (client_secret->has_value()) {
    i.client_secret_sealed =
        (*client_secret)->empty() ? "" : sealer_->Seal(**client_secret, random_);
  } else if (body.contains("clientSecret")) {
    i.client_secret_sealed.clear();
  }
  if (const json::value* s = body.if_contains("scopes"); s != nullptr) {
    if (s->is_null()) {
      params.erase("scopes");
    } else {
      if (!s->is_array() || s->as_array().size() > 50) {
        return InvalidField("scopes", "must be an array of at most 50 scope strings");
      }
      for (const auto& v : s->as_array()) {
        if (!v.is_string() || v.as_string().empty() || v.as_string().size() > 200 ||
            std::any_of(v.as_string().begin(), v.as_string().end(),
                        [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
          return InvalidField("scopes", "entries must be scope names without spaces");
        }
      }
      params["scopes"] = *s;
    }
  }
  return Serialize(params);
}

http::Response Service::CreateIntegration(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"key", "name", "connectorKey", "connectorId", "parameters"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  auto key = StringField(*body, "key", 100);
  auto name = StringField(*body, "name", 200);
  auto connector_key = StringField(*body, "connectorKey", 100);
  auto connector_id = StringField(*body, "connectorId", 100);
  for (auto* f : {&key, &name, &connector_key, &connector_id}) {
    if (!f->ok()) return Fail(req, f->take_error());
  }
  if (!connector_key->has_value() && !connector_id->has_value()) {
    return Fail(req, MissingFields({"connectorKey"}));
  }
  auto connector = FindConnector(call.who.workspace_id,
                                 connector_key->has_value() ? **connector_key : **connector_id);
  if (!connector) return Fail(req, MakeError(Code::kConnectorNotFound));
  store::IntegrationRecord i;
  i.id = NewId(random_, "int_");
  i.workspace_id = call.who.workspace_id;
  i.key = key->value_or(connector->key);
  if (!ValidKey(i.key)) {
    return Fail(req, InvalidField("key", "must be 1-100 letters, digits and - _ . : @"));
  }
  i.name = name->value_or(connector->name);
  i.connector_key = connector->key;
  i.parameters_json = "{}";
  if (const json::value* p = body->if_contains("parameters"); p != nullptr && !p->is_null()) {
    if (!p->is_object()) return Fail(req, InvalidField("parameters", "must be an object"));
    auto params = ParseParameters(p->as_object(), i);
    if (!params.ok()) return Fail(req, params.take_error());
    i.parameters_json = *params;
  }
  i.created_at_ms = i.updated_at_ms = clock_.NowMs();
  call.target = i.id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  if (Status s = store_.InsertIntegration(i, effects); !s.ok()) {
    if (s.error().code == Code::kConflict) {
      return Fail(req, MakeError(Code::kConflict,
                                 "An integration with key '" + i.key + "' exists already"));
    }
    return Fail(req, s.take_error());
  }
  call.recorded = true;
  return Json(201, Serialize(IntegrationJson(i, true)));
}

http::Response Service::GetIntegration(http::Request& req, Call& call) {
  auto i = FindIntegrationOf(call.who, std::string(req.Param("integration_id")));
  if (!i.ok()) return Fail(req, i.take_error());
  call.target = i->id;
  return Json(200, Serialize(IntegrationJson(*i, call.who.manager)));
}

http::Response Service::UpdateIntegration(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto i = FindIntegrationOf(call.who, std::string(req.Param("integration_id")));
  if (!i.ok()) return Fail(req, i.take_error());
  call.target = i->id;
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"name", "key"}); !s.ok()) return Fail(req, s.take_error());
  auto name = StringField(*body, "name", 200);
  if (!name.ok()) return Fail(req, name.take_error());
  auto key = StringField(*body, "key", 100);
  if (!key.ok()) return Fail(req, key.take_error());
  if (name->has_value()) {
    if ((*name)->empty()) return Fail(req, InvalidField("name", "must not be empty"));
    i->name = **name;
  }
  if (key->has_value()) {
    if (!ValidKey(**key)) {
      return Fail(req, InvalidField("key", "must be 1-100 letters, digits and - _ . : @"));
    }
    i->key = **key;
  }
  i->updated_at_ms = clock_.NowMs();
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  if (Status s = store_.UpdateIntegration(*i, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  return Json(200, Serialize(IntegrationJson(*i, call.who.manager)));
}

http::Response Service::GetIntegrationParameters(http::Request& req, Call& call) {
  auto i = FindIntegrationOf(call.who, std::string(req.Param("integration_id")));
  if (!i.ok()) return Fail(req, i.take_error());
  call.target = i->id;
  return Json(200, Serialize(ParametersJson(*i)));
}

http::Response Service::UpdateIntegrationParameters(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto i = FindIntegrationOf(call.who, std::string(req.Param("integration_id")));
  if (!i.ok()) return Fail(req, i.take_error());
  call.target = i->id;
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto params = ParseParameters(*body, *i);
  if (!params.ok()) return Fail(req, params.take_error());
  i->parameters_json = *params;
  i->updated_at_ms = clock_.NowMs();
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  if (Status s = store_.UpdateIntegration(*i, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  return Json(200, Serialize(ParametersJson(*i)));
}

http::Response Service::ArchiveIntegration(http::Request& req, Call& call) {
  return SetIntegrationArchived(req, call, true);
}

http::Response Service::RestoreIntegration(http::Request& req, Call& call) {
  return SetIntegrationArchived(req, call, false);
}

http::Response Service::SetIntegrationArchived(http::Request& req, Call& call, bool archived) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto i = FindIntegrationOf(call.who, std::string(req.Param("integration_id")));
  if (!i.ok()) return Fail(req, i.take_error());
  call.target = i->id;
  std::int64_t now = clock_.NowMs();
  if (archived != i->archived_at_ms.has_value()) {
    i->archived_at_ms = archived ? std::optional(now) : std::nullopt;
    i->updated_at_ms = now;
    store::Effects effects;
    effects.activity.push_back(EventOf(req, call, 200));
    if (Status s = store_.UpdateIntegration(*i, effects); !s.ok()) {
      return Fail(req, s.take_error());
    }
    call.recorded = true;
  }
  return Json(200, Serialize(IntegrationJson(*i, call.who.manager)));
}

}  // namespace agentgate::api
