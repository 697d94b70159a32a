// Request and Response as handlers see them: plain values, free of Beast, so handlers are plain
// functions that unit tests can call directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace agentgate::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

std::string_view MethodName(Method m);

// Header fields and the target are views into the connection's parsed message, which lives
// until the response has been written; a handler must not keep them beyond its own call.
struct Request {
  Method method = Method::kGet;
  std::string_view target;  // as received: path and query
  std::string_view path;    // part of target
  std::string_view query;   // part of target, without '?'
  std::string body;
  // The request headers handlers use (values as received; empty when absent).
  std::string_view authorization;
  std::string_view cookie;
  std::string_view origin;
  std::string_view host;
  std::string_view sec_fetch_site;
  std::string_view content_type;
  std::string_view user_agent;
  std::string_view idempotency_key;
  std::string_view remote_ip;
  // Read only for /mcp and /auth/verify.
  std::string_view accept;
  std::string_view mcp_session_id;
  std::string_view mcp_protocol_version;
  // Set when an MCP tool call runs this request through its route: the activity log then
  // records actor kind "mcp".
  bool via_mcp = false;
  std::string request_id;
  std::int64_t received_at_ns = 0;  // steady clock, for latency_ms
  // Path parameters filled by the router, e.g. {"agent_id", "ap_…"}.
  std::vector<std::pair<std::string_view, std::string>> params;

  std::string_view Param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Names are string literals (static storage); values are owned.
  std::vector<std::pair<std::string_view, std::string>> headers;

  Response& Header(std::string_view name, std::string value) {
    headers.emplace_back(name, std::move(value));
    return *this;
  }
};

// The error shape of DESIGN.md: {error, message, docs, remediation, request_id}.
Response ErrorResponse(const Error& error, std::string_view request_id,
                       std::string_view base_url);

// Parsed query string: percent-decoded key/value pairs in order.
class Query {
 public:
  explicit Query(std::string_view raw);
  // The value of key; nullopt when absent. A key given twice reports `repeated`.
  std::optional<std::string> Get(std::string_view key, bool* repeated = nullptr) const;
  bool valid() const { return valid_; }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
  bool valid_ = true;
};

// The value of a cookie in a Cookie header; empty when absent.
std::string_view CookieValue(std::string_view header, std::string_view name);

// The token of "Authorization: Bearer <token>"; empty when absent or another scheme.
std::string_view BearerToken(std::string_view header);

}  // namespace agentgate::http
