// /mcp (Streamable HTTP) and /.well-known/mcp.json. Each tool call becomes an internal request
// to the tool's own route, so a tool enforces exactly what its HTTP endpoint enforces (access,
// abilities, validation, rate limits) and is logged the same way, with actor kind "mcp".
#include <algorithm>

#include "api/fields.h"
#include "api/service.h"
#include "core/json.h"

namespace agentgate::embedded {
extern const std::string_view kOpenApiJson;
}  // namespace agentgate::embedded

namespace agentgate::api {

namespace {

constexpr std::string_view kInstructions =
    "agentgate decides what AI agents may do. Before an action, call check_permission with the "
    "agent and the action (and a context for scoped grants); act only if allowed is true. "
    "People grant and revoke with grant_permission and revoke_permission. Every call is logged "
    "(list_activity).";

}  // namespace

// Runs tool calls for one /mcp request, with its credential and its request id.
class Service::McpToolHost final : public mcp::ToolHost {
 public:
  McpToolHost(Service& service, const http::Request& outer, const McpCaller& caller)
      : service_(service), outer_(outer), caller_(caller) {}

  http::Response Run(const mcp::Tool& tool, const mcp::HttpCall& call) override {
    (void)tool;
    std::string target = call.target;  // the inner request's views point into it
    http::Request inner;
    inner.method = call.method;
    inner.target = target;
    auto q = inner.target.find('?');
    inner.path = inner.target.substr(0, q);
    if (q != std::string_view::npos) inner.query = inner.target.substr(q + 1);
    inner.body = call.body;
    inner.content_type = call.body.empty() ? std::string_view() : "application/json";
    inner.authorization = outer_.authorization;
    inner.cookie = outer_.cookie;
    inner.host = outer_.host;
    // /mcp has checked the Origin; the inner request is the server's own, not a browser's.
    inner.user_agent = outer_.user_agent;
    inner.remote_ip = outer_.remote_ip;
    inner.request_id = outer_.request_id;
    inner.received_at_ns = SteadyNs();
    inner.via_mcp = true;
    http::Match match = service_.router_->Find(inner);
    if (!match.route) {
      return service_.Fail(inner, MakeError(Code::kServerError,
                                            "MCP tool route missing: " + std::string(inner.path)));
    }
    try {
      return match.route->handler(inner);
    } catch (const std::exception& e) {
      return service_.Fail(inner, MakeError(Code::kServerError,
                                            std::string("MCP tool call failed: ") + e.what()));
    }
  }

  std::string Refused(const mcp::Tool& tool, std::string_view message) override {
    store::ActivityEvent e;
    e.at_ms = service_.clock_.NowMs();
    e.actor_kind = "mcp";
    e.actor_id = caller_.principal;
    e.user_id = caller_.user_id;
    e.action = "mcp.tool_call";
    e.target = std::string(tool.spec->name);
    e.agent_id = caller_.agent_id;
    e.outcome = "error";
    e.status = 400;
    e.error = "invalid_field";
    e.request_id = outer_.request_id;
    e.ip = std::string(outer_.remote_ip);
    e.user_agent = ValidUtf8(outer_.user_agent, 256);
    e.order_ns = outer_.received_at_ns;
    e.latency_us = static_cast<std::int32_t>((SteadyNs() - outer_.received_at_ns) / 1000);
    service_.RecordLater(std::move(e));
    return http::ErrorResponse(MakeError(Code::kInvalidField, std::string(message),
                                         "Send arguments that match the tool's inputSchema "
                                         "(tools/list shows it)."),
                               outer_.request_id, service_.options_.base_url)
        .body;
  }

 private:
  Service& service_;
  const http::Request& outer_;
  const McpCaller& caller_;
};

void Service::RegisterMcpRoutes(http::Router& router) {
  using http::Dispatch;
  using http::Method;
  router_ = &router;
  auto tools = mcp::ToolRegistry::FromOpenApi(embedded::kOpenApiJson);
  if (!tools.ok()) {
    // A programming error (a registry entry naming a missing operation); the unit tests catch it.
    logger_.Error(std::string(tools.error().message));
    return;
  }
  mcp_tools_ = std::make_unique<mcp::ToolRegistry>(std::move(*tools));
  mcp::ServerInfo info;
  info.version = std::string(kVersion);
  info.instructions = std::string(kInstructions);
  mcp_ = std::make_unique<mcp::McpServer>(*mcp_tools_, std::move(info), random_, clock_);

  router.Add(Method::kPost, "/mcp", Dispatch::kBlocking,
             [this](http::Request& req) { return McpPost(req); });
  router.Add(Method::kDelete, "/mcp", Dispatch::kInline,
             [this](http::Request& req) { return McpDelete(req); });
  // No GET: this server sends no server-initiated messages, so there is no stream to open; the
  // router answers 405 with "Allow: POST, DELETE, OPTIONS", as the specification asks.
  router.Add(Method::kGet, "/.well-known/mcp.json", Dispatch::kInline,
             [this](http::Request& req) { return WellKnownMcp(req); });
}

http::Response Service::McpRefusal(const http::Request& req, int status, int rpc_code,
                                   std::string message, const Error* error) const {
  json::value data = nullptr;
  if (error) {
    http::Response structured = http::ErrorResponse(*error, req.request_id, options_.base_url);
    boost::system::error_code ec;
    data = json::parse(structured.body, ec);
    if (ec) data = nullptr;
  }
  http::Response r;
  r.status = status;
  r.body = mcp::RpcErrorBody(nullptr, rpc_code, message, data);
  return r;
}

Result<Service::McpCaller> Service::IdentifyMcp(const http::Request& req) {
  std::string_view bearer = http::BearerToken(req.authorization);
  std::int64_t now = clock_.NowMs();
  McpCaller caller;
  if (bearer.substr(0, kTokenPrefix.size()) == kTokenPrefix) {
    auto token = tokens_.Find(crypto::Sha256(bearer), now);
    if (!token) {
      return MakeError(Code::kUnauthorized, "The access token is invalid, expired or revoked",
                       "Mint a new token with POST /v1/tokens (or 'agentgate token create').");
    }
    caller.principal = token->id;
    caller.user_id = token->user_id;
    return caller;
  }
  if (!bearer.empty()) {
    auto agent = index_.AgentOfSecret(crypto::Sha256(bearer));
    if (!agent) {
      return MakeError(Code::kUnauthorized, "The bearer credential is not a valid agent secret",
                       "Send an agent's secret (sk_ap_…) or an access token (agt_…) as "
                       "'Authorization: Bearer …'.");
    }
    caller.principal = *agent;
    caller.agent_id = std::move(*agent);
    return caller;
  }
  if (!http::CookieValue(req.cookie, "ap_session").empty()) {
    auto session = RequireSession(req);
    if (!session.ok()) return session.take_error();
    caller.principal = session->user.id;
    caller.user_id = session->user.id;
    return caller;
  }
  return MakeError(Code::kUnauthorized, "The MCP endpoint needs a credential",
                   "Send 'Authorization: Bearer <access token or agent secret>'. Mint a token "
                   "with 'agentgate token create'.");
}

std::optional<http::Response> Service::McpGate(const http::Request& req, McpCaller& caller) {
  if (!mcp_) {
    return McpRefusal(req, 503, mcp::kInternalError, "The MCP server is not available");
  }
  if (!McpOriginAllowed(req)) {
    Error e = MakeError(Code::kForbidden,
                        "Origin " + std::string(req.origin.substr(0, 200)) +
                            " may not call /mcp",
                        "Call from the server's own origin or a local one, or start the server "
                        "with --mcp-origin " + std::string(req.origin.substr(0, 200)) + ".");
    return McpRefusal(req, 403, mcp::kBadRequest, "Forbidden: " + e.message, &e);
  }
  auto identified = IdentifyMcp(req);
  if (!identified.ok()) {
    Error e = identified.take_error();
    http::Response r = McpRefusal(req, 401, mcp::kBadRequest, "Unauthorized: " + e.message, &e);
    r.Header("WWW-Authenticate", req.authorization.empty()
                                     ? std::string("Bearer realm=\"agentgate\"")
                                     : std::string("Bearer realm=\"agentgate\", "
                                                   "error=\"invalid_token\""));
    return r;
  }
  caller = std::move(*identified);
  return std::nullopt;
}

http::Response Service::McpPost(http::Request& req) {
  McpCaller caller;
  if (auto refusal = McpGate(req, caller)) return std::move(*refusal);
  mcp::Incoming in;
  in.body = req.body;
  in.session_id = req.mcp_session_id;
  in.protocol_version = req.mcp_protocol_version;
  in.accept = req.accept;
  in.content_type = req.content_type;
  in.principal = caller.principal;
  in.agent_id = caller.agent_id;
  McpToolHost host(*this, req, caller);
  mcp::Outgoing out = mcp_->Post(in, host);
  http::Response r;
  r.status = out.status;
  r.body = std::move(out.body);
  r.content_type = std::move(out.content_type);
  if (!out.session_id.empty()) r.Header("Mcp-Session-Id", std::move(out.session_id));
  if (r.content_type == "text/event-stream") r.Header("Cache-Control", "no-cache");
  return r;
}

http::Response Service::McpDelete(http::Request& req) {
  McpCaller caller;
  if (auto refusal = McpGate(req, caller)) return std::move(*refusal);
  mcp::Incoming in;
  in.session_id = req.mcp_session_id;
  in.principal = caller.principal;
  mcp::Outgoing out = mcp_->Delete(in);
  http::Response r;
  r.status = out.status;
  r.body = std::move(out.body);
  r.content_type = std::move(out.content_type);
  return r;
}

http::Response Service::WellKnownMcp(const http::Request& req) const {
  (void)req;
  const std::string& base = options_.base_url;
  json::object doc;
  doc["name"] = "agentgate";
  doc["title"] = "agentgate";
  doc["version"] = kVersion;
  doc["description"] =
      "Permissions for AI agents: register agents, check before acting, grant and revoke, and "
      "see every call in the activity log.";
  doc["endpoint"] = base + "/mcp";
  doc["protocolVersion"] = mcp::kLatestProtocolVersion;
  doc["protocolVersions"] = json::array{"2025-11-25", "2025-06-18", "2025-03-26"};
  json::array transports;
  transports.push_back(json::object{{"type", "streamable-http"}, {"url", base + "/mcp"}});
  transports.push_back(json::object{
      {"type", "stdio"},
      {"command", "agentgate"},
      {"args", json::array{"mcp"}},
      {"env", json::object{{"AGENTGATE_URL", base},
                           {"AGENTGATE_TOKEN", "<access token or agent secret>"}}}});
  doc["transports"] = std::move(transports);
  doc["authentication"] = json::object{
      {"type", "bearer"},
      {"description",
       "An access token (agt_…, from 'agentgate token create') or an agent's secret (sk_ap_…) "
       "as 'Authorization: Bearer …'. Each tool needs the ability its API endpoint needs."}};
  doc["capabilities"] = json::object{{"tools", json::object{{"listChanged", false}}}};
  json::array tools;
  if (mcp_tools_) {
    for (const mcp::Tool& tool : mcp_tools_->tools()) {
      json::object t;
      t["name"] = tool.definition.at("name");
      t["title"] = tool.definition.at("title");
      t["description"] = tool.definition.at("description");
      t["annotations"] = tool.definition.at("annotations");
      tools.push_back(std::move(t));
    }
  }
  doc["tools"] = std::move(tools);
  doc["documentation"] = base + "/docs";  // the reference's "MCP" section
  http::Response r;
  r.body = Serialize(doc);
  r.Header("Cache-Control", "public, max-age=300");
  return r;
}

}  // namespace agentgate::api
