#include "mcp/tools.h"

#include <array>
#include <optional>
#include <set>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace agentgate::mcp {

namespace {

// The registry. Names of the AgentPass reference's five tools are kept as it gives them.
constexpr std::array kToolSpecs = {
    ToolSpec{"register_agent", "Register an agent", "registerAgent",
             "Register a new AI agent. Returns its agent_id and its secret; the secret is shown "
             "once only, so keep it. With an access token, the agent is owned by the token's "
             "person.",
             false, false, false},
    ToolSpec{"check_permission", "Check a permission", "checkPermissionWithContext",
             "Check whether an agent may perform an action now. Call before every action. "
             "Optional `context` (e.g. {\"amount\": 40}) is checked against the grant's scope "
             "(max_<field>, allowed_<field>). An agent calling with its own secret may leave "
             "out agent_id.",
             true, false, true, "agent_id"},
    ToolSpec{"grant_permission", "Grant a permission", "grantPermission",
             "Grant an agent permission to perform an action, optionally limited by scope "
             "(max_<field>, allowed_<field>) and an expiry. Needs a person's credential (an "
             "access token with permission:grant).",
             false, false, false},
    ToolSpec{"revoke_permission", "Revoke a permission", "revokePermission",
             "Revoke permissions immediately: one grant by permission_id, or every grant of an "
             "agent for an action. The next check is denied.",
             false, true, true},
    ToolSpec{"get_agent_status", "Get an agent's status", "getAgent",
             "Get an agent's profile and its active permissions. An agent calling with its own "
             "secret may leave out agent_id.",
             true, false, true, "agent_id"},
    ToolSpec{"list_agents", "List your agents", "listAgents",
             "List the agents the caller has to do with, newest first: those registered with "
             "their email (owned) and those they have granted something to (granted), with "
             "status, last_seen and the count of their active grants. `relation` picks one "
             "kind; page with `cursor`.",
             true, false, true},
    ToolSpec{"list_permissions", "List permissions", "listPermissions",
             "List the grants the caller made (admins: all grants), optionally for one agent "
             "and by status.",
             true, false, true},
    ToolSpec{"request_permission", "Ask a person for a permission", "createPermissionRequest",
             "An agent that lacks a grant asks a person for it, with a reason (and optionally the "
             "scope and expires_in it needs, and whom to ask by email; by default the person who "
             "granted it before). The person is emailed and approves or declines; poll "
             "get_permission_request for the outcome. Asking again while the same request is "
             "pending returns it. Needs the agent's own secret; agent_id may be left out.",
             false, false, false, "agent_id"},
    ToolSpec{"get_permission_request", "Get a permission request", "getPermissionRequest",
             "One permission request and its status (pending, approved with the grant in "
             "`permission`, declined with decline_reason, or expired). For the agent that asked, "
             "the person asked, or an admin.",
             true, false, true},
    ToolSpec{"list_permission_requests", "List permission requests", "listPermissionRequests",
             "The permission requests addressed to the caller (an agent: its own), newest first; "
             "filter by status (pending, approved, declined, expired) and agent_id.",
             true, false, true},
    ToolSpec{"approve_permission_request", "Approve a permission request",
             "approvePermissionRequest",
             "Approve a pending request addressed to the caller: the grant is made. scope, "
             "expires_in and metadata, when given, replace what the agent asked for (null = "
             "none), e.g. a lower max_ or a shorter expiry. Needs permission:grant.",
             false, false, false},
    ToolSpec{"decline_permission_request", "Decline a permission request",
             "declinePermissionRequest",
             "Decline a pending request addressed to the caller, optionally with a reason the "
             "agent sees. Needs permission:grant.",
             false, false, false},
    ToolSpec{"list_activity", "List activity", "listActivity",
             "List activity events (every API and MCP call, check and change), newest first, "
             "with filters and cursor paging.",
             true, false, true},
    ToolSpec{"create_token", "Create an access token", "createToken",
             "Mint a personal access token with the given abilities (never more than the "
             "caller's own). The token is shown once only.",
             false, false, false},
    ToolSpec{"list_tokens", "List access tokens", "listTokens",
             "List the caller's access tokens (never their values).", true, false, true},
    ToolSpec{"revoke_token", "Revoke an access token", "revokeToken",
             "Revoke an access token; it stops working at once.", false, true, true},
    ToolSpec{"create_webhook", "Create a webhook endpoint", "createWebhook",
             "Create a webhook endpoint that receives signed events (Standard Webhooks). The "
             "signing secret is shown once only.",
             false, false, false},
    ToolSpec{"list_webhooks", "List webhook endpoints", "listWebhooks",
             "List the caller's webhook endpoints.", true, false, true},
    ToolSpec{"get_webhook", "Get a webhook endpoint", "getWebhook", "Get one webhook endpoint.",
             true, false, true},
    ToolSpec{"update_webhook", "Update a webhook endpoint", "updateWebhook",
             "Change a webhook endpoint's URL, description, events or enabled state.", false,
             false, true},
    ToolSpec{"delete_webhook", "Delete a webhook endpoint", "deleteWebhook",
             "Delete a webhook endpoint; its pending messages are dropped.", false, true, true},
    ToolSpec{"rotate_webhook_secret", "Rotate a webhook secret", "rotateWebhookSecret",
             "Issue a new signing secret; the old one keeps signing during the overlap.", false,
             false, false},
    ToolSpec{"test_webhook", "Send a test event", "testWebhook",
             "Queue a webhook.test event to the endpoint.", false, false, false},
    ToolSpec{"list_webhook_deliveries", "List webhook delivery attempts", "listWebhookDeliveries",
             "List delivery attempts to an endpoint, newest first.", true, false, true},
    ToolSpec{"list_webhook_messages", "List webhook messages", "listWebhookMessages",
             "List the messages queued for an endpoint, newest first.", true, false, true},
    ToolSpec{"replay_webhook_message", "Replay a webhook message", "replayWebhookMessage",
             "Deliver a message to the endpoint again.", false, false, false},
    ToolSpec{"get_stats", "Get statistics", "stats",
             "Counters: agents registered, grants made, checks today and in total.", true, false,
             true},
    // The integration engine; names as the Membrane document gives them.
    ToolSpec{"get-credentials", "Get workspace credentials", "getCredentials",
             "The API URL, workspace key, workspace secret and the caller's tenant key, to sign "
             "tenant tokens (HS256 JWT {workspaceKey, tenantKey}) in a backend. Admins and "
             "manager tokens only. If tokens start failing with 401, the secret was rotated: "
             "call this again.",
             true, false, true},
    ToolSpec{"get-token", "Mint a tenant token", "mintTenantToken",
             "Mint a short-lived tenant token (HS256 JWT) for Authorization: Bearer. tenantKey "
             "names the isolated scope of connections (default: the caller's own); manager: "
             "true mints a workspace manager token (managers only); expiresIn like \"5m\" or "
             "\"1h\" (default 1h, at most 24h).",
             false, false, false},
    ToolSpec{"rotate-workspace-secret", "Rotate the workspace secret", "rotateWorkspaceSecret",
             "Replace the workspace secret; every token signed with the old one stops working "
             "at once. Returns the new credentials.",
             false, true, false},
    ToolSpec{"rotate-master-key", "Rotate the master encryption key", "rotateMasterKey",
             "Make a new master key current and re-encrypt every stored secret (webhook "
             "secrets, workspace secrets, OAuth client secrets, connection credentials) under "
             "it.",
             false, false, false},
    ToolSpec{"list-connectors", "List connectors", "listConnectors",
             "The connector catalogue (shipped and the workspace's own): how each app "
             "authenticates and its base URL. Filter with search.",
             true, false, true},
    ToolSpec{"create-connector", "Create a custom connector", "createConnector",
             "Define a workspace connector (the format of the shipped ones: key, name, baseUrl, "
             "auth {type: oauth2 | oauth2_client_credentials | api_key | basic, ...}). Managers "
             "only.",
             false, false, false},
    ToolSpec{"list-integrations", "List integrations", "listIntegrations",
             "Browse what can be connected: the workspace's integrations, plus (connectors=1 "
             "or externalApps=1) catalogue connectors without one yet. Each item's key, "
             "connectorKey or id can be passed to connect.",
             true, false, true},
    ToolSpec{"create-integration", "Create an integration", "createIntegration",
             "Create an integration for a connector, optionally with its OAuth client "
             "(parameters: clientId, clientSecret, scopes). Managers only.",
             false, false, false},
    ToolSpec{"get-integration", "Get an integration", "getIntegration",
             "One integration by id or key.", true, false, true},
    ToolSpec{"update-integration", "Update an integration", "updateIntegration",
             "Rename an integration or change its key. Managers only.", false, false, true},
    ToolSpec{"archive-integration", "Archive an integration", "archiveIntegration",
             "Archive an integration: it is hidden and cannot be connected until restored. "
             "Managers only.",
             false, true, true},
    ToolSpec{"restore-integration", "Restore an integration", "restoreIntegration",
             "Restore an archived integration. Managers only.", false, false, true},
    ToolSpec{"get-integration-parameters", "Get integration parameters",
             "getIntegrationParameters",
             "An integration's OAuth client id and scopes, and whether a client secret is set "
             "(the secret itself is never shown). Managers only.",
             true, false, true},
    ToolSpec{"update-integration-parameters", "Set integration parameters",
             "updateIntegrationParameters",
             "Set an integration's OAuth clientId, clientSecret and scopes. Managers only.",
             false, false, true},
    ToolSpec{"list-connections", "List connections", "listConnections",
             "The tenant's connections (id, key, state, integration). Check here before asking "
             "a person to connect again.",
             true, false, true},
    ToolSpec{"connect", "Connect an app", "connect",
             "Create a connection (by integrationKey, integrationId, connectorKey or "
             "connectorId, with an optional connectionKey), or reconnect one (connectionId). "
             "API keys may be passed as credentials. Returns the connection; while a person "
             "must sign in, clientAction.uiUrl is the page to open.",
             false, false, false},
    ToolSpec{"get-connection", "Get a connection", "getConnection",
             "One of the tenant's connections by id or key, with its state.", true, false, true},
    ToolSpec{"update-connection", "Rename a connection", "updateConnection",
             "Change a connection's name.", false, false, true},
    ToolSpec{"delete-connection", "Delete a connection", "archiveConnection",
             "Archive a connection: it leaves list-connections and act can no longer use it. "
             "restore-connection brings it back.",
             false, true, true},
    ToolSpec{"restore-connection", "Restore a connection", "restoreConnection",
             "Restore an archived connection.", false, false, true},
    ToolSpec{"refresh-connection", "Refresh a connection's token", "refreshConnection",
             "Refresh an OAuth connection's access token now. A refresh the provider refuses "
             "for good marks the connection DISCONNECTED (reconnect it with connect "
             "{connectionId}).",
             false, false, false},
    ToolSpec{"act", "Run an action or a request through a connection", "act",
             "Run an action ({key | id, input}) or send one inline HTTP request ({api: {method, "
             "path, query, headers, body}}) through a connection (connectionKey | connectionId; "
             "default: the tenant's only one, of integrationKey when given). Credentials are "
             "injected; paths are relative to the connector's base URL. Returns {output, "
             "actionRunId, status, connectionId}; every error carries actionRunId too. An agent "
             "may run only actions it holds a grant for (key = the grant's action), within its "
             "scope: a refusal is permission_denied naming the constraint.",
             false, false, false},
    ToolSpec{"list-actions", "List actions", "listActions",
             "The actions that can run: filter by connectionId or connectionKey (those usable "
             "through that connection), integrationKey or externalAppId; intent (\"refund a "
             "charge\") ranks them by relevance. Each has a key, an inputSchema and a "
             "description; run one with act {key, input}.",
             true, false, true},
    ToolSpec{"get-action", "Get an action", "getAction",
             "One action by id or key (hints integrationKey or connectionId pick among actions "
             "that share a key), with its inputSchema and request template.",
             true, false, true},
    ToolSpec{"create-action", "Create an action", "createAction",
             "Define a reusable request: key, name, description, config.request {method, path, "
             "query, headers, body} with {{input.field}} placeholders, inputSchema; universal, "
             "or scoped by integrationKey or connectionId. Managers only.",
             false, false, false},
    ToolSpec{"update-action", "Update an action", "updateAction",
             "Change an action's key, name, description, config or schemas (a merge; null "
             "clears a schema). Its scope never changes. Managers only.",
             false, false, true},
    ToolSpec{"delete-action", "Delete an action", "deleteAction",
             "Archive an action: it leaves list-actions and no longer runs. Managers only.", false,
             true, true},
    ToolSpec{"run-action", "Run an action", "runAction",
             "Run the action named by selector (id or key) with input, through a connection "
             "(connectionKey | connectionId; default: the tenant's only one). As act with key.",
             false, false, false},
    ToolSpec{"get-action-run-log", "Get an action run", "getActionRunLog",
             "One run by its actionRunId: status, action, connection, input, output or error, "
             "timings; includeDetails=true adds the HTTP exchanges with every credential "
             "redacted.",
             true, false, true},
    ToolSpec{"list-action-run-logs", "List action runs", "listActionRunLogs",
             "Runs of act and run-action, newest first; filter by actionId, connectionId, "
             "agentId or status (success | error).",
             true, false, true},
    ToolSpec{"export-workspace", "Export the workspace", "exportWorkspace",
             "The workspace's custom connectors, integrations and actions as one JSON document, "
             "without secrets, for import-workspace elsewhere. Managers only.",
             true, false, true},
    ToolSpec{"import-workspace", "Import into the workspace", "importWorkspace",
             "Add or change connectors, integrations and actions from an export-workspace "
             "document (matched by key; nothing deleted; all or nothing). Managers only.",
             false, false, true},
};

const std::set<std::string_view> kOpenApiOnlyKeywords = {"example", "discriminator", "xml",
                                                         "externalDocs"};

http::Method MethodOf(std::string_view name) {
  if (name == "post") return http::Method::kPost;
  if (name == "put") return http::Method::kPut;
  if (name == "patch") return http::Method::kPatch;
  if (name == "delete") return http::Method::kDelete;
  return http::Method::kGet;
}

const json::value* Resolve(const json::value& v, const json::value& root);

// Input schemas are read by models, and some providers' dialects take one `type` only: a
// nullable argument (["object", "null"]) becomes its plain type. Nothing is lost, as a null
// argument is treated as an absent one (McpServer drops it before validating). Only arguments
// (the top level's properties) lose it: a null deeper down is sent as it is, and must stay valid.
void DropNullTypes(json::value& schema, bool top = true) {
  json::object* o = schema.if_object();
  if (!o) return;
  if (json::value* type = o->if_contains("type"); !top && type && type->is_array()) {
    json::array kept;
    for (const auto& t : type->get_array()) {
      if (!(t.is_string() && t.get_string() == "null")) kept.push_back(t);
    }
    if (kept.size() == 1) {
      *type = kept[0];
    } else if (kept.size() != type->get_array().size()) {
      *type = std::move(kept);
    }
  }
  if (json::value* props = o->if_contains("properties"); props && props->is_object()) {
    if (top) {
      for (auto& [name, sub] : props->get_object()) DropNullTypes(sub, false);
    }
  }
}

json::value Inline(const json::value& schema, const json::value& root, int depth) {
  if (depth > 32) return json::object{};  // a cycle: the rest stays unconstrained
  if (schema.is_array()) {
    json::array out;
    for (const auto& v : schema.get_array()) out.push_back(Inline(v, root, depth + 1));
    return out;
  }
  if (!schema.is_object()) return schema;
  const json::object& o = schema.get_object();
  json::object out;
  if (o.contains("$ref")) {
    // "#/components/schemas/Name": follow it, then let siblings (say, a description) override.
    const json::value* target = Resolve(schema, root);
    if (target != &schema) {
      json::value resolved = Inline(*target, root, depth + 1);
      if (resolved.is_object()) out = resolved.get_object();
    }
  }
  for (const auto& [key, v] : o) {
    if (key == "$ref" || kOpenApiOnlyKeywords.count(key) > 0) continue;
    if (key == "properties" && v.is_object()) {
      json::object props;  // property names are data, never keywords to drop
      for (const auto& [name, sub] : v.get_object()) props[name] = Inline(sub, root, depth + 1);
      out[key] = std::move(props);
    } else {
      out[key] = Inline(v, root, depth + 1);
    }
  }
  return out;
}

const json::value* Resolve(const json::value& v, const json::value& root) {
  if (!v.is_object()) return &v;
  const json::value* ref = v.get_object().if_contains("$ref");
  if (!ref || !ref->is_string()) return &v;
  std::string_view path = ref->get_string();
  if (path.substr(0, 2) != "#/") return &v;  // only local references
  boost::system::error_code ec;
  const json::value* target = root.find_pointer(path.substr(1), ec);
  return target ? target : &v;
}

}  // namespace

std::span<const ToolSpec> ToolSpecs() { return kToolSpecs; }

Result<ToolRegistry> ToolRegistry::FromOpenApi(std::string_view openapi_json) {
  boost::system::error_code ec;
  json::value root = json::parse(openapi_json, ec);
  if (ec || !root.is_object() || !root.get_object().contains("paths")) {
    return MakeError(Code::kServerError, "The embedded OpenAPI document cannot be read");
  }
  const json::object& document = root.get_object();
  const json::value& doc = root;
  json::value error_schema =
      Inline(json::object{{"$ref", "#/components/schemas/Error"}}, doc, 0);
  if (!error_schema.is_object() || error_schema.get_object().empty()) {
    return MakeError(Code::kServerError, "The OpenAPI document lacks components.schemas.Error");
  }
  ToolRegistry registry;
  for (const ToolSpec& spec : kToolSpecs) {
    Tool tool;
    tool.spec = &spec;
    const json::object* operation = nullptr;
    const json::object* path_item = nullptr;
    for (const auto& [path, item] : document.at("paths").get_object()) {
      if (!item.is_object()) continue;
      for (const auto& [method, op] : item.get_object()) {
        const json::value* id = op.is_object() ? op.get_object().if_contains("operationId") : nullptr;
        if (id && id->is_string() && id->get_string() == spec.operation_id) {
          operation = &op.get_object();
          path_item = &item.get_object();
          tool.method = MethodOf(method);
          tool.path = std::string(path);
        }
      }
    }
    if (!operation) {
      return MakeError(Code::kServerError, "MCP tool " + std::string(spec.name) +
                                               " names operation " + std::string(spec.operation_id) +
                                               ", which the OpenAPI document lacks");
    }

    json::object properties;
    json::array required;
    auto add_parameters = [&](const json::value* list) {
      if (!list || !list->is_array()) return;
      for (const auto& p : list->get_array()) {
        const json::value* param = Resolve(p, root);
        if (!param->is_object()) continue;
        const json::object& po = param->get_object();
        std::string in(po.at("in").as_string());
        std::string name(po.at("name").as_string());
        if (in != "path" && in != "query") continue;
        json::value schema = po.contains("schema") ? Inline(po.at("schema"), doc, 0)
                                                   : json::value(json::object{});
        if (schema.is_object() && po.contains("description")) {
          schema.get_object()["description"] = po.at("description");
        }
        properties[name] = std::move(schema);
        bool is_required = in == "path" || (po.contains("required") && po.at("required") == true);
        if (is_required && name != spec.self_agent_field) required.emplace_back(name);
        (in == "path" ? tool.path_params : tool.query_params).push_back(name);
      }
    };
    add_parameters(path_item->if_contains("parameters"));
    add_parameters(operation->if_contains("parameters"));
    if (const json::value* body = operation->if_contains("requestBody")) {
      const json::value* schema = body->is_object() ? body->get_object().if_contains("content") : nullptr;
      if (schema && schema->is_object() && schema->get_object().contains("application/json")) {
        tool.has_body = true;
        json::value inlined =
            Inline(schema->get_object().at("application/json").at("schema"), doc, 0);
        // The body's fields join the path and query fields. A body given as alternatives
        // (anyOf/oneOf of object shapes) contributes every branch's fields, and requires only
        // what all branches require: models' tool schemas must not start with a combinator,
        // and the route still refuses a body that fits no branch, with a structured error.
        auto add_fields = [&](const json::object& b, bool add_required) {
          if (const json::value* props = b.if_contains("properties"); props && props->is_object()) {
            for (const auto& [name, sub] : props->get_object()) properties[name] = sub;
          }
          const json::value* req = b.if_contains("required");
          if (!add_required || !req || !req->is_array()) return;
          for (const auto& name : req->get_array()) {
            if (name.is_string() && name.get_string() != spec.self_agent_field) {
              required.push_back(name);
            }
          }
        };
        if (inlined.is_object()) {
          const json::object& b = inlined.get_object();
          add_fields(b, true);
          for (std::string_view combinator : {"anyOf", "oneOf"}) {
            const json::value* branches = b.if_contains(combinator);
            if (!branches || !branches->is_array()) continue;
            std::optional<std::set<std::string>> common;
            for (const auto& branch : branches->get_array()) {
              if (!branch.is_object()) continue;
              add_fields(branch.get_object(), false);
              std::set<std::string> names;
              if (const json::value* req = branch.get_object().if_contains("required");
                  req && req->is_array()) {
                for (const auto& n : req->get_array()) {
                  if (n.is_string()) names.insert(std::string(n.get_string()));
                }
              }
              if (!common) {
                common = std::move(names);
              } else {
                std::set<std::string> both;
                for (const auto& n : names) {
                  if (common->count(n)) both.insert(n);
                }
                common = std::move(both);
              }
            }
            for (const auto& n : common.value_or(std::set<std::string>{})) {
              if (n != spec.self_agent_field) required.emplace_back(n);
            }
          }
        }
      }
    }
    json::object input;
    input["type"] = "object";
    input["properties"] = std::move(properties);
    if (!required.empty()) input["required"] = std::move(required);
    input["additionalProperties"] = false;
    tool.input_schema = input;
    DropNullTypes(tool.input_schema);
    input = tool.input_schema.get_object();

    // The output: the first 2xx response's JSON schema, as an object schema.
    json::object output;
    if (const json::value* responses = operation->if_contains("responses")) {
      for (const auto& [status, response] : responses->get_object()) {
        if (status.empty() || status[0] != '2') continue;
        const json::value* r = Resolve(response, root);
        const json::value* content = r->is_object() ? r->get_object().if_contains("content") : nullptr;
        if (!content || !content->is_object() || !content->get_object().contains("application/json")) {
          continue;
        }
        json::value schema =
            Inline(content->get_object().at("application/json").at("schema"), doc, 0);
        if (schema.is_object()) output = schema.get_object();
        break;
      }
    }
    // structuredContent is the endpoint's answer, or on isError its structured error: clients
    // (the official SDK among them) check every structuredContent against the outputSchema.
    json::object result_or_error;
    result_or_error["type"] = "object";  // MCP requires an object at the root
    result_or_error["description"] =
        "The endpoint's answer; when isError is true, agentgate's structured error instead.";
    json::array branches;
    output["type"] = "object";
    branches.push_back(std::move(output));
    branches.push_back(error_schema);
    result_or_error["anyOf"] = std::move(branches);
    output = std::move(result_or_error);

    json::object definition;
    definition["name"] = spec.name;
    definition["title"] = spec.title;
    definition["description"] = spec.description;
    definition["inputSchema"] = std::move(input);
    definition["outputSchema"] = std::move(output);
    json::object annotations;
    annotations["title"] = spec.title;
    annotations["readOnlyHint"] = spec.read_only;
    annotations["destructiveHint"] = spec.destructive;
    annotations["idempotentHint"] = spec.idempotent;
    annotations["openWorldHint"] = false;
    definition["annotations"] = std::move(annotations);
    tool.definition = std::move(definition);
    registry.tools_.push_back(std::move(tool));
  }
  return registry;
}

const Tool* ToolRegistry::Find(std::string_view name) const {
  for (const Tool& tool : tools_) {
    if (tool.spec->name == name) return &tool;
  }
  return nullptr;
}

namespace {

// Percent-encodes everything but RFC 3986 unreserved characters.
void AppendEncoded(std::string& out, std::string_view s) {
  out += boost::urls::encode(s, boost::urls::unreserved_chars);
}

std::string ScalarText(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  return Serialize(v);
}

}  // namespace

HttpCall ToolRegistry::ToHttpCall(const Tool& tool, const json::object& arguments) {
  HttpCall call;
  call.method = tool.method;
  std::string path = tool.path;
  for (const std::string& name : tool.path_params) {
    std::string placeholder = "{" + name + "}";
    std::string encoded;
    if (const json::value* v = arguments.if_contains(name)) AppendEncoded(encoded, ScalarText(*v));
    if (auto at = path.find(placeholder); at != std::string::npos) {
      path.replace(at, placeholder.size(), encoded);
    }
  }
  call.target = std::move(path);
  char separator = '?';
  for (const std::string& name : tool.query_params) {
    const json::value* v = arguments.if_contains(name);
    if (!v || v->is_null()) continue;
    auto add = [&](const json::value& item) {
      call.target += separator;
      separator = '&';
      AppendEncoded(call.target, name);
      call.target += '=';
      AppendEncoded(call.target, ScalarText(item));
    };
    if (v->is_array()) {
      for (const auto& item : v->get_array()) add(item);
    } else {
      add(*v);
    }
  }
  if (tool.has_body) {
    json::object body;
    for (const auto& [key, v] : arguments) {
      bool routed = false;
      for (const auto& p : tool.path_params) routed = routed || p == key;
      for (const auto& q : tool.query_params) routed = routed || q == key;
      if (!routed) body[key] = v;
    }
    call.body = Serialize(body);
  }
  return call;
}

}  // namespace agentgate::mcp
