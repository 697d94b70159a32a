#include "core/json.h"

namespace agentgate {

Result<json::object> ParseJsonObject(std::string_view body) {
  if (body.empty()) {
    return MakeError(Code::kInvalidJson, "Request body is empty; send a JSON object");
  }
  json::parse_options opts;
  opts.max_depth = 64;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) {
    return MakeError(Code::kInvalidJson, "Request body is not valid JSON: " + ec.message());
  }
  if (!v.is_object()) {
    return MakeError(Code::kInvalidJson, "Request body must be a JSON object");
  }
  return std::move(v.as_object());
}

Result<std::optional<std::string>> OptionalString(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return std::optional<std::string>{};
  if (!it->value().is_string()) {
    return MakeError(Code::kInvalidField, "Field '" + std::string(key) + "' must be a string");
  }
  return std::optional<std::string>(std::string(it->value().as_string()));
}

Result<std::optional<json::object>> OptionalObject(const json::object& obj,
                                                   std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return std::optional<json::object>{};
  if (!it->value().is_object()) {
    return MakeError(Code::kInvalidField, "Field '" + std::string(key) + "' must be an object");
  }
  return std::optional<json::object>(it->value().as_object());
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace agentgate
