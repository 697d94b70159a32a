// Reusable actions (/actions), action run logs (/action-run-logs) and the workspace's
// configuration as one document (/export, /import). /act itself is in act_api.cc.
#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "api/engine_internal.h"
#include "api/fields.h"
#include "api/paging.h"
#include "api/service.h"
#include "core/json_schema.h"
#include "core/time.h"
#include "engine/action.h"
#include "engine/connector.h"

namespace agentgate::api {

using namespace engine_internal;

namespace {

constexpr std::string_view kScopeFields[] = {"integrationKey", "integrationId", "connectionId",
                                             "connectionKey"};

bool Flag(const http::Query& query, std::string_view name) {
  auto v = query.Get(name);
  return v && (*v == "1" || *v == "true");
}

json::value JsonOrNull(std::string_view text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return nullptr;
  return v;
}

std::string_view LayerOf(const store::ActionRecord& a) {
  if (!a.connection_id.empty()) return "connection";
  if (!a.integration_id.empty()) return "integration";
  return "universal";
}

// A schema field: a JSON Schema object, or null to clear it.
Result<std::string> SchemaField(const json::object& body, std::string_view name) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_object()) return InvalidField(name, "must be a JSON Schema object");
  {
    // The schema itself must be usable: validating a null against it must not fail on the
    // schema's own shape (unknown keywords are annotations and pass).
    const json::object& o = v->as_object();
    if (const json::value* t = o.if_contains("type");
        t && !t->is_string() && !t->is_array()) {
      return InvalidField(std::string(name) + ".type", "must be a string or an array of strings");
    }
    if (const json::value* p = o.if_contains("properties"); p && !p->is_object()) {
      return InvalidField(std::string(name) + ".properties", "must be an object");
    }
    if (const json::value* r = o.if_contains("required"); r && !r->is_array()) {
      return InvalidField(std::string(name) + ".required", "must be an array of field names");
    }
    if (Serialize(*v).size() > 64 * 1024) return InvalidField(name, "is larger than 64 KiB");
  }
  return Serialize(*v);
}

}  // namespace

// --- the action record ----------------------------------------------------------------------

json::object Service::ActionJson(const store::ActionRecord& a) {
  json::object out;
  out["id"] = a.id;
  out["key"] = a.key;
  out["name"] = a.name;
  out["description"] = a.description;
  out["type"] = a.type;
  out["state"] = "READY";
  out["layer"] = LayerOf(a);
  out["integrationId"] = a.integration_id.empty() ? json::value(nullptr) : json::value(a.integration_id);
  json::value integration_key = nullptr;
  if (!a.integration_id.empty()) {
    auto i = store_.FindIntegration(a.workspace_id, a.integration_id);
    if (i.ok() && i->has_value()) integration_key = (*i)->key;
  }
  out["integrationKey"] = std::move(integration_key);
  out["connectionId"] = a.connection_id.empty() ? json::value(nullptr) : json::value(a.connection_id);
  out["config"] = JsonOrNull(a.config_json);
  out["inputSchema"] = JsonOrNull(a.input_schema_json);
  out["outputSchema"] = JsonOrNull(a.output_schema_json);
  out["isArchived"] = a.archived_at_ms.has_value();
  out["archivedAt"] = IsoOrNull(a.archived_at_ms);
  out["createdAt"] = FormatIso8601(a.created_at_ms);
  out["updatedAt"] = FormatIso8601(a.updated_at_ms);
  return out;
}

// Reads the fields of an action from a POST, PATCH (merge: only those present) or PUT body.
Status Service::ParseActionFields(const json::object& body, store::ActionRecord& a, bool merge) {
  auto present = [&](std::string_view name) { return body.contains(name); };
  if (const json::value* intent = body.if_contains("intent"); intent && !intent->is_null()) {
    return InvalidField("intent", "is not supported: this server does not build actions from a "
                                  "description; give type and config.request");
  }
  if (!merge || present("key")) {
    auto key = StringField(body, "key", 100);
    if (!key.ok()) return key.take_error();
    a.key = key->value_or("");
    if (!a.key.empty() && !ValidKey(a.key)) {
      return InvalidField("key", "must be 1-100 letters, digits, '-', '_', '.', ':' or '@'");
    }
  }
  if (!merge || present("name")) {
    auto name = StringField(body, "name", 200);
    if (!name.ok()) return name.take_error();
    a.name = name->value_or("");
  }
  if (a.name.empty()) a.name = a.key;
  if (!merge || present("description")) {
    auto d = StringField(body, "description", 2000);
    if (!d.ok()) return d.take_error();
    a.description = d->value_or("");
  }
  if (!merge || present("type")) {
    auto type = StringField(body, "type", 100);
    if (!type.ok()) return type.take_error();
    a.type = type->value_or(std::string(engine::kApiRequestType));
    if (a.type == "run-javascript") {
      return InvalidField("type", "'run-javascript' is not supported yet (it comes with inline "
                                  "code); use 'api-request-to-external-app'");
    }
    if (a.type != engine::kApiRequestType) {
      return InvalidField("type", "must be 'api-request-to-external-app'");
    }
  }
  if (!merge || present("config")) {
    const json::value* config = body.if_contains("config");
    if (config == nullptr || config->is_null()) return MissingFields({"config"});
    if (!config->is_object()) return InvalidField("config", "must be an object {request: {...}}");
    if (Status s = OnlyFields(config->as_object(), {"request"}); !s.ok()) return s;
    const json::value* request = config->as_object().if_contains("request");
    if (request == nullptr || request->is_null()) return MissingFields({"config.request"});
    auto parsed = engine::ParseApiRequest(*request, "config.request");
    if (!parsed.ok()) return parsed.take_error();
    json::object normalized;
    normalized["request"] = engine::ApiRequestToJson(*parsed);
    a.config_json = Serialize(normalized);
    if (a.config_json.size() > 256 * 1024) return InvalidField("config", "is larger than 256 KiB");
  }
  if (!merge || present("inputSchema")) {
    auto schema = SchemaField(body, "inputSchema");
    if (!schema.ok()) return schema.take_error();
    a.input_schema_json = std::move(*schema);
  }
  if (!merge || present("outputSchema")) {
    auto schema = SchemaField(body, "outputSchema");
    if (!schema.ok()) return schema.take_error();
    a.output_schema_json = std::move(*schema);
  }
  return Ok();
}

// The action a selector (id, or key with scope hints in the query) names, for this caller.
Result<store::ActionRecord> Service::FindActionOf(const Principal& who, std::string_view selector,
                                                  const http::Query& hints,
                                                  bool include_archived) {
  if (selector.empty() || selector.size() > 200) {
    return MakeError(Code::kActionNotFound);
  }
  auto not_found = [&] {
    return MakeError(Code::kActionNotFound,
                     "No action '" + ValidUtf8(selector, 100) + "' in this workspace");
  };
  auto visible = [&](const store::ActionRecord& a) -> bool {
    if (a.connection_id.empty() || (who.manager && who.tenant_key.empty())) return true;
    auto c = store_.FindConnection(who.workspace_id, a.connection_id);
    return c.ok() && c->has_value() && (*c)->tenant_key == who.tenant_key;
  };
  auto by_id = store_.FindAction(who.workspace_id, std::string(selector));
  if (!by_id.ok()) return by_id.take_error();
  if (by_id->has_value()) {
    store::ActionRecord a = std::move(**by_id);
    if ((a.archived_at_ms && !include_archived) || !visible(a)) return not_found();
    return a;
  }
  // By key: the hints narrow the scope.
  std::string integration_id, connection_id;
  std::optional<std::string> integration = hints.Get("integrationId");
  if (!integration) integration = hints.Get("integrationKey");
  if (integration) {
    auto i = FindIntegrationOf(who, *integration);
    if (!i.ok()) return i.take_error();
    integration_id = i->id;
  }
  std::optional<std::string> connection = hints.Get("connectionId");
  if (!connection) connection = hints.Get("connectionKey");
  if (connection) {
    auto c = OwnConnection(who, *connection, false);
    if (!c.ok()) return c.take_error();
    connection_id = c->id;
    integration_id = c->integration_id;
  }
  store::ActionFilter f;
  f.workspace_id = who.workspace_id;
  f.key = std::string(selector);
  f.include_archived = include_archived;
  f.limit = 1000;
  auto list = store_.ListActions(f);
  if (!list.ok()) return list.take_error();
  std::vector<store::ActionRecord> candidates;
  for (auto& a : *list) {
    if (!visible(a)) continue;
    if (!connection_id.empty()) {
      if (!a.connection_id.empty() && a.connection_id != connection_id) continue;
      if (a.connection_id.empty() && !a.integration_id.empty() &&
          a.integration_id != integration_id) {
        continue;
      }
    } else if (!integration_id.empty()) {
      if (!a.connection_id.empty()) continue;
      if (!a.integration_id.empty() && a.integration_id != integration_id) continue;
    }
    candidates.push_back(std::move(a));
  }
  if (candidates.empty()) return not_found();
  if (candidates.size() == 1) return std::move(candidates.front());
  // The most specific one wins: connection, then integration, then universal — when hints were
  // given. Without hints, only the universal action is an unambiguous answer.
  auto rank = [](const store::ActionRecord& a) {
    return a.connection_id.empty() ? (a.integration_id.empty() ? 0 : 1) : 2;
  };
  if (!connection_id.empty() || !integration_id.empty()) {
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](const auto& x, const auto& y) { return rank(x) > rank(y); });
    if (candidates.size() < 2 || rank(candidates[0]) != rank(candidates[1])) {
      return std::move(candidates.front());
    }
  } else {
    auto universal = std::find_if(candidates.begin(), candidates.end(),
                                  [&](const auto& a) { return rank(a) == 0; });
    if (universal != candidates.end()) return std::move(*universal);
  }
  return MakeError(Code::kConflict,
                   "The key '" + ValidUtf8(selector, 100) + "' names " +
                       std::to_string(candidates.size()) + " actions",
                   "Pass the action's id, or narrow with integrationKey / connectionId.");
}

// --- the endpoints ----------------------------------------------------------------------------

http::Response Service::CreateAction(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"key", "name", "description", "type", "config", "inputSchema",
                                    "outputSchema", "integrationKey", "integrationId",
                                    "connectionId", "connectionKey", "intent"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  store::ActionRecord a;
  a.workspace_id = call.who.workspace_id;
  if (Status s = ParseActionFields(*body, a, false); !s.ok()) return Fail(req, s.take_error());
  for (std::string_view f : kScopeFields) {
    auto v = StringField(*body, f, 200);
    if (!v.ok()) return Fail(req, v.take_error());
  }
  auto text = [&](std::string_view f) -> std::string {
    const json::value* v = body->if_contains(f);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  std::string connection = text("connectionId");
  if (connection.empty()) connection = text("connectionKey");
  if (!connection.empty()) {
    if (text("connectionId").empty() && call.who.tenant_key.empty()) {
      return Fail(req, MakeError(Code::kMissingFields,
                                 "connectionKey needs a tenant: this manager token names none",
                                 "Pass connectionId, or mint the manager token with "
                                 "--tenantKey."));
    }
    auto c = OwnConnection(call.who, connection, false);
    if (!c.ok()) return Fail(req, c.take_error());
    a.connection_id = c->id;
    a.integration_id = c->integration_id;
  }
  std::string integration = text("integrationId");
  if (integration.empty()) integration = text("integrationKey");
  if (!integration.empty()) {
    auto i = FindIntegrationOf(call.who, integration);
    if (!i.ok()) return Fail(req, i.take_error());
    if (!a.integration_id.empty() && a.integration_id != i->id) {
      return Fail(req, InvalidField("integrationKey", "is not the integration of the connection"));
    }
    a.integration_id = i->id;
  }
  a.id = NewId(random_, "act_");
  a.created_at_ms = a.updated_at_ms = clock_.NowMs();
  call.target = a.id;
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 201));
  if (Status s = store_.InsertAction(a, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  return Json(201, Serialize(ActionJson(a)));
}

http::Response Service::ListActions(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  auto limit = ParseLimit(query, 100, 1000);
  if (!limit.ok()) return Fail(req, limit.take_error());
  store::ActionFilter f;
  f.workspace_id = call.who.workspace_id;
  f.include_archived = Flag(query, "includeArchived");
  std::optional<std::string> connection = query.Get("connectionId");
  if (!connection) connection = query.Get("connectionKey");
  if (connection) {
    auto c = OwnConnection(call.who, *connection, false);
    if (!c.ok()) return Fail(req, c.take_error());
    f.connection_id = c->id;
    f.surface_integration_id = c->integration_id;
  }
  std::optional<std::string> integration = query.Get("integrationId");
  if (!integration) integration = query.Get("integrationKey");
  if (integration) {
    auto i = FindIntegrationOf(call.who, *integration);
    if (!i.ok()) return Fail(req, i.take_error());
    if (!f.connection_id.empty() && f.surface_integration_id != i->id) {
      return Fail(req, InvalidField("integrationKey", "is not the integration of the connection"));
    }
    f.surface_integration_id = i->id;
  }
  // externalAppId: a connector; the actions usable on its integrations.
  std::set<std::string> app_integrations;
  bool by_app = false;
  if (auto app = query.Get("externalAppId")) {
    by_app = true;
    if (!FindConnector(call.who.workspace_id, *app)) {
      return Fail(req, MakeError(Code::kConnectorNotFound,
                                 "No connector '" + ValidUtf8(*app, 100) + "'"));
    }
    auto integrations = store_.ListIntegrations(call.who.workspace_id, false);
    if (!integrations.ok()) return Fail(req, integrations.take_error());
    for (const auto& i : *integrations) {
      auto c = FindConnector(call.who.workspace_id, i.connector_key);
      if (c && (c->key == *app || i.connector_key == *app)) app_integrations.insert(i.id);
    }
  }
  std::optional<std::string> intent = query.Get("intent");
  if (intent && intent->size() > 500) return Fail(req, InvalidField("intent", "is too long"));
  if (intent && intent->empty()) intent.reset();
  if (auto cursor = query.Get("cursor"); cursor && !cursor->empty()) {
    if (intent) return Fail(req, InvalidField("cursor", "cannot be used with intent"));
    auto c = ParseTimeCursor(*cursor);
    if (!c.ok()) return Fail(req, c.take_error());
    f.after_created_ms = c->first;
    f.after_id = c->second;
  }
  const bool all_tenants = call.who.manager && call.who.tenant_key.empty();
  std::map<std::string, bool> own_connection;
  auto visible = [&](const store::ActionRecord& a) {
    if (by_app && (a.integration_id.empty() ? false : !app_integrations.count(a.integration_id))) {
      return false;
    }
    if (a.connection_id.empty() || all_tenants) return true;
    auto [it, fresh] = own_connection.try_emplace(a.connection_id, false);
    if (fresh) {
      auto c = store_.FindConnection(a.workspace_id, a.connection_id);
      it->second = c.ok() && c->has_value() && (*c)->tenant_key == call.who.tenant_key;
    }
    return it->second;
  };
  std::vector<store::ActionRecord> page;
  bool more = false;
  if (intent) {
    // Rank everything visible (workspaces hold hundreds of actions, not millions).
    f.limit = 10'000;
    auto list = store_.ListActions(f);
    if (!list.ok()) return Fail(req, list.take_error());
    std::vector<store::ActionRecord> candidates;
    std::vector<std::string> texts;
    for (auto& a : *list) {
      if (!visible(a)) continue;
      texts.push_back(a.key + " " + a.key + " " + a.name + " " + a.name + " " + a.description);
      candidates.push_back(std::move(a));
    }
    for (std::size_t i : engine::RankByIntent(*intent, texts)) {
      if (static_cast<int>(page.size()) == *limit) break;
      page.push_back(std::move(candidates[i]));
    }
  } else {
    // Filtering after the store's page may thin it out: read on until the page is full.
    f.limit = *limit + 1;
    for (int rounds = 0; rounds < 100; ++rounds) {
      auto list = store_.ListActions(f);
      if (!list.ok()) return Fail(req, list.take_error());
      bool exhausted = static_cast<int>(list->size()) < f.limit;
      for (auto& a : *list) {
        f.after_created_ms = a.created_at_ms;
        f.after_id = a.id;
        if (!visible(a)) continue;
        if (static_cast<int>(page.size()) == *limit) {
          more = true;
          break;
        }
        page.push_back(std::move(a));
      }
      if (more || exhausted) break;
    }
  }
  json::array items;
  for (const auto& a : page) items.push_back(ActionJson(a));
  json::object out;
  out["items"] = std::move(items);
  out["cursor"] = more ? json::value(std::to_string(page.back().created_at_ms) + "." + page.back().id)
                       : json::value(nullptr);
  return Json(200, Serialize(out));
}

http::Response Service::GetAction(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  auto a = FindActionOf(call.who, req.Param("selector"), query, Flag(query, "includeArchived"));
  if (!a.ok()) return Fail(req, a.take_error());
  call.target = a->id;
  return Json(200, Serialize(ActionJson(*a)));
}

http::Response Service::WriteAction(http::Request& req, Call& call, bool merge) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  for (const auto& [k, v] : *body) {
    if (std::find(std::begin(kScopeFields), std::end(kScopeFields), k) != std::end(kScopeFields)) {
      return Fail(req, InvalidField(k, "cannot change: an action's scope is fixed (create another "
                                       "action, or pass it in the query to pick the action)"));
    }
  }
  if (Status s = OnlyFields(*body, {"key", "name", "description", "type", "config", "inputSchema",
                                    "outputSchema"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  auto found = FindActionOf(call.who, req.Param("selector"), query, false);
  if (!found.ok()) return Fail(req, found.take_error());
  store::ActionRecord a = std::move(*found);
  call.target = a.id;
  if (Status s = ParseActionFields(*body, a, merge); !s.ok()) return Fail(req, s.take_error());
  a.updated_at_ms = clock_.NowMs();
  store::Effects effects;
  effects.activity.push_back(EventOf(req, call, 200));
  if (Status s = store_.UpdateAction(a, effects); !s.ok()) return Fail(req, s.take_error());
  call.recorded = true;
  return Json(200, Serialize(ActionJson(a)));
}

http::Response Service::UpdateAction(http::Request& req, Call& call) {
  return WriteAction(req, call, true);
}

http::Response Service::ReplaceAction(http::Request& req, Call& call) {
  return WriteAction(req, call, false);
}

http::Response Service::SetActionArchived(http::Request& req, Call& call, bool archived) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  std::string_view selector = archived ? req.Param("selector") : req.Param("action_id");
  auto found = FindActionOf(call.who, selector, query, !archived);
  if (!found.ok()) return Fail(req, found.take_error());
  store::ActionRecord a = std::move(*found);
  call.target = a.id;
  if (archived != a.archived_at_ms.has_value()) {
    a.archived_at_ms = archived ? std::optional<std::int64_t>(clock_.NowMs()) : std::nullopt;
    a.updated_at_ms = clock_.NowMs();
    store::Effects effects;
    effects.activity.push_back(EventOf(req, call, 200));
    if (Status s = store_.UpdateAction(a, effects); !s.ok()) return Fail(req, s.take_error());
    call.recorded = true;
  }
  return Json(200, Serialize(ActionJson(a)));
}

http::Response Service::DeleteAction(http::Request& req, Call& call) {
  return SetActionArchived(req, call, true);
}

http::Response Service::RestoreAction(http::Request& req, Call& call) {
  return SetActionArchived(req, call, false);
}

// --- run logs ---------------------------------------------------------------------------------

json::object Service::ActionRunJson(const store::ActionRunRecord& r, bool details) {
  json::object out;
  out["id"] = r.id;
  out["status"] = r.status;
  auto named = [](std::string id, std::string key, std::string name) -> json::value {
    if (id.empty()) return nullptr;
    json::object o;
    o["id"] = std::move(id);
    o["key"] = std::move(key);
    o["name"] = std::move(name);
    return o;
  };
  json::value action = nullptr;
  if (!r.action_id.empty()) {
    auto a = store_.FindAction(r.workspace_id, r.action_id);
    std::string name = a.ok() && a->has_value() ? (*a)->name : std::string();
    action = named(r.action_id, r.action_key, name);
  }
  out["action"] = std::move(action);
  // A record that is gone since keeps its id in the log.
  auto named_found = [&](const std::string& id, const auto& found) -> json::value {
    if (id.empty()) return nullptr;
    if (found.ok() && found->has_value()) return named((*found)->id, (*found)->key, (*found)->name);
    return named(id, "", "");
  };
  out["connection"] =
      named_found(r.connection_id, store_.FindConnection(r.workspace_id, r.connection_id));
  out["integration"] =
      named_found(r.integration_id, store_.FindIntegration(r.workspace_id, r.integration_id));
  out["tenantKey"] = r.tenant_key;
  out["agentId"] = r.agent_id.empty() ? json::value(nullptr) : json::value(r.agent_id);
  out["grantId"] = r.grant_id.empty() ? json::value(nullptr) : json::value(r.grant_id);
  json::object actor;
  actor["kind"] = r.actor_kind;
  actor["id"] = r.actor_id;
  out["actor"] = std::move(actor);
  out["input"] = JsonOrNull(r.input_json);
  out["output"] = JsonOrNull(r.output_json);
  out["error"] = JsonOrNull(r.error_json);
  json::value detail_doc = JsonOrNull(r.details_json);
  json::value meta = nullptr;
  if (detail_doc.is_object()) {
    if (const json::value* m = detail_doc.as_object().if_contains("meta")) meta = *m;
  }
  out["meta"] = std::move(meta);
  out["startedAt"] = FormatIso8601(r.started_at_ms);
  out["finishedAt"] = FormatIso8601(r.finished_at_ms);
  out["durationMs"] = r.finished_at_ms - r.started_at_ms;
  if (details) {
    json::object d;
    d["request"] = nullptr;
    d["exchanges"] = json::array();
    if (detail_doc.is_object()) {
      const json::object& o = detail_doc.as_object();
      if (const json::value* v = o.if_contains("request")) d["request"] = *v;
      if (const json::value* v = o.if_contains("exchanges")) d["exchanges"] = *v;
    }
    out["details"] = std::move(d);
  }
  return out;
}

Result<store::ActionRunRecord> Service::OwnActionRun(const Principal& who, std::string_view id) {
  (void)FlushRuns();  // the caller's own recent runs are read back
  auto not_found = [&] {
    return MakeError(Code::kActionRunNotFound,
                     "No action run '" + ValidUtf8(id, 100) + "' for this tenant");
  };
  if (id.empty() || id.size() > 100) return not_found();
  auto r = store_.FindActionRun(who.workspace_id, std::string(id));
  if (!r.ok()) return r.take_error();
  if (!r->has_value()) return not_found();
  const bool all_tenants = who.manager && who.tenant_key.empty();
  if (!all_tenants && (*r)->tenant_key != who.tenant_key) return not_found();
  return std::move(**r);
}

http::Response Service::GetActionRun(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  auto r = OwnActionRun(call.who, req.Param("run_id"));
  if (!r.ok()) return Fail(req, r.take_error());
  call.target = r->id;
  return Json(200, Serialize(ActionRunJson(*r, Flag(query, "includeDetails"))));
}

http::Response Service::GetActionRunDetails(http::Request& req, Call& call) {
  auto r = OwnActionRun(call.who, req.Param("run_id"));
  if (!r.ok()) return Fail(req, r.take_error());
  call.target = r->id;
  return Json(200, Serialize(ActionRunJson(*r, true)));
}

http::Response Service::ListActionRuns(http::Request& req, Call& call) {
  http::Query query(req.query);
  if (!query.valid()) return Fail(req, MakeError(Code::kBadRequest, "Malformed query string"));
  auto limit = ParseLimit(query, 100, 1000);
  if (!limit.ok()) return Fail(req, limit.take_error());
  store::ActionRunFilter f;
  f.workspace_id = call.who.workspace_id;
  f.tenant_key = call.who.manager && call.who.tenant_key.empty() ? "" : call.who.tenant_key;
  f.limit = *limit + 1;
  for (auto [name, field] : {std::pair{"actionId", &f.action_id}, {"agentId", &f.agent_id},
                             {"connectionId", &f.connection_id}, {"status", &f.status}}) {
    if (auto v = query.Get(name)) {
      if (v->size() > 200) return Fail(req, InvalidField(name, "is too long"));
      *field = *v;
    }
  }
  if (!f.status.empty() && f.status != "success" && f.status != "error") {
    return Fail(req, InvalidField("status", "must be success or error"));
  }
  if (auto cursor = query.Get("cursor"); cursor && !cursor->empty()) {
    auto c = ParseTimeCursor(*cursor);
    if (!c.ok()) return Fail(req, c.take_error());
    f.before_started_ms = c->first;
    f.before_id = c->second;
  }
  (void)FlushRuns();
  auto list = store_.ListActionRuns(f);
  if (!list.ok()) return Fail(req, list.take_error());
  bool more = static_cast<int>(list->size()) > *limit;
  if (more) list->resize(static_cast<std::size_t>(*limit));
  json::array items;
  for (const auto& r : *list) items.push_back(ActionRunJson(r, false));
  json::object out;
  out["items"] = std::move(items);
  out["cursor"] =
      more ? json::value(std::to_string(list->back().started_at_ms) + "." + list->back().id)
           : json::value(nullptr);
  return Json(200, Serialize(out));
}

// --- export and import ------------------------------------------------------------------------

http::Response Service::ExportWorkspace(http::Request& req, Call& call) {
  const std::string& ws = call.who.workspace_id;
  json::object out;
  out["version"] = 1;
  out["exportedAt"] = FormatIso8601(clock_.NowMs());
  json::array connectors;
  auto custom = store_.ListConnectors(ws);
  if (!custom.ok()) return Fail(req, custom.take_error());
  for (const auto& c : *custom) connectors.push_back(JsonOrNull(c.spec_json));
  out["connectors"] = std::move(connectors);
  auto integrations = store_.ListIntegrations(ws, false);
  if (!integrations.ok()) return Fail(req, integrations.take_error());
  std::map<std::string, std::string> key_of;
  json::array is;
  for (const auto& i : *integrations) {
    key_of[i.id] = i.key;
    json::object o;
    o["key"] = i.key;
    o["name"] = i.name;
    o["connectorKey"] = i.connector_key;
    // Only the non-secret parameters are stored in parameters_json; the client secret is sealed
    // apart and never exported.
    o["parameters"] = JsonOrNull(i.parameters_json.empty() ? "{}" : i.parameters_json);
    is.push_back(std::move(o));
  }
  out["integrations"] = std::move(is);
  json::array actions;
  store::ActionFilter f;
  f.workspace_id = ws;
  f.limit = 1000;
  for (;;) {
    auto list = store_.ListActions(f);
    if (!list.ok()) return Fail(req, list.take_error());
    for (const auto& a : *list) {
      f.after_created_ms = a.created_at_ms;
      f.after_id = a.id;
      if (!a.connection_id.empty() || a.key.empty()) continue;
      if (!a.integration_id.empty() && !key_of.count(a.integration_id)) continue;  // archived
      json::object o;
      o["key"] = a.key;
      o["name"] = a.name;
      o["description"] = a.description;
      o["type"] = a.type;
      o["config"] = JsonOrNull(a.config_json);
      o["inputSchema"] = JsonOrNull(a.input_schema_json);
      o["outputSchema"] = JsonOrNull(a.output_schema_json);
      o["integrationKey"] =
          a.integration_id.empty() ? json::value(nullptr) : json::value(key_of[a.integration_id]);
      actions.push_back(std::move(o));
    }
    if (static_cast<int>(list->size()) < f.limit) break;
  }
  out["actions"] = std::move(actions);
  call.target = ws;
  http::Response r = Json(200, Serialize(out));
  return r;
}

http::Response Service::ImportWorkspace(http::Request& req, Call& call) {
  if (Status s = CheckOrigin(req, call.who); !s.ok()) return Fail(req, s.take_error());
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return Fail(req, body.take_error());
  if (Status s = OnlyFields(*body, {"version", "exportedAt", "connectors", "integrations",
                                    "actions"});
      !s.ok()) {
    return Fail(req, s.take_error());
  }
  if (const json::value* v = body->if_contains("version");
      v && !(v->is_int64() && v->as_int64() == 1) && !(v->is_uint64() && v->as_uint64() == 1)) {
    return Fail(req, InvalidField("version", "must be 1 (the version GET /export writes)"));
  }
  auto array_of = [&](std::string_view name) -> Result<json::array> {
    const json::value* v = body->if_contains(name);
    if (v == nullptr || v->is_null()) return json::array();
    if (!v->is_array()) return InvalidField(name, "must be an array");
    if (v->as_array().size() > 10'000) return InvalidField(name, "has more than 10000 items");
    return v->as_array();
  };
  auto connectors = array_of("connectors");
  if (!connectors.ok()) return Fail(req, connectors.take_error());
  auto integrations = array_of("integrations");
  if (!integrations.ok()) return Fail(req, integrations.take_error());
  auto actions = array_of("actions");
  if (!actions.ok()) return Fail(req, actions.take_error());
  const std::string& ws = call.who.workspace_id;
  const std::int64_t now = clock_.NowMs();

  // Everything is checked before anything is written.
  struct Counts {
    int created = 0, updated = 0, unchanged = 0;
  };
  Counts cc, ic, ac;
  std::vector<engine::Connector> new_connectors;
  std::set<std::string> imported_connector_keys;
  for (std::size_t n = 0; n < connectors->size(); ++n) {
    std::string where = "connectors[" + std::to_string(n) + "]";
    auto parsed = engine::ParseConnector((*connectors)[n]);
    if (!parsed.ok()) {
      Error e = parsed.take_error();
      e.message = where + ": " + std::string(e.Message());
      return Fail(req, std::move(e));
    }
    if (!imported_connector_keys.insert(parsed->key).second) {
      return Fail(req, InvalidField(where + ".key", "repeats '" + parsed->key + "'"));
    }
    auto existing = FindConnector(ws, parsed->key);
    if (existing) {
      json::object a = engine::ConnectorToJson(*existing), b = engine::ConnectorToJson(*parsed);
      for (json::object* o : {&a, &b}) {
        o->erase("id");
        o->erase("custom");
      }
      if (existing->custom && Serialize(a) == Serialize(b)) {
        ++cc.unchanged;
        continue;
      }
      return Fail(req, MakeError(Code::kConflict,
                                 "The connector '" + parsed->key +
                                     "' exists here with a different definition",
                                 "Give the imported connector another key, or leave it out."));
    }
    new_connectors.push_back(std::move(*parsed));
  }
  auto connector_known = [&](const std::string& key) {
    if (FindConnector(ws, key)) return true;
    return std::any_of(new_connectors.begin(), new_connectors.end(),
                       [&](const auto& c) { return c.key == key; });
  };
  struct IntegrationWrite {
    store::IntegrationRecord record;
    bool create = false;
  };
  std::vector<IntegrationWrite> integration_writes;
  std::map<std::string, std::string> integration_ids;  // key -> id (existing or new)
  for (std::size_t n = 0; n < integrations->size(); ++n) {
    std::string where = "integrations[" + std::to_string(n) + "]";
    const json::value& v = (*integrations)[n];
    if (!v.is_object()) return Fail(req, InvalidField(where, "must be an object"));
    const json::object& o = v.as_object();
    if (Status s = OnlyFields(o, {"key", "name", "connectorKey", "parameters"}); !s.ok()) {
      return Fail(req, s.take_error());
    }
    auto key = StringField(o, "key", 100);
    if (!key.ok()) return Fail(req, key.take_error());
    if (!*key || !ValidKey(**key)) return Fail(req, InvalidField(where + ".key", "must be a key"));
    auto name = StringField(o, "name", 200);
    if (!name.ok()) return Fail(req, name.take_error());
    auto connector_key = StringField(o, "connectorKey", 100);
    if (!connector_key.ok()) return Fail(req, connector_key.take_error());
    if (!*connector_key || !connector_known(**connector_key)) {
      return Fail(req, MakeError(Code::kConnectorNotFound,
                                 where + ".connectorKey names no connector here or in the file"));
    }
    if (integration_ids.count(**key)) {
      return Fail(req, InvalidField(where + ".key", "repeats '" + **key + "'"));
    }
    store::IntegrationRecord record;
    auto existing = store_.FindIntegration(ws, **key);
    if (!existing.ok()) return Fail(req, existing.take_error());
    bool create = !existing->has_value();
    if (create) {
      record.id = NewId(random_, "int_");
      record.workspace_id = ws;
      record.key = **key;
      record.created_at_ms = now;
    } else {
      record = **existing;
      if (record.connector_key != **connector_key) {
        return Fail(req, MakeError(Code::kConflict,
                                   "The integration '" + **key + "' exists here on another "
                                   "connector ('" + record.connector_key + "')"));
      }
    }
    std::string before = record.name + "\n" + record.parameters_json + "\n" +
                         (record.archived_at_ms ? "a" : "");
    record.name = name->value_or(**key);
    record.connector_key = **connector_key;
    if (const json::value* p = o.if_contains("parameters"); p && !p->is_null()) {
      if (!p->is_object()) return Fail(req, InvalidField(where + ".parameters", "must be an object"));
      json::object params = p->as_object();
      if (params.contains("clientSecret")) {
        return Fail(req, InvalidField(where + ".parameters.clientSecret",
                                      "is a secret: set it with PATCH "
                                      "/integrations/:id/parameters, not in an import"));
      }
      // Validated as PATCH /integrations/:id/parameters would.
      auto checked = ParseParameters(params, record);
      if (!checked.ok()) return Fail(req, checked.take_error());
      record.parameters_json = std::move(*checked);
    }
    record.archived_at_ms.reset();
    std::string after = record.name + "\n" + record.parameters_json + "\n";
    if (!create && before == after) {
      ++ic.unchanged;
    } else {
      record.updated_at_ms = now;
      (create ? ic.created : ic.updated)++;
      integration_writes.push_back({record, create});
    }
    integration_ids[**key] = record.id;
  }
  struct ActionWrite {
    store::ActionRecord record;
    bool create = false;
  };
  std::vector<ActionWrite> action_writes;
  std::set<std::pair<std::string, std::string>> seen_actions;
  for (std::size_t n = 0; n < actions->size(); ++n) {
    std::string where = "actions[" + std::to_string(n) + "]";
    const json::value& v = (*actions)[n];
    if (!v.is_object()) return Fail(req, InvalidField(where, "must be an object"));
    json::object o = v.as_object();
    auto integration_key = StringField(o, "integrationKey", 100);
    if (!integration_key.ok()) return Fail(req, integration_key.take_error());
    o.erase("integrationKey");
    if (Status s = OnlyFields(o, {"key", "name", "description", "type", "config", "inputSchema",
                                  "outputSchema"});
        !s.ok()) {
      return Fail(req, s.take_error());
    }
    store::ActionRecord incoming;
    incoming.workspace_id = ws;
    if (Status s = ParseActionFields(o, incoming, false); !s.ok()) {
      Error e = s.take_error();
      e.message = where + ": " + std::string(e.Message());
      return Fail(req, std::move(e));
    }
    if (incoming.key.empty()) return Fail(req, MissingFields({where + ".key"}));
    std::string integration_id;
    if (*integration_key) {
      auto it = integration_ids.find(**integration_key);
      if (it != integration_ids.end()) {
        integration_id = it->second;
      } else {
        auto i = store_.FindIntegration(ws, **integration_key);
        if (!i.ok()) return Fail(req, i.take_error());
        if (!i->has_value()) {
          return Fail(req, MakeError(Code::kIntegrationNotFound,
                                     where + ".integrationKey names no integration here or in "
                                             "the file"));
        }
        integration_id = (*i)->id;
      }
    }
    if (!seen_actions.insert({incoming.key, integration_id}).second) {
      return Fail(req, InvalidField(where + ".key", "repeats '" + incoming.key + "'"));
    }
    store::ActionFilter f;
    f.workspace_id = ws;
    f.key = incoming.key;
    f.limit = 1000;
    auto list = store_.ListActions(f);
    if (!list.ok()) return Fail(req, list.take_error());
    auto same = std::find_if(list->begin(), list->end(), [&](const auto& a) {
      return a.connection_id.empty() && a.integration_id == integration_id;
    });
    store::ActionRecord record;
    bool create = same == list->end();
    if (create) {
      record = incoming;
      record.id = NewId(random_, "act_");
      record.integration_id = integration_id;
      record.created_at_ms = record.updated_at_ms = now;
      ++ac.created;
      action_writes.push_back({record, true});
      continue;
    }
    record = *same;
    bool changed = record.name != incoming.name || record.description != incoming.description ||
                   record.type != incoming.type || record.config_json != incoming.config_json ||
                   record.input_schema_json != incoming.input_schema_json ||
                   record.output_schema_json != incoming.output_schema_json;
    if (!changed) {
      ++ac.unchanged;
      continue;
    }
    record.name = incoming.name;
    record.description = incoming.description;
    record.type = incoming.type;
    record.config_json = incoming.config_json;
    record.input_schema_json = incoming.input_schema_json;
    record.output_schema_json = incoming.output_schema_json;
    record.updated_at_ms = now;
    ++ac.updated;
    action_writes.push_back({record, false});
  }

  // Write. Each write is its own transaction; a failure half-way is reported and a retry of the
  // same import completes it (matching is by key).
  store::Effects none;
  for (auto& c : new_connectors) {
    c.id = NewId(random_, "cnr_");
    c.custom = true;
    store::ConnectorRecord record;
    record.id = c.id;
    record.workspace_id = ws;
    record.key = c.key;
    json::object spec = engine::ConnectorToJson(c);
    spec.erase("id");
    spec.erase("custom");
    record.spec_json = Serialize(spec);
    record.created_at_ms = record.updated_at_ms = now;
    if (Status s = store_.InsertConnector(record, none); !s.ok()) return Fail(req, s.take_error());
    ++cc.created;
    EngineState& e = Engine();
    std::unique_lock lock(e.mu);
    e.custom[ws].push_back(c);
  }
  for (const auto& w : integration_writes) {
    Status s = w.create ? store_.InsertIntegration(w.record, none)
                        : store_.UpdateIntegration(w.record, none);
    if (!s.ok()) return Fail(req, s.take_error());
  }
  for (const auto& w : action_writes) {
    Status s = w.create ? store_.InsertAction(w.record, none) : store_.UpdateAction(w.record, none);
    if (!s.ok()) return Fail(req, s.take_error());
  }
  RecordNow(req, call, 200);
  auto counts = [](const Counts& c) {
    json::object o;
    o["created"] = c.created;
    o["updated"] = c.updated;
    o["unchanged"] = c.unchanged;
    return o;
  };
  json::object out;
  out["connectors"] = counts(cc);
  out["integrations"] = counts(ic);
  out["actions"] = counts(ac);
  call.target = ws;
  return Json(200, Serialize(out));
}

}  // namespace agentgate::api
