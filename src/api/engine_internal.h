// What the integration engine's handlers share (engine_api.cc, connections_api.cc): the engine's
// state held by the Service, and small helpers for reading request fields.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "api/fields.h"
#include "api/service.h"
#include "crypto/random.h"
#include "engine/connector.h"
#include "engine/oauth.h"
#include "engine/single_flight.h"

namespace agentgate::api {

// The engine's in-memory state: workspaces (with their secrets, opened), custom connectors, the
// catalogue, the tenants already recorded, and refreshes in flight. Guarded as marked.
struct Service::EngineState {
  struct Workspace {
    std::string id, key, name, secret;
  };
  mutable std::shared_mutex mu;
  std::vector<Workspace> workspaces;                             // guarded by mu
  std::map<std::string, std::vector<engine::Connector>> custom;  // workspace id -> connectors
  std::optional<engine::Catalog> catalog;
  std::mutex tenants_mu;
  std::map<std::pair<std::string, std::string>, std::int64_t> tenants_seen;  // last written
  engine::SingleFlight<Result<store::ConnectionRecord>> refreshes;
  std::unique_ptr<engine::TokenEndpoint> token_endpoint;
};

namespace engine_internal {

inline std::string NewId(crypto::Random& random, std::string_view prefix) {
  std::array<std::uint8_t, 10> bytes;
  random.Fill(bytes);
  return std::string(prefix) + crypto::HexEncode(bytes);
}
inline bool ValidKey(std::string_view key, std::size_t max = 100) {
  if (key.empty() || key.size() > max) return false;
  return std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
  });
}
inline Error InvalidField(std::string_view field, std::string message) {
  return MakeError(Code::kInvalidField, "Field '" + std::string(field) + "' " + message);
}
inline std::map<std::string, std::string> MapOfJson(std::string_view text) {
  std::map<std::string, std::string> out;
  if (text.empty()) return out;
  auto parsed = ParseJsonObject(text);
  if (!parsed.ok()) return out;
  for (const auto& [k, v] : *parsed) {
    if (v.is_string()) out[std::string(k)] = std::string(v.as_string());
  }
  return out;
}
inline json::object JsonOfMap(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}
// Text safe inside a <script type="application/json"> element.
inline std::string ScriptSafeJson(const json::value& v) {
  std::string s = Serialize(v);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out.push_back(c);
    }
  }
  return out;
}
inline std::string HostOf(std::string_view url) {
  std::size_t start = url.find("://");
  if (start == std::string_view::npos) return {};
  start += 3;
  std::size_t end = url.find_first_of("/?#", start);
  return std::string(url.substr(start, end == std::string_view::npos ? url.npos : end - start));
}

inline Result<std::optional<std::string>> StringField(const json::object& body,
                                                      std::string_view name,
                                                      std::size_t max_bytes = 200) {
  auto v = OptionalString(body, name);
  if (!v.ok()) return v.take_error();
  if (v->has_value() && ((*v)->size() > max_bytes || HasControlChars(**v))) {
    return InvalidField(
        name, "must be at most " + std::to_string(max_bytes) + " bytes without control characters");
  }
  return v;
}

// A JSON object of string values as a map (connection fields, credentials).
inline Result<std::map<std::string, std::string>> StringMap(const json::object& body,
                                                            std::string_view name) {
  std::map<std::string, std::string> out;
  const json::value* v = body.if_contains(name);
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_object()) return InvalidField(name, "must be an object of strings");
  if (v->as_object().size() > 50) return InvalidField(name, "has more than 50 entries");
  for (const auto& [key, value] : v->as_object()) {
    std::string path = std::string(name) + "." + std::string(key.substr(0, 64));
    if (!value.is_string()) return InvalidField(path, "must be a string");
    if (value.as_string().size() > 8192) return InvalidField(path, "must be at most 8192 bytes");
    out[std::string(key)] = std::string(value.as_string());
  }
  return out;
}

}  // namespace engine_internal
}  // namespace agentgate::api
