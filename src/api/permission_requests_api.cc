// Permission requests (/v1/permission-requests): an agent that lacks a grant asks a person for
// it; the person is told by email and webhook, and approves (which makes the grant, atomically
// with the decision) or declines. Requests lapse after --request-ttl.
#include <array>
#include <string>
#include <vector>

#include "api/fields.h"
#include "api/grants.h"
#include "api/paging.h"
#include "api/service.h"
#include "core/json.h"

namespace agentgate::api {
namespace {

constexpr int kMaxPendingPerAgent = 20;
constexpr std::size_t kMaxReasonChars = 1000;
constexpr std::string_view kStatuses[] = {"pending", "approved", "declined", "expired"};

std::string NewRequestId(crypto::Random& random) {
  std::array<std::uint8_t, 12> bytes;
  random.Fill(bytes);
  return "preq_" + crypto::HexEncode(bytes);
}

// 1-1000 characters of text, not only spaces; newlines and tabs allowed, other control
// characters not.
Status ValidateText(std::string_view field, std::string_view text) {
  bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) return MakeError(Code::kInvalidField, "Field '" + std::string(field) + "' is empty");
  if (Utf8Length(text) > kMaxReasonChars) {
    return MakeError(Code::kInvalidField, "Field '" + std::string(field) + "' exceeds " +
                                              std::to_string(kMaxReasonChars) + " characters");
  }
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f) {
      return MakeError(Code::kInvalidField,
                       "Field '" + std::string(field) + "' must not contain control characters");
    }
  }
  return Ok();
}

// The body of an optional-body POST: {} when empty.
Result<json::object> OptionalBody(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object{};
  return ParseJsonObject(body);
}

Error NotPending(std::string_view status) {
  return MakeError(Code::kPermissionRequestNotPending,
                   "The permission request is " + std::string(status) + ", not pending");
}

Error RequestNotFound(std::string_view id) {
  return MakeError(Code::kPermissionRequestNotFound,
                   "No permission request " + ValidUtf8(id, 64) + " that you may see");
}

}  // namespace

json::object Service::PermissionRequestJson(const store::PermissionRequestRecord& r,
                                            std::int64_t now_ms,
                                            const store::GrantRecord* grant) {
  json::object out;
  out["request_id"] = r.id;
  out["agent_id"] = r.agent_id;
  auto agent = index_.Snapshot(r.agent_id, now_ms);
  out["agent_name"] = agent ? agent->info.name : std::string();
  out["action"] = r.action;
  out["reason"] = r.reason;
  out["scope"] = ParsedOrNull(r.scope_json);
  out["expires_in"] = r.expires_in.empty() ? json::value(nullptr) : json::value(r.expires_in);
  out["requested_from"] = r.requested_from;
  out["status"] = r.StatusAt(now_ms);
  out["created_at"] = FormatIso8601(r.created_at_ms);
  out["expires_at"] = FormatIso8601(r.expires_at_ms);
  out["decided_at"] = IsoOrNull(r.decided_at_ms);
  out["decided_by"] = r.decided_by.empty() ? json::value(nullptr) : json::value(r.decided_by);
  out["decline_reason"] =
      r.decline_reason.empty() ? json::value(nullptr) : json::value(r.decline_reason);
  json::value permission = nullptr;
  if (grant != nullptr) {
    permission = GrantJson(*grant);
  } else if (!r.grant_id.empty()) {
    auto found = store_.FindGrant(r.grant_id);
    if (found.ok() && found->has_value()) permission = GrantJson(**found);
  }
  out["permission"] = std::move(permission);
  return out;
}

void Service::NotifyAddressee(const store::PermissionRequestRecord& r,
                              std::string_view agent_name) {
  std::string link = options_.base_url + "/dashboard#requests";
  if (auto limit = request_email_limiter_.Hit(r.requested_from, clock_.NowMs()); !limit.allowed) {
    logger_.Warn("permission request " + r.id + " to " + r.requested_from +
                 " not emailed: too many requests for this person (--rate-limit request-email); "
                 "it waits in their dashboard");
    return;
  }
  if (!mailer_) {
    // No secrets here: the request id is not a credential (deciding needs the person's own).
    logger_.Info("permission request " + r.id + " from agent " + r.agent_id + " to " +
                 r.requested_from + " for " + r.action + ": decide at " + link);
    return;
  }
  std::string text = std::string(agent_name) + " (agent " + r.agent_id +
                     ") asks for permission to perform \"" + r.action + "\".\n\nReason:\n" +
                     r.reason + "\n\nScope asked for: " +
                     (r.scope_json.empty() ? std::string("none (no limits)") : r.scope_json) +
                     "\nGrant lifetime asked for: " +
                     (r.expires_in.empty() ? std::string("no expiry") : r.expires_in) +
                     "\nThis request expires at " + FormatIso8601(r.expires_at_ms) +
                     ".\n\nApprove (optionally narrowing the scope or lifetime) or decline it "
                     "in the dashboard:\n" +
                     link + "\n\nor from the command line:\n  agentgate request approve " + r.id +
                     "\n  agentgate request decline " + r.id +
                     "\n\nIf you do not know this agent, decline the request.\n";
  mailer_->Enqueue(mail::Message{r.requested_from,
                                 std::string(agent_name) + " asks for permission: " + r.action,
                                 std::move(text)});
}

http::Response Service::CreatePermissionRequest(http::Request& req, Call& call) {
  if (call.who.kind != ActorKind::kAgent) {
    return Fail(req, MakeError(Code::kForbidden,
                               "Only an agent asks for permission, with its own secret",
                               "Send the agent's secret as 'Authorization: Bearer sk_ap_...'. "
                               "People grant directly with POST /permission/grant."));
  }
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"agent_id", "action", "reason", "email", "scope",
                                    "expires_in"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  auto agent_id = OptionalString(*body, "agent_id");
  if (!agent_id.ok()) return Fail(req, agent_id.take_error());
  auto action = OptionalString(*body, "action");
  if (!action.ok()) return Fail(req, action.take_error());
  auto reason = OptionalString(*body, "reason");
  if (!reason.ok()) return Fail(req, reason.take_error());
  std::vector<std::string_view> missing;
  if (!agent_id->has_value() || (*agent_id)->empty()) missing.push_back("agent_id");
  if (!action->has_value() || (*action)->empty()) missing.push_back("action");
  if (!reason->has_value()) missing.push_back("reason");
  if (!missing.empty()) return Fail(req, MissingFields(missing));
  call.agent_id = call.who.actor_id;
  if (**agent_id != call.who.actor_id) {
    return Fail(req, MakeError(Code::kForbidden, "This secret belongs to another agent",
                               "An agent asks only for itself: send its own agent_id."));
  }
  if (!ValidAction(**action)) return Fail(req, InvalidAction());
  if (Status s = ValidateText("reason", **reason); !s.ok()) return Fail(req, s.take_error());
  auto email = OptionalString(*body, "email");
  if (!email.ok()) return Fail(req, email.take_error());
  if (email->has_value() && !ValidEmail(**email)) {
    return Fail(req, MakeError(Code::kInvalidEmail, "email is not a valid email address"));
  }
  auto terms = ParseGrantTerms(*body);
  if (!terms.ok()) return Fail(req, terms.take_error());

  std::int64_t now = clock_.NowMs();
  auto agent = index_.Snapshot(call.who.actor_id, now);
  if (!agent) return Fail(req, MakeError(Code::kAgentNotFound));
  store::PermissionRequestRecord r;
  if (email->has_value()) {
    r.requested_from = LowerAscii(**email);
  } else {
    auto granter = store_.LatestGranterOf(agent->info.id);
    if (!granter.ok()) return Fail(req, granter.take_error());
    r.requested_from = granter->has_value() ? **granter : agent->info.developer_email;
  }
  r.id = NewRequestId(random_);
  r.agent_id = agent->info.id;
  r.action = **action;
  r.reason = **reason;
  r.scope_json = terms->scope_json;
  if (terms->expires_in_s) r.expires_in = body->at("expires_in").as_string().c_str();
  r.created_at_ms = now;
  r.expires_at_ms = now + options_.request_ttl_ms;
  call.target = r.id;

  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  AddEvent(effects, "permission_request.created", PermissionRequestJson(r, now, nullptr), {},
           {r.requested_from, agent->info.developer_email});
  auto created = store_.CreatePermissionRequest(r, kMaxPendingPerAgent, now, effects);
  if (!created.ok()) return Fail(req, created.take_error());
  switch (created->outcome) {
    case store::CreateRequestOutcome::kTooMany: {
      http::Response res = Fail(
          req, MakeError(Code::kRateLimited,
                         "This agent already has " + std::to_string(kMaxPendingPerAgent) +
                             " pending permission requests",
                         "Wait until people decide (or the requests expire), then ask again."));
      res.Header("Retry-After", "60");
      return res;
    }
    case store::CreateRequestOutcome::kDuplicate:
      // The same question is already with the same person: no second email.
      call.target = created->request.id;
      return Json(200, Serialize(PermissionRequestJson(created->request, now, nullptr)));
    case store::CreateRequestOutcome::kCreated:
      break;
  }
  call.recorded = true;
  NotifyWebhooks();
  NotifyAddressee(r, agent->info.name);
  http::Response res = Json(201, Serialize(PermissionRequestJson(r, now, nullptr)));
  res.Header("Location", "/v1/permission-requests/" + r.id);
  return res;
}

http::Response Service::ListPermissionRequests(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) {
    return Fail(req, MakeError(Code::kInvalidField, "The query string is malformed"));
  }
  std::int64_t now = clock_.NowMs();
  store::PermissionRequestFilter filter;
  filter.now_ms = now;
  if (auto status = query.Get("status"); status && !status->empty()) {
    if (std::find(std::begin(kStatuses), std::end(kStatuses), *status) == std::end(kStatuses)) {
      return Fail(req, MakeError(Code::kInvalidField,
                                 "status must be pending, approved, declined or expired"));
    }
    filter.status = std::string(*status);
  }
  auto limit = ParseLimit(query, 50, 100);
  if (!limit.ok()) return Fail(req, limit.take_error());
  if (auto cursor = query.Get("cursor"); cursor && !cursor->empty()) {
    auto position = ParseTimeCursor(*cursor);
    if (!position.ok()) return Fail(req, position.take_error());
    filter.before_created_ms = position->first;
    filter.before_id = std::move(position->second);
  }
  std::string agent_filter(query.Get("agent_id").value_or(""));
  bool nothing = false;
  if (call.who.kind == ActorKind::kAgent) {
    // An agent sees its own requests only.
    filter.agent_id = call.who.actor_id;
    call.agent_id = call.who.actor_id;
    nothing = !agent_filter.empty() && agent_filter != call.who.actor_id;
  } else {
    filter.requested_from = call.who.email;
    filter.agent_id = agent_filter;
    nothing = filter.requested_from.empty();
  }
  std::vector<store::PermissionRequestRecord> items;
  if (!nothing) {
    filter.limit = *limit + 1;
    auto listed = store_.ListPermissionRequests(filter);
    if (!listed.ok()) return Fail(req, listed.take_error());
    items = std::move(*listed);
  }
  bool more = static_cast<int>(items.size()) > *limit;
  if (more) items.resize(static_cast<std::size_t>(*limit));
  json::array data;
  for (const auto& r : items) data.push_back(PermissionRequestJson(r, now, nullptr));
  json::object out;
  out["data"] = std::move(data);
  out["next_cursor"] = more ? json::value(std::to_string(items.back().created_at_ms) + "." +
                                          items.back().id)
                            : json::value(nullptr);
  return Json(200, Serialize(out));
}

http::Response Service::GetPermissionRequest(http::Request& req, Call& call) {
  std::string id(req.Param("request_id"));
  call.target = ValidUtf8(id, 64);
  auto found = store_.FindPermissionRequest(id);
  if (!found.ok()) return Fail(req, found.take_error());
  const auto& r = *found;
  bool visible = r.has_value() &&
                 (call.who.kind == ActorKind::kAgent
                      ? r->agent_id == call.who.actor_id
                      : (r->requested_from == call.who.email || call.who.admin));
  if (!visible) return Fail(req, RequestNotFound(id));
  call.agent_id = r->agent_id;
  return Json(200, Serialize(PermissionRequestJson(*r, clock_.NowMs(), nullptr)));
}

Result<store::PermissionRequestRecord> Service::DecidableRequest(http::Request& req, Call& call,
                                                                 std::int64_t now_ms) {
  std::string id(req.Param("request_id"));
  call.target = ValidUtf8(id, 64);
  auto found = store_.FindPermissionRequest(id);
  if (!found.ok()) return found.take_error();
  if (!found->has_value()) return RequestNotFound(id);
  store::PermissionRequestRecord r = std::move(**found);
  call.agent_id = r.agent_id;
  if (r.requested_from != call.who.email) {
    return MakeError(Code::kForbidden, "Only the person asked may decide this request",
                     "Ask them to approve or decline it; you may ask the agent to send you a "
                     "request of your own.");
  }
  if (std::string_view status = r.StatusAt(now_ms); status != "pending") {
    return NotPending(status);
  }
  return r;
}

http::Response Service::ApprovePermissionRequest(http::Request& req, Call& call) {
  const Principal& who = call.who;
  if (Status s = CheckOrigin(req, who); !s.ok()) return Fail(req, s.take_error());
  auto body = OptionalBody(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"scope", "expires_in", "metadata"}); !s.ok()) {
    return Fail(req, s.take_error());
  }
  std::int64_t now = clock_.NowMs();
  auto request = DecidableRequest(req, call, now);
  if (!request.ok()) return Fail(req, request.take_error());
  store::PermissionRequestRecord& r = *request;
  // What the agent asked for, with whatever the approver gave in its place.
  json::object terms_in;
  terms_in["scope"] = ParsedOrNull(r.scope_json);
  terms_in["expires_in"] =
      r.expires_in.empty() ? json::value(nullptr) : json::value(r.expires_in);
  for (const auto& [key, value] : *body) terms_in[key] = value;
  auto terms = ParseGrantTerms(terms_in);
  if (!terms.ok()) return Fail(req, terms.take_error());
  if (!index_.HasAgent(r.agent_id)) return Fail(req, MakeError(Code::kAgentNotFound));
  auto agent = index_.Snapshot(r.agent_id, now);

  store::GrantRecord g;
  g.id = crypto::NewUuid(random_);
  g.agent_id = r.agent_id;
  g.action = r.action;
  g.granted_by = who.user_id;
  g.granted_by_email = who.email;
  g.expires_at_ms = GrantExpiry(now, terms->expires_in_s);
  g.scope_json = terms->scope_json;
  g.metadata_json = terms->metadata_json;
  g.created_at_ms = now;

  store::PermissionRequestRecord decision = r;
  decision.status = "approved";
  decision.decided_at_ms = now;
  decision.decided_by = who.email;
  decision.grant_id = g.id;
  json::object decided_json = PermissionRequestJson(decision, now, &g);

  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  Call granted = call;
  granted.action = "permission.grant";
  granted.target = g.id;
  effects.activity.push_back(EventOf(req, granted, 201));
  AddEvent(effects, "permission.granted", GrantJson(g), {who.user_id});
  AddEvent(effects, "permission_request.approved", decided_json, {who.user_id},
           {r.requested_from, agent ? agent->info.developer_email : std::string()});
  auto result = store_.DecidePermissionRequest(decision, g, effects);
  if (!result.ok()) return Fail(req, result.take_error());
  if (!result->decided) {
    return Fail(req, NotPending(result->request.StatusAt(now)));
  }
  call.recorded = true;
  NotifyWebhooks();
  if (!IndexNewGrant(g)) return Fail(req, MakeError(Code::kServerError));
  return Json(200, Serialize(decided_json));
}

http::Response Service::DeclinePermissionRequest(http::Request& req, Call& call) {
  const Principal& who = call.who;
  if (Status s = CheckOrigin(req, who); !s.ok()) return Fail(req, s.take_error());
  auto body = OptionalBody(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"reason"}); !s.ok()) return Fail(req, s.take_error());
  auto reason = OptionalString(*body, "reason");
  if (!reason.ok()) return Fail(req, reason.take_error());
  if (reason->has_value()) {
    if (Status s = ValidateText("reason", **reason); !s.ok()) return Fail(req, s.take_error());
  }
  std::int64_t now = clock_.NowMs();
  auto request = DecidableRequest(req, call, now);
  if (!request.ok()) return Fail(req, request.take_error());
  store::PermissionRequestRecord decision = std::move(*request);
  decision.status = "declined";
  decision.decided_at_ms = now;
  decision.decided_by = who.email;
  decision.decline_reason = reason->value_or("");
  json::object decided_json = PermissionRequestJson(decision, now, nullptr);
  auto agent = index_.Snapshot(decision.agent_id, now);

  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  AddEvent(effects, "permission_request.declined", decided_json, {who.user_id},
           {decision.requested_from, agent ? agent->info.developer_email : std::string()});
  auto result = store_.DecidePermissionRequest(decision, std::nullopt, effects);
  if (!result.ok()) return Fail(req, result.take_error());
  if (!result->decided) {
    return Fail(req, NotPending(result->request.StatusAt(now)));
  }
  call.recorded = true;
  NotifyWebhooks();
  return Json(200, Serialize(decided_json));
}

void Service::EmitExpiredRequests() {
  std::int64_t now = clock_.NowMs();
  auto effects_for = [&](const std::vector<store::PermissionRequestRecord>& expired) {
    store::Effects effects;
    for (const auto& r : expired) {
      effects.activity.push_back(SystemEvent(now, "permission_request.expire", r.id, r.agent_id));
      auto agent = index_.Snapshot(r.agent_id, now);
      AddEvent(effects, "permission_request.expired", PermissionRequestJson(r, now, nullptr), {},
               {r.requested_from, agent ? agent->info.developer_email : std::string()});
    }
    return effects;
  };
  for (int batch = 0; batch < 10; ++batch) {
    auto expired = store_.ExpirePermissionRequests(now, 200, effects_for);
    if (!expired.ok()) {
      logger_.Warn("expiring permission requests failed: " +
                   std::string(expired.error().Message()));
      return;
    }
    if (expired->empty()) return;
    NotifyWebhooks();
    if (expired->size() < 200) return;
  }
}

}  // namespace agentgate::api
