// PermissionIndex: the in-memory answer to "may this agent do this now?".
//
// Holds every agent (with the digest of its secret) and every grant that was active when it was
// loaded or added. Built at start-up from the Store and updated on every committed write, so a
// check never touches the database. Expired grants stay in memory until Sweep() but never
// answer: expiry is compared with the caller's clock on every decision.
//
// Thread safety: all methods are safe to call concurrently. Agents are spread over shards, each
// behind a reader-writer lock, so checks (readers) run in parallel with each other and only wait
// for a write to the same shard.
// Ownership: the index owns copies of everything it holds; results are values.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "crypto/hash.h"

namespace agentgate::authz {

inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

// Who made a grant. Shared by all grants of one person; interned for the index's lifetime, so a
// pointer to it stays valid after the index's locks are released.
struct Granter {
  std::string user_id;
  std::string email;
};

// A grant's scope: the verbatim JSON text for answers and the parsed object for enforcement.
struct Scope {
  std::string json_text;
  json::object object;
};

struct AgentInfo {
  std::string id;
  std::string name;
  std::string description;
  std::string developer_email;
  std::string metadata_json;
  std::string status = "active";
  crypto::Digest secret_hash{};
  std::int64_t created_at_ms = 0;
  std::int64_t last_seen_ms = 0;
};

struct GrantInfo {
  std::string id;
  std::string agent_id;
  std::string action;
  std::string granted_by;        // user id
  std::string granted_by_email;
  std::int64_t expires_at_ms = kNever;
  std::string scope_json;        // "" when none; must parse as a JSON object
  std::int64_t created_at_ms = 0;
};

// A grant as the index answers it.
struct GrantView {
  std::string id;
  std::string action;
  const Granter* granter = nullptr;  // owned by the index, valid for its lifetime
  std::int64_t expires_at_ms = kNever;
  std::shared_ptr<const Scope> scope;  // null when none
  std::int64_t created_at_ms = 0;
};

enum class AuthResult {
  kOk,
  kUnknownSecret,  // the secret belongs to no agent
  kAgentNotFound,  // no agent has this id
  kOtherAgent,     // the secret is valid but belongs to another agent
};

struct Decision {
  AuthResult auth = AuthResult::kOk;
  bool allowed = false;
  std::optional<GrantView> grant;  // the grant that answered, when allowed
  std::string reason;              // when denied
  std::string constraint;          // when denied by a scope constraint
};

struct AgentSnapshot {
  AgentInfo info;                   // last_seen_ms is current
  std::vector<GrantView> active;    // active at the given time, newest first
};

class PermissionIndex {
 public:
  PermissionIndex();
  ~PermissionIndex();
  PermissionIndex(const PermissionIndex&) = delete;
  PermissionIndex& operator=(const PermissionIndex&) = delete;

  // Adds or replaces an agent (keeping its grants when replacing). False if the id is empty or
  // longer than kMaxAgentIdLength.
  bool PutAgent(const AgentInfo& agent);

  static constexpr std::size_t kMaxAgentIdLength = 46;
  // Adds a grant to a known agent; false if the agent is unknown or the scope is not an object.
  bool AddGrant(const GrantInfo& grant);
  // Removes grants by id from one agent; returns how many were removed.
  std::size_t RemoveGrants(std::string_view agent_id, const std::vector<std::string>& ids);

  // Authenticates the secret digest for agent_id and, when that succeeds, decides the action.
  // A non-null context enforces the scope. Records last_seen = now_ms on success.
  Decision Check(std::string_view agent_id, const crypto::Digest& secret_hash,
                 std::string_view action, std::int64_t now_ms,
                 const json::object* context) const;

  // Decision without authentication (for in-process callers and benchmarks).
  Decision Decide(std::string_view agent_id, std::string_view action, std::int64_t now_ms,
                  const json::object* context) const;

  AuthResult Authenticate(std::string_view agent_id, const crypto::Digest& secret_hash) const;
  // The agent a secret belongs to (for callers that do not name an agent, such as MCP).
  std::optional<std::string> AgentOfSecret(const crypto::Digest& secret_hash) const;
  bool HasAgent(std::string_view agent_id) const;
  std::optional<AgentSnapshot> Snapshot(std::string_view agent_id, std::int64_t now_ms) const;
  // The grants of agent_id for action that are active at now_ms.
  std::vector<GrantView> ActiveGrants(std::string_view agent_id, std::string_view action,
                                      std::int64_t now_ms) const;

  // Drops grants expired at now_ms; returns how many. Not needed for correctness, only memory.
  std::size_t Sweep(std::int64_t now_ms);

  // Takes the last_seen times recorded since the previous call (agent id, ms).
  std::vector<std::pair<std::string, std::int64_t>> DrainLastSeen();

  std::size_t AgentCount() const;
  std::size_t GrantCount() const;

 private:
  // Grant ids (UUIDs) kept inline, so answering with one reads no other allocation.
  class GrantId {
   public:
    static constexpr std::size_t kMax = 40;
    GrantId() = default;
    explicit GrantId(std::string_view id) : size_(static_cast<std::uint8_t>(id.size())) {
      std::copy(id.begin(), id.end(), chars_.begin());
    }
    std::string_view view() const { return {chars_.data(), size_}; }

   private:
    std::array<char, kMax> chars_{};
    std::uint8_t size_ = 0;
  };
  struct Grant {
    GrantId id;
    std::string action;
    const Granter* granter;
    std::int64_t expires_at_ms;
    std::int64_t created_at_ms;
    std::shared_ptr<const Scope> scope;
  };
  // Agent ids stored inline: no separate allocation to chase on lookup.
  class AgentKey {
   public:
    explicit AgentKey(std::string_view id) : size_(static_cast<std::uint8_t>(id.size())) {
      std::copy(id.begin(), id.end(), chars_.begin());
    }
    std::string_view view() const { return {chars_.data(), size_}; }

   private:
    std::array<char, kMaxAgentIdLength> chars_{};
    std::uint8_t size_;
  };
  // Hot fields first: a check reads the key, the secret digest and the action hashes, then one
  // grant; the rest is cold.
  static constexpr std::size_t kInlineHashes = 12;
  struct alignas(64) Agent {
    explicit Agent(std::string_view id) : key(id) {}
    // The first two cache lines hold everything a check reads before the matching grant: the
    // key, the secret digest and (for agents with few grants) the action hashes.
    AgentKey key;
    crypto::Digest secret_hash{};
    std::array<std::uint32_t, kInlineHashes> inline_hashes{};  // copy of action_hashes' head
    // Parallel to grants (sorted by action): action_hashes[i] hashes grants[i].action. A check
    // scans this compact array first and then touches only the grants that match.
    std::vector<std::uint32_t> action_hashes;
    std::vector<Grant> grants;
    mutable std::atomic<std::int64_t> last_seen_ms{0};
    mutable std::atomic<bool> last_seen_dirty{false};
    AgentInfo info;
  };
  // Open addressing with linear probing over (hash, agent) slots. Agents are never removed, so
  // there are no tombstones. Guarded by the owning shard's lock.
  class AgentTable {
   public:
    const Agent* Find(std::string_view id, std::uint64_t hash) const;
    std::pair<Agent*, bool> FindOrInsert(std::string_view id, std::uint64_t hash);
    const std::vector<std::unique_ptr<Agent>>& all() const { return agents_; }

   private:
    struct Slot {
      std::uint64_t hash = 0;
      Agent* agent = nullptr;
    };
    void Grow();
    std::vector<Slot> slots_;
    std::vector<std::unique_ptr<Agent>> agents_;
  };
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    AgentTable agents;
    // Agents whose last_seen changed since the last drain (each listed once).
    std::mutex dirty_mu;
    std::vector<std::string> dirty;
  };
  struct alignas(64) SecretShard {
    mutable std::shared_mutex mu;
    std::unordered_map<crypto::Digest, std::string, crypto::DigestHash> owners;
  };
  static constexpr std::size_t kShards = 64;

  Shard& ShardFor(std::string_view agent_id) const;
  SecretShard& SecretShardFor(const crypto::Digest& d) const;
  const Granter* InternGranter(const std::string& user_id, const std::string& email);
  static std::uint64_t HashOf(std::string_view agent_id);
  // Finds an agent in a locked shard; null when absent (or the id cannot be a key).
  static const Agent* FindIn(const Shard& shard, std::string_view agent_id);
  static void InsertGrant(Agent& agent, Grant grant);
  // Refreshes agent.inline_hashes after action_hashes changed.
  static void SyncInlineHashes(Agent& agent);
  template <class Pred>
  static std::size_t RemoveWhere(Agent& agent, Pred pred);
  Decision DecideLocked(const Agent& agent, std::string_view action, std::int64_t now_ms,
                        const json::object* context) const;
  static GrantView ViewOf(const Grant& g);

  mutable std::array<Shard, kShards> shards_;
  mutable std::array<SecretShard, kShards> secret_shards_;
  std::mutex granters_mu_;
  // Append-only: interned granters are never freed while the index lives.
  std::unordered_map<std::string, std::unique_ptr<const Granter>> granters_;
  std::atomic<std::size_t> grant_count_{0};
  std::atomic<std::size_t> agent_count_{0};
};

}  // namespace agentgate::authz
