// The Store: everything agentgate keeps durably, behind one interface.
//
// SQLite (embedded default) implements it now; PostgreSQL will implement it later, passing the
// same contract tests, without any handler changing.
//
// Contract for every implementation:
// - Thread safety: every method may be called concurrently from many threads.
// - Durability: a write method returns only after its change is durable (committed and synced).
//   Implementations are expected to group concurrent writes into one commit.
// - Errors: failures come back as Error values (server_error for I/O or SQL failures, with the
//   detail in the message for the log); no exception escapes.
// - Secrets: the store never sees a plaintext secret or token, only SHA-256 digests.
// - Times are Unix milliseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "crypto/hash.h"

namespace agentgate::store {

struct AgentRecord {
  std::string id;               // "ap_…"
  std::string name;
  std::string description;      // "" when not given
  std::string developer_email;
  std::string metadata_json;    // serialized JSON object, "" when not given
  crypto::Digest secret_hash{};
  std::string status = "active";
  std::int64_t created_at_ms = 0;
  std::int64_t last_seen_ms = 0;  // 0: never seen
};

struct GrantRecord {
  std::string id;                  // UUID v4
  std::string agent_id;
  std::string action;
  std::string granted_by;          // user id of the granter
  std::string granted_by_email;    // denormalized: the reference returns it on every check
  std::optional<std::int64_t> expires_at_ms;  // nullopt: never expires
  std::string scope_json;          // serialized JSON object, "" when none
  std::string metadata_json;       // serialized JSON object, "" when none
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> revoked_at_ms;
  std::string revoked_by;          // user id, "" when not revoked
};

struct UserRecord {
  std::string id;     // "usr_…"
  std::string email;  // lower case
  bool is_admin = false;
  std::int64_t created_at_ms = 0;
};

struct SessionInfo {
  UserRecord user;
  std::int64_t expires_at_ms = 0;
};

// One answered permission check, recorded off the hot path.
struct CheckRecord {
  std::string agent_id;
  std::string action;
  bool allowed = false;
  std::string reason;  // "" when allowed
  std::int64_t at_ms = 0;
  std::int32_t latency_us = 0;
};

// Check-time bookkeeping, accumulated in memory and flushed in one transaction.
struct Bookkeeping {
  std::vector<CheckRecord> checks;
  std::vector<std::pair<std::string, std::int64_t>> last_seen;       // agent id, ms
  std::vector<std::pair<std::int64_t, std::int64_t>> checks_per_day;  // UTC day, count delta

  bool empty() const { return checks.empty() && last_seen.empty() && checks_per_day.empty(); }
};

struct Counters {
  std::int64_t agents_registered = 0;
  std::int64_t permissions_granted = 0;  // every grant ever made
  std::int64_t checks_total = 0;
  std::int64_t checks_today = 0;
};

struct GrantFilter {
  std::string granted_by;   // user id; "" = any
  std::string agent_id;     // "" = any
  bool active_only = true;  // neither revoked nor expired at now_ms
  std::int64_t now_ms = 0;
  int limit = 1000;
};

// Idempotency-Key bookkeeping: what a write answered, so a retry gets the same answer.
enum class IdempotencyState {
  kStarted,     // the caller owns the key now: run the request, then Finish or Abandon
  kReplay,      // done before with the same request: answer with the stored response
  kInProgress,  // the first request with this key is still running
  kMismatch,    // the key was used with a different request
};

struct IdempotencyOutcome {
  IdempotencyState state = IdempotencyState::kStarted;
  int status = 0;            // kReplay: the stored response
  std::string content_type;
  std::string headers_json;  // JSON object of header name -> value
  std::string body;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- start-up -------------------------------------------------------------------------------
  // Streams every agent, then every grant neither revoked nor expired at now_ms.
  virtual Status LoadAgents(const std::function<void(AgentRecord&&)>& sink) = 0;
  virtual Status LoadActiveGrants(std::int64_t now_ms,
                                  const std::function<void(GrantRecord&&)>& sink) = 0;

  // --- agents and grants ----------------------------------------------------------------------
  virtual Status InsertAgent(const AgentRecord& agent) = 0;
  virtual Status InsertGrant(const GrantRecord& grant) = 0;
  // Marks each listed grant revoked unless it already is. Returns the ids it revoked now.
  virtual Result<std::vector<std::string>> RevokeGrants(const std::vector<std::string>& ids,
                                                        std::int64_t at_ms,
                                                        const std::string& revoked_by) = 0;
  virtual Result<std::optional<GrantRecord>> FindGrant(const std::string& id) = 0;
  // Newest first.
  virtual Result<std::vector<GrantRecord>> ListGrants(const GrantFilter& filter) = 0;

  // --- people ---------------------------------------------------------------------------------
  // Finds the user with this (lower-case) email, or creates it with new_user_id. When
  // promote_if_no_admin is set and no user is an admin yet, the user becomes one; the test and
  // the promotion are one atomic step, so only one person ever becomes the first admin.
  virtual Result<UserRecord> SignInUser(const std::string& email, const std::string& new_user_id,
                                        std::int64_t now_ms, bool promote_if_no_admin) = 0;

  virtual Status InsertMagicLink(const crypto::Digest& token_hash, const std::string& email,
                                 std::int64_t created_at_ms, std::int64_t expires_at_ms) = 0;
  // Marks the link used, atomically; returns its email if it existed, was unused and had not
  // expired at now_ms, and nullopt otherwise. A second call with the same hash gives nullopt.
  virtual Result<std::optional<std::string>> ConsumeMagicLink(const crypto::Digest& token_hash,
                                                              std::int64_t now_ms) = 0;

  virtual Status InsertSession(const crypto::Digest& token_hash, const std::string& user_id,
                               std::int64_t created_at_ms, std::int64_t expires_at_ms) = 0;
  // The session and its user, if the session exists and has not expired at now_ms.
  virtual Result<std::optional<SessionInfo>> FindSession(const crypto::Digest& token_hash,
                                                         std::int64_t now_ms) = 0;
  virtual Status DeleteSession(const crypto::Digest& token_hash) = 0;

  // --- idempotency ----------------------------------------------------------------------------
  // Claims key (a digest of credential, method, path and Idempotency-Key) for a request whose
  // digest is fingerprint, atomically. A record past expires_at counts as absent; a running
  // record started before stale_before_ms (its server died) may be taken over.
  virtual Result<IdempotencyOutcome> BeginIdempotent(const crypto::Digest& key,
                                                     const crypto::Digest& fingerprint,
                                                     std::int64_t now_ms,
                                                     std::int64_t expires_at_ms,
                                                     std::int64_t stale_before_ms) = 0;
  // Stores the response of a started key.
  virtual Status FinishIdempotent(const crypto::Digest& key, int status,
                                  const std::string& content_type,
                                  const std::string& headers_json, const std::string& body) = 0;
  // Forgets a started key (the request failed validation or the server failed): a retry runs
  // the request again.
  virtual Status AbandonIdempotent(const crypto::Digest& key) = 0;

  // --- bookkeeping and statistics -------------------------------------------------------------
  virtual Status FlushBookkeeping(const Bookkeeping& batch) = 0;
  virtual Result<Counters> LoadCounters(std::int64_t utc_day) = 0;

  // Deletes expired magic links, sessions and idempotency records, and check records older than
  // the cutoff.
  virtual Status Prune(std::int64_t now_ms, std::int64_t check_records_before_ms) = 0;
};

}  // namespace agentgate::store
