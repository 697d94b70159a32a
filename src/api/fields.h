// Small helpers the handlers share for reading request fields and rendering values.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authz/permission_index.h"
#include "core/error.h"
#include "core/json.h"
#include "core/result.h"
#include "core/time.h"

namespace agentgate::api {

// Characters, not bytes, of UTF-8 text.
inline std::size_t Utf8Length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

inline bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// missing_fields naming the absent body fields.
inline Error MissingFields(const std::vector<std::string_view>& names) {
  std::string list;
  for (auto n : names) {
    if (!list.empty()) list += ", ";
    list += n;
  }
  return MakeError(Code::kMissingFields, "Missing required fields: " + list);
}

// invalid_field when the body has a field outside `allowed` (a typo such as "expiresIn" would
// otherwise be ignored without a word), naming the fields the endpoint takes.
inline Status OnlyFields(const json::object& body,
                         std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body) {
    if (std::find(allowed.begin(), allowed.end(), std::string_view(key)) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return MakeError(Code::kInvalidField, "Unknown field '" +
                                                ValidUtf8(std::string_view(key), 64) +
                                                "'; allowed: " + list);
    }
  }
  return Ok();
}

// A time as the API shows it, or null when there is none (or it is "never").
inline json::value IsoOrNull(std::optional<std::int64_t> ms) {
  if (!ms || *ms == authz::kNever) return nullptr;
  return json::value(FormatIso8601(*ms));
}

inline std::int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace agentgate::api
