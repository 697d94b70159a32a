// The agent-API conventions under /v1: personal access tokens with abilities, and the activity
// log.
#include <algorithm>
#include <charconv>

#include "api/fields.h"
#include "api/paging.h"
#include "api/service.h"
#include "core/json.h"

namespace agentgate::api {
namespace {

constexpr std::size_t kMaxTokenNameChars = 100;
constexpr int kMaxActiveTokensPerPerson = 100;
constexpr int kDefaultActivityLimit = 50;
constexpr int kMaxActivityLimit = 500;

std::vector<std::string> NamesOf(const std::string& abilities_json) {
  std::vector<std::string> names;
  boost::system::error_code ec;
  json::value parsed = json::parse(abilities_json, ec);
  if (!ec && parsed.is_array()) {
    for (const auto& v : parsed.as_array()) {
      if (v.is_string()) names.emplace_back(v.get_string());
    }
  }
  return names;
}

// A token as the API shows it; never the plaintext, which only the creation answer carries.
json::object TokenJson(const store::ApiTokenRecord& t, std::int64_t now_ms) {
  json::object out;
  out["id"] = t.id;
  out["name"] = t.name;
  json::array abilities;
  for (auto& a : NamesOf(t.abilities_json)) abilities.emplace_back(a);
  out["abilities"] = std::move(abilities);
  out["token_prefix"] = t.token_prefix;
  out["created_at"] = FormatIso8601(t.created_at_ms);
  out["expires_at"] = IsoOrNull(t.expires_at_ms);
  out["last_used_at"] =
      t.last_used_ms > 0 ? json::value(FormatIso8601(t.last_used_ms)) : json::value(nullptr);
  out["revoked_at"] = IsoOrNull(t.revoked_at_ms);
  out["status"] = t.revoked_at_ms                                   ? "revoked"
                  : (t.expires_at_ms && *t.expires_at_ms <= now_ms) ? "expired"
                                                                    : "active";
  return out;
}

json::object ActivityJson(const store::ActivityEvent& e) {
  json::object out;
  out["id"] = "evt_" + std::to_string(e.seq);
  out["at"] = FormatIso8601Ms(e.at_ms);
  out["actor_kind"] = e.actor_kind;
  out["actor_id"] = e.actor_id.empty() ? json::value(nullptr) : json::value(e.actor_id);
  out["user_id"] = e.user_id.empty() ? json::value(nullptr) : json::value(e.user_id);
  out["action"] = e.action;
  out["target"] = e.target.empty() ? json::value(nullptr) : json::value(e.target);
  out["agent_id"] = e.agent_id.empty() ? json::value(nullptr) : json::value(e.agent_id);
  out["outcome"] = e.outcome;
  out["status"] = e.status;
  out["error"] = e.error.empty() ? json::value(nullptr) : json::value(e.error);
  out["request_id"] = e.request_id.empty() ? json::value(nullptr) : json::value(e.request_id);
  out["ip"] = e.ip.empty() ? json::value(nullptr) : json::value(e.ip);
  out["user_agent"] = e.user_agent.empty() ? json::value(nullptr) : json::value(e.user_agent);
  out["latency_ms"] = static_cast<double>(e.latency_us) / 1000.0;
  return out;
}

}  // namespace

void Service::RecordNow(const http::Request& req, Call& call, int status) {
  if (Status s = store_.AppendActivity({EventOf(req, call, status)}); !s.ok()) {
    logger_.Error("could not record activity for " + req.request_id + ": " +
                  std::string(s.error().Message()));
    return;
  }
  call.recorded = true;
}

// ---- access tokens ---------------------------------------------------------------------------

http::Response Service::CreateToken(http::Request& req, Call& call) {
  const Principal& who = call.who;
  if (Status s = CheckOrigin(req, who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto name = OptionalString(*body, "name");
  if (!name.ok()) return Fail(req, name.take_error());
  std::vector<std::string_view> missing;
  if (!name->has_value() || (*name)->empty()) missing.push_back("name");
  auto abilities_it = body->find("abilities");
  if (abilities_it == body->end() || abilities_it->value().is_null()) {
    missing.push_back("abilities");
  }
  if (!missing.empty()) return Fail(req, MissingFields(missing));
  if (Utf8Length(**name) > kMaxTokenNameChars || HasControlChars(**name)) {
    return Fail(req, MakeError(Code::kInvalidField,
                               "Field 'name' must be at most 100 characters, without control "
                               "characters"));
  }
  auto abilities = ParseAbilities(abilities_it->value());
  if (!abilities.ok()) return Fail(req, abilities.take_error());

  std::int64_t now = clock_.NowMs();
  std::optional<std::int64_t> expires_at = now + options_.token_ttl_ms;
  if (auto it = body->find("expires_in"); it != body->end() && !it->value().is_null()) {
    if (!it->value().is_string()) {
      return Fail(req, MakeError(Code::kInvalidExpiresIn,
                                 "expires_in must be a string such as \"90d\" or \"never\""));
    }
    std::string_view text = it->value().get_string();
    if (text == "never") {
      expires_at.reset();
    } else {
      auto seconds = ParseExpiresIn(text);
      if (!seconds.ok()) {
        Error e = seconds.take_error();
        e.remediation =
            "Send expires_in like \"30d\", \"24h\" or \"never\", or omit it for the "
            "default of " +
            std::to_string(options_.token_ttl_ms / 86'400'000) + " days.";
        return Fail(req, std::move(e));
      }
      expires_at = (now + 999) / 1000 * 1000 + *seconds * 1000;
    }
  }

  // A token never holds more than its creator: a token minting a token passes on at most its
  // own abilities and lifetime.
  if (who.kind == ActorKind::kApiToken) {
    const TokenInfo& parent = *who.token;
    std::uint32_t extra = abilities->bits & ~parent.abilities.bits;
    if (extra != 0 || (abilities->wildcard && !parent.abilities.wildcard)) {
      std::string names;
      for (const auto& a : AbilityCatalogue()) {
        if (extra & a.bit) names += (names.empty() ? "" : ", ") + std::string(a.name);
      }
      if (names.empty()) names = "*";
      return Fail(req, MakeError(Code::kForbidden,
                                 "A token cannot mint a token with abilities it lacks: " + names,
                                 "Ask for a subset of this token's abilities, or mint the token "
                                 "from a signed-in session."));
    }
    if (parent.expires_at_ms != 0 && (!expires_at || *expires_at > parent.expires_at_ms)) {
      expires_at = parent.expires_at_ms;
    }
  }

  auto existing = store_.ListApiTokens(who.user_id, false);
  if (!existing.ok()) return Fail(req, existing.take_error());
  int active = static_cast<int>(std::count_if(existing->begin(), existing->end(), [&](auto& t) {
    return !t.expires_at_ms || *t.expires_at_ms > now;
  }));
  if (active >= kMaxActiveTokensPerPerson) {
    return Fail(req, MakeError(Code::kConflict,
                               "You already have " + std::to_string(active) +
                                   " active access tokens, the most allowed",
                               "Revoke tokens you no longer use (GET /v1/tokens, DELETE "
                               "/v1/tokens/:id), then try again."));
  }

  std::string plaintext = crypto::NewToken(random_, std::string(kTokenPrefix));
  std::array<std::uint8_t, 8> id_bytes;
  random_.Fill(id_bytes);
  store::ApiTokenRecord t;
  t.id = "tok_" + crypto::HexEncode(id_bytes);
  t.user_id = who.user_id;
  t.name = **name;
  json::array names;
  for (const auto& n : abilities->names) names.emplace_back(n);
  t.abilities_json = Serialize(names);
  t.token_hash = crypto::Sha256(plaintext);
  t.token_prefix = plaintext.substr(0, kTokenPrefix.size() + 6);
  t.created_by = who.actor_id;
  t.created_at_ms = now;
  t.expires_at_ms = expires_at;

  call.target = t.id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  json::object shown = TokenJson(t, now);
  AddEvent(effects, "token.created", shown, {who.user_id});
  if (Status s = store_.InsertApiToken(t, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  NotifyWebhooks();

  TokenInfo info;
  info.id = t.id;
  info.name = t.name;
  info.user_id = t.user_id;
  info.user_email = who.email;
  info.user_is_admin = who.admin;
  info.abilities = *abilities;
  info.expires_at_ms = expires_at.value_or(0);
  tokens_.Put(std::move(info), t.token_hash);

  json::object out = std::move(shown);
  out["token"] = plaintext;
  out["note"] = "Save your token \xe2\x80\x94 shown once only";
  http::Response r = Json(201, Serialize(out));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::ListTokens(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) {
    return Fail(req, MakeError(Code::kInvalidField, "The query string is malformed"));
  }
  std::string status = query.Get("status").value_or("active");
  if (status != "active" && status != "all") {
    return Fail(req, MakeError(Code::kInvalidField, "status must be 'active' or 'all'"));
  }
  std::int64_t now = clock_.NowMs();
  auto tokens = store_.ListApiTokens(call.who.user_id, status == "all");
  if (!tokens.ok()) return Fail(req, tokens.take_error());
  json::array data;
  for (const auto& t : *tokens) {
    json::object shown = TokenJson(t, now);
    if (status == "active" && shown["status"] != "active") continue;
    data.push_back(std::move(shown));
  }
  json::object out;
  out["data"] = std::move(data);
  return Json(200, Serialize(out));
}

http::Response Service::RevokeToken(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  std::string id(req.Param("token_id").substr(0, 64));
  call.target = id;
  auto found = store_.FindApiToken(id);
  if (!found.ok()) return Fail(req, found.take_error());
  // Someone else's token answers as a missing one: its existence is not the caller's business.
  if (!found->has_value() || ((*found)->user_id != call.who.user_id && !call.who.admin)) {
    return Fail(req, MakeError(Code::kNotFound, "No access token with id " + id,
                               "List your tokens with GET /v1/tokens."));
  }
  store::ApiTokenRecord t = std::move(**found);
  std::int64_t now = clock_.NowMs();
  if (!t.revoked_at_ms) {
    t.revoked_at_ms = now;
    store::Effects effects;
    effects.activity.push_back(EventOf(req, call, 200));
    AddEvent(effects, "token.revoked", TokenJson(t, now), {t.user_id});
    auto revoked = store_.RevokeApiToken(id, now, effects);
    if (!revoked.ok()) return Fail(req, revoked.take_error());
    if (*revoked) {
      call.recorded = true;
      NotifyWebhooks();
    }
  }
  // Revocation takes effect on the very next request, on this node.
  tokens_.Remove(id);
  return Json(200, Serialize(TokenJson(t, now)));
}

// ---- activity --------------------------------------------------------------------------------

http::Response Service::ListActivity(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) {
    return Fail(req, MakeError(Code::kInvalidField, "The query string is malformed"));
  }
  store::ActivityFilter filter;
  filter.actor_kind = query.Get("actor_kind").value_or("");
  filter.actor_id = query.Get("actor_id").value_or("");
  filter.agent_id = query.Get("agent_id").value_or("");
  filter.action = query.Get("action").value_or("");
  filter.outcome = query.Get("outcome").value_or("");
  static constexpr std::string_view kKinds[] = {"session", "api_token", "tenant_token", "agent",
                                                "mcp",     "anonymous", "system"};
  if (!filter.actor_kind.empty() &&
      std::find(std::begin(kKinds), std::end(kKinds), filter.actor_kind) == std::end(kKinds)) {
    return Fail(req, MakeError(Code::kInvalidField,
                               "actor_kind must be one of session, api_token, tenant_token, "
                               "agent, mcp, anonymous, system"));
  }
  if (!filter.outcome.empty() && filter.outcome != "success" && filter.outcome != "denied" &&
      filter.outcome != "error") {
    return Fail(req,
                MakeError(Code::kInvalidField, "outcome must be one of success, denied, error"));
  }
  for (const std::string* f : {&filter.actor_id, &filter.agent_id, &filter.action}) {
    if (f->size() > 200) {
      return Fail(req, MakeError(Code::kInvalidField, "Filter values are at most 200 characters"));
    }
  }
  if (auto since = query.Get("since")) {
    auto ms = ParseIso8601(*since, "since");
    if (!ms.ok()) return Fail(req, ms.take_error());
    filter.since_ms = *ms;
  }
  if (auto until = query.Get("until")) {
    auto ms = ParseIso8601(*until, "until");
    if (!ms.ok()) return Fail(req, ms.take_error());
    filter.until_ms = *ms;
  }
  auto limit = ParseLimit(query, kDefaultActivityLimit, kMaxActivityLimit);
  if (!limit.ok()) return Fail(req, limit.take_error());
  filter.limit = *limit;
  auto cursor = ParseCursor(query, "evt_");
  if (!cursor.ok()) return Fail(req, cursor.take_error());
  filter.before_seq = *cursor;
  if (!call.who.admin) {
    filter.visible_to_user_id = call.who.user_id;
    filter.visible_to_email = call.who.email;
  }
  // Batched events (checks, reads) are written first, so the log includes the caller's own
  // recent calls.
  (void)Flush();
  int limit_asked = filter.limit;
  ++filter.limit;  // one more than asked tells whether another page exists
  auto events = store_.ListActivity(filter);
  if (!events.ok()) return Fail(req, events.take_error());
  json::object out =
      PageJson(*events, limit_asked, "evt_", ActivityJson, [](const auto& e) { return e.seq; });
  return Json(200, Serialize(out));
}

}  // namespace agentgate::api
