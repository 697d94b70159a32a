// The MCP tool registry: every capability agentgate offers to MCP clients, each declared by the
// HTTP API operation it runs. A tool's input schema (path, query and body fields of the
// operation) and output schema (its success response) are read from the OpenAPI document the
// server serves, so tools, API and docs cannot drift apart. Adding a tool is adding one entry to
// kToolSpecs in tools.cc (and, for a new capability, its route and OpenAPI operation).
//
// A ToolRegistry is built once at start-up and is read-only afterwards: safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "http/message.h"

namespace agentgate::mcp {

struct ToolSpec {
  std::string_view name;          // e.g. "check_permission"
  std::string_view title;         // for people, e.g. "Check a permission"
  std::string_view operation_id;  // the OpenAPI operation the tool runs
  std::string_view description;   // what a model should know to use it well
  bool read_only = false;         // annotations (hints for clients)
  bool destructive = false;
  bool idempotent = false;
  // For a caller authenticated as an agent: this field, when absent, becomes the caller's own
  // agent id (so an agent can ask "may I?" without repeating its id). "" for none.
  std::string_view self_agent_field = {};
};

// Every tool, in the order tools/list shows them.
std::span<const ToolSpec> ToolSpecs();

// One tool, resolved against the OpenAPI document.
struct Tool {
  const ToolSpec* spec = nullptr;
  json::object definition;  // as tools/list shows it
  json::value input_schema;
  // The operation.
  http::Method method = http::Method::kGet;
  std::string path;  // e.g. "/agent/{agent_id}"
  std::vector<std::string> path_params;
  std::vector<std::string> query_params;
  bool has_body = false;
};

// An HTTP request for the API, made from a tool call.
struct HttpCall {
  http::Method method = http::Method::kGet;
  std::string target;  // path and query, percent-encoded
  std::string body;    // JSON, or "" for none
};

class ToolRegistry {
 public:
  // Builds every tool of ToolSpecs() from the OpenAPI document. Fails (naming the entry) if an
  // entry names an operation the document lacks: a programming error the tests catch.
  static Result<ToolRegistry> FromOpenApi(std::string_view openapi_json);

  const Tool* Find(std::string_view name) const;
  const std::vector<Tool>& tools() const { return tools_; }

  // The request for validated arguments: path fields fill the path, query fields the query
  // string, the rest the JSON body.
  static HttpCall ToHttpCall(const Tool& tool, const json::object& arguments);

 private:
  std::vector<Tool> tools_;
};

}  // namespace agentgate::mcp
