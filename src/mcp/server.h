// The MCP server: JSON-RPC 2.0 over Streamable HTTP (one POST, one answer), with sessions,
// protocol version negotiation, and the tools of a ToolRegistry. Transport-neutral: the API
// layer turns HTTP requests into Incoming values and Outgoing values into responses, and runs
// each tool call through the API's own route (its checks, errors and activity event) via a
// ToolHost. `agentgate mcp` (stdio) relays to this same server, so both transports behave alike.
//
// Protocol revisions: 2025-11-25 (latest), 2025-06-18 and 2025-03-26. Batches (JSON arrays) are
// accepted only in a 2025-03-26 session, as that revision allowed them; later revisions removed
// them. Invalid tool arguments are a tool error (isError) from 2025-11-25 on, and a -32602
// protocol error before, as each revision specifies.
//
// Thread safety: Post and Delete may be called from any thread; sessions live behind a mutex.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/json.h"
#include "core/time.h"
#include "crypto/random.h"
#include "http/message.h"
#include "mcp/tools.h"

namespace agentgate::mcp {

inline constexpr std::string_view kLatestProtocolVersion = "2025-11-25";
bool SupportedProtocolVersion(std::string_view version);

// JSON-RPC error codes used here.
enum RpcCode : int {
  kParseError = -32700,
  kInvalidRequest = -32600,
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kInternalError = -32603,
  kBadRequest = -32000,       // transport-level refusals (missing session id, bad header)
  kSessionNotFound = -32001,  // also used for 401: the credential is missing or invalid
};

// A JSON-RPC error response (id null when unknown), as one line of JSON.
std::string RpcErrorBody(const json::value& id, int code, std::string_view message,
                         const json::value& data = nullptr);

// One HTTP POST (or DELETE) to the MCP endpoint, as the server needs it.
struct Incoming {
  std::string_view body;
  std::string_view session_id;        // Mcp-Session-Id
  std::string_view protocol_version;  // MCP-Protocol-Version
  std::string_view accept;
  std::string_view content_type;
  std::string principal;  // who calls, e.g. "tok_…" or "ap_…": a session is bound to it
  std::string agent_id;   // the calling agent, when an agent's secret authenticated
};

struct Outgoing {
  int status = 200;
  std::string body;          // "" for 202 and 204
  std::string content_type;  // application/json or text/event-stream; "" without a body
  std::string session_id;    // to send as Mcp-Session-Id (on initialize)
};

// Where tool calls go.
class ToolHost {
 public:
  virtual ~ToolHost() = default;
  // Runs the call through the API and returns the API's answer (status and JSON body).
  virtual http::Response Run(const Tool& tool, const HttpCall& call) = 0;
  // Records a call refused before it reached the API (arguments that break the input schema)
  // and returns the structured error (invalid_field) to answer with, as JSON.
  virtual std::string Refused(const Tool& tool, std::string_view message) = 0;
};

struct ServerInfo {
  std::string name = "agentgate";
  std::string title = "agentgate";
  std::string version;
  std::string instructions;
};

struct SessionLimits {
  std::size_t max_sessions = 10'000;
  std::size_t max_per_principal = 64;       // the oldest of a caller's sessions gives way
  std::int64_t idle_ms = 24LL * 3'600'000;  // unused this long, a session ends
};

class McpServer {
 public:
  McpServer(const ToolRegistry& tools, ServerInfo info, crypto::Random& random,
            const Clock& clock, SessionLimits limits = {});

  Outgoing Post(const Incoming& in, ToolHost& host);
  // Ends the session named by in.session_id (204), or 400/404.
  Outgoing Delete(const Incoming& in);
  std::size_t session_count() const;

 private:
  struct Session {
    std::string principal;
    std::string version;
    std::int64_t last_used_ms = 0;
  };
  enum class Format { kJson, kEventStream, kNone };
  static Format Negotiate(std::string_view accept);

  Outgoing Reply(Format format, int status, std::string body) const;
  Outgoing Initialize(const Incoming& in, Format format, const json::object& message);
  // Answers one message of a session; nullopt for notifications and responses.
  std::optional<json::value> Handle(const json::value& message, const std::string& version,
                                    const Incoming& in, ToolHost& host);
  json::value CallTool(const json::value& id, const json::object& params,
                       const std::string& version, const Incoming& in, ToolHost& host);
  std::string NewSession(const std::string& principal, const std::string& version);

  const ToolRegistry& tools_;
  ServerInfo info_;
  crypto::Random& random_;
  const Clock& clock_;
  SessionLimits limits_;
  json::array tool_list_;  // tools/list's answer, built once
  mutable std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;
};

}  // namespace agentgate::mcp
