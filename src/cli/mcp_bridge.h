// `agentgate mcp`: an MCP server on stdio that relays to an agentgate server's /mcp endpoint.
//
// Each line on stdin is one JSON-RPC message (the stdio transport); each is POSTed to /mcp and
// the answer, if any, is written to stdout as one line. Nothing else goes to stdout; diagnostics
// go to the log stream (stderr). The bridge keeps the session: it remembers the session id and
// the negotiated protocol version from initialize, and when the server has lost the session
// (404, e.g. after a restart) it initializes again with the client's own initialize request and
// resends the message, so a long-lived client (Claude Desktop, Cursor) never notices.
// Errors the HTTP layer reports without a JSON-RPC id get the request's id, so the client can
// match them; an unreachable server is reported as a JSON-RPC error for each request.
//
// Thread safety: one bridge per process, used from one thread.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/http_client.h"

namespace agentgate::cli {

struct BridgeOptions {
  std::string endpoint;       // e.g. http://127.0.0.1:8080/mcp
  std::string authorization;  // "Bearer …", or "" when a cookie carries the credential
  std::string cookie;         // "ap_session=…", or ""
};

class McpBridge {
 public:
  McpBridge(const HttpClient& http, BridgeOptions options, std::ostream& log);

  // Handles one line read from stdin; returns the lines to write to stdout (usually zero or
  // one; a batch answer is one line too).
  std::vector<std::string> HandleLine(std::string_view line);
  // Ends the server-side session (DELETE /mcp), if there is one.
  void Close();

 private:
  Result<HttpResponse> Post(std::string_view body) const;
  // Answers of one HTTP response, as lines (SSE events unwrapped), with `request_id` put into
  // errors that came back without one.
  std::vector<std::string> Answers(const HttpResponse& response,
                                   const std::optional<std::string>& request_id) const;
  bool Reinitialize();

  const HttpClient& http_;
  BridgeOptions options_;
  std::ostream& log_;
  std::string session_id_;
  std::string protocol_version_;
  std::string initialize_line_;  // the client's initialize request, replayed to renew a session
};

// Reads stdin to its end; returns the process exit code.
int RunMcpBridge(const HttpClient& http, BridgeOptions options, std::istream& in,
                 std::ostream& out, std::ostream& log);

}  // namespace agentgate::cli
