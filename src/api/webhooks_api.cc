// Outbound webhooks under /v1/webhooks: endpoints, secret rotation, test events, the outbox and
// the delivery log, replay. Delivery itself is the WebhookDispatcher's.
#include <algorithm>
#include <array>

#include "api/fields.h"
#include "api/paging.h"
#include "api/service.h"
#include "core/json.h"
#include "webhooks/egress.h"
#include "webhooks/signature.h"

namespace agentgate::api {
namespace {

constexpr std::size_t kMaxDescriptionChars = 500;
constexpr int kMaxEndpointsPerPerson = 20;
constexpr std::int64_t kDefaultOverlapMs = 24LL * 3'600'000;
constexpr std::int64_t kMaxOverlapMs = 7LL * 86'400'000;

// The events a webhook may subscribe to, and what each means.
constexpr std::array<std::string_view, 18> kEventTypes = {
    "agent.registered",      "permission.granted",   "permission.revoked",
    "permission.expired",    "token.created",        "token.revoked",
    "connection.created",    "connection.ready",     "connection.disconnected",
    "connection.reconnected", "connection.archived", "connection.restored",
    "action_run.succeeded", "action_run.failed",
    "permission_request.created", "permission_request.approved",
    "permission_request.declined", "permission_request.expired"};

std::string EventList() {
  std::string out;
  for (auto t : kEventTypes) out += (out.empty() ? "" : ", ") + std::string(t);
  return out + ", or \"*\" for all";
}

// {events: [...]} as stored: known types, de-duplicated, "*" alone when given.
Result<std::string> ParseEvents(const json::value& value) {
  if (!value.is_array() || value.as_array().empty()) {
    return MakeError(Code::kInvalidField,
                     "Field 'events' must be a non-empty array of event types: " + EventList());
  }
  std::vector<std::string_view> picked;
  bool all = false;
  for (const auto& v : value.as_array()) {
    if (!v.is_string()) {
      return MakeError(Code::kInvalidField, "Every entry of 'events' must be a string");
    }
    std::string_view t = v.get_string();
    if (t == "*") {
      all = true;
      continue;
    }
    if (std::find(kEventTypes.begin(), kEventTypes.end(), t) == kEventTypes.end()) {
      return MakeError(Code::kInvalidField, "Unknown event type \"" + std::string(t.substr(0, 64)) +
                                                "\"; use " + EventList());
    }
    if (std::find(picked.begin(), picked.end(), t) == picked.end()) picked.push_back(t);
  }
  json::array out;
  if (all) {
    out.emplace_back("*");
  } else {
    for (auto t : kEventTypes) {
      if (std::find(picked.begin(), picked.end(), t) != picked.end()) out.emplace_back(t);
    }
  }
  return Serialize(out);
}

Result<std::string> ParseDescription(const json::object& body) {
  auto d = OptionalString(body, "description");
  if (!d.ok()) return d.take_error();
  std::string text = d->value_or("");
  // Line breaks and tabs are fine in a description; other control characters are not.
  if (std::any_of(text.begin(), text.end(),
                  [](unsigned char c) { return c < 0x20 && c != '\n' && c != '\t'; })) {
    return MakeError(Code::kInvalidField,
                     "Field 'description' must not contain control "
                     "characters");
  }
  if (Utf8Length(text) > kMaxDescriptionChars) {
    return MakeError(Code::kInvalidField, "Field 'description' exceeds 500 characters");
  }
  return text;
}

json::value IsoOrNull(std::int64_t ms) {
  return api::IsoOrNull(ms > 0 ? std::optional<std::int64_t>(ms) : std::nullopt);
}

json::object EndpointJson(const store::WebhookEndpoint& e, std::int64_t now_ms) {
  json::object out;
  out["id"] = e.id;
  out["url"] = e.url;
  out["description"] = e.description;
  boost::system::error_code ec;
  json::value events = json::parse(e.events_json, ec);
  out["events"] = ec ? json::value(json::array()) : events;
  out["status"] = e.status;
  out["disabled_reason"] =
      e.disabled_reason.empty() ? json::value(nullptr) : json::value(e.disabled_reason);
  out["previous_secret_expires_at"] =
      !e.previous_secret_sealed.empty() && e.previous_secret_until_ms > now_ms
          ? json::value(FormatIso8601(e.previous_secret_until_ms))
          : json::value(nullptr);
  out["created_at"] = FormatIso8601(e.created_at_ms);
  out["updated_at"] = FormatIso8601(e.updated_at_ms);
  return out;
}

json::object MessageJson(const store::WebhookMessage& m) {
  json::object out;
  out["message_id"] = m.msg_id;
  out["event_type"] = m.event_type;
  out["status"] = m.status;
  out["attempts"] = m.attempts;
  out["next_attempt_at"] =
      m.status == "pending" ? IsoOrNull(m.next_attempt_at_ms) : json::value(nullptr);
  out["created_at"] = FormatIso8601(m.created_at_ms);
  out["last_status"] = m.last_status > 0 ? json::value(m.last_status) : json::value(nullptr);
  out["last_error"] = m.last_error.empty() ? json::value(nullptr) : json::value(m.last_error);
  return out;
}

json::object AttemptJson(const store::WebhookAttempt& a) {
  json::object out;
  out["id"] = "wha_" + std::to_string(a.id);
  out["message_id"] = a.msg_id;
  out["event_type"] = a.event_type;
  out["attempt"] = a.attempt;
  out["at"] = FormatIso8601Ms(a.at_ms);
  out["status"] = a.status > 0 ? json::value(a.status) : json::value(nullptr);
  out["error"] = a.error.empty() ? json::value(nullptr) : json::value(a.error);
  out["duration_ms"] = a.duration_ms;
  out["response_excerpt"] = a.response_excerpt;
  out["trigger"] = a.trigger;
  return out;
}

}  // namespace

Result<store::WebhookEndpoint> Service::OwnWebhook(const http::Request& req, const Call& call) {
  std::string id(req.Param("webhook_id").substr(0, 64));
  auto found = store_.FindWebhook(id);
  if (!found.ok()) return found.take_error();
  // Someone else's endpoint answers as a missing one.
  if (!found->has_value() || ((*found)->user_id != call.who.user_id && !call.who.admin)) {
    return MakeError(Code::kNotFound, "No webhook endpoint with id " + id,
                     "List your endpoints with GET /v1/webhooks.");
  }
  return std::move(**found);
}

http::Response Service::CreateWebhook(http::Request& req, Call& call) {
  const Principal& who = call.who;
  if (Status s = CheckOrigin(req, who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  auto url = OptionalString(*body, "url");
  if (!url.ok()) return Fail(req, url.take_error());
  std::vector<std::string_view> missing;
  if (!url->has_value() || (*url)->empty()) missing.push_back("url");
  auto events_it = body->find("events");
  if (events_it == body->end() || events_it->value().is_null()) missing.push_back("events");
  if (!missing.empty()) return Fail(req, MissingFields(missing));
  auto events = ParseEvents(events_it->value());
  if (!events.ok()) return Fail(req, events.take_error());
  auto description = ParseDescription(*body);
  if (!description.ok()) return Fail(req, description.take_error());
  auto dest = webhooks::ResolveDestination(**url, options_.allow_private_egress);
  if (!dest.ok()) return Fail(req, dest.take_error());
  if (sealer_ == nullptr) {
    return Fail(req, MakeError(Code::kServerError, "webhooks need the data directory's key"));
  }
  auto existing = store_.ListWebhooks(who.user_id);
  if (!existing.ok()) return Fail(req, existing.take_error());
  if (static_cast<int>(existing->size()) >= kMaxEndpointsPerPerson) {
    return Fail(req, MakeError(Code::kConflict,
                               "You already have " + std::to_string(existing->size()) +
                                   " webhook endpoints, the most allowed",
                               "Delete endpoints you no longer use (DELETE /v1/webhooks/:id), or "
                               "subscribe one endpoint to more events."));
  }

  std::int64_t now = clock_.NowMs();
  std::string secret = webhooks::NewWebhookSecret(random_);
  std::array<std::uint8_t, 8> id_bytes;
  random_.Fill(id_bytes);
  store::WebhookEndpoint e;
  e.id = "whe_" + crypto::HexEncode(id_bytes);
  e.user_id = who.user_id;
  // An admin's endpoints hear every event of the server; a person's, those concerning them.
  e.audience = who.admin ? "all" : "own";
  e.url = **url;
  e.description = *description;
  e.events_json = *events;
  e.secret_sealed = sealer_->Seal(secret, random_);
  e.created_at_ms = e.updated_at_ms = now;
  call.target = e.id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  if (Status s = store_.InsertWebhook(e, effects); !s.ok()) return Fail(req, s.take_error());
  webhook_endpoints_.fetch_add(1, std::memory_order_relaxed);
  call.recorded = true;
  json::object out = EndpointJson(e, now);
  out["secret"] = secret;
  out["note"] = "Save your signing secret \xe2\x80\x94 shown once only";
  http::Response r = Json(201, Serialize(out));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::ListWebhooks(http::Request& req, Call& call) {
  auto list = store_.ListWebhooks(call.who.admin ? std::string() : call.who.user_id);
  if (!list.ok()) return Fail(req, list.take_error());
  std::int64_t now = clock_.NowMs();
  json::array data;
  for (const auto& e : *list) data.push_back(EndpointJson(e, now));
  json::object out;
  out["data"] = std::move(data);
  return Json(200, Serialize(out));
}

http::Response Service::GetWebhook(http::Request& req, Call& call) {
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return Fail(req, e.take_error());
  call.target = e->id;
  return Json(200, Serialize(EndpointJson(*e, clock_.NowMs())));
}

http::Response Service::UpdateWebhook(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return Fail(req, e.take_error());
  call.target = e->id;
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"url", "events", "description", "status"}); !s.ok()) {
    return Fail(req, s.take_error());
  }
  for (const auto& [key, value] : *body) {
    if (key != "description" && value.is_null()) {
      return Fail(req, MakeError(Code::kInvalidField, "Field '" + std::string(key) +
                                                          "' cannot be null; leave it out "
                                                          "to keep it"));
    }
  }
  if (auto url = OptionalString(*body, "url"); !url.ok()) {
    return Fail(req, url.take_error());
  } else if (url->has_value()) {
    auto dest = webhooks::ResolveDestination(**url, options_.allow_private_egress);
    if (!dest.ok()) return Fail(req, dest.take_error());
    e->url = **url;
  }
  if (auto it = body->find("events"); it != body->end()) {
    auto events = ParseEvents(it->value());
    if (!events.ok()) return Fail(req, events.take_error());
    e->events_json = *events;
  }
  if (body->contains("description")) {
    auto description = ParseDescription(*body);
    if (!description.ok()) return Fail(req, description.take_error());
    e->description = *description;
  }
  if (auto status = OptionalString(*body, "status"); !status.ok()) {
    return Fail(req, status.take_error());
  } else if (status->has_value()) {
    if (**status == "enabled") {
      e->status = "enabled";
      e->disabled_reason.clear();
    } else if (**status == "disabled") {
      if (e->status != "disabled") e->disabled_reason = "disabled by its owner";
      e->status = "disabled";
    } else {
      return Fail(req,
                  MakeError(Code::kInvalidField, "status must be \"enabled\" or \"disabled\""));
    }
  }
  std::int64_t now = clock_.NowMs();
  e->updated_at_ms = now;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  if (Status s = store_.UpdateWebhook(*e, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  NotifyWebhooks();
  return Json(200, Serialize(EndpointJson(*e, now)));
}

http::Response Service::DeleteWebhook(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return Fail(req, e.take_error());
  call.target = e->id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  auto deleted = store_.DeleteWebhook(e->id, effects);
  if (!deleted.ok()) return Fail(req, deleted.take_error());
  if (!*deleted) {
    return Fail(req, MakeError(Code::kNotFound, "No webhook endpoint with id " + e->id));
  }
  webhook_endpoints_.fetch_sub(1, std::memory_order_relaxed);
  call.recorded = true;
  json::object out;
  out["id"] = e->id;
  out["deleted"] = true;
  return Json(200, Serialize(out));
}

http::Response Service::RotateWebhookSecret(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return Fail(req, e.take_error());
  call.target = e->id;
  std::int64_t overlap_ms = kDefaultOverlapMs;
  if (!req.body.empty()) {
    auto body = ParseJsonObject(req.body);
    if (!body.ok()) return Fail(req, body.take_error());
    auto overlap = OptionalString(*body, "overlap");
    if (!overlap.ok()) return Fail(req, overlap.take_error());
    if (overlap->has_value()) {
      if (**overlap == "0" || **overlap == "0s") {
        overlap_ms = 0;
      } else {
        auto ms = ParseDurationMs(**overlap);
        if (!ms.ok() || *ms > kMaxOverlapMs) {
          return Fail(req, MakeError(Code::kInvalidField,
                                     "overlap must be a duration from 0s to 7d, e.g. \"24h\""));
        }
        overlap_ms = *ms;
      }
    }
  }
  if (sealer_ == nullptr) {
    return Fail(req, MakeError(Code::kServerError, "webhooks need the data directory's key"));
  }
  std::int64_t now = clock_.NowMs();
  std::string secret = webhooks::NewWebhookSecret(random_);
  // During the overlap both secrets sign, so receivers can switch at their own pace.
  e->previous_secret_sealed = overlap_ms > 0 ? e->secret_sealed : std::string();
  e->previous_secret_until_ms = overlap_ms > 0 ? now + overlap_ms : 0;
  e->secret_sealed = sealer_->Seal(secret, random_);
  e->updated_at_ms = now;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  if (Status s = store_.UpdateWebhook(*e, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  json::object out;
  out["id"] = e->id;
  out["secret"] = secret;
  out["previous_secret_expires_at"] = IsoOrNull(e->previous_secret_until_ms);
  out["note"] = "Save your new signing secret \xe2\x80\x94 shown once only";
  http::Response r = Json(200, Serialize(out));
  r.Header("Cache-Control", "no-store");
  return r;
}

http::Response Service::TestWebhook(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return Fail(req, e.take_error());
  call.target = e->id;
  if (e->status != "enabled") {
    return Fail(req, MakeError(Code::kConflict, "The endpoint is disabled",
                               "Enable it first: PATCH /v1/webhooks/" + e->id +
                                   " with {\"status\": \"enabled\"}."));
  }
  json::object data;
  data["webhook_id"] = e->id;
  data["message"] = "This is a test event from agentgate.";
  store::OutboundEvent event = EventFor("webhook.test", std::move(data), {});
  if (Status s = store_.EnqueueWebhookMessage(e->id, event, "test"); !s.ok()) {
    return Fail(req, s.take_error());
  }
  RecordNow(req, call, 202);
  NotifyWebhooks();
  json::object out;
  out["message_id"] = event.id;
  out["event_type"] = event.type;
  return Json(202, Serialize(out));
}

Result<Service::EndpointPage> Service::OwnWebhookPage(const http::Request& req, Call& call,
                                                      std::string_view cursor_prefix) {
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return e.take_error();
  call.target = e->id;
  http::Query query(req.query);
  if (!query.valid()) return MakeError(Code::kInvalidField, "The query string is malformed");
  auto limit = ParseLimit(query, 50, 500);
  if (!limit.ok()) return limit.take_error();
  auto cursor = ParseCursor(query, cursor_prefix);
  if (!cursor.ok()) return cursor.take_error();
  return EndpointPage{std::move(*e), *limit, *cursor};
}

http::Response Service::ListWebhookDeliveries(http::Request& req, Call& call) {
  auto page = OwnWebhookPage(req, call, "wha_");
  if (!page.ok()) return Fail(req, page.take_error());
  auto attempts = store_.ListWebhookAttempts(page->endpoint.id, page->cursor, page->limit + 1);
  if (!attempts.ok()) return Fail(req, attempts.take_error());
  return Json(200, Serialize(PageJson(*attempts, page->limit, "wha_", AttemptJson,
                                      [](const auto& a) { return a.id; })));
}

http::Response Service::ListWebhookMessages(http::Request& req, Call& call) {
  auto page = OwnWebhookPage(req, call, "whm_");
  if (!page.ok()) return Fail(req, page.take_error());
  auto messages = store_.ListWebhookMessages(page->endpoint.id, page->cursor, page->limit + 1);
  if (!messages.ok()) return Fail(req, messages.take_error());
  return Json(200, Serialize(PageJson(*messages, page->limit, "whm_", MessageJson,
                                      [](const auto& m) { return m.row; })));
}

http::Response Service::ReplayWebhookMessage(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto e = OwnWebhook(req, call);
  if (!e.ok()) return Fail(req, e.take_error());
  std::string msg_id(req.Param("message_id").substr(0, 64));
  call.target = msg_id;
  if (e->status != "enabled") {
    return Fail(req, MakeError(Code::kConflict, "The endpoint is disabled",
                               "Enable it first: PATCH /v1/webhooks/" + e->id +
                                   " with {\"status\": \"enabled\"}."));
  }
  auto replayed = store_.ReplayWebhookMessage(e->id, msg_id, clock_.NowMs());
  if (!replayed.ok()) return Fail(req, replayed.take_error());
  if (!*replayed) {
    return Fail(
        req, MakeError(Code::kNotFound, "No message " + msg_id + " for webhook endpoint " + e->id,
                       "List its messages with GET /v1/webhooks/" + e->id + "/messages."));
  }
  RecordNow(req, call, 202);
  NotifyWebhooks();
  json::object out;
  out["message_id"] = msg_id;
  out["status"] = "pending";
  return Json(202, Serialize(out));
}

}  // namespace agentgate::api
