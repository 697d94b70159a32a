#include "api/access.h"

#include <algorithm>
#include <array>

namespace agentgate::api {
namespace {

constexpr std::array kAbilities{
    AbilityInfo{kAgentViewAny, "agent:view-any", "Read any agent's profile (GET /agent/:id)."},
    AbilityInfo{kAgentCreate, "agent:create", "Register agents (POST /agent/register)."},
    AbilityInfo{kPermissionViewAny, "permission:view-any",
                "List the grants you made (GET /permissions)."},
    AbilityInfo{kPermissionGrant, "permission:grant",
                "Grant your authority to agents (POST /permission/grant)."},
    AbilityInfo{kPermissionRevoke, "permission:revoke",
                "Revoke grants you made (POST /permission/revoke)."},
    AbilityInfo{kPermissionCheck, "permission:check",
                "Ask whether an agent may do an action (/permission/check)."},
    AbilityInfo{kActivityViewAny, "activity:view-any", "Read the activity log (GET /v1/activity)."},
    AbilityInfo{kWebhookManage, "webhook:manage",
                "Create, change, delete and replay webhook endpoints (/v1/webhooks)."},
    AbilityInfo{kTokenManage, "token:manage",
                "Mint, list and revoke access tokens (/v1/tokens), never beyond your own."},
    AbilityInfo{kConnectionManage, "connection:manage",
                "Use your own connections: list, connect, archive and refresh them "
                "(/connections, /integrations, /connectors), as your own tenant."},
    AbilityInfo{kWorkspaceManage, "workspace:manage",
                "Workspace administration (an admin's token only): credentials, tenant and "
                "manager tokens, integrations and their parameters, custom connectors, key "
                "rotation."},
    AbilityInfo{kAct, "act",
                "Run actions and inline requests through your connections (POST /act, POST "
                "/actions/:selector/run)."},
};
static_assert((kAbilities.back().bit << 1) - 1 == kAllAbilities,
              "kAllAbilities must cover exactly the catalogue");

std::string ValidNames() {
  std::string out = "*";
  for (const auto& a : kAbilities) {
    out += ", ";
    out += a.name;
  }
  return out;
}

}  // namespace

std::span<const AbilityInfo> AbilityCatalogue() { return kAbilities; }

std::string_view AbilityName(Ability ability) {
  for (const auto& a : kAbilities) {
    if (a.bit == ability) return a.name;
  }
  return "?";
}

Result<ParsedAbilities> ParseAbilities(const json::value& value) {
  if (!value.is_array() || value.as_array().empty()) {
    return MakeError(Code::kInvalidField,
                     "Field 'abilities' must be a non-empty array of ability names, e.g. "
                     "[\"permission:check\"] (valid: " + ValidNames() + ")");
  }
  ParsedAbilities out;
  for (const json::value& v : value.as_array()) {
    if (!v.is_string()) {
      return MakeError(Code::kInvalidField, "Every entry of 'abilities' must be a string");
    }
    std::string_view name = v.get_string();
    if (name == "*") {
      out.wildcard = true;
      continue;
    }
    auto it = std::find_if(kAbilities.begin(), kAbilities.end(),
                           [&](const AbilityInfo& a) { return a.name == name; });
    if (it == kAbilities.end()) {
      return MakeError(Code::kInvalidField, "Unknown ability \"" +
                                                std::string(name.substr(0, 64)) +
                                                "\" (valid: " + ValidNames() + ")");
    }
    out.bits |= it->bit;
  }
  if (out.wildcard) {
    out.bits = kAllAbilities;
    out.names = {"*"};
    return out;
  }
  for (const auto& a : kAbilities) {
    if (out.bits & a.bit) out.names.emplace_back(a.name);
  }
  return out;
}

ParsedAbilities AbilitiesFromNames(const std::vector<std::string>& names) {
  ParsedAbilities out;
  for (const auto& name : names) {
    if (name == "*") {
      out.wildcard = true;
      continue;
    }
    for (const auto& a : kAbilities) {
      if (a.name == name) out.bits |= a.bit;
    }
  }
  if (out.wildcard) {
    out.bits = kAllAbilities;
    out.names = {"*"};
  } else {
    for (const auto& a : kAbilities) {
      if (out.bits & a.bit) out.names.emplace_back(a.name);
    }
  }
  return out;
}

void TokenTable::Put(TokenInfo token, const crypto::Digest& hash) {
  auto shared = std::make_shared<const TokenInfo>(std::move(token));
  std::unique_lock lock(mu_);
  by_hash_[hash] = std::move(shared);
}

void TokenTable::Remove(std::string_view id) {
  std::unique_lock lock(mu_);
  std::erase_if(by_hash_, [&](const auto& entry) { return entry.second->id == id; });
}

std::shared_ptr<const TokenInfo> TokenTable::Find(const crypto::Digest& hash,
                                                  std::int64_t now_ms) const {
  std::shared_lock lock(mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return nullptr;
  const TokenInfo& t = *it->second;
  if (t.expires_at_ms != 0 && t.expires_at_ms <= now_ms) return nullptr;
  return it->second;
}

void TokenTable::Touch(const std::string& id, std::int64_t now_ms) {
  std::lock_guard lock(used_mu_);
  auto written = last_written_.find(id);
  if (written != last_written_.end() && now_ms - written->second < 1000) return;
  last_used_[id] = now_ms;
  last_written_[id] = now_ms;
}

std::vector<std::pair<std::string, std::int64_t>> TokenTable::DrainLastUsed() {
  std::lock_guard lock(used_mu_);
  std::vector<std::pair<std::string, std::int64_t>> out(last_used_.begin(), last_used_.end());
  last_used_.clear();
  return out;
}

void TokenTable::Sweep(std::int64_t now_ms) {
  std::vector<std::string> dropped;
  {
    std::unique_lock lock(mu_);
    std::erase_if(by_hash_, [&](const auto& entry) {
      bool expired = entry.second->expires_at_ms != 0 && entry.second->expires_at_ms <= now_ms;
      if (expired) dropped.push_back(entry.second->id);
      return expired;
    });
  }
  std::lock_guard lock(used_mu_);
  for (const auto& id : dropped) last_written_.erase(id);
}

std::string_view ActorKindName(ActorKind kind) {
  switch (kind) {
    case ActorKind::kAnonymous: return "anonymous";
    case ActorKind::kSession: return "session";
    case ActorKind::kApiToken: return "api_token";
    case ActorKind::kAgent: return "agent";
    case ActorKind::kTenantToken: return "tenant_token";
  }
  return "anonymous";
}

}  // namespace agentgate::api
