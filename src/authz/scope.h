// Scope constraints: the conditions a grant puts on the context of an action.
//
// A scope is a JSON object returned verbatim to agents. Three key forms are enforced when a check
// carries a context: "max_<field>" bounds a number, "allowed_<field>" lists allowed values, and
// "budget_<field>": {"limit": N, "period": "30d"} bounds the total of a number over a period
// (windows of that length, back to back from the grant's creation; consumed by executed actions,
// see store::ChargeBudgets). Other keys are informational. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace agentgate::authz {

struct ScopeVerdict {
  bool satisfied = true;
  std::string constraint;  // the scope key that failed, e.g. "max_spend"
  std::string reason;      // human sentence naming it
};

// Checks that enforced keys are well-formed: max_* a number, allowed_* an array, budget_* an
// object {limit: number > 0, period: a duration as in expires_in ("30d", "1h"; at most 3650d)}
// with no other fields, and the field name after the prefix non-empty. Gives invalid_field naming
// the key otherwise.
Status ValidateScope(const json::object& scope);

// Evaluates every enforced key against the context. A constrained field missing from the
// context fails (fail closed). Keys are evaluated in the scope's order; the first failure wins.
// A budget_<field> here only requires the field to be a number >= 0 and at most the limit (what
// was spent before is the store's: see Budgets).
ScopeVerdict EvaluateScope(const json::object& scope, const json::object& context);

// The budgets of a (validated) scope, in the scope's order.
struct Budget {
  std::string key;    // "budget_spend"
  std::string field;  // "spend"
  double limit = 0;
  std::int64_t period_ms = 0;
};
std::vector<Budget> BudgetsOf(const json::object& scope);

// The start of the window containing now_ms, for windows of period_ms back to back from
// anchor_ms (the grant's creation). now_ms before anchor_ms gives anchor_ms.
std::int64_t BudgetWindowStart(std::int64_t anchor_ms, std::int64_t period_ms,
                               std::int64_t now_ms);

// Budget amounts are charged as integers of a millionth (six decimals, rounded half away from
// zero): exact sums, no floating-point drift. FromBudgetUnits is its inverse for answers.
inline constexpr double kBudgetUnitsPerOne = 1'000'000.0;
std::int64_t ToBudgetUnits(double amount);
double FromBudgetUnits(std::int64_t units);

}  // namespace agentgate::authz
