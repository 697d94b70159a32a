#include "authz/scope.h"

#include <cmath>
#include <limits>
#include <string_view>

#include "core/time.h"

namespace agentgate::authz {
namespace {

constexpr std::string_view kMax = "max_";
constexpr std::string_view kAllowed = "allowed_";
constexpr std::string_view kBudget = "budget_";

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

// A budget_<field> value: {limit: number > 0, period: "30d"} and nothing else. Errors are
// invalid_field naming the key ("scope.budget_spend.limit ...").
Result<Budget> ReadBudget(std::string_view key, const json::value& value) {
  std::string name = "scope." + std::string(key);
  if (!value.is_object()) {
    return MakeError(Code::kInvalidField,
                     name + " must be an object {\"limit\": number, \"period\": \"30d\"}");
  }
  const json::object& o = value.get_object();
  for (const auto& kv : o) {
    if (kv.key() != "limit" && kv.key() != "period") {
      return MakeError(Code::kInvalidField, name + " has an unknown field '" +
                                                std::string(kv.key().substr(0, 64)) +
                                                "'; allowed: limit, period");
    }
  }
  const json::value* limit = o.if_contains("limit");
  if (limit == nullptr || !limit->is_number() || !(limit->to_number<double>() > 0)) {
    return MakeError(Code::kInvalidField, name + ".limit must be a number greater than 0");
  }
  const json::value* period = o.if_contains("period");
  if (period == nullptr || !period->is_string()) {
    return MakeError(Code::kInvalidField,
                     name + ".period must be a duration such as \"30d\" or \"1h\"");
  }
  auto seconds = ParseExpiresIn(period->get_string());
  if (!seconds.ok()) {
    return MakeError(Code::kInvalidField,
                     name + ".period must be a whole number followed by s, m, h or d (e.g. "
                            "\"30d\", \"1h\"), at most 3650d");
  }
  Budget b;
  b.key = std::string(key);
  b.field = std::string(key.substr(kBudget.size()));
  b.limit = limit->to_number<double>();
  b.period_ms = *seconds * 1000;
  return b;
}

}  // namespace

Status ValidateScope(const json::object& scope) {
  for (const auto& kv : scope) {
    std::string_view key = kv.key();
    if (key == kMax || key == kAllowed || key == kBudget) {
      return MakeError(Code::kInvalidField, "scope." + std::string(key) +
                                                " names no field: write e.g. max_spend, "
                                                "allowed_currency or budget_spend");
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
    } else if (StartsWith(key, kBudget)) {
      if (auto b = ReadBudget(key, kv.value()); !b.ok()) return b.take_error();
    }
  }
  return Ok();
}

ScopeVerdict EvaluateScope(const json::object& scope, const json::object& context) {
  for (const auto& kv : scope) {
    std::string_view key = kv.key();
    bool is_max = StartsWith(key, kMax);
    bool is_allowed = !is_max && StartsWith(key, kAllowed);
    bool is_budget = !is_max && !is_allowed && StartsWith(key, kBudget);
    if (!is_max && !is_allowed && !is_budget) continue;
    std::string_view field =
        key.substr(is_max ? kMax.size() : is_allowed ? kAllowed.size() : kBudget.size());
    // Built only on failure: a satisfied constraint costs no allocation.
    auto prefix_fn = [key] { return "Scope constraint " + std::string(key) + " failed: "; };
    auto it = context.find(field);
    if (it == context.end() || it->value().is_null()) {
      return {false, std::string(key),
              prefix_fn() + "context has no '" + std::string(field) + "'"};
    }
    const json::value& v = it->value();
    if (is_budget) {
      // Only this one amount is checked here; what the window already spent is the store's.
      auto budget = ReadBudget(key, kv.value());
      if (!budget.ok()) {
        return {false, std::string(key),
                prefix_fn() + "the budget is not {limit > 0, period}"};
      }
      if (!v.is_number()) {
        return {false, std::string(key),
                prefix_fn() + std::string(field) + " is " + Show(v) + ", not a number"};
      }
      if (v.to_number<double>() < 0) {
        return {false, std::string(key),
                prefix_fn() + std::string(field) + " is " + Show(v) +
                    ", a budget is only spent by amounts of 0 or more"};
      }
      const json::object& spec = kv.value().get_object();
      if (!LessOrEqual(v, spec.at("limit"))) {
        return {false, std::string(key),
                prefix_fn() + std::string(field) + " is " + Show(v) + ", the budget is " +
                    Show(spec.at("limit")) + " per " + std::string(spec.at("period").get_string())};
      }
    } else if (is_max) {
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

std::vector<Budget> BudgetsOf(const json::object& scope) {
  std::vector<Budget> out;
  for (const auto& kv : scope) {
    if (kv.key().size() <= kBudget.size() || !StartsWith(kv.key(), kBudget)) continue;
    // A scope that was never validated may hold a malformed budget: it charges nothing here, and
    // EvaluateScope refuses every action under it.
    if (auto b = ReadBudget(kv.key(), kv.value()); b.ok()) out.push_back(std::move(*b));
  }
  return out;
}

std::int64_t BudgetWindowStart(std::int64_t anchor_ms, std::int64_t period_ms,
                               std::int64_t now_ms) {
  if (now_ms <= anchor_ms || period_ms <= 0) return anchor_ms;
  return anchor_ms + (now_ms - anchor_ms) / period_ms * period_ms;
}

std::int64_t ToBudgetUnits(double amount) {
  // Beyond int64 the amount saturates (a limit of 1e300 is simply unlimited); NaN is nothing.
  constexpr double kEdge = 9.2e18;
  double scaled = amount * kBudgetUnitsPerOne;
  if (std::isnan(scaled)) return 0;
  if (scaled >= kEdge) return std::numeric_limits<std::int64_t>::max();
  if (scaled <= -kEdge) return std::numeric_limits<std::int64_t>::min();
  return std::llround(scaled);
}

double FromBudgetUnits(std::int64_t units) {
  return static_cast<double>(units) / kBudgetUnitsPerOne;
}

}  // namespace agentgate::authz
