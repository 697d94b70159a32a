// Scope constraints: the conditions a grant puts on the context of an action.
//
// A scope is a JSON object returned verbatim to agents. Two key forms are enforced when a check
// carries a context: "max_<field>" bounds a number, "allowed_<field>" lists allowed values.
// Other keys are informational. Pure functions; thread-safe.
#pragma once

#include <string>

#include "core/json.h"
#include "core/result.h"

namespace agentgate::authz {

struct ScopeVerdict {
  bool satisfied = true;
  std::string constraint;  // the scope key that failed, e.g. "max_spend"
  std::string reason;      // human sentence naming it
};

// Checks that enforced keys are well-formed: max_* a number, allowed_* an array, and the field
// name after the prefix non-empty. Gives invalid_field naming the key otherwise.
Status ValidateScope(const json::object& scope);

// Evaluates every enforced key against the context. A constrained field missing from the
// context fails (fail closed). Keys are evaluated in the scope's order; the first failure wins.
ScopeVerdict EvaluateScope(const json::object& scope, const json::object& context);

}  // namespace agentgate::authz
