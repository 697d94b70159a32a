// The AgentPass endpoints. Each handler validates input into the catalogue's errors, then calls
// the store (durable first) and updates the index, then renders JSON.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "api/fields.h"
#include "api/paging.h"
#include "api/grants.h"
#include "api/service.h"
#include "authz/scope.h"
#include "core/json.h"

namespace agentgate::api {
namespace {

constexpr std::size_t kMaxNameChars = 100;
constexpr std::size_t kMaxDescriptionChars = 2000;
constexpr std::size_t kMaxActionChars = 200;
constexpr std::size_t kMaxObjectBytes = 16 * std::size_t{1024};
constexpr std::string_view kSessionCookie = "ap_session";




Error MissingParams(const std::vector<std::string_view>& names) {
  std::string list;
  for (auto n : names) {
    if (!list.empty()) list += ", ";
    list += n;
  }
  return MakeError(Code::kMissingParams, "Missing required query parameters: " + list);
}

void AppendLatency(std::string& out, std::int64_t received_at_ns) {
  double ms = static_cast<double>(SteadyNs() - received_at_ns) / 1e6;
  char buf[32];
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof buf, ms < 0 ? 0.0 : ms, std::chars_format::fixed, 3);
  out.append(buf, end);
}


// An optional object field no larger than kMaxObjectBytes serialized; "" when absent.
Result<std::string> SmallObjectField(const json::object& body, std::string_view key) {
  auto obj = OptionalObject(body, key);
  if (!obj.ok()) return obj.take_error();
  if (!obj->has_value()) return std::string();
  std::string text = Serialize(**obj);
  if (text.size() > kMaxObjectBytes) {
    return MakeError(Code::kInvalidField, "Field '" + std::string(key) + "' is larger than " +
                                              std::to_string(kMaxObjectBytes) + " bytes");
  }
  return text;
}

Error MissingBearer() {
  return MakeError(Code::kUnauthorized,
                   "Missing bearer token: send 'Authorization: Bearer <agent secret>'");
}

// The error for a failed agent authentication; nullopt when it succeeded.
std::optional<Error> AgentAuthError(authz::AuthResult auth) {
  switch (auth) {
    case authz::AuthResult::kOk:
      return std::nullopt;
    case authz::AuthResult::kUnknownSecret:
      return MakeError(Code::kUnauthorized, "Invalid agent secret");
    case authz::AuthResult::kAgentNotFound:
      return MakeError(Code::kAgentNotFound);
    case authz::AuthResult::kOtherAgent:
      return MakeError(Code::kForbidden, "This secret belongs to another agent",
                       "Use the secret that was returned when this agent registered.");
  }
  return MakeError(Code::kServerError);
}


struct AgentAndAction {
  std::string agent_id;
  std::string action;
};

// The two fields most bodies need: strings, present and non-empty (missing_fields names the
// absent ones; invalid_field a wrong type).
Result<AgentAndAction> RequiredAgentAndAction(const json::object& body) {
  auto agent_id = OptionalString(body, "agent_id");
  if (!agent_id.ok()) return agent_id.take_error();
  auto action = OptionalString(body, "action");
  if (!action.ok()) return action.take_error();
  std::vector<std::string_view> missing;
  if (!agent_id->has_value() || (*agent_id)->empty()) missing.push_back("agent_id");
  if (!action->has_value() || (*action)->empty()) missing.push_back("action");
  if (!missing.empty()) return MissingFields(missing);
  return AgentAndAction{std::move(**agent_id), std::move(**action)};
}

std::string SessionCookie(std::string_view value, std::int64_t max_age_s, bool secure) {
  std::string c = std::string(kSessionCookie) + "=" + std::string(value) +
                  "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age_s);
  if (secure) c += "; Secure";
  return c;
}

}  // namespace

// ---- shared with permission requests (grants.h) ----------------------------------------------

std::string LowerAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A practical address check: one '@', a non-empty local part of printable non-space ASCII
// without quotes or brackets, and a dotted domain of letters, digits and hyphens.
bool ValidEmail(std::string_view e) {
  if (e.size() < 3 || e.size() > 254) return false;
  auto at = e.find('@');
  if (at == std::string_view::npos || at == 0 || e.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  std::string_view local = e.substr(0, at), domain = e.substr(at + 1);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.' ||
      local.find("..") != std::string_view::npos) {
    return false;
  }
  for (unsigned char c : local) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' ||
        c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\') {
      return false;
    }
  }
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      if (label == 0 || label > 63) return false;
      if (domain[i - 1] == '-' || domain[i - label] == '-') return false;
      label = 0;
      continue;
    }
    char c = domain[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
    ++label;
  }
  return true;
}

bool ValidAction(std::string_view a) {
  if (a.empty() || a.size() > kMaxActionChars) return false;
  return std::all_of(a.begin(), a.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '/' || c == '*' || c == '-';
  });
}

Error InvalidAction() {
  return MakeError(Code::kInvalidField,
                   "Field 'action' must be 1-200 characters of letters, digits and _ . : / * -");
}

json::value ParsedOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

// A grant as the API shows it (POST /permission/grant, GET /permissions).
json::object GrantJson(const store::GrantRecord& g) {
  json::object out;
  out["permission_id"] = g.id;
  out["agent_id"] = g.agent_id;
  out["action"] = g.action;
  out["granted_by"] = g.granted_by_email;
  out["expires_at"] = IsoOrNull(g.expires_at_ms);
  out["scope"] = ParsedOrNull(g.scope_json);
  out["metadata"] = ParsedOrNull(g.metadata_json);
  out["created_at"] = FormatIso8601(g.created_at_ms);
  return out;
}

Result<GrantTerms> ParseGrantTerms(const json::object& body) {
  GrantTerms terms;
  if (auto it = body.find("expires_in"); it != body.end() && !it->value().is_null()) {
    if (!it->value().is_string()) {
      return MakeError(Code::kInvalidExpiresIn,
                       "expires_in must be a string such as \"7d\", \"24h\", \"30m\" or \"60s\"");
    }
    auto parsed = ParseExpiresIn(it->value().get_string());
    if (!parsed.ok()) return parsed.take_error();
    terms.expires_in_s = *parsed;
  }
  auto scope_text = SmallObjectField(body, "scope");
  if (!scope_text.ok()) return scope_text.take_error();
  if (!scope_text->empty()) {
    if (Status s = authz::ValidateScope(body.at("scope").as_object()); !s.ok()) {
      return s.take_error();
    }
  }
  terms.scope_json = std::move(*scope_text);
  auto metadata = SmallObjectField(body, "metadata");
  if (!metadata.ok()) return metadata.take_error();
  terms.metadata_json = std::move(*metadata);
  return terms;
}

std::optional<std::int64_t> GrantExpiry(std::int64_t now_ms,
                                        std::optional<std::int64_t> expires_in_s) {
  if (!expires_in_s) return std::nullopt;
  return (now_ms + 999) / 1000 * 1000 + *expires_in_s * 1000;
}

// ---- agents --------------------------------------------------------------------------------

http::Response Service::Register(http::Request& req, Call& call) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto name = OptionalString(*body, "name");
  if (!name.ok()) return Fail(req, name.take_error());
  auto email = OptionalString(*body, "developer_email");
  if (!email.ok()) return Fail(req, email.take_error());
  std::vector<std::string_view> missing;
  if (!name->has_value()) missing.push_back("name");
  if (!email->has_value()) missing.push_back("developer_email");
  if (!missing.empty()) return Fail(req, MissingFields(missing));
  const std::string& n = **name;
  if (n.empty() || std::all_of(n.begin(), n.end(), [](char c) { return c == ' '; })) {
    return Fail(req, MakeError(Code::kInvalidName, "Agent name must not be empty"));
  }
  if (Utf8Length(n) > kMaxNameChars) {
    return Fail(req, MakeError(Code::kInvalidName, "Agent name exceeds 100 characters (" +
                                                       std::to_string(Utf8Length(n)) + ")"));
  }
  if (HasControlChars(n)) {
    return Fail(req,
                MakeError(Code::kInvalidName, "Agent name must not contain control characters"));
  }
  if (!ValidEmail(**email)) {
    return Fail(req,
                MakeError(Code::kInvalidEmail, "developer_email is not a valid email address"));
  }
  auto description = OptionalString(*body, "description");
  if (!description.ok()) return Fail(req, description.take_error());
  if (description->has_value() && Utf8Length(**description) > kMaxDescriptionChars) {
    return Fail(req, MakeError(Code::kInvalidField, "Field 'description' exceeds 2000 characters"));
  }
  auto metadata = SmallObjectField(*body, "metadata");
  if (!metadata.ok()) return Fail(req, metadata.take_error());

  std::int64_t now = clock_.NowMs();
  auto limit = register_limiter_.Hit(req.remote_ip, now);
  if (!limit.allowed) {
    http::Response r = Fail(req, MakeError(Code::kRateLimited,
                                           "Too many registrations from this address; try again "
                                           "in " +
                                               std::to_string(limit.reset_seconds) + "s"));
    AddRateHeaders(r, register_limiter_, limit);
    return r;
  }

  store::AgentRecord agent;
  agent.id = crypto::NewAgentId(random_);
  std::string secret = crypto::NewAgentSecret(random_);
  agent.secret_hash = crypto::Sha256(secret);
  agent.name = n;
  agent.description = description->value_or("");
  agent.developer_email = LowerAscii(**email);
  agent.metadata_json = *metadata;
  agent.created_at_ms = now;
  call.target = call.agent_id = agent.id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  json::object data;
  data["agent_id"] = agent.id;
  data["name"] = agent.name;
  data["developer_email"] = agent.developer_email;
  data["created_at"] = FormatIso8601(now);
  AddEvent(effects, "agent.registered", std::move(data), {call.who.user_id},
           {agent.developer_email});
  Status s = store_.InsertAgent(agent, effects);
  if (!s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  NotifyWebhooks();

  authz::AgentInfo info{agent.id,
                        agent.name,
                        agent.description,
                        agent.developer_email,
                        agent.metadata_json,
                        agent.status,
                        agent.secret_hash,
                        agent.created_at_ms,
                        0};
  index_.PutAgent(info);

  json::object out;
  out["agent_id"] = agent.id;
  out["secret"] = secret;
  out["docs_url"] = options_.base_url + "/docs";
  out["dashboard_url"] = options_.base_url + "/dashboard";
  out["note"] = "Save your secret \xe2\x80\x94 shown once only";
  http::Response r = Json(201, Serialize(out));
  AddRateHeaders(r, register_limiter_, limit);
  return r;
}

http::Response Service::AgentProfile(http::Request& req, Call& call) {
  std::string_view agent_id = req.Param("agent_id");
  call.target = call.agent_id =
      std::string(agent_id.substr(0, authz::PermissionIndex::kMaxAgentIdLength));
  if (call.who.kind != ActorKind::kApiToken) {
    std::string_view token = http::BearerToken(req.authorization);
    if (token.empty()) return Fail(req, MissingBearer());
    if (auto error = AgentAuthError(index_.Authenticate(agent_id, crypto::Sha256(token)))) {
      call.who.kind = ActorKind::kAnonymous;  // not that agent: its secret did not match
      return Fail(req, std::move(*error));
    }
  }
  std::int64_t now = clock_.NowMs();
  auto snap = index_.Snapshot(agent_id, now);
  if (!snap) return Fail(req, MakeError(Code::kAgentNotFound));
  json::object out;
  out["agent_id"] = snap->info.id;
  out["name"] = snap->info.name;
  out["description"] = snap->info.description;
  out["developer_email"] = snap->info.developer_email;
  out["metadata"] = ParsedOrNull(snap->info.metadata_json);
  out["status"] = snap->info.status;
  out["created_at"] = FormatIso8601(snap->info.created_at_ms);
  out["last_seen"] = snap->info.last_seen_ms > 0
                         ? json::value(FormatIso8601(snap->info.last_seen_ms))
                         : json::value(nullptr);
  json::array perms;
  for (const auto& g : snap->active) {
    json::object p;
    p["permission_id"] = g.id;
    p["action"] = g.action;
    p["granted_by"] = g.granter ? g.granter->email : "";
    p["expires_at"] = IsoOrNull(g.expires_at_ms);
    p["scope"] = g.scope ? json::value(g.scope->object) : json::value(nullptr);
    p["created_at"] = FormatIso8601(g.created_at_ms);
    perms.push_back(std::move(p));
  }
  out["active_permissions"] = std::move(perms);
  return Json(200, Serialize(out));
}

// The agents of the caller's dashboard: owned (their developer_email) and granted to.
http::Response Service::ListAgents(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) {
    return Fail(req, MakeError(Code::kInvalidField, "The query string is malformed"));
  }
  std::int64_t now = clock_.NowMs();
  store::AgentListFilter filter;
  filter.email = LowerAscii(call.who.email);
  filter.user_id = call.who.user_id;
  filter.now_ms = now;
  if (auto relation = query.Get("relation")) {
    using Relation = store::AgentListFilter::Relation;
    if (*relation == "owned") {
      filter.relation = Relation::kOwned;
    } else if (*relation == "granted") {
      filter.relation = Relation::kGranted;
    } else {
      return Fail(req, MakeError(Code::kInvalidField,
                                 "relation must be 'owned' or 'granted' (leave it out for both)"));
    }
  }
  auto limit = ParseLimit(query, 50, 100);
  if (!limit.ok()) return Fail(req, limit.take_error());
  filter.limit = *limit + 1;  // one more than asked tells whether another page exists
  if (auto cursor = query.Get("cursor"); cursor && !cursor->empty()) {
    auto position = ParseTimeCursor(*cursor);
    if (!position.ok()) return Fail(req, position.take_error());
    filter.before = std::move(*position);
  }
  auto listed = store_.ListAgentsOf(filter);
  if (!listed.ok()) return Fail(req, listed.take_error());
  bool more = static_cast<int>(listed->size()) > *limit;
  if (more) listed->resize(static_cast<std::size_t>(*limit));
  json::array data;
  for (const store::AgentListing& a : *listed) {
    std::int64_t last_seen = a.agent.last_seen_ms;
    std::string status = a.agent.status;
    // The index knows the latest check, which the store learns only at the next flush.
    if (auto snap = index_.Snapshot(a.agent.id, now)) {
      last_seen = std::max(last_seen, snap->info.last_seen_ms);
      status = snap->info.status;
    }
    json::object out;
    out["agent_id"] = a.agent.id;
    out["name"] = a.agent.name;
    out["description"] = a.agent.description;
    out["developer_email"] = a.agent.developer_email;
    out["metadata"] = ParsedOrNull(a.agent.metadata_json);
    out["status"] = status;
    out["created_at"] = FormatIso8601(a.agent.created_at_ms);
    out["last_seen"] = last_seen > 0 ? json::value(FormatIso8601(last_seen)) : json::value(nullptr);
    out["owned"] = a.owned;
    out["granted"] = a.granted;
    out["active_permission_count"] = a.active_permissions;
    data.push_back(std::move(out));
  }
  json::object out;
  out["data"] = std::move(data);
  out["next_cursor"] = more ? json::value(std::to_string(listed->back().agent.created_at_ms) + "." +
                                          listed->back().agent.id)
                            : json::value(nullptr);
  return Json(200, Serialize(out));
}

// ---- checks --------------------------------------------------------------------------------

http::Response Service::CheckGet(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) {
    return Fail(req, MakeError(Code::kInvalidField, "The query string is malformed"));
  }
  bool repeated = false;
  auto agent_id = query.Get("agent_id", &repeated);
  auto action = query.Get("action", &repeated);
  std::vector<std::string_view> missing;
  if (!agent_id || agent_id->empty()) missing.push_back("agent_id");
  if (!action || action->empty()) missing.push_back("action");
  if (!missing.empty()) return Fail(req, MissingParams(missing));
  if (repeated) {
    return Fail(req, MakeError(Code::kInvalidField, "agent_id and action must each be given once"));
  }
  return Decide(req, call, *agent_id, *action, nullptr);
}

http::Response Service::CheckPost(http::Request& req, Call& call) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto target = RequiredAgentAndAction(*body);
  if (!target.ok()) return Fail(req, target.take_error());
  auto context = OptionalObject(*body, "context");
  if (!context.ok()) return Fail(req, context.take_error());
  const json::object* ctx = context->has_value() ? &**context : nullptr;
  return Decide(req, call, target->agent_id, target->action, ctx);
}

http::Response Service::Decide(http::Request& req, Call& call, std::string_view agent_id,
                               std::string_view action, const json::object* context) {
  std::int64_t now = clock_.NowMs();
  authz::Decision d;
  if (call.who.kind == ActorKind::kApiToken) {
    // A person's backend asking about an agent: no agent secret, the token's ability suffices.
    d = index_.Decide(agent_id, action, now, context);
  } else {
    std::string_view token = http::BearerToken(req.authorization);
    if (token.empty()) return Fail(req, MissingBearer());
    d = index_.Check(agent_id, crypto::Sha256(token), action, now, context);
  }
  if (auto error = AgentAuthError(d.auth)) {
    if (call.who.kind == ActorKind::kAgent) call.who.kind = ActorKind::kAnonymous;
    call.agent_id = std::string(agent_id.substr(0, authz::PermissionIndex::kMaxAgentIdLength));
    call.target = std::string(action.substr(0, kMaxActionChars));
    return Fail(req, std::move(*error));
  }
  auto limit = check_limiter_.Hit(agent_id, now);
  if (!limit.allowed) {
    http::Response r =
        Fail(req, MakeError(Code::kRateLimited, "This agent made too many checks; try again in " +
                                                    std::to_string(limit.reset_seconds) + "s"));
    AddRateHeaders(r, check_limiter_, limit);
    return r;
  }

  http::Response r;
  std::string& b = r.body;
  b.reserve(256);
  if (d.allowed) {
    const auto& g = *d.grant;
    b += "{\"allowed\":true,\"granted_by\":";
    AppendJsonString(b, g.granter ? std::string_view(g.granter->email) : std::string_view());
    b += ",\"expires_at\":";
    if (g.expires_at_ms == authz::kNever) {
      b += "null";
    } else {
      AppendJsonString(b, FormatIso8601(g.expires_at_ms));
    }
    b += ",\"scope\":";
    b += g.scope ? std::string_view(g.scope->json_text) : std::string_view("null");
    b += ",\"permission_id\":";
    AppendJsonString(b, g.id);
  } else {
    b += "{\"allowed\":false,\"reason\":";
    AppendJsonString(b, d.reason);
    if (!d.constraint.empty()) {
      b += ",\"constraint\":";
      AppendJsonString(b, d.constraint);
    }
  }
  b += ",\"latency_ms\":";
  AppendLatency(b, req.received_at_ns);
  b += '}';
  AddRateHeaders(r, check_limiter_, limit);

  store::CheckRecord record;
  record.at_ms = now;
  record.allowed = d.allowed;
  record.latency_us = static_cast<std::int32_t>((SteadyNs() - req.received_at_ns) / 1000);
  if (options_.record_checks) {
    record.order_ns = req.received_at_ns;
    bool by_token = call.who.kind == ActorKind::kApiToken;
    if (by_token) record.actor_kind = "api_token";
    if (req.via_mcp) record.actor_kind = "mcp";
    record.Assign(agent_id, action, d.reason, req.request_id, req.remote_ip, req.user_agent,
                  by_token ? std::string_view(call.who.actor_id) : std::string_view(),
                  by_token ? std::string_view(call.who.user_id) : std::string_view());
  }
  check_log_.Record(std::move(record), UtcDay(now), options_.record_checks);
  call.recorded = true;  // the check record is its activity event
  return r;
}

// ---- grants --------------------------------------------------------------------------------

http::Response Service::Grant(http::Request& req, Call& call) {
  const Principal& who = call.who;
  if (Status s = CheckOrigin(req, who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto target = RequiredAgentAndAction(*body);
  if (!target.ok()) return Fail(req, target.take_error());
  const std::string& agent_id = target->agent_id;
  const std::string& action = target->action;
  if (!ValidAction(action)) return Fail(req, InvalidAction());
  auto terms = ParseGrantTerms(*body);
  if (!terms.ok()) return Fail(req, terms.take_error());
  if (!index_.HasAgent(agent_id)) return Fail(req, MakeError(Code::kAgentNotFound));

  std::int64_t now = clock_.NowMs();
  store::GrantRecord g;
  g.id = crypto::NewUuid(random_);
  g.agent_id = agent_id;
  g.action = action;
  g.granted_by = who.user_id;
  g.granted_by_email = who.email;
  g.expires_at_ms = GrantExpiry(now, terms->expires_in_s);
  g.scope_json = terms->scope_json;
  g.metadata_json = terms->metadata_json;
  g.created_at_ms = now;
  call.target = g.id;
  call.agent_id = g.agent_id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  AddEvent(effects, "permission.granted", GrantJson(g), {who.user_id});
  if (Status s = store_.InsertGrant(g, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  NotifyWebhooks();
  if (!IndexNewGrant(g)) return Fail(req, MakeError(Code::kServerError));

  return Json(201, Serialize(GrantJson(g)));
}

http::Response Service::Revoke(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto permission_id = OptionalString(*body, "permission_id");
  if (!permission_id.ok()) return Fail(req, permission_id.take_error());
  auto agent_id = OptionalString(*body, "agent_id");
  if (!agent_id.ok()) return Fail(req, agent_id.take_error());
  auto action = OptionalString(*body, "action");
  if (!action.ok()) return Fail(req, action.take_error());

  const Principal& user = call.who;
  bool admin = user.admin;
  std::int64_t now = clock_.NowMs();
  std::string target_agent;
  std::vector<std::string> ids;
  std::vector<std::string> granters;  // parallel to ids

  if (permission_id->has_value() && !(*permission_id)->empty()) {
    auto found = store_.FindGrant(**permission_id);
    if (!found.ok()) return Fail(req, found.take_error());
    const auto& g = *found;
    if (!g.has_value() || g->revoked_at_ms.has_value() ||
        (g->expires_at_ms.has_value() && *g->expires_at_ms <= now)) {
      return Fail(req,
                  MakeError(Code::kPermissionNotFound, "No active permission with permission_id " +
                                                           (*permission_id)->substr(0, 64)));
    }
    if (g->granted_by != user.user_id && !admin) {
      return Fail(req, MakeError(Code::kForbidden,
                                 "Only the person who granted this permission, or an admin, may "
                                 "revoke it"));
    }
    target_agent = g->agent_id;
    ids.push_back(g->id);
    granters.emplace_back(g->granted_by);
  } else {
    std::vector<std::string_view> missing;
    if (!agent_id->has_value() || (*agent_id)->empty()) missing.push_back("agent_id");
    if (!action->has_value() || (*action)->empty()) missing.push_back("action");
    if (!missing.empty()) {
      if (missing.size() == 2) missing.insert(missing.begin(), "permission_id or");
      return Fail(req, MissingFields(missing));
    }
    auto active = index_.ActiveGrants(**agent_id, **action, now);
    if (active.empty()) {
      return Fail(req, MakeError(Code::kPermissionNotFound,
                                 "No active permission for agent " + (*agent_id)->substr(0, 64) +
                                     " and action " + (*action)->substr(0, 200)));
    }
    for (const auto& g : active) {
      if (admin || (g.granter && g.granter->user_id == user.user_id)) {
        ids.push_back(g.id);
        granters.emplace_back(g.granter ? g.granter->user_id : "");
      }
    }
    if (ids.empty()) {
      return Fail(req, MakeError(Code::kForbidden,
                                 "The active grants for this agent and action were made by "
                                 "someone else; only they or an admin may revoke them"));
    }
    target_agent = **agent_id;
  }

  call.agent_id = target_agent;
  call.target = ids.size() == 1 ? ids.front() : std::string();
  auto effects_for = [&](const std::vector<std::string>& revoked) {
    store::Effects effects;
    Call done = call;
    if (revoked.size() == 1) done.target = revoked.front();
    effects.activity.push_back(EventOf(req, done, 200));
    for (const std::string& id : revoked) {
      json::object data;
      data["permission_id"] = id;
      data["agent_id"] = target_agent;
      data["revoked_by"] = user.email;
      data["revoked_at"] = FormatIso8601(now);
      std::string granter;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] == id) granter = granters[i];
      }
      AddEvent(effects, "permission.revoked", std::move(data), {granter, user.user_id});
    }
    return effects;
  };
  auto revoked = store_.RevokeGrants(ids, now, user.user_id, effects_for);
  if (!revoked.ok()) return Fail(req, revoked.take_error());
  if (!revoked->empty()) {
    call.recorded = true;
    NotifyWebhooks();
  }
  index_.RemoveGrants(target_agent, *revoked);
  if (revoked->empty()) {
    return Fail(req, MakeError(Code::kPermissionNotFound, "The permission was already revoked"));
  }
  json::object out;
  out["revoked"] = true;
  out["revoked_at"] = FormatIso8601(now);
  out["count"] = revoked->size();
  json::array list;
  for (const auto& id : *revoked) list.emplace_back(id);
  out["permission_ids"] = std::move(list);
  return Json(200, Serialize(out));
}

http::Response Service::ListPermissions(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) {
    return Fail(req, MakeError(Code::kInvalidField, "The query string is malformed"));
  }
  std::int64_t now = clock_.NowMs();
  store::GrantFilter filter;
  filter.granted_by = call.who.user_id;
  filter.agent_id = query.Get("agent_id").value_or("");
  filter.now_ms = now;
  std::string status = query.Get("status").value_or("active");
  if (status == "all") {
    filter.active_only = false;
  } else if (status != "active") {
    return Fail(req, MakeError(Code::kInvalidField, "status must be 'active' or 'all'"));
  }
  auto grants = store_.ListGrants(filter);
  if (!grants.ok()) return Fail(req, grants.take_error());
  json::array list;
  for (const auto& g : *grants) {
    json::object p = GrantJson(g);
    const char* st = g.revoked_at_ms                                ? "revoked"
                     : (g.expires_at_ms && *g.expires_at_ms <= now) ? "expired"
                                                                    : "active";
    p["status"] = st;
    p["revoked_at"] = IsoOrNull(g.revoked_at_ms);
    list.push_back(std::move(p));
  }
  json::object out;
  out["permissions"] = std::move(list);
  return Json(200, Serialize(out));
}

// ---- people --------------------------------------------------------------------------------

http::Response Service::MagicLink(http::Request& req, Call& call) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto email = OptionalString(*body, "email");
  if (!email.ok()) return Fail(req, email.take_error());
  if (!email->has_value() || (*email)->empty()) return Fail(req, MissingFields({"email"}));
  if (!ValidEmail(**email)) {
    return Fail(req, MakeError(Code::kInvalidEmail, "email is not a valid email address"));
  }
  std::string address = LowerAscii(**email);
  std::int64_t now = clock_.NowMs();
  auto limit = magic_link_limiter_.Hit(address, now);
  if (!limit.allowed) {
    http::Response r = Fail(req, MakeError(Code::kRateLimited,
                                           "Too many sign-in links for this address; try again "
                                           "in " +
                                               std::to_string(limit.reset_seconds) + "s"));
    AddRateHeaders(r, magic_link_limiter_, limit);
    return r;
  }
  std::string token = crypto::NewToken(random_, "ml_");
  Status s =
      store_.InsertMagicLink(crypto::Sha256(token), address, now, now + options_.link_ttl_ms);
  if (!s.ok()) return Fail(req, s.take_error());
  call.target = address;
  RecordNow(req, call, 200);
  std::string link = options_.base_url + "/auth/verify?token=" + token;
  if (mailer_) {
    mailer_->Enqueue(mail::Message{
        address, "Your agentgate sign-in link",
        "Sign in to agentgate by opening this link:\n\n" + link +
            "\n\nThe link works once and expires in 15 minutes. If you did not ask for it, "
            "ignore this message.\n"});
  } else {
    logger_.Info("sign-in link for " + address + ": " + link + " (valid 15 minutes, once)");
  }
  http::Response r = Json(200, R"({"message":"Check your email for a sign-in link."})");
  AddRateHeaders(r, magic_link_limiter_, limit);
  return r;
}

http::Response Service::Verify(http::Request& req, Call& call) {
  // A person who opens a used or expired link from their mail gets the dashboard's sign-in form
  // saying so, not a JSON error; API clients (no text/html in Accept) get the error as before.
  auto refuse = [&](Error error) {
    if (req.accept.find("text/html") == std::string_view::npos) return Fail(req, std::move(error));
    http::Response r;
    r.status = 303;
    r.Header("Location", "/dashboard#signin-failed=" + std::string(error.Name()));
    r.Header("Cache-Control", "no-store");
    r.body.clear();
    return r;
  };
  http::Query query(req.query);
  auto token = query.valid() ? query.Get("token") : std::nullopt;
  if (!token || token->empty()) return refuse(MissingParams({"token"}));
  std::int64_t now = clock_.NowMs();
  auto email = store_.ConsumeMagicLink(crypto::Sha256(*token), now);
  if (!email.ok()) return Fail(req, email.take_error());
  if (!email->has_value()) return refuse(MakeError(Code::kInvalidToken));
  std::array<std::uint8_t, 8> id_bytes;
  random_.Fill(id_bytes);
  auto user = store_.SignInUser(**email, "usr_" + crypto::HexEncode(id_bytes), now,
                                options_.admin_emails.empty());
  if (!user.ok()) return Fail(req, user.take_error());
  std::string session = crypto::NewToken(random_, "ses_");
  Status s =
      store_.InsertSession(crypto::Sha256(session), user->id, now, now + options_.session_ttl_ms);
  if (!s.ok()) return Fail(req, s.take_error());
  logger_.Info("signed in " + user->email + (IsAdmin(*user) ? " (admin)" : ""));
  call.who.kind = ActorKind::kSession;
  call.who.actor_id = call.who.user_id = user->id;
  call.target = user->id;
  RecordNow(req, call, 302);

  http::Response r;
  r.status = 302;
  r.Header("Location", "/dashboard");
  r.Header("Set-Cookie", SessionCookie(session, options_.session_ttl_ms / 1000,
                                       options_.base_url.rfind("https://", 0) == 0));
  r.Header("Cache-Control", "no-store");
  json::object out;
  out["signed_in"] = true;
  out["email"] = user->email;
  out["redirect"] = "/dashboard";
  r.body = Serialize(out);
  return r;
}

http::Response Service::SessionInfo(http::Request& req, Call& call) {
  const Principal& who = call.who;
  json::object out;
  out["user_id"] = who.user_id;
  out["email"] = who.email;
  out["is_admin"] = who.admin;
  out["credential"] = ActorKindName(who.kind);
  if (who.kind == ActorKind::kApiToken) {
    out["token_id"] = who.token->id;
    json::array abilities;
    for (const auto& a : who.token->abilities.names) abilities.emplace_back(a);
    out["abilities"] = std::move(abilities);
    out["expires_at"] = who.token->expires_at_ms == 0
                            ? json::value(nullptr)
                            : json::value(FormatIso8601(who.token->expires_at_ms));
  } else {
    auto session = RequireSession(req);
    if (!session.ok()) return Fail(req, session.take_error());
    out["expires_at"] = FormatIso8601(session->expires_at_ms);
  }
  return Json(200, Serialize(out));
}

http::Response Service::Logout(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req); !s.ok()) return Fail(req, s.take_error());
  std::string_view token = http::CookieValue(req.cookie, kSessionCookie);
  if (!token.empty()) {
    if (Status s = store_.DeleteSession(crypto::Sha256(token)); !s.ok()) {
      return Fail(req, s.take_error());
    }
    RecordNow(req, call, 200);
  }
  http::Response r = Json(200, R"({"signed_out":true})");
  r.Header("Set-Cookie", SessionCookie("", 0, options_.base_url.rfind("https://", 0) == 0));
  return r;
}

// ---- service -------------------------------------------------------------------------------

http::Response Service::Health(http::Request& req, Call& call) {
  std::string b = R"({"status":"ok","version":")";
  b += kVersion;
  b += R"(","timestamp":")";
  b += FormatIso8601(clock_.NowMs());
  b += "\"}";
  return Json(200, std::move(b));
}

http::Response Service::Stats(http::Request& req, Call& call) {
  std::int64_t now = clock_.NowMs();
  // Under the flush lock, every check is either still pending or already in the store.
  std::lock_guard lock(flush_mu_);
  store::Bookkeeping pending = check_log_.Drain();
  auto counters = store_.LoadCounters(UtcDay(now));
  if (!counters.ok()) return Fail(req, counters.take_error());
  std::int64_t total = counters->checks_total, today = counters->checks_today;
  for (const auto& [day, count] : pending.checks_per_day) {
    total += count;
    if (day == UtcDay(now)) today += count;
  }
  // Put the pending work back in the store now rather than losing it.
  std::stable_sort(pending.checks.begin(), pending.checks.end(),
                   [](const auto& a, const auto& b) { return a.order_ns < b.order_ns; });
  if (!pending.empty()) {
    if (Status s = store_.FlushBookkeeping(pending); !s.ok()) return Fail(req, s.take_error());
  }
  json::object out;
  out["agents_registered"] = counters->agents_registered;
  out["permissions_granted"] = counters->permissions_granted;
  out["checks_today"] = today;
  out["checks_total"] = total;
  return Json(200, Serialize(out));
}

}  // namespace agentgate::api
