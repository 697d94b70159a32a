// POST /act and POST /actions/:selector/run: one run of an action (or of an inline request)
// through a connection, by a tenant or by an agent under a person's grant, with its record.
//
// A run, in order: read the body; for an agent, find the grant that allows the action and whose
// scope the input fits (the grant names the person whose connections it runs through); resolve
// the connection (connectionId -> connectionKey -> the integration's -> the tenant's only one)
// and the action (by key the most specific wins: connection, integration, universal); validate the
// input against the action's inputSchema; render the request; charge the grant's budgets; call the
// app (credentials injected, egress guarded, redirects only within the registrable domain, one
// refresh on a 401, back-off on 429 and 5xx when the request may be repeated); keep the record,
// with every secret redacted. Every answer after the body was read carries actionRunId.
#include <algorithm>
#include <boost/algorithm/string.hpp>
#include <boost/url.hpp>
#include <chrono>
#include <map>
#include <sstream>
#include <thread>

#include "api/engine_internal.h"
#include "api/fields.h"
#include "api/service.h"
#include "authz/scope.h"
#include "core/json_schema.h"
#include "core/time.h"
#include "engine/action.h"
#include "engine/connector.h"
#include "engine/oauth.h"
#include "webhooks/egress.h"
#include "webhooks/sender.h"

namespace agentgate::api {

using namespace engine_internal;

namespace {

constexpr std::size_t kMaxActResponseBytes = 1 << 20;  // what /act returns of an answer
constexpr std::size_t kLoggedBodyBytes = 64 * 1024;    // what a run log keeps of a body
constexpr int kMaxRedirects = 5;
constexpr std::size_t kMaxPendingRuns = 200;  // written at once when this many wait (small
                                              // batches keep any one write short)

json::object HeadersJson(const std::vector<std::pair<std::string, std::string>>& headers) {
  json::object o;
  for (const auto& [k, v] : headers) {
    std::string name = boost::algorithm::to_lower_copy(k);
    if (auto* existing = o.if_contains(name); existing && existing->is_string()) {
      *existing = std::string(existing->as_string()) + ", " + ValidUtf8(v, 4096);
    } else {
      o[name] = ValidUtf8(v, 4096);
    }
  }
  return o;
}

// The body of an exchange for the run log: redacted, cut at kLoggedBodyBytes.
json::object LoggedBody(const engine::Redactor& redactor, std::string_view body,
                        json::object into) {
  bool cut = body.size() > kLoggedBodyBytes;
  std::string text = redactor.Redact(cut ? body.substr(0, kLoggedBodyBytes) : body);
  // The raw text, as exchanged (a run log shows the exchange, not an interpretation of it).
  into["body"] = body.empty() ? json::value(nullptr) : json::value(ValidUtf8(text));
  into["bodyTruncated"] = cut;
  return into;
}

std::string Lower(std::string_view s) { return boost::algorithm::to_lower_copy(std::string(s)); }

std::optional<std::string> HeaderOf(const webhooks::HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (boost::iequals(k, name)) return v;
  }
  return std::nullopt;
}

}  // namespace

// One run in progress.
struct Service::ActRun {
  store::ActionRunRecord rec;
  json::value meta = nullptr;
  json::object input;
  std::optional<store::ConnectionRecord> connection;
  std::vector<store::BudgetCharge> charges;
  bool charged = false;
  json::value request_json = nullptr;
  json::array exchanges;
  engine::Redactor redactor;
  bool reached_app = false;  // a request may have reached the app (so it may have acted)
};

// --- finishing a run ----------------------------------------------------------------------------

http::Response Service::RecordRun(http::Request& req, Call& call, ActRun& run, int status,
                                  std::string body, std::string_view error_code,
                                  std::string_view constraint) {
  run.rec.finished_at_ms = std::max(clock_.NowMs(), run.rec.started_at_ms);
  json::object details;
  details["meta"] = run.meta;
  details["request"] = run.request_json;
  details["exchanges"] = run.exchanges;
  run.rec.details_json = Serialize(details);
  // What the log keeps never holds a credential, even where the app echoed one back.
  if (!run.input.empty()) run.rec.input_json = run.redactor.Redact(Serialize(run.input));
  if (!run.rec.output_json.empty()) run.rec.output_json = run.redactor.Redact(run.rec.output_json);
  if (!run.rec.error_json.empty()) run.rec.error_json = run.redactor.Redact(run.rec.error_json);
  if (run.connection) {
    run.rec.connection_id = run.connection->id;
    run.rec.integration_id = run.connection->integration_id;
  }
  store::Effects effects;
  store::ActivityEvent event = EventOf(req, call, status, error_code);
  if (error_code == "permission_denied") {
    event.outcome = "denied";
    event.error = constraint.empty() ? std::string(error_code) : std::string(constraint);
  }
  event.target = run.rec.id;
  effects.activity.push_back(std::move(event));
  json::object data;
  data["actionRunId"] = run.rec.id;
  data["actionId"] = run.rec.action_id.empty() ? json::value(nullptr) : json::value(run.rec.action_id);
  data["actionKey"] =
      run.rec.action_key.empty() ? json::value(nullptr) : json::value(run.rec.action_key);
  data["connectionId"] =
      run.rec.connection_id.empty() ? json::value(nullptr) : json::value(run.rec.connection_id);
  data["integrationId"] =
      run.rec.integration_id.empty() ? json::value(nullptr) : json::value(run.rec.integration_id);
  data["tenantKey"] = run.rec.tenant_key;
  data["agentId"] = run.rec.agent_id.empty() ? json::value(nullptr) : json::value(run.rec.agent_id);
  data["status"] = run.rec.status;
  data["error"] = error_code.empty() ? json::value(nullptr) : json::value(error_code);
  data["durationMs"] = run.rec.finished_at_ms - run.rec.started_at_ms;
  std::vector<std::string> audience;
  if (run.rec.tenant_key.rfind("usr_", 0) == 0) audience.push_back(run.rec.tenant_key);
  AddEvent(effects,
           run.rec.status == "success" ? "action_run.succeeded" : "action_run.failed",
           std::move(data), std::move(audience));
  // Written in a batch (see FlushRuns): a run log costs no synchronous write on the way back.
  bool flush_now = false;
  {
    std::lock_guard lock(runs_mu_);
    pending_runs_.push_back(std::move(run.rec));
    for (auto& a : effects.activity) pending_run_effects_.activity.push_back(std::move(a));
    for (auto& e : effects.events) pending_run_effects_.events.push_back(std::move(e));
    flush_now = pending_runs_.size() >= kMaxPendingRuns;
  }
  call.recorded = true;
  if (flush_now) (void)FlushRuns();
  return Json(status, std::move(body));
}

http::Response Service::FailRun(http::Request& req, Call& call, ActRun& run, Error error,
                                json::object extra) {
  // The app's own refusal (a 4xx in `upstream`) is mirrored with its status, and gives the
  // budgets back: the app did not carry the request out. A failing app is a 502.
  int app_status = 0;
  if (const json::value* up = extra.if_contains("upstream"); up && up->is_object()) {
    const json::value* st = up->as_object().if_contains("status");
    if (st && st->is_int64()) app_status = static_cast<int>(st->as_int64());
  }
  const bool refused_by_app = app_status >= 400 && app_status < 500;
  if (run.charged && (!run.reached_app || refused_by_app)) {
    if (Status s = store_.RefundBudgets(run.charges); !s.ok()) {
      logger_.Error(req.request_id + " budget refund failed: " + std::string(s.error().Message()));
    }
    run.charged = false;
  }
  http::Response r = Fail(req, error);
  auto body = ParseJsonObject(r.body);
  json::object o = body.ok() ? std::move(*body) : json::object();
  for (auto& [k, v] : extra) o[k] = v;
  o["actionRunId"] = run.rec.id;
  if (run.connection) o["connectionId"] = run.connection->id;
  const int status = refused_by_app ? app_status : r.status;
  run.rec.status = "error";
  run.rec.error_json = Serialize(o);
  std::string constraint;
  if (const json::value* c = o.if_contains("constraint"); c && c->is_string()) {
    constraint = std::string(c->as_string());
  }
  http::Response out =
      RecordRun(req, call, run, status, Serialize(o), error.Name(), constraint);
  for (const auto& h : r.headers) out.headers.push_back(h);
  return out;
}

// --- resolving ----------------------------------------------------------------------------------

Result<store::ConnectionRecord> Service::ResolveActConnection(const Principal& who,
                                                              const json::object& body,
                                                              const std::string& integration_hint) {
  auto connection_id = StringField(body, "connectionId", 200);
  if (!connection_id.ok()) return connection_id.take_error();
  auto connection_key = StringField(body, "connectionKey", 200);
  if (!connection_key.ok()) return connection_key.take_error();
  auto integration_key = StringField(body, "integrationKey", 200);
  if (!integration_key.ok()) return integration_key.take_error();
  auto integration_id = StringField(body, "integrationId", 200);
  if (!integration_id.ok()) return integration_id.take_error();
  if (who.tenant_key.empty()) {
    return MakeError(Code::kForbidden, "/act runs in a tenant; this token names none",
                     "Use a tenant token ('agentgate token --tenantKey K').");
  }
  if (*connection_id) return OwnConnection(who, **connection_id, false);
  if (*connection_key) {
    auto c = store_.FindConnectionByKey(who.workspace_id, who.tenant_key, **connection_key);
    if (!c.ok()) return c.take_error();
    if (!c->has_value() || (*c)->archived_at_ms) {
      return MakeError(Code::kConnectionNotFound,
                       "No connection with key '" + ValidUtf8(**connection_key, 100) + "'");
    }
    return std::move(**c);
  }
  // The integration's connection, or the tenant's only one.
  store::ConnectionFilter f;
  f.workspace_id = who.workspace_id;
  f.tenant_key = who.tenant_key;
  f.limit = 2;
  if (*integration_key || *integration_id) {
    auto i = FindIntegrationOf(who, *integration_key ? **integration_key : **integration_id);
    if (!i.ok()) return i.take_error();
    f.integration_id = i->id;
  } else {
    f.integration_id = integration_hint;
  }
  auto list = store_.ListConnections(f);
  if (!list.ok()) return list.take_error();
  if (list->size() == 1) return std::move(list->front());
  if (list->empty()) {
    return MakeError(Code::kConnectionNotFound,
                     f.integration_id.empty()
                         ? "This tenant has no connection to act through"
                         : "This tenant has no connection of the action's integration",
                     "Connect one first (POST /connections), then pass its connectionKey.");
  }
  return MakeError(Code::kMissingFields,
                   "Missing required fields: connectionId or connectionKey (the tenant has "
                   "several connections" +
                       std::string(f.integration_id.empty() ? "" : " of this integration") + ")");
}

// The action `key` names for a run through `c`: the connection's own, else its integration's,
// else the universal one.
Result<store::ActionRecord> Service::ActionForKey(const store::ConnectionRecord& c,
                                                  const std::string& key) {
  store::ActionFilter f;
  f.workspace_id = c.workspace_id;
  f.connection_id = c.id;
  f.surface_integration_id = c.integration_id;
  f.key = key;
  f.limit = 100;
  auto list = store_.ListActions(f);
  if (!list.ok()) return list.take_error();
  const store::ActionRecord* best = nullptr;
  auto rank = [](const store::ActionRecord& a) {
    return a.connection_id.empty() ? (a.integration_id.empty() ? 0 : 1) : 2;
  };
  for (const auto& a : *list) {
    if (best == nullptr || rank(a) > rank(*best)) best = &a;
  }
  if (best == nullptr) {
    return MakeError(Code::kActionNotFound,
                     "No action '" + ValidUtf8(key, 100) + "' for the connection '" + c.key + "'",
                     "List what this connection can run: GET /actions?connectionId=" + c.id);
  }
  return *best;
}

// --- calling the app ----------------------------------------------------------------------------

Result<webhooks::DeliveryResult> Service::CallApp(ActRun& run, const engine::Connector& connector,
                                                  const std::string& base,
                                                  const engine::ApiRequest& request,
                                                  bool repeatable) {
  const std::int64_t started = clock_.NowMs();
  const std::int64_t deadline = started + options_.act_timeout_ms;
  auto parsed_base = webhooks::ParseWebhookUrl(base, "the app's URL");
  const std::string base_host = parsed_base.ok() ? parsed_base->host : std::string();
  std::string payload;
  if (request.body) {
    payload = request.body->is_string() ? std::string(request.body->as_string())
                                        : Serialize(*request.body);
  }
  const bool oauth = connector.auth.type != engine::AuthType::kApiKey &&
                     connector.auth.type != engine::AuthType::kBasic;
  bool refreshed = false;
  engine::RetryPolicy policy;
  policy.deadline_ms = options_.act_timeout_ms;

  // One attempt, following redirects within the registrable domain.
  auto attempt = [&](std::string& access_used) -> Result<webhooks::DeliveryResult> {
    auto creds = OpenCredentials(*run.connection);
    if (!creds.ok()) return creds.take_error();
    std::map<std::string, std::string> values;
    for (const auto& [k, v] : *creds) {
      if (v.is_string()) {
        values[std::string(k)] = std::string(v.as_string());
        run.redactor.AddSecret(v.as_string());
      }
    }
    if (values.count("username") && values.count("password")) {
      run.redactor.AddBasicCredentials(values["username"], values["password"]);
    }
    access_used = values["accessToken"];
    auto injection = engine::InjectCredentials(connector, values);
    if (!injection.ok()) return injection.take_error();
    for (const auto& [name, value] : injection->headers) {
      run.redactor.AddCredentialName(name);
      if (HeaderOf(request.headers, name)) {
        return InvalidField("api.headers." + name.substr(0, 64),
                            "cannot be set: the connection sets it");
      }
    }
    for (const auto& [name, value] : injection->query) {
      run.redactor.AddCredentialName(name);
      for (const auto& p : request.query) {
        if (p.first == name) {
          return InvalidField("api.query." + name.substr(0, 64),
                              "cannot be set: the connection sets it");
        }
      }
    }
    std::vector<std::pair<std::string, std::string>> q = request.query;
    for (auto& p : injection->query) q.push_back(p);
    std::string url = engine::WithQuery(base + request.path, q);
    std::string method = request.method;
    std::string body = payload;
    webhooks::HeaderList headers = injection->headers;
    for (const auto& h : request.headers) headers.push_back(h);
    if (request.body && !request.body->is_string() && !HeaderOf(request.headers, "content-type")) {
      headers.emplace_back("Content-Type", "application/json");
    }
    for (int hop = 0;; ++hop) {
      std::int64_t left = deadline - clock_.NowMs();
      if (left <= 0) {
        webhooks::DeliveryResult late;
        late.timed_out = true;
        late.error = "no time left before the deadline";
        return late;
      }
      auto dest = webhooks::ResolveDestination(url, options_.allow_private_egress, "the app's URL");
      if (!dest.ok()) {
        if (dest.error().code == Code::kUnavailable) return dest.take_error();
        return MakeError(Code::kEgressDenied, std::string(dest.error().Message()));
      }
      webhooks::OutboundRequest out;
      out.method = method;
      out.headers = headers;
      out.body = body;
      out.timeout_ms = left;
      out.max_response_bytes = kMaxActResponseBytes;
      out.keep_headers = true;
      webhooks::DeliveryResult res = webhooks::Send(*dest, out);
      if (res.connected || res.status != 0) run.reached_app = true;
      // The exchange, as the run log keeps it.
      json::object exchange;
      json::object rq;
      rq["method"] = method;
      rq["url"] = ValidUtf8(run.redactor.RedactUrl(url));
      rq["headers"] = HeadersJson(run.redactor.RedactHeaders(headers));
      exchange["request"] = LoggedBody(run.redactor, body, std::move(rq));
      if (res.status != 0) {
        json::object rs;
        rs["status"] = res.status;
        rs["headers"] = HeadersJson(run.redactor.RedactHeaders(res.headers));
        json::object logged = LoggedBody(run.redactor, res.body, std::move(rs));
        if (res.truncated) logged["bodyTruncated"] = true;
        exchange["response"] = std::move(logged);
        exchange["error"] = nullptr;
      } else {
        exchange["response"] = nullptr;
        exchange["error"] = ValidUtf8(res.error);
      }
      exchange["durationMs"] = res.duration_ms;
      run.exchanges.push_back(std::move(exchange));

      const bool redirect = res.status == 301 || res.status == 302 || res.status == 303 ||
                            res.status == 307 || res.status == 308;
      auto location = HeaderOf(res.headers, "location");
      if (!redirect || !location) return res;
      if (hop + 1 > kMaxRedirects) {
        return MakeError(Code::kUpstreamError,
                         "The app redirected more than " + std::to_string(kMaxRedirects) + " times");
      }
      auto here = boost::urls::parse_uri(url);
      auto ref = boost::urls::parse_uri_reference(*location);
      if (!here || !ref) {
        return MakeError(Code::kUpstreamError, "The app redirected to a malformed Location");
      }
      boost::urls::url next;
      if (auto rv = boost::urls::resolve(*here, *ref, next); !rv) {
        return MakeError(Code::kUpstreamError, "The app redirected to a malformed Location");
      }
      next.remove_fragment();
      std::string next_url(next.buffer());
      auto parsed = webhooks::ParseWebhookUrl(next_url, "the redirect's URL");
      if (!parsed.ok()) {
        return MakeError(Code::kEgressDenied, std::string(parsed.error().Message()));
      }
      if (here->scheme() == "https" && parsed->scheme != "https") {
        return MakeError(Code::kEgressDenied,
                         "The app redirected from https to http; not followed");
      }
      if (!engine::SameRegistrableDomain(base_host, parsed->host)) {
        return MakeError(Code::kEgressDenied,
                         "The app redirected to " + parsed->host + ", outside " +
                             engine::RegistrableDomain(base_host) + "; not followed");
      }
      if (res.status == 303 || ((res.status == 301 || res.status == 302) && method == "POST")) {
        method = "GET";
        body.clear();
        std::erase_if(headers, [](const auto& h) { return boost::iequals(h.first, "content-type"); });
      }
      url = std::move(next_url);
    }
  };

  for (int n = 1;; ++n) {
    std::string access_used;
    auto answer = attempt(access_used);
    if (!answer.ok()) return answer;
    if (answer->status == 401 && oauth && !refreshed) {
      // The token may have been revoked or expired early: refresh once and retry.
      refreshed = true;
      auto fresh = FreshConnection(*run.connection, true, access_used, false);
      if (!fresh.ok()) return fresh.take_error();
      run.connection = std::move(*fresh);
      --n;  // the refresh's retry is not a back-off attempt
      continue;
    }
    auto wait = engine::RetryDelayMs(answer->timed_out ? 0 : answer->status, answer->retry_after_s,
                                     n, clock_.NowMs() - started, repeatable, policy);
    if (answer->timed_out || !wait) return answer;
    std::this_thread::sleep_for(std::chrono::milliseconds(*wait));
  }
}

// --- the run ------------------------------------------------------------------------------------

http::Response Service::RunAct(http::Request& req, Call& call, const json::object& body,
                               std::string_view selector) {
  ActRun run;
  run.rec.id = NewId(random_, "run_");
  run.rec.started_at_ms = clock_.NowMs();
  run.rec.workspace_id = call.who.workspace_id;
  run.rec.tenant_key = call.who.tenant_key;
  run.rec.actor_kind = req.via_mcp ? "mcp" : std::string(ActorKindName(call.who.kind));
  run.rec.actor_id = call.who.actor_id;
  call.target = run.rec.id;
  auto fail = [&](Error e, json::object extra = {}) {
    return FailRun(req, call, run, std::move(e), std::move(extra));
  };

  // The body.
  if (const json::value* in = body.if_contains("input"); in && !in->is_null()) {
    if (!in->is_object()) return fail(InvalidField("input", "must be an object"));
    run.input = in->as_object();
  }
  if (const json::value* meta = body.if_contains("meta"); meta && !meta->is_null()) {
    if (!meta->is_object()) return fail(InvalidField("meta", "must be an object"));
    if (Serialize(*meta).size() > 16 * 1024) return fail(InvalidField("meta", "is over 16 KiB"));
    run.meta = *meta;
  }
  std::string by_id, by_key;
  const json::value* api = nullptr;
  if (!selector.empty()) {
    by_id = std::string(selector);  // an id or a key: decided below
  } else {
    int styles = 0;
    for (std::string_view k : {"api", "id", "key", "code"}) {
      if (body.contains(k) && !body.at(k).is_null()) ++styles;
    }
    if (styles != 1) {
      return fail(MakeError(styles == 0 ? Code::kMissingFields : Code::kInvalidField,
                            styles == 0 ? "Missing required fields: one of api, id, key or code"
                                        : "Give exactly one of api, id, key and code"));
    }
    if (body.contains("code") && !body.at("code").is_null()) {
      return fail(InvalidField("code", "is not supported yet (inline JavaScript comes with the "
                                       "run-javascript action type); send the request inline "
                                       "with {\"api\": {method, path, ...}} or run an action by "
                                       "key"));
    }
    for (std::string_view k : {"id", "key"}) {
      if (const json::value* v = body.if_contains(k); v && !v->is_null()) {
        if (!v->is_string() || v->as_string().empty() || v->as_string().size() > 200) {
          return fail(InvalidField(k, "must be a non-empty string of at most 200 characters"));
        }
        (k == "id" ? by_id : by_key) = std::string(v->as_string());
      }
    }
    if (const json::value* v = body.if_contains("api"); v && !v->is_null()) api = v;
  }
  const bool agent = call.who.kind == ActorKind::kAgent;
  if (agent) {
    run.rec.agent_id = call.who.actor_id;
    call.agent_id = call.who.actor_id;
  }
  if (agent && api != nullptr) {
    return fail(MakeError(Code::kPermissionDenied,
                          "Agents run actions, not inline requests",
                          "Run an action by key (a person grants you the action's key); "
                          "inline api requests are for tenants."));
  }

  // The action named by id (or by a path selector), before anything else: its key is what an
  // agent's grant names, and its scope picks the connection.
  std::optional<store::ActionRecord> action;
  if (!by_id.empty()) {
    auto a = store_.FindAction(call.who.workspace_id, by_id);
    if (!a.ok()) return fail(a.take_error());
    if (a->has_value() && !(*a)->archived_at_ms) {
      action = std::move(**a);
    } else if (!selector.empty()) {
      by_key = by_id;  // /actions/:selector/run with a key
    } else {
      return fail(MakeError(Code::kActionNotFound,
                            "No action with id '" + ValidUtf8(by_id, 100) + "'"));
    }
  }
  if (action) {
    run.rec.action_id = action->id;
    run.rec.action_key = action->key;
  } else if (!by_key.empty()) {
    run.rec.action_key = by_key;
  }

  // An agent acts under a grant: the action's key is the grant's action; the grant's scope must
  // fit the input; the run is the granter's.
  Principal tenant = call.who;
  std::shared_ptr<const authz::Scope> scope;
  std::int64_t grant_created_ms = 0;
  if (agent) {
    const std::string& key = run.rec.action_key;
    if (key.empty()) {
      return fail(MakeError(Code::kPermissionDenied,
                            "This action has no key, so no grant can allow it"));
    }
    auto grants = index_.ActiveGrants(call.who.actor_id, key, clock_.NowMs());
    if (grants.empty()) {
      return fail(MakeError(Code::kPermissionDenied,
                            "The agent holds no active grant for '" + ValidUtf8(key, 100) + "'",
                            "Ask a person to grant it (POST /permission/grant, action '" +
                                ValidUtf8(key, 100) + "')."));
    }
    const authz::GrantView* chosen = nullptr;
    authz::ScopeVerdict first_failure;
    for (const auto& g : grants) {
      if (g.scope) {
        authz::ScopeVerdict v = authz::EvaluateScope(g.scope->object, run.input);
        if (!v.satisfied) {
          if (first_failure.satisfied) first_failure = v;
          continue;
        }
      }
      chosen = &g;
      break;
    }
    if (chosen == nullptr) {
      json::object extra;
      extra["constraint"] = first_failure.constraint;
      return fail(MakeError(Code::kPermissionDenied, first_failure.reason,
                            "Change the input to fit the grant's scope, or ask the person for a "
                            "wider one."),
                  std::move(extra));
    }
    run.rec.grant_id = chosen->id;
    scope = chosen->scope;
    grant_created_ms = chosen->created_at_ms;
    tenant = Principal{};
    tenant.kind = ActorKind::kSession;
    tenant.user_id = chosen->granter->user_id;
    tenant.email = chosen->granter->email;
    ScopePerson(tenant);
    tenant.manager = false;
    run.rec.tenant_key = tenant.tenant_key;
  }

  // The connection.
  std::string integration_hint;
  if (action && !action->integration_id.empty()) integration_hint = action->integration_id;
  Result<store::ConnectionRecord> resolved = MakeError(Code::kConnectionNotFound);
  const bool names_connection = body.contains("connectionId") || body.contains("connectionKey");
  if (action && !action->connection_id.empty() && !names_connection) {
    resolved = OwnConnection(tenant, action->connection_id, false);
  } else {
    resolved = ResolveActConnection(tenant, body, integration_hint);
  }
  if (!resolved.ok()) return fail(resolved.take_error());
  run.connection = std::move(*resolved);
  const store::ConnectionRecord& c0 = *run.connection;
  run.rec.tenant_key = c0.tenant_key;

  // The action, now that the connection is known.
  if (!action && !by_key.empty()) {
    auto a = ActionForKey(c0, by_key);
    if (!a.ok()) return fail(a.take_error());
    action = std::move(*a);
    run.rec.action_id = action->id;
  }
  if (action) {
    if (!action->connection_id.empty() && action->connection_id != c0.id) {
      return fail(InvalidField("connectionId", "is not the connection of this connection-level "
                                               "action"));
    }
    if (!action->integration_id.empty() && action->integration_id != c0.integration_id) {
      return fail(InvalidField("connectionId", "is a connection of another integration than the "
                                               "action's"));
    }
  }
  if (agent && action && action->key != run.rec.action_key) {
    return fail(MakeError(Code::kPermissionDenied, "The action's key is not the granted one"));
  }

  // The request.
  engine::ApiRequest request;
  if (action) {
    if (!action->input_schema_json.empty()) {
      boost::system::error_code ec;
      json::value schema = json::parse(action->input_schema_json, ec);
      if (!ec) {
        if (auto violation = ValidateAgainstSchema(schema, json::value(run.input))) {
          std::string field = violation->pointer.empty()
                                  ? "input"
                                  : "input." + PointerToFieldName(violation->pointer);
          return fail(MakeError(Code::kInvalidInput, field + " " + violation->message));
        }
      }
    }
    auto config = ParseJsonObject(action->config_json);
    if (!config.ok()) return fail(config.take_error());
    const json::value* tmpl = config->if_contains("request");
    if (tmpl == nullptr) return fail(MakeError(Code::kInvalidField, "The action has no request"));
    auto parsed = engine::ParseApiRequest(*tmpl, "config.request");
    if (!parsed.ok()) return fail(parsed.take_error());
    auto rendered = engine::RenderActionRequest(*parsed, run.input);
    if (!rendered.ok()) return fail(rendered.take_error());
    request = std::move(*rendered);
  } else {
    auto parsed = engine::ParseApiRequest(api ? *api : json::value(nullptr), "api");
    if (!parsed.ok()) return fail(parsed.take_error());
    request = std::move(*parsed);
  }
  run.request_json = engine::ApiRequestToJson(request);

  // The connection must be usable.
  if (c0.state == "DISCONNECTED") {
    return fail(MakeError(Code::kConnectionDisconnected,
                          "The connection '" + c0.key + "' is disconnected"));
  }
  if (c0.state != "READY") {
    return fail(MakeError(Code::kConnectionNotReady,
                          "The connection '" + c0.key + "' is " + c0.state));
  }
  auto integration = store_.FindIntegration(c0.workspace_id, c0.integration_id);
  if (!integration.ok()) return fail(integration.take_error());
  if (!integration->has_value()) return fail(MakeError(Code::kIntegrationNotFound));
  auto connector = FindConnector(c0.workspace_id, (*integration)->connector_key);
  if (!connector) return fail(MakeError(Code::kConnectorNotFound));
  auto base = engine::ResolveUrl(connector->base_url, MapOfJson(c0.fields_json));
  if (!base.ok()) return fail(base.take_error());
  auto fresh = FreshConnection(c0, false, "", false);
  if (!fresh.ok()) return fail(fresh.take_error());
  run.connection = std::move(*fresh);

  // The grant's budgets, charged before the call so concurrent runs cannot overspend.
  if (scope) {
    for (const authz::Budget& b : authz::BudgetsOf(scope->object)) {
      const json::value* amount = run.input.if_contains(b.field);
      double value = amount && amount->is_number() ? amount->to_number<double>() : 0;
      store::BudgetCharge charge;
      charge.grant_id = run.rec.grant_id;
      charge.field = b.field;
      charge.window_start_ms =
          authz::BudgetWindowStart(grant_created_ms, b.period_ms, clock_.NowMs());
      charge.amount = authz::ToBudgetUnits(value);
      charge.limit = authz::ToBudgetUnits(b.limit);
      run.charges.push_back(std::move(charge));
    }
    if (!run.charges.empty()) {
      auto outcome = store_.ChargeBudgets(run.charges);
      if (!outcome.ok()) return fail(outcome.take_error());
      if (!outcome->charged) {
        const auto& budgets = authz::BudgetsOf(scope->object);
        const authz::Budget& b = budgets[outcome->failed];
        const store::BudgetCharge& ch = run.charges[outcome->failed];
        double used = outcome->failed < outcome->used.size()
                          ? authz::FromBudgetUnits(outcome->used[outcome->failed])
                          : 0;
        json::object extra;
        extra["constraint"] = b.key;
        json::object budget;
        budget["limit"] = b.limit;
        budget["used"] = used;
        budget["requested"] = authz::FromBudgetUnits(ch.amount);
        budget["windowStart"] = FormatIso8601(ch.window_start_ms);
        budget["windowEnd"] = FormatIso8601(ch.window_start_ms + b.period_ms);
        extra["budget"] = std::move(budget);
        std::ostringstream msg;
        msg << "The budget '" << b.key << "' allows " << b.limit << " per window; " << used
            << " is spent and this run asks for " << authz::FromBudgetUnits(ch.amount);
        return fail(MakeError(Code::kPermissionDenied, msg.str(),
                              "Wait for the next window, or ask the person for a larger budget."),
                    std::move(extra));
      }
      run.charged = true;
    }
  }

  // The call.
  const bool repeatable =
      engine::IsIdempotentMethod(request.method) || !req.idempotency_key.empty();
  auto answer = CallApp(run, *connector, *base, request, repeatable);
  if (!answer.ok()) return fail(answer.take_error());
  if (answer->timed_out) {
    return fail(MakeError(Code::kUpstreamTimeout,
                          "The app did not answer within " +
                              std::to_string(options_.act_timeout_ms) + " ms"));
  }
  if (answer->status == 0) {
    return fail(MakeError(Code::kUpstreamError, "The app did not answer: " + answer->error));
  }
  if (answer->truncated) {
    // Half a JSON document is worse than none: the caller learns the request ran, not its answer.
    return fail(MakeError(
        Code::kUpstreamError,
        "The app answered " + std::to_string(answer->status) + " with more than " +
            std::to_string(kMaxActResponseBytes >> 20) + " MiB, more than /act returns",
        "Ask the app for less (a page, a filter, fewer fields); the request itself was sent."));
  }
  json::value output;
  std::string_view text = answer->body;
  bool is_json = false;
  if (auto type = HeaderOf(answer->headers, "content-type")) {
    is_json = Lower(*type).find("json") != std::string::npos;
  }
  if (!text.empty()) {
    boost::system::error_code ec;
    json::value parsed = json::parse(text, ec);
    if (!ec && (is_json || parsed.is_object() || parsed.is_array())) {
      output = std::move(parsed);
    } else {
      output = ValidUtf8(text);
    }
  }
  if (answer->status >= 300) {
    json::object upstream;
    upstream["status"] = answer->status;
    upstream["body"] = output;
    json::object extra;
    extra["upstream"] = std::move(upstream);
    return fail(MakeError(Code::kUpstreamError, "The app answered " + std::to_string(answer->status)),
                std::move(extra));
  }
  json::object out;
  out["output"] = output;
  out["actionRunId"] = run.rec.id;
  out["status"] = answer->status;
  out["connectionId"] = run.connection->id;
  run.rec.status = "success";
  run.rec.output_json = Serialize(output);
  return RecordRun(req, call, run, 200, Serialize(out), "", "");
}

http::Response Service::Act(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"api", "id", "key", "code", "connectionId", "connectionKey",
                                    "integrationKey", "integrationId", "input", "meta"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  return RunAct(req, call, *body, {});
}

http::Response Service::RunAction(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  json::object body;
  if (!req.body.empty()) {
    auto parsed = ParseJsonObject(req.body);
    if (!parsed.ok()) return Fail(req, parsed.take_error());
    body = std::move(*parsed);
  }
  if (Status s = OnlyFields(body, {"connectionId", "connectionKey", "integrationKey",
                                   "integrationId", "input", "meta"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  std::string_view selector = req.Param("selector");
  if (selector.empty() || selector.size() > 200) {
    return Fail(req, MakeError(Code::kActionNotFound));
  }
  return RunAct(req, call, body, selector);
}

}  // namespace agentgate::api
