#include "core/json.h"

#include <algorithm>

#include <charconv>
#include <cmath>

namespace agentgate {

void MakeValidUtf8(std::string& s, std::size_t max_bytes) {
  bool ascii = s.size() <= max_bytes &&
               std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
  if (ascii) return;
  std::string valid = ValidUtf8(s, max_bytes);
  if (valid != s) s = std::move(valid);
}

std::string ValidUtf8(std::string_view s, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes == std::string::npos ? s.size() : max_bytes));
  auto append = [&](std::string_view piece) {
    if (out.size() + piece.size() > max_bytes) return false;
    out.append(piece);
    return true;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    std::uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; ok && k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // No overlong forms, surrogates or code points beyond U+10FFFF.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)) {
      ok = false;
    }
    if (!ok) {
      if (!append("\xEF\xBF\xBD")) break;
      ++i;
      continue;
    }
    if (!append(s.substr(i, len))) break;
    i += len;
  }
  return out;
}

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

std::string Serialize(const json::value& v) {
  std::string out;
  AppendJson(out, v);
  return out;
}

void AppendJson(std::string& out, const json::value& v) {
  char buf[32];
  switch (v.kind()) {
    case json::kind::null: out += "null"; return;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case json::kind::int64: {
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      out.append(buf, end);
      return;
    }
    case json::kind::uint64: {
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      out.append(buf, end);
      return;
    }
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) {  // cannot come from a parser; be safe anyway
        out += "null";
        return;
      }
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
      std::string_view text(buf, static_cast<std::size_t>(end - buf));
      out += text;
      // Keep it a JSON number that reads back as a double: "1" would become an integer.
      if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
      return;
    }
    case json::kind::string: AppendJsonString(out, v.get_string()); return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        AppendJson(out, e);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, kv.key());
        out += ':';
        AppendJson(out, kv.value());
      }
      out += '}';
      return;
    }
  }
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
