#include "cli/mcp_bridge.h"

#include <boost/json.hpp>
#include <istream>
#include <ostream>

#include "core/json.h"

namespace agentgate::cli {

namespace {

constexpr int kTransportError = -32000;

// The id of a request (serialized JSON), or nullopt for notifications, responses and garbage.
std::optional<std::string> RequestId(const json::value& message) {
  const json::object* m = message.if_object();
  if (!m || !m->contains("method")) return std::nullopt;
  const json::value* id = m->if_contains("id");
  if (!id || id->is_null()) return std::nullopt;
  return json::serialize(*id);
}

bool IsInitialize(const json::value& message) {
  const json::object* m = message.if_object();
  const json::value* method = m ? m->if_contains("method") : nullptr;
  return method && method->is_string() && method->get_string() == "initialize";
}

std::string ErrorLine(const std::string& id_json, int code, std::string_view message) {
  json::object error;
  error["code"] = code;
  error["message"] = message;
  json::object out;
  out["jsonrpc"] = "2.0";
  boost::system::error_code ec;
  out["id"] = json::parse(id_json, ec);
  if (ec) out["id"] = nullptr;
  out["error"] = std::move(error);
  return json::serialize(out);
}

}  // namespace

McpBridge::McpBridge(const HttpClient& http, BridgeOptions options, std::ostream& log)
    : http_(http), options_(std::move(options)), log_(log) {}

Result<HttpResponse> McpBridge::Post(std::string_view body) const {
  HttpRequest request;
  request.method = "POST";
  request.url = options_.endpoint;
  request.headers = {{"Content-Type", "application/json"},
                     {"Accept", "application/json, text/event-stream"}};
  if (!options_.authorization.empty()) {
    request.headers.emplace_back("Authorization", options_.authorization);
  }
  if (!options_.cookie.empty()) request.headers.emplace_back("Cookie", options_.cookie);
  if (!session_id_.empty()) request.headers.emplace_back("Mcp-Session-Id", session_id_);
  if (!protocol_version_.empty()) {
    request.headers.emplace_back("MCP-Protocol-Version", protocol_version_);
  }
  request.body = std::string(body);
  return http_.Send(request);
}

std::vector<std::string> McpBridge::Answers(const HttpResponse& response,
                                            const std::optional<std::string>& request_id) const {
  std::vector<std::string> payloads;
  std::string_view type = response.Header("Content-Type").value_or("");
  if (type.starts_with("text/event-stream")) {
    // Each event's data lines, joined, is one message.
    std::string data;
    std::string_view rest = response.body;
    while (!rest.empty()) {
      std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (!data.empty()) payloads.push_back(std::move(data));
        data.clear();
      } else if (line.starts_with("data:")) {
        std::string_view value = line.substr(5);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (!data.empty()) data += '\n';
        data += value;
      }
    }
    if (!data.empty()) payloads.push_back(std::move(data));
  } else if (!response.body.empty()) {
    payloads.push_back(response.body);
  }

  std::vector<std::string> lines;
  for (const std::string& payload : payloads) {
    boost::system::error_code ec;
    json::value answer = json::parse(payload, ec);
    if (ec) {
      if (request_id) {
        lines.push_back(ErrorLine(*request_id, kTransportError,
                                  "The agentgate server answered HTTP " +
                                      std::to_string(response.status) + " without JSON-RPC"));
      }
      continue;
    }
    // An error the HTTP layer raised (no session, bad credential) carries no id: give it the
    // request's, so the client can match it.
    if (json::object* o = answer.if_object(); o && request_id && o->contains("error") &&
                                              (!o->contains("id") || o->at("id").is_null())) {
      boost::system::error_code id_ec;
      (*o)["id"] = json::parse(*request_id, id_ec);
      lines.push_back(Serialize(answer));  // one line: Serialize never writes newlines
    } else if (payload.find_first_of("\r\n") != std::string::npos) {
      lines.push_back(Serialize(answer));
    } else {
      lines.push_back(payload);  // as the server wrote it
    }
  }
  if (lines.empty() && request_id && response.status >= 400) {
    lines.push_back(ErrorLine(*request_id, kTransportError,
                              "The agentgate server answered HTTP " +
                                  std::to_string(response.status)));
  }
  return lines;
}

bool McpBridge::Reinitialize() {
  if (initialize_line_.empty()) return false;
  session_id_.clear();
  protocol_version_.clear();
  auto response = Post(initialize_line_);
  if (!response.ok() || response->status != 200) return false;
  session_id_ = std::string(response->Header("Mcp-Session-Id").value_or(""));
  for (const std::string& line : Answers(*response, std::nullopt)) {
    boost::system::error_code ec;
    json::value answer = json::parse(line, ec);
    if (ec || !answer.is_object()) continue;
    const json::value* v = answer.get_object().if_contains("result");
    if (v && v->is_object()) {
      if (const json::value* pv = v->get_object().if_contains("protocolVersion");
          pv && pv->is_string()) {
        protocol_version_ = std::string(pv->get_string());
      }
    }
  }
  if (session_id_.empty()) return false;
  (void)Post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  log_ << "agentgate mcp: the server had lost the session; started a new one\n";
  return true;
}

std::vector<std::string> McpBridge::HandleLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  if (line.find_first_not_of(" \t") == std::string_view::npos) return {};

  boost::system::error_code ec;
  json::value message = json::parse(line, ec);
  std::optional<std::string> request_id;
  bool initialize = false;
  if (!ec) {
    request_id = RequestId(message);
    initialize = IsInitialize(message);
  }
  if (initialize) {
    // A new initialize starts a new session (the server binds the old one to no one).
    session_id_.clear();
    protocol_version_.clear();
  }
  // Anything that is not JSON goes to the server too: it answers with the parse error.
  auto response = Post(line);
  if (response.ok() && response->status == 404 && !session_id_.empty() && !initialize &&
      Reinitialize()) {
    response = Post(line);
  }
  if (!response.ok()) {
    log_ << "agentgate mcp: " << response.error().Message() << "\n";
    if (!request_id) return {};
    return {ErrorLine(*request_id, kTransportError,
                      "The agentgate server at " + options_.endpoint +
                          " could not be reached: " + std::string(response.error().Message()))};
  }
  if (response->status == 401) {
    log_ << "agentgate mcp: the server refused the credential (HTTP 401); set AGENTGATE_TOKEN "
            "to an access token (agt_…) or an agent secret (sk_ap_…)\n";
  }
  std::vector<std::string> lines = Answers(*response, request_id);
  if (initialize && response->status == 200) {
    session_id_ = std::string(response->Header("Mcp-Session-Id").value_or(""));
    initialize_line_ = std::string(line);
    for (const std::string& l : lines) {
      json::value answer = json::parse(l, ec);
      if (ec || !answer.is_object()) continue;
      const json::value* result = answer.get_object().if_contains("result");
      const json::value* pv = result && result->is_object()
                                  ? result->get_object().if_contains("protocolVersion")
                                  : nullptr;
      if (pv && pv->is_string()) protocol_version_ = std::string(pv->get_string());
    }
  }
  return lines;
}

void McpBridge::Close() {
  if (session_id_.empty()) return;
  HttpRequest request;
  request.method = "DELETE";
  request.url = options_.endpoint;
  if (!options_.authorization.empty()) {
    request.headers.emplace_back("Authorization", options_.authorization);
  }
  if (!options_.cookie.empty()) request.headers.emplace_back("Cookie", options_.cookie);
  request.headers.emplace_back("Mcp-Session-Id", session_id_);
  (void)http_.Send(request);
  session_id_.clear();
}

int RunMcpBridge(const HttpClient& http, BridgeOptions options, std::istream& in,
                 std::ostream& out, std::ostream& log) {
  McpBridge bridge(http, std::move(options), log);
  std::string line;
  while (std::getline(in, line)) {
    for (const std::string& answer : bridge.HandleLine(line)) {
      out << answer << '\n';
      out.flush();  // the client waits for each answer
    }
  }
  bridge.Close();
  return 0;
}

}  // namespace agentgate::cli
