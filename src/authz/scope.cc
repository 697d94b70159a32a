#include "authz/scope.h"

#include <string_view>

namespace agentgate::authz {
namespace {

constexpr std::string_view kMax = "max_";
constexpr std::string_view kAllowed = "allowed_";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::string Show(const json::value& v) {
  std::string s = Serialize(v);
  if (s.size() > 64) s = s.substr(0, 61) + "...";
  return s;
}

// Numbers compared exactly where both are integers (int64 or uint64, in any mix), as doubles
// only when either is a double.
bool LessOrEqual(const json::value& a, const json::value& bound) {
  if (a.is_double() || bound.is_double()) {
    return a.to_number<double>() <= bound.to_number<double>();
  }
  bool a_neg = a.is_int64() && a.get_int64() < 0;
  bool b_neg = bound.is_int64() && bound.get_int64() < 0;
  if (a_neg != b_neg) return a_neg;
  if (a_neg) return a.get_int64() <= bound.get_int64();
  auto magnitude = [](const json::value& v) {
    return v.is_int64() ? static_cast<std::uint64_t>(v.get_int64()) : v.get_uint64();
  };
  return magnitude(a) <= magnitude(bound);
}

// Equal as JSON values; numbers compare by value (1 == 1.0), integers exactly.
bool SameValue(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return LessOrEqual(a, b) && LessOrEqual(b, a);
  return a == b;
}

bool ValueAllowed(const json::value& v, const json::array& allowed) {
  for (const auto& candidate : allowed) {
    if (SameValue(candidate, v)) return true;
  }
  return false;
}

}  // namespace

Status ValidateScope(const json::object& scope) {
  for (const auto& kv : scope) {
    std::string_view key = kv.key();
    if (key == kMax || key == kAllowed) {
      return MakeError(Code::kInvalidField, "scope." + std::string(key) +
                                                " names no field: write e.g. max_spend or "
                                                "allowed_currency");
    }
    if (StartsWith(key, kMax)) {
      if (!kv.value().is_number()) {
        return MakeError(Code::kInvalidField,
                         "scope." + std::string(key) + " must be a number");
      }
    } else if (StartsWith(key, kAllowed)) {
      if (!kv.value().is_array()) {
        return MakeError(Code::kInvalidField,
                         "scope." + std::string(key) + " must be an array of allowed values");
      }
    }
  }
  return Ok();
}

ScopeVerdict EvaluateScope(const json::object& scope, const json::object& context) {
  for (const auto& kv : scope) {
    std::string_view key = kv.key();
    bool is_max = StartsWith(key, kMax);
    bool is_allowed = !is_max && StartsWith(key, kAllowed);
    if (!is_max && !is_allowed) continue;
    std::string_view field = key.substr(is_max ? kMax.size() : kAllowed.size());
    // Built only on failure: a satisfied constraint costs no allocation.
    auto prefix_fn = [key] { return "Scope constraint " + std::string(key) + " failed: "; };
    auto it = context.find(field);
    if (it == context.end() || it->value().is_null()) {
      return {false, std::string(key),
              prefix_fn() + "context has no '" + std::string(field) + "'"};
    }
    const json::value& v = it->value();
    if (is_max) {
      if (!kv.value().is_number()) {
        return {false, std::string(key), prefix_fn() + "the bound is not a number"};
      }
      if (!v.is_number()) {
        return {false, std::string(key),
                prefix_fn() + std::string(field) + " is " + Show(v) + ", not a number"};
      }
      if (!LessOrEqual(v, kv.value())) {
        return {false, std::string(key),
                prefix_fn() + std::string(field) + " is " + Show(v) + ", the maximum is " +
                    Show(kv.value())};
      }
    } else {
      if (!kv.value().is_array()) {
        return {false, std::string(key), prefix_fn() + "the allowed list is not an array"};
      }
      const json::array& allowed = kv.value().get_array();
      bool ok = true;
      if (v.is_array()) {
        for (const auto& element : v.get_array()) {
          if (!ValueAllowed(element, allowed)) {
            ok = false;
            break;
          }
        }
      } else {
        ok = ValueAllowed(v, allowed);
      }
      if (!ok) {
        return {false, std::string(key),
                prefix_fn() + std::string(field) + " is " + Show(v) + ", allowed are " +
                    Show(kv.value())};
      }
    }
  }
  return {};
}

}  // namespace agentgate::authz
