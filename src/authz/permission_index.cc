#include "authz/permission_index.h"

#include <algorithm>

#include "authz/scope.h"

namespace agentgate::authz {
namespace {

constexpr std::string_view kDeniedReason = "Permission denied or expired";

}  // namespace

PermissionIndex::PermissionIndex() = default;
PermissionIndex::~PermissionIndex() = default;

std::uint64_t PermissionIndex::HashOf(std::string_view agent_id) {
  return std::hash<std::string_view>{}(agent_id);
}

PermissionIndex::Shard& PermissionIndex::ShardFor(std::string_view agent_id) const {
  return shards_[HashOf(agent_id) % kShards];
}

const PermissionIndex::Agent* PermissionIndex::AgentTable::Find(std::string_view id,
                                                                std::uint64_t hash) const {
  if (slots_.empty()) return nullptr;
  std::size_t mask = slots_.size() - 1;
  // The low bits chose the shard; probe with the others.
  for (std::size_t i = (hash >> 6) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (!slot.agent) return nullptr;
    if (slot.hash == hash && slot.agent->key.view() == id) return slot.agent;
  }
}

std::pair<PermissionIndex::Agent*, bool> PermissionIndex::AgentTable::FindOrInsert(
    std::string_view id, std::uint64_t hash) {
  if (const Agent* found = Find(id, hash)) return {const_cast<Agent*>(found), false};
  if ((agents_.size() + 1) * 2 > slots_.size()) Grow();
  agents_.push_back(std::make_unique<Agent>(id));
  Agent* agent = agents_.back().get();
  std::size_t mask = slots_.size() - 1;
  std::size_t i = (hash >> 6) & mask;
  while (slots_[i].agent) i = (i + 1) & mask;
  slots_[i] = Slot{hash, agent};
  return {agent, true};
}

void PermissionIndex::AgentTable::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
  std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (!slot.agent) continue;
    std::size_t i = (slot.hash >> 6) & mask;
    while (slots_[i].agent) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

PermissionIndex::SecretShard& PermissionIndex::SecretShardFor(const crypto::Digest& d) const {
  return secret_shards_[crypto::DigestHash{}(d) % kShards];
}

const Granter* PermissionIndex::InternGranter(const std::string& user_id,
                                             const std::string& email) {
  std::string key = user_id;
  key += '\n';
  key += email;
  std::lock_guard lock(granters_mu_);
  auto& slot = granters_[key];
  if (!slot) slot = std::make_unique<const Granter>(Granter{user_id, email});
  return slot.get();
}

const PermissionIndex::Agent* PermissionIndex::FindIn(const Shard& shard,
                                                      std::string_view agent_id) {
  if (agent_id.empty() || agent_id.size() > kMaxAgentIdLength) return nullptr;
  return shard.agents.Find(agent_id, HashOf(agent_id));
}

namespace {

std::uint32_t ActionHash(std::string_view action) {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(action));
}

}  // namespace

template <class Pred>
std::size_t PermissionIndex::RemoveWhere(Agent& agent, Pred pred) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < agent.grants.size(); ++i) {
    if (pred(agent.grants[i])) continue;
    if (kept != i) {
      agent.grants[kept] = std::move(agent.grants[i]);
      agent.action_hashes[kept] = agent.action_hashes[i];
    }
    ++kept;
  }
  std::size_t removed = agent.grants.size() - kept;
  agent.grants.resize(kept);
  agent.action_hashes.resize(kept);
  SyncInlineHashes(agent);
  return removed;
}

void PermissionIndex::SyncInlineHashes(Agent& agent) {
  std::size_t n = std::min(agent.action_hashes.size(), kInlineHashes);
  std::copy_n(agent.action_hashes.begin(), n, agent.inline_hashes.begin());
}

void PermissionIndex::InsertGrant(Agent& agent, Grant grant) {
  auto pos = std::upper_bound(agent.grants.begin(), agent.grants.end(), grant.action,
                              [](const std::string& action, const Grant& x) {
                                return action < x.action;
                              });
  auto offset = pos - agent.grants.begin();
  agent.action_hashes.insert(agent.action_hashes.begin() + offset, ActionHash(grant.action));
  agent.grants.insert(pos, std::move(grant));
  SyncInlineHashes(agent);
}

bool PermissionIndex::PutAgent(const AgentInfo& agent) {
  if (agent.id.empty() || agent.id.size() > kMaxAgentIdLength) return false;
  std::optional<crypto::Digest> retired;
  {
    Shard& shard = ShardFor(agent.id);
    std::unique_lock lock(shard.mu);
    auto [found, inserted] = shard.agents.FindOrInsert(agent.id, HashOf(agent.id));
    Agent& slot = *found;
    if (inserted) {
      agent_count_.fetch_add(1, std::memory_order_relaxed);
    } else if (slot.secret_hash != agent.secret_hash) {
      retired = slot.secret_hash;
    }
    slot.info = agent;
    slot.secret_hash = agent.secret_hash;
    slot.last_seen_ms.store(agent.last_seen_ms, std::memory_order_relaxed);
  }
  if (retired) {
    // A replaced secret must stop authenticating at once, also for the 401-vs-403 lookup.
    SecretShard& old_shard = SecretShardFor(*retired);
    std::unique_lock lock(old_shard.mu);
    auto it = old_shard.owners.find(*retired);
    if (it != old_shard.owners.end() && it->second == agent.id) old_shard.owners.erase(it);
  }
  SecretShard& secrets = SecretShardFor(agent.secret_hash);
  std::unique_lock lock(secrets.mu);
  secrets.owners[agent.secret_hash] = agent.id;
  return true;
}

bool PermissionIndex::AddGrant(const GrantInfo& grant) {
  std::shared_ptr<const Scope> scope;
  if (!grant.scope_json.empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(grant.scope_json, ec);
    if (ec || !v.is_object()) return false;
    scope = std::make_shared<const Scope>(Scope{grant.scope_json, std::move(v.as_object())});
  }
  if (grant.id.empty() || grant.id.size() > GrantId::kMax) return false;
  Grant g{GrantId(grant.id), grant.action,
          InternGranter(grant.granted_by, grant.granted_by_email),
          grant.expires_at_ms, grant.created_at_ms, std::move(scope)};
  Shard& shard = ShardFor(grant.agent_id);
  std::unique_lock lock(shard.mu);
  Agent* agent = const_cast<Agent*>(FindIn(shard, grant.agent_id));
  if (!agent) return false;
  InsertGrant(*agent, std::move(g));
  grant_count_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::size_t PermissionIndex::RemoveGrants(std::string_view agent_id,
                                          const std::vector<std::string>& ids) {
  Shard& shard = ShardFor(agent_id);
  std::unique_lock lock(shard.mu);
  Agent* agent = const_cast<Agent*>(FindIn(shard, agent_id));
  if (!agent) return 0;
  std::size_t removed = RemoveWhere(*agent, [&](const Grant& g) {
    return std::find(ids.begin(), ids.end(), g.id.view()) != ids.end();
  });
  grant_count_.fetch_sub(removed, std::memory_order_relaxed);
  return removed;
}

GrantView PermissionIndex::ViewOf(const Grant& g) {
  return GrantView{std::string(g.id.view()), g.action, g.granter, g.expires_at_ms, g.scope,
                   g.created_at_ms};
}

Decision PermissionIndex::DecideLocked(const Agent& agent, std::string_view action,
                                       std::int64_t now_ms, const json::object* context) const {
  Decision d;
  std::uint32_t wanted = ActionHash(action);
  const Grant* best = nullptr;
  const Grant* best_failed = nullptr;
  ScopeVerdict failed_verdict;
  // Few grants: scan the compact hash array. Many: binary search the sorted grants instead.
  std::size_t begin = 0, end = agent.action_hashes.size();
  if (end > 64) {
    auto [lo, hi] = std::equal_range(
        agent.grants.begin(), agent.grants.end(), action, [](const auto& a, const auto& b) {
          if constexpr (std::is_same_v<std::decay_t<decltype(a)>, Grant>) {
            return std::string_view(a.action) < b;
          } else {
            return a < std::string_view(b.action);
          }
        });
    begin = static_cast<std::size_t>(lo - agent.grants.begin());
    end = static_cast<std::size_t>(hi - agent.grants.begin());
  }
  const std::uint32_t* hashes =
      end <= kInlineHashes ? agent.inline_hashes.data() : agent.action_hashes.data();
  for (std::size_t i = begin; i < end; ++i) {
    if (hashes[i] != wanted) continue;
    const Grant* it = &agent.grants[i];
    if (it->action != action || it->expires_at_ms <= now_ms) continue;
    if (context != nullptr && it->scope) {
      ScopeVerdict verdict = EvaluateScope(it->scope->object, *context);
      if (!verdict.satisfied) {
        if (!best_failed || it->expires_at_ms > best_failed->expires_at_ms) {
          best_failed = it;
          failed_verdict = std::move(verdict);
        }
        continue;
      }
    }
    if (!best || it->expires_at_ms > best->expires_at_ms) best = it;
  }
  if (best) {
    d.allowed = true;
    d.grant = ViewOf(*best);
  } else if (best_failed) {
    d.reason = std::move(failed_verdict.reason);
    d.constraint = std::move(failed_verdict.constraint);
  } else {
    d.reason = kDeniedReason;
  }
  return d;
}

Decision PermissionIndex::Check(std::string_view agent_id, const crypto::Digest& secret_hash,
                                std::string_view action, std::int64_t now_ms,
                                const json::object* context) const {
  {
    Shard& shard = ShardFor(agent_id);
    std::shared_lock lock(shard.mu);
    const Agent* agent = FindIn(shard, agent_id);
    if (agent && crypto::ConstantTimeEqual(agent->secret_hash, secret_hash)) {
      // last_seen is shown to the second: write the shared cache line once a second at most.
      if (agent->last_seen_ms.load(std::memory_order_relaxed) / 1000 != now_ms / 1000) {
        agent->last_seen_ms.store(now_ms, std::memory_order_relaxed);
        if (!agent->last_seen_dirty.exchange(true, std::memory_order_acq_rel)) {
          std::lock_guard dirty_lock(shard.dirty_mu);
          shard.dirty.emplace_back(agent_id);
        }
      }
      return DecideLocked(*agent, action, now_ms, context);
    }
  }
  Decision d;
  d.auth = Authenticate(agent_id, secret_hash);
  // The fast path above refused this secret; a kOk here can only come from a secret being
  // replaced between the two lookups, and must not pass as authenticated.
  if (d.auth == AuthResult::kOk) d.auth = AuthResult::kUnknownSecret;
  return d;
}

Decision PermissionIndex::Decide(std::string_view agent_id, std::string_view action,
                                 std::int64_t now_ms, const json::object* context) const {
  Shard& shard = ShardFor(agent_id);
  std::shared_lock lock(shard.mu);
  const Agent* agent = FindIn(shard, agent_id);
  if (!agent) {
    Decision d;
    d.auth = AuthResult::kAgentNotFound;
    return d;
  }
  return DecideLocked(*agent, action, now_ms, context);
}

AuthResult PermissionIndex::Authenticate(std::string_view agent_id,
                                         const crypto::Digest& secret_hash) const {
  std::string owner;
  {
    SecretShard& secrets = SecretShardFor(secret_hash);
    std::shared_lock lock(secrets.mu);
    auto it = secrets.owners.find(secret_hash);
    if (it == secrets.owners.end()) return AuthResult::kUnknownSecret;
    owner = it->second;
  }
  if (!HasAgent(agent_id)) return AuthResult::kAgentNotFound;
  return owner == agent_id ? AuthResult::kOk : AuthResult::kOtherAgent;
}

std::optional<std::string> PermissionIndex::AgentOfSecret(const crypto::Digest& secret_hash) const {
  SecretShard& secrets = SecretShardFor(secret_hash);
  std::shared_lock lock(secrets.mu);
  auto it = secrets.owners.find(secret_hash);
  if (it == secrets.owners.end()) return std::nullopt;
  return it->second;
}

bool PermissionIndex::HasAgent(std::string_view agent_id) const {
  Shard& shard = ShardFor(agent_id);
  std::shared_lock lock(shard.mu);
  return FindIn(shard, agent_id) != nullptr;
}

std::optional<AgentSnapshot> PermissionIndex::Snapshot(std::string_view agent_id,
                                                       std::int64_t now_ms) const {
  Shard& shard = ShardFor(agent_id);
  std::shared_lock lock(shard.mu);
  const Agent* agent = FindIn(shard, agent_id);
  if (!agent) return std::nullopt;
  AgentSnapshot snap;
  snap.info = agent->info;
  snap.info.last_seen_ms = agent->last_seen_ms.load(std::memory_order_relaxed);
  for (const Grant& g : agent->grants) {
    if (g.expires_at_ms > now_ms) snap.active.push_back(ViewOf(g));
  }
  std::sort(snap.active.begin(), snap.active.end(), [](const GrantView& a, const GrantView& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms > b.created_at_ms : a.id < b.id;
  });
  return snap;
}

std::vector<GrantView> PermissionIndex::ActiveGrants(std::string_view agent_id,
                                                     std::string_view action,
                                                     std::int64_t now_ms) const {
  std::vector<GrantView> out;
  Shard& shard = ShardFor(agent_id);
  std::shared_lock lock(shard.mu);
  const Agent* agent = FindIn(shard, agent_id);
  if (!agent) return out;
  for (const Grant& g : agent->grants) {
    if (g.action == action && g.expires_at_ms > now_ms) out.push_back(ViewOf(g));
  }
  return out;
}

std::size_t PermissionIndex::Sweep(std::int64_t now_ms) {
  std::size_t removed = 0;
  for (Shard& shard : shards_) {
    std::unique_lock lock(shard.mu);
    for (const auto& agent : shard.agents.all()) {
      removed += RemoveWhere(*agent, [&](const Grant& g) { return g.expires_at_ms <= now_ms; });
    }
  }
  grant_count_.fetch_sub(removed, std::memory_order_relaxed);
  return removed;
}

std::vector<std::pair<std::string, std::int64_t>> PermissionIndex::DrainLastSeen() {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (Shard& shard : shards_) {
    std::vector<std::string> dirty;
    {
      std::lock_guard lock(shard.dirty_mu);
      dirty.swap(shard.dirty);
    }
    if (dirty.empty()) continue;
    std::shared_lock lock(shard.mu);
    for (std::string& id : dirty) {
      const Agent* agent = FindIn(shard, id);
      if (!agent) continue;
      agent->last_seen_dirty.store(false, std::memory_order_seq_cst);
      out.emplace_back(std::move(id), agent->last_seen_ms.load(std::memory_order_relaxed));
    }
  }
  return out;
}

std::size_t PermissionIndex::AgentCount() const {
  return agent_count_.load(std::memory_order_relaxed);
}

std::size_t PermissionIndex::GrantCount() const {
  return grant_count_.load(std::memory_order_relaxed);
}

}  // namespace agentgate::authz
