// Helpers between request bodies and boost::json values, returning catalogue errors.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace agentgate {

// s as valid UTF-8 of at most max_bytes: invalid sequences become U+FFFD, and a cut never splits
// a character. For text that came from a client and is kept (the activity log).
std::string ValidUtf8(std::string_view s, std::size_t max_bytes = std::string::npos);
// Applies ValidUtf8 in place, copying only when something must change (the common case is
// valid text that fits).
void MakeValidUtf8(std::string& s, std::size_t max_bytes);

namespace json = boost::json;

// Parses a request body that must be a JSON object. Empty body, broken JSON, or a non-object
// give invalid_json. Nesting is limited so hostile input cannot exhaust the stack.
Result<json::object> ParseJsonObject(std::string_view body);

// Field accessors. A missing field (or null) is "absent"; a present field of the wrong type
// gives invalid_field naming the field and the expected type.
Result<std::optional<std::string>> OptionalString(const json::object& obj, std::string_view key);
Result<std::optional<json::object>> OptionalObject(const json::object& obj, std::string_view key);

// Serializes like json::serialize, but writes doubles in their shortest round-trip form
// ("1.5", "1e+21") rather than Boost's "1.5E0", so values echo back as people wrote them.
std::string Serialize(const json::value& v);
void AppendJson(std::string& out, const json::value& v);

// Appends s as a quoted JSON string.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace agentgate
