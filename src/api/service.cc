#include "api/service.h"

#include <algorithm>
#include <array>
#include <chrono>

#include "api/docs.h"
#include "api/fields.h"
#include "core/json.h"
#include "webhooks/signature.h"

namespace agentgate::api {

// ---- CheckLog ------------------------------------------------------------------------------

void CheckLog::Record(store::CheckRecord&& record, std::int64_t day, bool keep_record) {
  // Each thread gets its own shard (round-robin), so network threads never share a lock here.
  thread_local const std::size_t shard_index =
      next_shard_.fetch_add(1, std::memory_order_relaxed) % kShards;
  Shard& shard = shards_[shard_index];
  // The cap is shared out over the shards in use, so no counter is written by every thread on
  // every check (next_shard_ changes only when a new thread first records).
  std::size_t in_use = std::min<std::size_t>(
      kShards, std::max<std::size_t>(1, next_shard_.load(std::memory_order_relaxed)));
  std::lock_guard lock(shard.mu);
  bool keep = keep_record && shard.records.size() < max_pending / in_use;
  if (keep_record && !keep) dropped_.fetch_add(1, std::memory_order_relaxed);
  if (shard.day != day) {
    if (shard.day_count > 0) shard.other_days.emplace_back(shard.day, shard.day_count);
    shard.day = day;
    shard.day_count = 0;
  }
  ++shard.day_count;
  if (keep) shard.records.push_back(std::move(record));
}

store::Bookkeeping CheckLog::Drain() {
  store::Bookkeeping b;
  // Each shard's lock is held only to swap its vector out (O(1)): a network thread recording a
  // check never waits behind a copy, even if this thread is descheduled meanwhile.
  std::array<std::vector<store::CheckRecord>, kShards> taken;
  std::size_t total = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    std::lock_guard lock(shard.mu);
    taken[i].swap(shard.records);
    total += taken[i].size();
    for (auto& d : shard.other_days) b.checks_per_day.push_back(d);
    shard.other_days.clear();
    if (shard.day_count > 0) b.checks_per_day.emplace_back(shard.day, shard.day_count);
    shard.day_count = 0;
  }
  b.checks.reserve(total);
  for (auto& part : taken) {
    std::move(part.begin(), part.end(), std::back_inserter(b.checks));
  }
  return b;
}

// ---- Service -------------------------------------------------------------------------------

Service::Service(ServiceOptions options, store::Store& store, const Clock& clock,
                 crypto::Random& random, Logger& logger, mail::Mailer* mailer)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      random_(random),
      logger_(logger),
      mailer_(mailer),
      register_limiter_(options_.register_limit),
      check_limiter_(options_.check_limit),
      magic_link_limiter_(options_.magic_link_limit),
      request_email_limiter_(options_.request_email_limit) {
  check_log_.max_pending = options_.max_pending_checks;
}

Status Service::Load() {
  std::int64_t now = clock_.NowMs();
  Status s = store_.LoadAgents([this](store::AgentRecord&& a) {
    authz::AgentInfo info;
    info.id = std::move(a.id);
    info.name = std::move(a.name);
    info.description = std::move(a.description);
    info.developer_email = std::move(a.developer_email);
    info.metadata_json = std::move(a.metadata_json);
    info.status = std::move(a.status);
    info.secret_hash = a.secret_hash;
    info.created_at_ms = a.created_at_ms;
    info.last_seen_ms = a.last_seen_ms;
    index_.PutAgent(info);
  });
  if (!s.ok()) return s;
  std::size_t skipped = 0;
  s = store_.LoadActiveGrants(now, [this, &skipped](store::GrantRecord&& g) {
    authz::GrantInfo info;
    info.id = std::move(g.id);
    info.agent_id = std::move(g.agent_id);
    info.action = std::move(g.action);
    info.granted_by = std::move(g.granted_by);
    info.granted_by_email = std::move(g.granted_by_email);
    info.expires_at_ms = g.expires_at_ms.value_or(authz::kNever);
    info.scope_json = std::move(g.scope_json);
    info.created_at_ms = g.created_at_ms;
    if (!index_.AddGrant(info)) ++skipped;
  });
  if (!s.ok()) return s;
  auto endpoints = store_.ListWebhooks("");
  if (!endpoints.ok()) return endpoints.take_error();
  webhook_endpoints_.store(static_cast<int>(endpoints->size()));
  if (s = LoadEngine(); !s.ok()) return s;
  s = store_.LoadActiveApiTokens(now, [this](store::ApiTokenRecord&& t) {
    TokenInfo info;
    info.id = std::move(t.id);
    info.name = std::move(t.name);
    info.user_id = std::move(t.user_id);
    info.user_email = std::move(t.user_email);
    info.user_is_admin = t.user_is_admin;
    std::vector<std::string> names;
    boost::system::error_code ec;
    json::value parsed = json::parse(t.abilities_json, ec);
    if (!ec && parsed.is_array()) {
      for (const auto& v : parsed.as_array()) {
        if (v.is_string()) names.emplace_back(v.get_string());
      }
    }
    info.abilities = AbilitiesFromNames(names);
    info.expires_at_ms = t.expires_at_ms.value_or(0);
    tokens_.Put(std::move(info), t.token_hash);
  });
  if (!s.ok()) return s;
  if (skipped > 0) {
    logger_.Warn(std::to_string(skipped) +
                 " grants could not be indexed (unknown agent or bad "
                 "scope) and will not answer checks");
  }
  return Ok();
}

void Service::SetBaseUrl(std::string base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  options_.base_url = std::move(base_url);
}

void Service::RegisterRoutes(http::Router& router) {
  using http::Dispatch;
  using http::Method;
  constexpr bool kIdem = true;
  // Hot path first: the router tries routes in order.
  const RouteSpec routes[] = {
      {Method::kGet, "/permission/check", Dispatch::kInline, "permission.check",
       Access::kAgentOrToken, kPermissionCheck, false, &Service::CheckGet},
      {Method::kPost, "/permission/check", Dispatch::kInline, "permission.check",
       Access::kAgentOrToken, kPermissionCheck, false, &Service::CheckPost},
      {Method::kGet, "/agent/:agent_id", Dispatch::kInline, "agent.view", Access::kAgentOrToken,
       kAgentViewAny, false, &Service::AgentProfile},
      {Method::kPost, "/agent/register", Dispatch::kBlocking, "agent.register", Access::kOpen,
       kAgentCreate, kIdem, &Service::Register},
      {Method::kPost, "/permission/grant", Dispatch::kBlocking, "permission.grant", Access::kPerson,
       kPermissionGrant, kIdem, &Service::Grant},
      {Method::kPost, "/permission/revoke", Dispatch::kBlocking, "permission.revoke",
       Access::kPerson, kPermissionRevoke, kIdem, &Service::Revoke},
      {Method::kGet, "/permissions", Dispatch::kBlocking, "permission.list", Access::kPerson,
       kPermissionViewAny, false, &Service::ListPermissions},
      {Method::kPost, "/auth/magic-link", Dispatch::kBlocking, "auth.magic_link", Access::kOpen, 0,
       kIdem, &Service::MagicLink},
      {Method::kGet, "/auth/verify", Dispatch::kBlocking, "auth.verify", Access::kOpen, 0, false,
       &Service::Verify},
      {Method::kGet, "/auth/session", Dispatch::kBlocking, "auth.session", Access::kPerson, 0,
       false, &Service::SessionInfo},
      {Method::kPost, "/auth/logout", Dispatch::kBlocking, "auth.logout", Access::kOpen, 0, kIdem,
       &Service::Logout},
      {Method::kPost, "/v1/tokens", Dispatch::kBlocking, "token.create", Access::kPerson,
       kTokenManage, kIdem, &Service::CreateToken},
      {Method::kGet, "/v1/tokens", Dispatch::kBlocking, "token.list", Access::kPerson, kTokenManage,
       false, &Service::ListTokens},
      {Method::kDelete, "/v1/tokens/:token_id", Dispatch::kBlocking, "token.revoke",
       Access::kPerson, kTokenManage, kIdem, &Service::RevokeToken},
      {Method::kGet, "/v1/agents", Dispatch::kBlocking, "agent.list", Access::kPerson,
       kAgentViewAny, false, &Service::ListAgents},
      {Method::kGet, "/v1/activity", Dispatch::kBlocking, "activity.list", Access::kPerson,
       kActivityViewAny, false, &Service::ListActivity},
      {Method::kPost, "/v1/webhooks", Dispatch::kBlocking, "webhook.create", Access::kPerson,
       kWebhookManage, kIdem, &Service::CreateWebhook},
      {Method::kGet, "/v1/webhooks", Dispatch::kBlocking, "webhook.list", Access::kPerson,
       kWebhookManage, false, &Service::ListWebhooks},
      {Method::kGet, "/v1/webhooks/:webhook_id", Dispatch::kBlocking, "webhook.view",
       Access::kPerson, kWebhookManage, false, &Service::GetWebhook},
      {Method::kPatch, "/v1/webhooks/:webhook_id", Dispatch::kBlocking, "webhook.update",
       Access::kPerson, kWebhookManage, kIdem, &Service::UpdateWebhook},
      {Method::kDelete, "/v1/webhooks/:webhook_id", Dispatch::kBlocking, "webhook.delete",
       Access::kPerson, kWebhookManage, kIdem, &Service::DeleteWebhook},
      {Method::kPost, "/v1/webhooks/:webhook_id/rotate-secret", Dispatch::kBlocking,
       "webhook.rotate_secret", Access::kPerson, kWebhookManage, kIdem,
       &Service::RotateWebhookSecret},
      {Method::kPost, "/v1/webhooks/:webhook_id/test", Dispatch::kBlocking, "webhook.test",
       Access::kPerson, kWebhookManage, kIdem, &Service::TestWebhook},
      {Method::kGet, "/v1/webhooks/:webhook_id/deliveries", Dispatch::kBlocking,
       "webhook.deliveries", Access::kPerson, kWebhookManage, false,
       &Service::ListWebhookDeliveries},
      {Method::kGet, "/v1/webhooks/:webhook_id/messages", Dispatch::kBlocking, "webhook.messages",
       Access::kPerson, kWebhookManage, false, &Service::ListWebhookMessages},
      {Method::kPost, "/v1/webhooks/:webhook_id/messages/:message_id/replay", Dispatch::kBlocking,
       "webhook.replay", Access::kPerson, kWebhookManage, kIdem, &Service::ReplayWebhookMessage},
      {Method::kPost, "/v1/permission-requests", Dispatch::kBlocking,
       "permission_request.create", Access::kPersonOrAgent, 0, kIdem,
       &Service::CreatePermissionRequest},
      {Method::kGet, "/v1/permission-requests", Dispatch::kBlocking, "permission_request.list",
       Access::kPersonOrAgent, kPermissionViewAny, false, &Service::ListPermissionRequests},
      {Method::kGet, "/v1/permission-requests/:request_id", Dispatch::kBlocking,
       "permission_request.view", Access::kPersonOrAgent, kPermissionViewAny, false,
       &Service::GetPermissionRequest},
      {Method::kPost, "/v1/permission-requests/:request_id/approve", Dispatch::kBlocking,
       "permission_request.approve", Access::kPerson, kPermissionGrant, kIdem,
       &Service::ApprovePermissionRequest},
      {Method::kPost, "/v1/permission-requests/:request_id/decline", Dispatch::kBlocking,
       "permission_request.decline", Access::kPerson, kPermissionGrant, kIdem,
       &Service::DeclinePermissionRequest},
      // Not activity: probes, and pages for people.
      {Method::kGet, "/health", Dispatch::kInline, "", Access::kOpen, 0, false, &Service::Health},
      {Method::kGet, "/stats", Dispatch::kBlocking, "stats.view", Access::kOpen, 0, false,
       &Service::Stats},
      {Method::kGet, "/dashboard", Dispatch::kBlocking, "", Access::kOpen, 0, false,
       &Service::Dashboard},
      {Method::kGet, "/dashboard/app.js", Dispatch::kBlocking, "", Access::kOpen, 0, false,
       &Service::DashboardScript},
      {Method::kGet, "/dashboard/app.css", Dispatch::kBlocking, "", Access::kOpen, 0, false,
       &Service::DashboardStyle},
  };
  for (const RouteSpec& spec : routes) AddRoute(router, spec);
  RegisterEngineRoutes(router);
  RegisterMcpRoutes(router);
  RegisterDocRoutes(router, [this] { return options_.base_url; });
}

namespace {

// The error code of an error response body ({"error":"<code>",...}); "" when there is none.
std::string_view ErrorCodeOf(std::string_view body) {
  constexpr std::string_view kPrefix = "{\"error\":\"";
  if (body.substr(0, kPrefix.size()) != kPrefix) return {};
  body.remove_prefix(kPrefix.size());
  return body.substr(0, body.find('"'));
}

}  // namespace

void Service::AddRoute(http::Router& router, const RouteSpec& spec) {
  router.Add(spec.method, std::string(spec.pattern), spec.dispatch,
             [this, spec](http::Request& req) -> http::Response {
               Call call;
               call.action = spec.action;
               auto who = Identify(req, spec);
               http::Response r;
               if (!who.ok()) {
                 r = Fail(req, who.take_error());
               } else if (call.who = std::move(*who);
                          call.who.kind == ActorKind::kApiToken && spec.ability != 0 &&
                          !call.who.Has(static_cast<Ability>(spec.ability)) &&
                          // connection:manage includes running through one's connections.
                          !(spec.ability == kAct && call.who.Has(kConnectionManage))) {
                 r = Fail(req, MissingAbility(req, spec));
               } else {
                 if (spec.idempotent) {
                   r = RunIdempotent(req, [&] { return (this->*spec.handler)(req, call); });
                 } else {
                   r = (this->*spec.handler)(req, call);
                 }
               }
               if (!spec.action.empty() && !call.recorded) {
                 RecordLater(EventOf(req, call, r.status,
                                     r.status >= 400 ? ErrorCodeOf(r.body) : std::string_view()));
               }
               return r;
             });
}

Principal Service::PersonOf(const store::SessionInfo& session) const {
  Principal who;
  who.kind = ActorKind::kSession;
  who.actor_id = who.user_id = session.user.id;
  who.email = session.user.email;
  who.admin = IsAdmin(session.user);
  who.abilities = kAllAbilities;  // a person in a session may do all a person may
  return who;
}

Result<Principal> Service::Identify(const http::Request& req, const RouteSpec& spec) {
  std::string_view bearer = http::BearerToken(req.authorization);
  const bool engine = spec.access == Access::kTenant || spec.access == Access::kManager ||
                      spec.access == Access::kTenantOrAgent;
  // A JSON Web Token ("eyJ…" in three parts): a tenant or manager token.
  if (bearer.size() > 20 && bearer.substr(0, 3) == "eyJ" &&
      std::count(bearer.begin(), bearer.end(), '.') == 2) {
    if (!engine) {
      if (spec.access == Access::kOpen && spec.ability == 0) return Principal{};
      return MakeError(Code::kUnauthorized,
                       "Tenant and manager tokens are for the integration engine (/connections, "
                       "/integrations, /connectors, /act, /v1/credentials)",
                       "Call this endpoint with a session, an access token (agt_...) or an "
                       "agent secret.");
    }
    auto who = IdentifyJwt(bearer);
    if (!who.ok()) return who;
    if (spec.access == Access::kManager && !who->manager) {
      return MakeError(Code::kForbidden, "This endpoint needs a manager token",
                       "Mint one with 'agentgate token --manager', or sign {workspaceKey, "
                       "isAdmin: true} with the workspace secret.");
    }
    return who;
  }
  auto who = IdentifyCaller(req, spec);
  if (!who.ok() || !engine) return who;
  if (who->kind == ActorKind::kAgent) return who;  // acts in the tenant of the grant's person
  ScopePerson(*who);
  if (spec.access == Access::kManager && !who->admin) {
    return MakeError(Code::kForbidden, "This endpoint is for workspace admins",
                     "Ask an admin, or use a manager token ('agentgate token --manager').");
  }
  return who;
}

Result<Principal> Service::IdentifyCaller(const http::Request& req, const RouteSpec& spec) {
  Principal who;
  std::string_view bearer = http::BearerToken(req.authorization);
  std::int64_t now = clock_.NowMs();
  if (bearer.substr(0, kTokenPrefix.size()) == kTokenPrefix) {
    auto token = tokens_.Find(crypto::Sha256(bearer), now);
    if (!token && spec.access == Access::kOpen && spec.ability == 0) {
      // Open routes need no credential: a stale token (say, on a health probe) is ignored.
      return who;
    }
    if (!token) {
      return MakeError(Code::kUnauthorized, "The access token is invalid, expired or revoked",
                       "Mint a new token with POST /v1/tokens (or 'agentgate token create') "
                       "and send it as 'Authorization: Bearer agt_...'.");
    }
    if (spec.access == Access::kSession) {
      return MakeError(Code::kUnauthorized, "This endpoint needs a session cookie",
                       "Access tokens are revoked with DELETE /v1/tokens/:id instead.");
    }
    tokens_.Touch(token->id, now);
    who.kind = ActorKind::kApiToken;
    who.actor_id = token->id;
    who.user_id = token->user_id;
    who.email = token->user_email;
    who.admin = token->user_is_admin || IsAdminEmail(token->user_email);
    who.abilities = token->abilities.bits;
    who.token = std::move(token);
    return who;
  }
  switch (spec.access) {
    case Access::kOpen:
    case Access::kAgentOrToken:
      // Agents authenticate in the handler, against the agent the request names.
      if (!bearer.empty() && spec.access == Access::kAgentOrToken) who.kind = ActorKind::kAgent;
      if (spec.access == Access::kOpen && spec.dispatch == http::Dispatch::kBlocking &&
          !http::CookieValue(req.cookie, "ap_session").empty()) {
        // A signed-in person calling an open route acts as themselves, when the cookie is good.
        auto session = RequireSession(req);
        if (session.ok()) who = PersonOf(*session);
      }
      return who;
    case Access::kTenantOrAgent:
    case Access::kPersonOrAgent:
      if (!bearer.empty() && http::CookieValue(req.cookie, "ap_session").empty()) {
        // An agent's secret: the agent acts, under its grants.
        auto agent = index_.AgentOfSecret(crypto::Sha256(bearer));
        if (!agent) {
          return MakeError(Code::kUnauthorized, "The agent secret is not valid",
                           spec.access == Access::kTenantOrAgent
                               ? "Send the secret POST /agent/register gave the agent "
                                 "('Authorization: Bearer sk_ap_...'), a tenant token, or an "
                                 "access token with the 'act' ability."
                               : "Send the secret POST /agent/register gave the agent "
                                 "('Authorization: Bearer sk_ap_...'), or a person's session or "
                                 "access token.");
        }
        who.kind = ActorKind::kAgent;
        who.actor_id = *agent;
        if (spec.access == Access::kTenantOrAgent) who.workspace_id = "ws_default";
        return who;
      }
      [[fallthrough]];
    case Access::kPerson:
    case Access::kTenant:
    case Access::kManager:
    case Access::kSession: {
      if (!bearer.empty() && http::CookieValue(req.cookie, "ap_session").empty()) {
        return MakeError(Code::kUnauthorized,
                         "This endpoint needs a person's credential, not an agent secret",
                         "Sign in (POST /auth/magic-link) and send the ap_session cookie, or "
                         "send an access token: 'Authorization: Bearer agt_...'.");
      }
      auto session = RequireSession(req);
      if (!session.ok()) return session.take_error();
      return PersonOf(*session);
    }
  }
  return who;
}

Error Service::MissingAbility(const http::Request& req, const RouteSpec& spec) const {
  std::string needed(AbilityName(static_cast<Ability>(spec.ability)));
  return MakeError(Code::kTokenMissingAbility,
                   "This access token lacks the ability '" + needed + "' needed for " +
                       std::string(http::MethodName(req.method)) + " " + std::string(spec.pattern),
                   "Mint a token that includes it: POST /v1/tokens with {\"name\": \"...\", "
                   "\"abilities\": [\"" +
                       needed + "\"]}, or 'agentgate token create --name NAME --ability " + needed +
                       "'.");
}

store::ActivityEvent Service::EventOf(const http::Request& req, const Call& call, int status,
                                      std::string_view error) const {
  store::ActivityEvent e;
  e.at_ms = clock_.NowMs();
  e.actor_kind = req.via_mcp ? "mcp" : std::string(ActorKindName(call.who.kind));
  e.actor_id = call.who.actor_id;
  if (call.who.kind == ActorKind::kAgent && e.actor_id.empty()) e.actor_id = call.agent_id;
  e.user_id = call.who.user_id;
  e.action = std::string(call.action);
  e.target = ValidUtf8(call.target, 256);
  e.agent_id = ValidUtf8(call.agent_id, 64);
  e.status = status;
  e.outcome = status >= 400 ? "error" : "success";
  e.error = std::string(error);
  e.request_id = req.request_id;
  e.ip = std::string(req.remote_ip);
  e.user_agent = ValidUtf8(req.user_agent, 256);
  e.order_ns = req.received_at_ns;
  e.latency_us = static_cast<std::int32_t>((SteadyNs() - req.received_at_ns) / 1000);
  return e;
}

void Service::RecordLater(store::ActivityEvent event) {
  std::lock_guard lock(activity_mu_);
  if (pending_activity_.size() >= options_.max_pending_checks) {
    ++activity_dropped_;
    return;
  }
  pending_activity_.push_back(std::move(event));
}

void Service::AddEvent(store::Effects& effects, std::string_view type, json::object data,
                       std::vector<std::string> user_ids, std::vector<std::string> emails) {
  // With no endpoint anywhere there is nobody to tell: skip building and fanning out events (a
  // grant then costs what it did before webhooks existed).
  if (webhook_endpoints_.load(std::memory_order_relaxed) == 0) return;
  effects.events.push_back(EventFor(type, std::move(data), std::move(user_ids), std::move(emails)));
}

store::OutboundEvent Service::EventFor(std::string_view type, json::object data,
                                       std::vector<std::string> user_ids,
                                       std::vector<std::string> emails) {
  store::OutboundEvent e;
  e.id = webhooks::NewMessageId(random_);
  e.type = std::string(type);
  e.at_ms = clock_.NowMs();
  json::object payload;
  payload["type"] = e.type;
  payload["timestamp"] = FormatIso8601(e.at_ms);
  payload["data"] = std::move(data);
  e.payload_json = Serialize(payload);
  json::array users, addresses;
  for (auto& u : user_ids) {
    if (!u.empty()) users.emplace_back(u);
  }
  for (auto& a : emails) {
    if (!a.empty()) addresses.emplace_back(a);
  }
  e.audience_user_ids_json = Serialize(users);
  e.audience_emails_json = Serialize(addresses);
  return e;
}

Status Service::FlushRuns() {
  std::vector<store::ActionRunRecord> runs;
  store::Effects effects;
  {
    std::lock_guard lock(runs_mu_);
    runs.swap(pending_runs_);
    std::swap(effects, pending_run_effects_);
  }
  if (runs.empty()) return Ok();
  Status s = store_.InsertActionRuns(runs, effects);
  if (!s.ok()) {
    logger_.Error("writing " + std::to_string(runs.size()) +
                  " action run logs failed: " + std::string(s.error().Message()));
    return s;
  }
  NotifyWebhooks();
  return Ok();
}

Status Service::Flush() {
  Status runs = FlushRuns();
  std::lock_guard lock(flush_mu_);
  store::Bookkeeping batch = check_log_.Drain();
  std::stable_sort(batch.checks.begin(), batch.checks.end(),
                   [](const auto& a, const auto& b) { return a.order_ns < b.order_ns; });
  // Client text is made valid UTF-8 here, off the hot path, so the log always serializes.
  for (auto& c : batch.checks) c.Repair();
  batch.last_seen = index_.DrainLastSeen();
  batch.token_last_used = tokens_.DrainLastUsed();
  {
    std::lock_guard activity_lock(activity_mu_);
    batch.activity.swap(pending_activity_);
    std::stable_sort(batch.activity.begin(), batch.activity.end(),
                     [](const auto& a, const auto& b) { return a.order_ns < b.order_ns; });
    if (activity_dropped_ > 0) {
      logger_.Warn(std::to_string(activity_dropped_) +
                   " activity events were not kept (too many pending)");
      activity_dropped_ = 0;
    }
  }
  if (std::int64_t dropped = check_log_.dropped(); dropped > dropped_reported_) {
    logger_.Warn(
        std::to_string(dropped - dropped_reported_) + " check records were not kept (more than " +
        std::to_string(options_.max_pending_checks) + " pending); the checks are still counted");
    dropped_reported_ = dropped;
  }
  if (batch.empty()) return runs;
  Status s = store_.FlushBookkeeping(batch);
  if (!s.ok()) {
    logger_.Error("flushing check bookkeeping failed: " + std::string(s.error().Message()));
  }
  return s;
}

store::ActivityEvent SystemEvent(std::int64_t at_ms, std::string_view action, std::string target,
                                 std::string agent_id) {
  store::ActivityEvent e;
  e.at_ms = at_ms;
  e.actor_kind = "system";
  e.action = std::string(action);
  e.target = std::move(target);
  e.agent_id = std::move(agent_id);
  e.outcome = "success";
  e.status = 200;
  return e;
}

bool Service::IndexNewGrant(const store::GrantRecord& g) {
  authz::GrantInfo info{g.id,         g.agent_id,         g.action,
                        g.granted_by, g.granted_by_email, g.expires_at_ms.value_or(authz::kNever),
                        g.scope_json, g.created_at_ms};
  if (index_.AddGrant(info)) return true;
  logger_.Error("grant " + g.id + " was stored but could not be indexed");
  return false;
}

void Service::EmitExpiredGrants() {
  std::int64_t now = clock_.NowMs();
  auto effects_for = [&](const std::vector<store::GrantRecord>& expired) {
    store::Effects effects;
    for (const auto& g : expired) {
      effects.activity.push_back(SystemEvent(now, "permission.expire", g.id, g.agent_id));
      json::object data;
      data["permission_id"] = g.id;
      data["agent_id"] = g.agent_id;
      data["action"] = g.action;
      data["granted_by"] = g.granted_by_email;
      data["expired_at"] = FormatIso8601(g.expires_at_ms.value_or(now));
      AddEvent(effects, "permission.expired", std::move(data), {g.granted_by});
    }
    return effects;
  };
  // A few batches per call at most; the rest waits for the next tick.
  for (int batch = 0; batch < 10; ++batch) {
    auto expired = store_.ClaimExpiredGrants(now, 200, effects_for);
    if (!expired.ok()) {
      logger_.Warn("reporting expired grants failed: " + std::string(expired.error().Message()));
      return;
    }
    if (expired->empty()) return;
    NotifyWebhooks();
    if (expired->size() < 200) return;
  }
}

void Service::Housekeeping(std::int64_t check_retention_ms) {
  std::int64_t now = clock_.NowMs();
  Status s = store_.Prune(now, now - check_retention_ms);
  if (!s.ok()) logger_.Warn("pruning failed: " + std::string(s.error().Message()));
  auto runs = store_.DeleteActionRunsBefore(now - options_.action_run_retention_ms);
  if (!runs.ok()) logger_.Warn("pruning run logs failed: " + std::string(runs.error().Message()));
  EmitExpiredRequests();
  index_.Sweep(now);
  tokens_.Sweep(now);
}

// ---- idempotency ---------------------------------------------------------------------------

namespace {

constexpr std::int64_t kIdempotencyTtlMs = 24LL * 3'600'000;
// A record still "running" this long after it started belongs to a request that died with its
// server; a retry may take it over.
constexpr std::int64_t kIdempotencyStaleMs = 5LL * 60'000;
// Response headers kept with a stored response (names as literals: Response keeps views).
constexpr std::string_view kReplayedHeaders[] = {"Location", "Set-Cookie", "Cache-Control",
                                                 "RateLimit", "RateLimit-Policy"};

bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

http::Response Service::RunIdempotent(http::Request& req,
                                      const std::function<http::Response()>& inner) {
  {
    if (req.idempotency_key.empty()) return inner();
    if (!ValidIdempotencyKey(req.idempotency_key)) {
      return Fail(req, MakeError(Code::kInvalidField,
                                 "Idempotency-Key must be 1-255 visible ASCII characters "
                                 "(a UUID is a good choice)"));
    }
    // Keys are scoped to the credential that sent them (never stored in plaintext).
    std::string scope;
    if (std::string_view bearer = http::BearerToken(req.authorization); !bearer.empty()) {
      scope = "bearer:" + crypto::Sha256Hex(bearer);
    } else if (std::string_view s = http::CookieValue(req.cookie, "ap_session"); !s.empty()) {
      scope = "session:" + crypto::Sha256Hex(s);
    } else {
      scope = "ip:" + std::string(req.remote_ip);
    }
    std::string method(http::MethodName(req.method));
    crypto::Digest key = crypto::Sha256(scope + "\n" + method + "\n" + std::string(req.path) +
                                        "\n" + std::string(req.idempotency_key));
    crypto::Digest fingerprint =
        crypto::Sha256(method + "\n" + std::string(req.path) + "\n" + req.body);
    std::int64_t now = clock_.NowMs();
    auto begun = store_.BeginIdempotent(key, fingerprint, now, now + kIdempotencyTtlMs,
                                        now - kIdempotencyStaleMs);
    if (!begun.ok()) return Fail(req, begun.take_error());
    switch (begun->state) {
      case store::IdempotencyState::kMismatch:
        return Fail(req, MakeError(Code::kIdempotencyKeyReused));
      case store::IdempotencyState::kInProgress: {
        http::Response r = Fail(req, MakeError(Code::kIdempotencyConflict));
        r.Header("Retry-After", "1");
        return r;
      }
      case store::IdempotencyState::kReplay: {
        http::Response r;
        r.status = begun->status;
        r.content_type = begun->content_type;
        r.body = std::move(begun->body);
        if ((r.body.rfind("v1:", 0) == 0 || r.body.rfind("v2:", 0) == 0) && sealer_ != nullptr) {
          // Stored sealed (see below); a JSON body never starts with "v1:" or "v2:".
          auto opened = sealer_->Open(r.body);
          if (!opened.ok()) return Fail(req, opened.take_error());
          r.body = std::move(*opened);
        }
        boost::system::error_code ec;
        json::value headers = json::parse(begun->headers_json, ec);
        if (!ec && headers.is_object()) {
          for (std::string_view name : kReplayedHeaders) {
            if (auto it = headers.as_object().find(name);
                it != headers.as_object().end() && it->value().is_string()) {
              r.Header(name, std::string(it->value().get_string()));
            }
          }
        }
        r.Header("Idempotent-Replayed", "true");
        return r;
      }
      case store::IdempotencyState::kStarted:
        break;
    }
    http::Response r;
    try {
      r = inner();
    } catch (...) {
      (void)store_.AbandonIdempotent(key);
      throw;
    }
    if (r.status >= 400) {
      // Not stored: the caller may fix the request, or retry after a server error, with the
      // same key.
      if (Status s = store_.AbandonIdempotent(key); !s.ok()) {
        logger_.Warn("could not release an Idempotency-Key: " + std::string(s.error().Message()));
      }
      return r;
    }
    json::object headers;
    for (const auto& [name, value] : r.headers) {
      for (std::string_view kept : kReplayedHeaders) {
        if (name == kept) headers[name] = value;
      }
    }
    if (Status s =
            store_.FinishIdempotent(key, r.status, r.content_type, Serialize(headers),
                                    // Answers may hold secrets shown once (an agent's secret, a
                                    // token, a signing secret): kept encrypted at rest.
                                    sealer_ != nullptr ? sealer_->Seal(r.body, random_) : r.body);
        !s.ok()) {
      logger_.Warn("could not store the response for an Idempotency-Key: " +
                   std::string(s.error().Message()));
    }
    return r;
  }
}

// ---- helpers -------------------------------------------------------------------------------

http::Response Service::Fail(const http::Request& req, Error error) const {
  if (error.code == Code::kServerError && !error.message.empty()) {
    // The detail is for the operator's log, not the client.
    logger_.Error(req.request_id + " " + std::string(req.path) + ": " + error.message);
    error.message.clear();
  }
  return http::ErrorResponse(error, req.request_id, options_.base_url);
}

http::Response Service::Json(int status, std::string body) const {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool Service::IsAdmin(const store::UserRecord& user) const {
  return user.is_admin || IsAdminEmail(user.email);
}

bool Service::IsAdminEmail(std::string_view email) const {
  return std::find(options_.admin_emails.begin(), options_.admin_emails.end(), email) !=
         options_.admin_emails.end();
}

Result<store::SessionInfo> Service::RequireSession(const http::Request& req) {
  std::string_view token = http::CookieValue(req.cookie, "ap_session");
  if (token.empty()) {
    return MakeError(Code::kUnauthorized,
                     "Sign in first: this endpoint needs the ap_session cookie",
                     "Request a sign-in link with POST /auth/magic-link and follow it; send the "
                     "ap_session cookie it sets.");
  }
  auto found = store_.FindSession(crypto::Sha256(token), clock_.NowMs());
  if (!found.ok()) return found.take_error();
  if (!found->has_value()) {
    return MakeError(Code::kUnauthorized, "The session is invalid or has expired",
                     "Sign in again with POST /auth/magic-link.");
  }
  return std::move(**found);
}

namespace {

// "scheme://host[:port]" of a URL, lower-cased.
std::string OriginOf(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  auto host_end = url.find('/', scheme_end + 3);
  std::string out(url.substr(0, host_end));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string HostOfOrigin(std::string_view origin) {
  auto p = origin.find("://");
  return p == std::string_view::npos ? std::string() : std::string(origin.substr(p + 3));
}

}  // namespace

Status Service::CheckOrigin(const http::Request& req) const {
  if (req.sec_fetch_site == "cross-site") {
    return MakeError(Code::kForbidden, "Cross-site request refused (Sec-Fetch-Site: cross-site)",
                     "Send this request from the agentgate dashboard, or without a session "
                     "cookie from a server-side client.");
  }
  if (req.origin.empty()) return Ok();
  std::string origin = OriginOf(req.origin);
  std::string host(req.host);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!origin.empty() && (origin == OriginOf(options_.base_url) || HostOfOrigin(origin) == host)) {
    return Ok();
  }
  return MakeError(Code::kForbidden,
                   "Cross-site request refused: Origin " + std::string(req.origin.substr(0, 200)) +
                       " does not match this server",
                   "Cookie-authenticated writes must come from the server's own origin (" +
                       OriginOf(options_.base_url) + ").");
}

bool Service::McpOriginAllowed(const http::Request& req) const {
  if (req.origin.empty()) return true;  // not a browser: nothing to guard against
  std::string origin = OriginOf(req.origin);
  if (origin.empty()) return false;     // "null" or garbage
  if (origin == OriginOf(options_.base_url)) return true;
  std::string host = HostOfOrigin(origin);
  std::string request_host(req.host);
  for (char& c : request_host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == request_host) return true;
  // Local tools (an inspector on localhost) may call a local server; a DNS-rebinding page
  // cannot pose as one, as its Origin keeps the attacker's host name.
  std::string name = host.substr(0, host[0] == '[' ? host.find(']') + 1 : host.find(':'));
  if (name == "localhost" || name == "127.0.0.1" || name == "[::1]") return true;
  return std::find(options_.mcp_origins.begin(), options_.mcp_origins.end(), origin) !=
         options_.mcp_origins.end();
}

Status Service::CheckOrigin(const http::Request& req, const Principal& who) const {
  // Only a cookie rides along on a forged cross-site request; bearer tokens do not.
  if (who.kind != ActorKind::kSession) return Ok();
  return CheckOrigin(req);
}

void Service::AddRateHeaders(http::Response& res, const authz::RateLimiter& limiter,
                             const authz::RateLimitResult& r) const {
  if (!limiter.policy().enabled) return;
  res.Header("RateLimit-Policy", limiter.policy_header());
  res.Header("RateLimit", limiter.RateLimitHeader(r));
  if (!r.allowed) res.Header("Retry-After", std::to_string(r.reset_seconds));
}

}  // namespace agentgate::api
