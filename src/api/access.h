// Who is calling and what they may do: abilities, personal access tokens held in memory, and the
// principal a request resolves to.
//
// Abilities are "resource:verb" names (or a bare verb, "act", for a capability of its own). A
// person signed in by session holds all of them; an access token holds those it was minted with
// ("*" meaning all, including abilities added in later versions); an agent holds none (agents use
// their own endpoints with their own secret).
//
// Thread safety: TokenTable may be used from any thread; the rest are values.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "crypto/hash.h"

namespace agentgate::api {

enum Ability : std::uint32_t {
  kAgentViewAny = 1u << 0,
  kAgentCreate = 1u << 1,
  kPermissionViewAny = 1u << 2,
  kPermissionGrant = 1u << 3,
  kPermissionRevoke = 1u << 4,
  kPermissionCheck = 1u << 5,
  kActivityViewAny = 1u << 6,
  kWebhookManage = 1u << 7,
  kTokenManage = 1u << 8,
  kConnectionManage = 1u << 9,
  kWorkspaceManage = 1u << 10,
  kAct = 1u << 11,
};
inline constexpr std::uint32_t kAllAbilities = (1u << 12) - 1;

struct AbilityInfo {
  Ability bit;
  std::string_view name;         // e.g. "permission:grant"
  std::string_view description;  // what it allows, for docs and help
};

std::span<const AbilityInfo> AbilityCatalogue();
std::string_view AbilityName(Ability ability);

// Abilities as given when minting a token: a non-empty JSON array of names from the catalogue,
// or ["*"]. Returns the bit set and the names, de-duplicated in catalogue order ("*" alone when
// it was given). Unknown names are refused with the list of valid ones.
struct ParsedAbilities {
  std::uint32_t bits = 0;
  bool wildcard = false;
  std::vector<std::string> names;
};
Result<ParsedAbilities> ParseAbilities(const json::value& value);
// Bits of stored names (unknown names, e.g. from a newer version, are ignored).
ParsedAbilities AbilitiesFromNames(const std::vector<std::string>& names);

// Access-token plaintexts start with this prefix, so they are recognisable (by people and by
// secret scanners) and never mistaken for an agent secret (sk_ap_…).
inline constexpr std::string_view kTokenPrefix = "agt_";

// An active access token as the server holds it in memory.
struct TokenInfo {
  std::string id;  // tok_…
  std::string name;
  std::string user_id;
  std::string user_email;
  bool user_is_admin = false;
  ParsedAbilities abilities;
  std::int64_t expires_at_ms = 0;  // 0: never
};

// Active tokens by digest, so authenticating one never waits for the store (checks run on
// network threads). The store is the durable source; the table is rebuilt from it at start.
class TokenTable {
 public:
  void Put(TokenInfo token, const crypto::Digest& hash);
  void Remove(std::string_view id);
  // The token with this digest, if it is active at now_ms.
  std::shared_ptr<const TokenInfo> Find(const crypto::Digest& hash, std::int64_t now_ms) const;
  // Notes a use; uses are written to the store in batches (to the second).
  void Touch(const std::string& id, std::int64_t now_ms);
  std::vector<std::pair<std::string, std::int64_t>> DrainLastUsed();
  // Drops expired tokens (memory only; Find already refuses them).
  void Sweep(std::int64_t now_ms);

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<crypto::Digest, std::shared_ptr<const TokenInfo>, crypto::DigestHash> by_hash_;
  std::mutex used_mu_;
  std::unordered_map<std::string, std::int64_t> last_used_;  // written since the last drain
  std::unordered_map<std::string, std::int64_t> last_written_;
};

enum class ActorKind : std::uint8_t { kAnonymous, kSession, kApiToken, kAgent, kTenantToken };
std::string_view ActorKindName(ActorKind kind);

// The caller of one request, as far as the route needed to know.
struct Principal {
  ActorKind kind = ActorKind::kAnonymous;
  std::string actor_id;  // usr_… (session), tok_… (token), ap_… (agent); "" anonymous
  // The person behind a session or token.
  std::string user_id;
  std::string email;
  bool admin = false;
  std::uint32_t abilities = 0;
  std::shared_ptr<const TokenInfo> token;  // kApiToken only
  // The integration engine's scope: the workspace and tenant the caller acts in. A tenant token
  // (HS256 JWT) names them; a person (session or access token) is their own tenant (their user
  // id) in the default workspace. manager: a manager token ({isAdmin: true}), or an admin person.
  std::string workspace_id;
  std::string tenant_key;  // "" : no tenant (a manager token without one)
  bool manager = false;

  bool is_person() const { return kind == ActorKind::kSession || kind == ActorKind::kApiToken; }
  bool Has(Ability a) const { return (abilities & a) != 0; }
};

}  // namespace agentgate::api
