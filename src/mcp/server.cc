#include "mcp/server.h"

#include <algorithm>
#include <array>

#include "core/json_schema.h"

namespace agentgate::mcp {

namespace {

constexpr std::array<std::string_view, 3> kSupportedVersions = {"2025-11-25", "2025-06-18",
                                                                "2025-03-26"};
constexpr std::string_view kBatchVersion = "2025-03-26";  // the one revision with batches

json::object RpcError(const json::value& id, int code, std::string_view message,
                      const json::value& data = nullptr) {
  json::object error;
  error["code"] = code;
  error["message"] = message;
  if (!data.is_null()) error["data"] = data;
  json::object out;
  out["jsonrpc"] = "2.0";
  out["id"] = id;
  out["error"] = std::move(error);
  return out;
}

json::object RpcResult(const json::value& id, json::value result) {
  json::object out;
  out["jsonrpc"] = "2.0";
  out["id"] = id;
  out["result"] = std::move(result);
  return out;
}

bool ValidId(const json::value& id) { return id.is_string() || id.is_int64() || id.is_uint64(); }

// A message's kind, after the JSON-RPC 2.0 shape checks.
enum class Kind { kRequest, kNotification, kResponse, kInvalid };

struct Classified {
  Kind kind = Kind::kInvalid;
  json::value id;      // null unless valid
  std::string reason;  // for kInvalid
};

Classified Classify(const json::value& message) {
  Classified c;
  if (!message.is_object()) {
    c.reason = "a JSON-RPC message is a JSON object";
    return c;
  }
  const json::object& m = message.get_object();
  const json::value* id = m.if_contains("id");
  if (id && ValidId(*id)) c.id = *id;
  const json::value* version = m.if_contains("jsonrpc");
  if (!version || !version->is_string() || version->get_string() != "2.0") {
    c.reason = "\"jsonrpc\" must be \"2.0\"";
    return c;
  }
  if (const json::value* method = m.if_contains("method")) {
    if (!method->is_string() || method->get_string().empty()) {
      c.reason = "\"method\" must be a non-empty string";
      return c;
    }
    if (const json::value* params = m.if_contains("params"); params && !params->is_object()) {
      // MCP's params are always objects (JSON-RPC also allows arrays, which MCP never uses).
      c.reason = "\"params\" must be an object";
      return c;
    }
    if (!id) {
      c.kind = Kind::kNotification;
      return c;
    }
    if (!ValidId(*id)) {
      c.reason = "\"id\" must be a string or an integer";
      return c;
    }
    c.kind = Kind::kRequest;
    return c;
  }
  if ((m.contains("result") || m.contains("error")) && id && ValidId(*id)) {
    c.kind = Kind::kResponse;
    return c;
  }
  c.reason = "a message needs \"method\" (a request or notification) or \"result\"/\"error\" "
             "with an \"id\" (a response)";
  return c;
}

bool IsInitialize(const json::value& message) {
  const json::object* m = message.if_object();
  if (!m) return false;
  const json::value* method = m->if_contains("method");
  return method && method->is_string() && method->get_string() == "initialize";
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A tools/call result: the API's JSON answer as text and as structuredContent.
json::object ToolResult(const json::value& id, const std::string& body, bool is_error) {
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  json::object structured;
  if (!ec && parsed.is_object()) structured = std::move(parsed.get_object());
  json::object result;
  json::array content;
  content.push_back(json::object{{"type", "text"}, {"text", body}});
  result["content"] = std::move(content);
  if (!structured.empty()) result["structuredContent"] = std::move(structured);
  result["isError"] = is_error;
  return RpcResult(id, std::move(result));
}

}  // namespace

bool SupportedProtocolVersion(std::string_view version) {
  return std::find(kSupportedVersions.begin(), kSupportedVersions.end(), version) !=
         kSupportedVersions.end();
}

std::string RpcErrorBody(const json::value& id, int code, std::string_view message,
                         const json::value& data) {
  return Serialize(RpcError(id, code, message, data));
}

McpServer::McpServer(const ToolRegistry& tools, ServerInfo info, crypto::Random& random,
                     const Clock& clock, SessionLimits limits)
    : tools_(tools), info_(std::move(info)), random_(random), clock_(clock), limits_(limits) {
  for (const Tool& tool : tools_.tools()) tool_list_.push_back(tool.definition);
}

McpServer::Format McpServer::Negotiate(std::string_view accept) {
  if (Trim(accept).empty()) return Format::kJson;
  bool event_stream = false;
  while (!accept.empty()) {
    std::size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    std::string_view type = Trim(item.substr(0, item.find(';')));
    if (EqualsIgnoreCase(type, "application/json") || type == "*/*" ||
        EqualsIgnoreCase(type, "application/*")) {
      return Format::kJson;
    }
    if (EqualsIgnoreCase(type, "text/event-stream")) event_stream = true;
  }
  return event_stream ? Format::kEventStream : Format::kNone;
}

Outgoing McpServer::Reply(Format format, int status, std::string body) const {
  Outgoing out;
  out.status = status;
  if (body.empty()) return out;
  if (format == Format::kEventStream && status < 400) {
    // One event carrying the answer; the stream then ends. (Refusals stay plain JSON: they
    // answer the HTTP request, not a message of the stream.)
    out.content_type = "text/event-stream";
    out.body = "event: message\ndata: " + body + "\n\n";
  } else {
    out.content_type = "application/json";
    out.body = std::move(body);
  }
  return out;
}

std::size_t McpServer::session_count() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::string McpServer::NewSession(const std::string& principal, const std::string& version) {
  std::int64_t now = clock_.NowMs();
  std::string id = crypto::NewToken(random_, "mcs_");
  std::lock_guard lock(mu_);
  std::size_t mine = 0;
  auto oldest = sessions_.end(), my_oldest = sessions_.end();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_used_ms > limits_.idle_ms) {
      it = sessions_.erase(it);
      continue;
    }
    if (oldest == sessions_.end() || it->second.last_used_ms < oldest->second.last_used_ms) {
      oldest = it;
    }
    if (it->second.principal == principal) {
      ++mine;
      if (my_oldest == sessions_.end() ||
          it->second.last_used_ms < my_oldest->second.last_used_ms) {
        my_oldest = it;
      }
    }
    ++it;
  }
  if (mine >= limits_.max_per_principal && my_oldest != sessions_.end()) {
    sessions_.erase(my_oldest);
  } else if (sessions_.size() >= limits_.max_sessions && oldest != sessions_.end()) {
    sessions_.erase(oldest);
  }
  sessions_[id] = Session{principal, version, now};
  return id;
}

Outgoing McpServer::Initialize(const Incoming& in, Format format, const json::object& message) {
  json::value id = message.contains("id") ? message.at("id") : json::value();
  const json::object* params = nullptr;
  if (const json::value* p = message.if_contains("params")) params = p->if_object();
  const json::value* requested = params ? params->if_contains("protocolVersion") : nullptr;
  if (!requested || !requested->is_string()) {
    return Reply(format, 400,
                 RpcErrorBody(id, kInvalidParams,
                              "initialize needs params.protocolVersion (a string such as \"" +
                                  std::string(kLatestProtocolVersion) + "\")"));
  }
  // The client's revision when we speak it; otherwise ours, and the client decides.
  std::string version = SupportedProtocolVersion(requested->get_string())
                            ? std::string(requested->get_string())
                            : std::string(kLatestProtocolVersion);
  json::object result;
  result["protocolVersion"] = version;
  json::object tools;
  tools["listChanged"] = false;
  json::object capabilities;
  capabilities["tools"] = std::move(tools);
  result["capabilities"] = std::move(capabilities);
  json::object server;
  server["name"] = info_.name;
  server["title"] = info_.title;
  server["version"] = info_.version;
  result["serverInfo"] = std::move(server);
  if (!info_.instructions.empty()) result["instructions"] = info_.instructions;

  Outgoing out = Reply(format, 200, Serialize(RpcResult(id, std::move(result))));
  out.session_id = NewSession(in.principal, version);
  return out;
}

Outgoing McpServer::Post(const Incoming& in, ToolHost& host) {
  Format format = Negotiate(in.accept);
  if (format == Format::kNone) {
    return Reply(Format::kJson, 406,
                 RpcErrorBody(nullptr, kBadRequest,
                              "Not Acceptable: send 'Accept: application/json, "
                              "text/event-stream'"));
  }
  std::string_view type = Trim(in.content_type.substr(0, in.content_type.find(';')));
  if (!type.empty() && !EqualsIgnoreCase(type, "application/json")) {
    return Reply(format, 415,
                 RpcErrorBody(nullptr, kBadRequest,
                              "Unsupported Media Type: send 'Content-Type: application/json'"));
  }
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 64;
  json::value message = json::parse(in.body, ec, {}, options);
  if (ec) {
    return Reply(format, 400,
                 RpcErrorBody(nullptr, kParseError, "Parse error: the body is not valid JSON (" +
                                                         ec.message() + ")"));
  }

  bool batch = message.is_array();
  if (!batch && IsInitialize(message)) {
    Classified c = Classify(message);
    if (c.kind != Kind::kRequest) {
      return Reply(format, 400, RpcErrorBody(c.id, kInvalidRequest,
                                             "Invalid Request: " + (c.reason.empty()
                                                  ? std::string("initialize is a request and needs an \"id\"")
                                                  : c.reason)));
    }
    return Initialize(in, format, message.get_object());
  }
  if (batch) {
    for (const auto& m : message.get_array()) {
      if (IsInitialize(m)) {
        return Reply(format, 400,
                     RpcErrorBody(nullptr, kInvalidRequest,
                                  "Invalid Request: initialize must be sent alone, not in a batch"));
      }
    }
  }

  // Everything else belongs to a session.
  json::value id_for_errors = nullptr;
  if (!batch) id_for_errors = Classify(message).id;
  if (in.session_id.empty()) {
    return Reply(format, 400,
                 RpcErrorBody(id_for_errors, kBadRequest,
                              "Bad Request: Mcp-Session-Id header is required (send initialize "
                              "first; its answer carries the session id)"));
  }
  std::string session_id(in.session_id);
  std::string version;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session_id);
    std::int64_t now = clock_.NowMs();
    if (it != sessions_.end() && now - it->second.last_used_ms > limits_.idle_ms) {
      sessions_.erase(it);
      it = sessions_.end();
    }
    if (it == sessions_.end() || it->second.principal != in.principal) {
      return Reply(format, 404,
                   RpcErrorBody(id_for_errors, kSessionNotFound,
                                "Session not found: it ended, expired, or belongs to another "
                                "credential; send initialize to start a new one"));
    }
    it->second.last_used_ms = now;
    version = it->second.version;
  }
  if (!in.protocol_version.empty() && in.protocol_version != version) {
    std::string message_text =
        SupportedProtocolVersion(in.protocol_version)
            ? "Bad Request: MCP-Protocol-Version " + std::string(in.protocol_version) +
                  " differs from the session's negotiated version " + version
            : "Bad Request: Unsupported protocol version " +
                  std::string(in.protocol_version.substr(0, 40)) +
                  " (supported: 2025-11-25, 2025-06-18, 2025-03-26)";
    return Reply(format, 400, RpcErrorBody(id_for_errors, kBadRequest, message_text));
  }

  if (batch) {
    const json::array& messages = message.get_array();
    if (version != kBatchVersion) {
      return Reply(format, 400,
                   RpcErrorBody(nullptr, kInvalidRequest,
                                "Invalid Request: JSON-RPC batches are not part of protocol "
                                "version " + version + " (only 2025-03-26 had them); send one "
                                "message per request"));
    }
    if (messages.empty()) {
      return Reply(format, 400,
                   RpcErrorBody(nullptr, kInvalidRequest, "Invalid Request: an empty batch"));
    }
    json::array answers;
    for (const auto& m : messages) {
      if (auto answer = Handle(m, version, in, host)) answers.push_back(*answer);
    }
    if (answers.empty()) return Reply(format, 202, "");
    return Reply(format, 200, Serialize(answers));
  }
  auto answer = Handle(message, version, in, host);
  if (!answer) return Reply(format, 202, "");
  // A malformed message is the request's fault: 400, as for a parse error.
  bool invalid = answer->is_object() && answer->get_object().contains("error") &&
                 answer->get_object().at("error").at("code") == kInvalidRequest;
  return Reply(format, invalid ? 400 : 200, Serialize(*answer));
}

std::optional<json::value> McpServer::Handle(const json::value& message,
                                             const std::string& version, const Incoming& in,
                                             ToolHost& host) {
  Classified c = Classify(message);
  switch (c.kind) {
    case Kind::kInvalid:
      return RpcError(c.id, kInvalidRequest, "Invalid Request: " + c.reason);
    case Kind::kResponse:
      return std::nullopt;  // this server sends no requests; a stray response is ignored
    case Kind::kNotification:
      // initialized, cancelled, progress, roots changed: nothing to answer or to keep (tool calls
      // are answered as they come, so there is nothing to cancel).
      return std::nullopt;
    case Kind::kRequest:
      break;
  }
  const json::object& m = message.get_object();
  std::string_view method = m.at("method").get_string();
  static const json::object kNoParams;
  const json::object& params =
      m.contains("params") ? m.at("params").get_object() : kNoParams;
  if (method == "ping") return RpcResult(c.id, json::object{});
  if (method == "tools/list") {
    if (params.contains("cursor")) {
      return RpcError(c.id, kInvalidParams,
                      "Invalid params: unknown cursor (every tool fits on the first page)");
    }
    json::object result;
    result["tools"] = tool_list_;
    return RpcResult(c.id, std::move(result));
  }
  if (method == "tools/call") return CallTool(c.id, params, version, in, host);
  if (method == "initialize") {
    return RpcError(c.id, kInvalidRequest, "Invalid Request: this session is already initialized");
  }
  return RpcError(c.id, kMethodNotFound,
                  "Method not found: " + std::string(method.substr(0, 100)) +
                      " (this server offers tools: tools/list, tools/call, and ping)");
}

json::value McpServer::CallTool(const json::value& id, const json::object& params,
                                const std::string& version, const Incoming& in,
                                ToolHost& host) {
  const json::value* name = params.if_contains("name");
  if (!name || !name->is_string()) {
    return RpcError(id, kInvalidParams, "Invalid params: tools/call needs \"name\", a string");
  }
  const Tool* tool = tools_.Find(name->get_string());
  if (!tool) {
    return RpcError(id, kInvalidParams,
                    "Unknown tool: " + std::string(name->get_string().subview(0, 100)) +
                        " (tools/list names every tool)");
  }
  json::object arguments;
  if (const json::value* a = params.if_contains("arguments"); a && !a->is_null()) {
    if (!a->is_object()) {
      return RpcError(id, kInvalidParams, "Invalid params: \"arguments\" must be an object");
    }
    // A null argument is an absent one (tool schemas spell nullable fields as optional).
    for (const auto& [key, value] : a->get_object()) {
      if (!value.is_null()) arguments[key] = value;
    }
  }
  std::string_view self = tool->spec->self_agent_field;
  if (!self.empty() && !in.agent_id.empty() && !arguments.contains(self)) {
    arguments[self] = in.agent_id;
  }
  if (auto violation = ValidateAgainstSchema(tool->input_schema, arguments)) {
    std::string field = PointerToFieldName(violation->pointer);
    std::string text = "Invalid arguments for tool " + std::string(tool->spec->name) + ": " +
                       field + " " + violation->message;
    std::string body = host.Refused(*tool, text);
    if (version < std::string_view("2025-11-25")) {
      json::object data;
      data["field"] = field;
      data["reason"] = violation->message;
      return RpcError(id, kInvalidParams, text, data);
    }
    // From 2025-11-25 on, a tool error, so the model can read it and correct itself.
    return ToolResult(id, body, true);
  }

  http::Response r = host.Run(*tool, ToolRegistry::ToHttpCall(*tool, arguments));
  return ToolResult(id, r.body, r.status >= 400);
}

Outgoing McpServer::Delete(const Incoming& in) {
  if (in.session_id.empty()) {
    return Reply(Format::kJson, 400,
                 RpcErrorBody(nullptr, kBadRequest,
                              "Bad Request: Mcp-Session-Id header is required"));
  }
  std::lock_guard lock(mu_);
  auto it = sessions_.find(std::string(in.session_id));
  if (it == sessions_.end() || it->second.principal != in.principal) {
    return Reply(Format::kJson, 404,
                 RpcErrorBody(nullptr, kSessionNotFound, "Session not found"));
  }
  sessions_.erase(it);
  Outgoing out;
  out.status = 204;
  return out;
}

}  // namespace agentgate::mcp
