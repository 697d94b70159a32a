// SqliteStore: the embedded Store, one SQLite file in WAL mode.
//
// Thread safety: every method may be called concurrently from any number of threads.
// Ownership: the store owns its connections and its writer thread; callers own the records they
//   pass in, and sinks receive records by rvalue to keep.
// Durability: a write method returns only after the transaction holding its change has
//   committed with synchronous=FULL, i.e. the WAL has been fsync'ed. Concurrent writes are
//   grouped: one writer thread takes every queued write, runs each inside its own SAVEPOINT of
//   one BEGIN IMMEDIATE transaction and commits them with a single fsync, so throughput grows
//   with the number of concurrent callers while each caller still sees only its own error.
// Reads run on a pool of separate connections and never wait for the writer (WAL snapshots);
//   a read that starts after a write returned sees that write.
// Errors: SQL and I/O failures come back as server_error with the SQLite message; a write that
//   collides with a unique key or references a missing row (duplicate id, unknown agent) comes
//   back as conflict. No exception escapes.
// Every statement waits at most kBusyTimeoutMs for a lock held by another process.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "store/store.h"

namespace agentgate::store {

class SqliteStore final : public Store {
 public:
  static constexpr int kBusyTimeoutMs = 5000;

  // Opens (creating the file and its parent directories if missing) the database at path and
  // applies any migrations it does not have yet. A database written by a newer agentgate, with
  // migrations this build does not know, is refused.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  // Lets queued writes finish, stops the writer thread and closes every connection. No call
  // may be in progress or start once destruction begins.
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status LoadAgents(const std::function<void(AgentRecord&&)>& sink) override;
  Status LoadActiveGrants(std::int64_t now_ms,
                          const std::function<void(GrantRecord&&)>& sink) override;

  using Store::InsertAgent;
  using Store::InsertGrant;
  using Store::RevokeGrants;
  Status InsertAgent(const AgentRecord& agent, const Effects& effects) override;
  Status InsertGrant(const GrantRecord& grant, const Effects& effects) override;
  Result<std::vector<std::string>> RevokeGrants(const std::vector<std::string>& ids,
                                                std::int64_t at_ms, const std::string& revoked_by,
                                                const EffectsFor& effects_for) override;
  Result<std::optional<GrantRecord>> FindGrant(const std::string& id) override;
  // A limit of zero or less gives no rows.
  Result<std::vector<GrantRecord>> ListGrants(const GrantFilter& filter) override;
  Result<std::vector<AgentListing>> ListAgentsOf(const AgentListFilter& filter) override;

  Result<UserRecord> SignInUser(const std::string& email, const std::string& new_user_id,
                                std::int64_t now_ms, bool promote_if_no_admin) override;

  Status InsertMagicLink(const crypto::Digest& token_hash, const std::string& email,
                         std::int64_t created_at_ms, std::int64_t expires_at_ms) override;
  Result<std::optional<std::string>> ConsumeMagicLink(const crypto::Digest& token_hash,
                                                      std::int64_t now_ms) override;

  Status InsertSession(const crypto::Digest& token_hash, const std::string& user_id,
                       std::int64_t created_at_ms, std::int64_t expires_at_ms) override;
  Result<std::optional<SessionInfo>> FindSession(const crypto::Digest& token_hash,
                                                 std::int64_t now_ms) override;
  Status DeleteSession(const crypto::Digest& token_hash) override;

  Status InsertApiToken(const ApiTokenRecord& token, const Effects& effects) override;
  Status LoadActiveApiTokens(std::int64_t now_ms,
                             const std::function<void(ApiTokenRecord&&)>& sink) override;
  Result<std::vector<ApiTokenRecord>> ListApiTokens(const std::string& user_id,
                                                    bool include_revoked) override;
  Result<std::optional<ApiTokenRecord>> FindApiToken(const std::string& id) override;
  Result<bool> RevokeApiToken(const std::string& id, std::int64_t at_ms,
                              const Effects& effects) override;

  Status InsertWebhook(const WebhookEndpoint& endpoint, const Effects& effects) override;
  Status UpdateWebhook(const WebhookEndpoint& endpoint, const Effects& effects) override;
  Result<bool> DeleteWebhook(const std::string& id, const Effects& effects) override;
  Result<std::optional<WebhookEndpoint>> FindWebhook(const std::string& id) override;
  Result<std::vector<WebhookEndpoint>> ListWebhooks(const std::string& user_id) override;
  Status EnqueueWebhookMessage(const std::string& endpoint_id, const OutboundEvent& event,
                               std::string_view trigger) override;
  Result<std::vector<DueWebhookMessage>> ClaimDueWebhookMessages(std::int64_t now_ms,
                                                                 std::int64_t lease_until_ms,
                                                                 int limit) override;
  Status RecordWebhookAttempt(const WebhookAttempt& attempt, AttemptOutcome outcome,
                              std::int64_t next_attempt_at_ms,
                              const std::string& disable_reason) override;
  Result<std::vector<WebhookAttempt>> ListWebhookAttempts(const std::string& endpoint_id,
                                                          std::int64_t before_id,
                                                          int limit) override;
  Result<std::vector<WebhookMessage>> ListWebhookMessages(const std::string& endpoint_id,
                                                          std::int64_t before_row,
                                                          int limit) override;
  Result<bool> ReplayWebhookMessage(const std::string& endpoint_id, const std::string& msg_id,
                                    std::int64_t now_ms) override;
  Result<std::optional<std::string>> LatestGranterOf(const std::string& agent_id) override;
  Result<CreateRequestResult> CreatePermissionRequest(const PermissionRequestRecord& request,
                                                      int max_pending, std::int64_t now_ms,
                                                      const Effects& effects) override;
  Result<std::optional<PermissionRequestRecord>> FindPermissionRequest(
      const std::string& id) override;
  Result<std::optional<PermissionRequestRecord>> FindPendingPermissionRequest(
      const std::string& agent_id, const std::string& action, const std::string& requested_from,
      std::int64_t now_ms) override;
  Result<std::int64_t> CountPendingPermissionRequests(const std::string& agent_id,
                                                      std::int64_t now_ms) override;
  Result<std::vector<PermissionRequestRecord>> ListPermissionRequests(
      const PermissionRequestFilter& filter) override;
  Result<DecideRequestResult> DecidePermissionRequest(const PermissionRequestRecord& decision,
                                                      const std::optional<GrantRecord>& grant,
                                                      const Effects& effects) override;
  Result<std::vector<PermissionRequestRecord>> ExpirePermissionRequests(
      std::int64_t now_ms, int limit, const RequestEffectsFor& effects_for) override;
  Result<std::vector<GrantRecord>> ClaimExpiredGrants(std::int64_t now_ms, int limit,
                                                      const GrantEffectsFor& effects_for) override;

  Status AppendActivity(const std::vector<ActivityEvent>& events) override;
  Result<std::vector<ActivityEvent>> ListActivity(const ActivityFilter& filter) override;

  // checks_total grows by the sum of the checks_per_day deltas (the authoritative count), not by
  // the number of check records, which the caller may sample.
  Status FlushBookkeeping(const Bookkeeping& batch) override;
  Result<Counters> LoadCounters(std::int64_t utc_day) override;

  Result<WorkspaceRecord> EnsureWorkspace(const WorkspaceRecord& if_absent) override;
  Result<std::vector<WorkspaceRecord>> ListWorkspaces() override;
  Status UpdateWorkspaceSecret(const std::string& id, const std::string& secret_sealed,
                               std::int64_t at_ms, const Effects& effects) override;
  Status TouchTenant(const TenantRecord& tenant) override;
  Status InsertConnector(const ConnectorRecord& connector, const Effects& effects) override;
  Result<std::vector<ConnectorRecord>> ListConnectors(const std::string& workspace_id) override;
  Status InsertIntegration(const IntegrationRecord& integration, const Effects& effects) override;
  Status UpdateIntegration(const IntegrationRecord& integration, const Effects& effects) override;
  Result<std::optional<IntegrationRecord>> FindIntegration(const std::string& workspace_id,
                                                           const std::string& id_or_key) override;
  Result<std::vector<IntegrationRecord>> ListIntegrations(const std::string& workspace_id,
                                                          bool include_archived) override;
  Status InsertConnection(const ConnectionRecord& connection, const Effects& effects) override;
  Result<bool> UpdateConnection(const ConnectionRecord& connection, std::int64_t expected_version,
                                const Effects& effects) override;
  Result<std::optional<ConnectionRecord>> FindConnection(const std::string& workspace_id,
                                                         const std::string& id) override;
  Result<std::optional<ConnectionRecord>> FindConnectionByKey(const std::string& workspace_id,
                                                              const std::string& tenant_key,
                                                              const std::string& key) override;
  Result<std::vector<ConnectionRecord>> ListConnections(const ConnectionFilter& filter) override;
  // A key clash is a conflict naming the key and its scope; UpdateAction of a missing action is
  // action_not_found. Update leaves id, workspace_id and created_at (the list's order) as they are.
  Status InsertAction(const ActionRecord& action, const Effects& effects) override;
  Status UpdateAction(const ActionRecord& action, const Effects& effects) override;
  Result<std::optional<ActionRecord>> FindAction(const std::string& workspace_id,
                                                 const std::string& id) override;
  Result<std::vector<ActionRecord>> ListActions(const ActionFilter& filter) override;
  Status InsertActionRuns(const std::vector<ActionRunRecord>& runs,
                          const Effects& effects) override;
  Result<std::optional<ActionRunRecord>> FindActionRun(const std::string& workspace_id,
                                                       const std::string& id) override;
  Result<std::vector<ActionRunRecord>> ListActionRuns(const ActionRunFilter& filter) override;
  Result<std::int64_t> DeleteActionRunsBefore(std::int64_t before_ms) override;
  // Budget windows are never pruned: past ones stay as one small row each (the store does not
  // know a window's length, so cannot tell when it has passed). A negative amount is refused as
  // a caller bug (server_error).
  Result<BudgetOutcome> ChargeBudgets(const std::vector<BudgetCharge>& charges) override;
  Status RefundBudgets(const std::vector<BudgetCharge>& charges) override;
  Result<std::int64_t> BudgetUsed(const std::string& grant_id, const std::string& field,
                                  std::int64_t window_start_ms) override;
  Status InsertConnectSession(const ConnectSessionRecord& session) override;
  Result<std::optional<ConnectSessionRecord>> FindConnectSession(const crypto::Digest& token_hash,
                                                                 std::int64_t now_ms) override;
  Result<bool> StartConnectSession(const crypto::Digest& token_hash,
                                   const crypto::Digest& state_hash,
                                   const crypto::Digest& browser_hash,
                                   const std::string& verifier_sealed,
                                   const std::string& redirect_uri, std::int64_t now_ms) override;
  Result<std::optional<ConnectSessionRecord>> ConsumeConnectSession(
      const crypto::Digest& state_hash, std::int64_t now_ms) override;
  Status EndConnectSessions(const std::string& connection_id, std::int64_t now_ms) override;
  Result<std::int64_t> ResealAll(const ResealFn& reseal) override;

  Result<IdempotencyOutcome> BeginIdempotent(const crypto::Digest& key,
                                             const crypto::Digest& fingerprint,
                                             std::int64_t now_ms, std::int64_t expires_at_ms,
                                             std::int64_t stale_before_ms) override;
  Status FinishIdempotent(const crypto::Digest& key, int status, const std::string& content_type,
                          const std::string& headers_json, const std::string& body) override;
  Status AbandonIdempotent(const crypto::Digest& key) override;
  Status Prune(std::int64_t now_ms, std::int64_t check_records_before_ms) override;

 private:
  class Connection;
  class ReaderPool;
  class Writer;
  using Op = std::function<Status(Connection&)>;

  SqliteStore(std::unique_ptr<ReaderPool> readers, std::unique_ptr<Writer> writer);

  // Records a write's activity events and fans its webhook events out to the outbox, inside the
  // write's own savepoint.
  static Status ApplyEffects(Connection& c, const Effects& effects);
  static Status InsertGrantRow(Connection& c, const GrantRecord& grant);

  // Run op on a read connection / as one savepoint of the next group commit. `what` names the
  // method in error messages.
  Status Read(std::string_view what, const Op& op);
  Status Write(std::string_view what, const Op& op);

  // Declared in this order so that readers close before the writer, whose connection is then
  // the last one and checkpoints the WAL into the database file on close.
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<ReaderPool> readers_;
};

}  // namespace agentgate::store
