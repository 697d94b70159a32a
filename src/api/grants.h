// What granting shares between POST /permission/grant and approving a permission request: the
// validation of a grant's fields and the grant's JSON. Pure functions, defined in handlers.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/result.h"
#include "store/store.h"

namespace agentgate::api {

// A practical address check (one '@', a dotted domain).
bool ValidEmail(std::string_view email);
// 1-200 characters of letters, digits and _ . : / * -
bool ValidAction(std::string_view action);
// The invalid_field error ValidAction's refusal gives.
Error InvalidAction();
std::string LowerAscii(std::string s);
// Parsed stored JSON text, or null when empty or unparsable.
json::value ParsedOrNull(const std::string& text);

// The optional fields of a grant as POST /permission/grant validates them: expires_in ("7d"),
// scope (max_/allowed_/budget_ rules) and metadata, each absent or null for none.
struct GrantTerms {
  std::optional<std::int64_t> expires_in_s;
  std::string scope_json;     // "" when none
  std::string metadata_json;  // "" when none
};
Result<GrantTerms> ParseGrantTerms(const json::object& body);
// The expiry of a grant made at now_ms lasting expires_in_s: whole seconds, rounded up, so the
// grant lasts at least what was asked and its expires_at (shown to the second) is exact.
std::optional<std::int64_t> GrantExpiry(std::int64_t now_ms,
                                        std::optional<std::int64_t> expires_in_s);

// A grant as the API shows it (POST /permission/grant, GET /permissions).
json::object GrantJson(const store::GrantRecord& g);

}  // namespace agentgate::api
