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

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
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

// One answered permission check, recorded off the hot path; stored as an activity event with
// action "permission.check". Compact, because up to --max-pending of them wait in memory under
// load: the text fields share one buffer (one allocation per record instead of eight).
class CheckRecord {
 public:
  // The text fields, in buffer order.
  enum Field : std::uint8_t {
    kAgentId,
    kAction,
    kReason,     // "" when allowed
    kRequestId,
    kIp,
    kUserAgent,
    kActorId,    // "" means the agent itself
    kUserId,     // the token's owner when an access token asked
    kFieldCount
  };
  // The most bytes a field keeps (the user agent is clipped to 256, the log's own limit).
  static constexpr std::size_t kMaxFieldBytes = 1024;

  // Sets every text field at once (one allocation). Fields over their limit are clipped; the
  // clip may split a character, which Repair() mends off the hot path.
  void Assign(std::string_view agent_id, std::string_view action, std::string_view reason,
              std::string_view request_id, std::string_view ip, std::string_view user_agent,
              std::string_view actor_id = {}, std::string_view user_id = {});
  // Replaces one field (for tests and repairs; Assign is the fast path).
  void Set(Field field, std::string_view value);
  std::string_view Get(Field field) const {
    std::size_t begin = field == 0 ? 0 : ends_[field - 1];
    return std::string_view(text_).substr(begin, ends_[field] - begin);
  }
  std::string_view agent_id() const { return Get(kAgentId); }
  std::string_view action() const { return Get(kAction); }
  std::string_view reason() const { return Get(kReason); }
  std::string_view request_id() const { return Get(kRequestId); }
  std::string_view ip() const { return Get(kIp); }
  std::string_view user_agent() const { return Get(kUserAgent); }
  std::string_view actor_id() const { return Get(kActorId); }
  std::string_view user_id() const { return Get(kUserId); }
  // Makes every field valid UTF-8 (invalid sequences replaced) within its limit.
  void Repair();

  bool allowed = false;
  std::int32_t latency_us = 0;
  std::int64_t at_ms = 0;
  std::int64_t order_ns = 0;  // when the request arrived (steady clock): orders a batch
  // Who asked: the agent itself (by its secret), or an access token ("api_token"; actor_id and
  // user_id then name the token and its owner).
  std::string_view actor_kind = "agent";  // static storage

 private:
  std::string text_;
  std::array<std::uint16_t, kFieldCount> ends_{};
};

// One entry of the activity log: who did what to which target, and how it ended.
struct ActivityEvent {
  std::int64_t seq = 0;    // assigned by the store, increasing; the cursor of the log
  std::int64_t at_ms = 0;
  std::string actor_kind;  // session, api_token, tenant_token, agent, mcp, anonymous
  std::string actor_id;    // user id, token id or agent id; "" for anonymous callers
  std::string user_id;     // the person behind the actor; "" for agents and anonymous callers
  std::string action;      // e.g. "permission.grant"
  std::string target;      // what was acted on, e.g. a permission id; "" if nothing
  std::string agent_id;    // the agent concerned; "" if none
  std::string outcome;     // "success", "denied" or "error"
  int status = 0;          // HTTP status of the answer
  std::string error;       // error code, or the reason of a denial
  std::string request_id;
  std::string ip;
  std::string user_agent;
  std::int32_t latency_us = 0;
  std::int64_t order_ns = 0;  // not stored: when the request arrived (steady clock), to order a
                              // batch written together
};

struct ActivityFilter {
  std::string actor_kind, actor_id, agent_id, action, outcome;  // "" = any
  std::int64_t since_ms = 0;                                  // at >= since
  std::int64_t until_ms = std::numeric_limits<std::int64_t>::max();  // at < until
  std::int64_t before_seq = std::numeric_limits<std::int64_t>::max();  // the cursor
  int limit = 50;
  // When set, only events this person may see: their own calls (user_id), and events about
  // agents they granted something to or registered with their address.
  std::string visible_to_user_id;
  std::string visible_to_email;
};

// An event for webhook subscribers, written to the outbox with the change that caused it.
struct OutboundEvent {
  std::string id;            // "msg_…": the webhook-id, the same for every endpoint and retry
  std::string type;          // e.g. "permission.granted"
  std::string payload_json;  // the whole message body: {"type", "timestamp", "data"}
  std::int64_t at_ms = 0;
  // Whom it concerns (JSON arrays): endpoints of these people receive it, as do endpoints made
  // by admins, which receive every event.
  std::string audience_user_ids_json;
  std::string audience_emails_json;
};

// What a write records besides its change, in the same transaction: the activity events that
// describe it, and the webhook events it causes.
struct Effects {
  std::vector<ActivityEvent> activity;
  std::vector<OutboundEvent> events;
};

// A webhook endpoint: where events are sent, and the secrets that sign them (sealed: encrypted
// at rest by the caller; the store never sees them in plaintext).
struct WebhookEndpoint {
  std::string id;        // "whe_…"
  std::string user_id;   // the owner
  std::string audience = "own";  // "own": events concerning the owner; "all": every event
  std::string url;
  std::string description;
  std::string events_json;  // JSON array of event types; "*" for all
  std::string secret_sealed;
  std::string previous_secret_sealed;       // "" when none
  std::int64_t previous_secret_until_ms = 0;  // the previous secret also signs until then
  std::string status = "enabled";           // "enabled" or "disabled"
  std::string disabled_reason;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// One event queued for one endpoint: a row of the persistent outbox.
struct WebhookMessage {
  std::int64_t row = 0;
  std::string msg_id;  // the webhook-id
  std::string endpoint_id;
  std::string event_type;
  std::string payload;
  std::int64_t created_at_ms = 0;
  std::string status;  // "pending", "delivered" or "failed"
  int attempts = 0;
  std::int64_t next_attempt_at_ms = 0;
  int last_status = 0;
  std::string last_error;
  std::string next_trigger;  // what queued the next attempt: "auto", "replay" or "test"
};

// One delivery attempt, as the log shows it.
struct WebhookAttempt {
  std::int64_t id = 0;  // assigned by the store
  std::int64_t message_row = 0;
  std::string msg_id;      // filled by reads
  std::string event_type;  // filled by reads
  std::string endpoint_id;
  int attempt = 0;  // 1 for the first
  std::int64_t at_ms = 0;
  int status = 0;  // HTTP status; 0: no answer
  std::string error;
  std::int64_t duration_ms = 0;
  std::string response_excerpt;
  std::string trigger;  // "auto", "replay" or "test"
};

enum class AttemptOutcome {
  kDelivered,  // done
  kRetry,      // try again at next_attempt_at_ms
  kFailed,     // given up
  kGone,       // the receiver answered 410: give up and disable the endpoint
};

// A message due for delivery, with its endpoint.
struct DueWebhookMessage {
  WebhookMessage message;
  WebhookEndpoint endpoint;
};

// A personal access token. The plaintext is never stored, only its digest.
struct ApiTokenRecord {
  std::string id;              // "tok_…"
  std::string user_id;         // the owner
  std::string name;
  std::string abilities_json;  // JSON array of ability names
  crypto::Digest token_hash{};
  std::string token_prefix;    // the first characters of the plaintext, to recognise it
  std::string created_by;      // the user id or token id that created it
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> expires_at_ms;  // nullopt: never expires
  std::int64_t last_used_ms = 0;               // 0: never used
  std::optional<std::int64_t> revoked_at_ms;
  // Filled by reads: the owner's address and admin flag.
  std::string user_email;
  bool user_is_admin = false;
};

// Check-time bookkeeping, accumulated in memory and flushed in one transaction.
struct Bookkeeping {
  std::vector<CheckRecord> checks;
  std::vector<std::pair<std::string, std::int64_t>> last_seen;       // agent id, ms
  std::vector<std::pair<std::int64_t, std::int64_t>> checks_per_day;  // UTC day, count delta
  std::vector<ActivityEvent> activity;  // calls that changed nothing (reads, refusals)
  // checks and activity are each sorted by order_ns and written merged in that order, so the
  // log's sequence follows arrival.
  std::vector<std::pair<std::string, std::int64_t>> token_last_used;  // token id, ms

  bool empty() const {
    return checks.empty() && last_seen.empty() && checks_per_day.empty() && activity.empty() &&
           token_last_used.empty();
  }
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

// The agents a person has to do with, for their dashboard: those they own (the agent's
// developer_email is theirs) and those they have granted something, ever.
struct AgentListFilter {
  enum class Relation { kAny, kOwned, kGranted };
  std::string email;    // the person's (lower-case) email
  std::string user_id;  // the person's user id (grants' granted_by)
  Relation relation = Relation::kAny;
  std::int64_t now_ms = 0;  // what "active" means for active_permissions
  int limit = 50;
  // Continue after this (created_at, id), newest first; nullopt: from the newest.
  std::optional<std::pair<std::int64_t, std::string>> before;
};

struct AgentListing {
  AgentRecord agent;  // secret_hash is left zero
  bool owned = false;
  bool granted = false;
  int active_permissions = 0;  // active grants of this person to the agent
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

// --- integration engine -------------------------------------------------------------------------

// A workspace: the scope of tenants, integrations and connections. A fresh server has one, the
// default, made on first start. Its secret signs tenant and manager tokens (HS256); sealed.
struct WorkspaceRecord {
  std::string id;   // "ws_…"
  std::string key;  // the public workspaceKey carried in tokens
  std::string name;
  std::string secret_sealed;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// A tenant: an isolated scope of connections inside a workspace, named by the app (or a
// signed-in person's user id). Tenants come into being on first use.
struct TenantRecord {
  std::string workspace_id;
  std::string key;
  std::string name;         // "" when never given
  std::string fields_json;  // JSON object, "" when never given
  std::int64_t created_at_ms = 0;
  std::int64_t last_seen_ms = 0;
};

// A connector a workspace defined itself (the shipped catalogue is not stored).
struct ConnectorRecord {
  std::string id;  // "cnr_…"
  std::string workspace_id;
  std::string key;
  std::string spec_json;  // the normalized connector, as GET /connectors shows it
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// An integration: a workspace's use of one connector, with its OAuth client parameters.
struct IntegrationRecord {
  std::string id;  // "int_…"
  std::string workspace_id;
  std::string key;
  std::string name;
  std::string connector_key;
  std::string parameters_json;       // JSON object of the non-secret parameters (clientId, scopes…)
  std::string client_secret_sealed;  // "" when none
  std::optional<std::int64_t> archived_at_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// A connection: one tenant's authenticated link to an external app through an integration.
struct ConnectionRecord {
  std::string id;  // "conn_…"
  std::string workspace_id;
  std::string tenant_key;
  std::string key;
  std::string name;
  std::string integration_id;
  std::string state;                 // BUILDING, CLIENT_ACTION_REQUIRED, READY, DISCONNECTED,
                                     // CONFIGURATION_ERROR, SETUP_FAILED
  std::string error_json;            // {"code", "message"} of the last failure, "" when none
  std::string fields_json;           // connection fields (e.g. {"subdomain": "acme"}), "" none
  std::string credentials_sealed;    // sealed JSON of tokens or keys, "" when none yet
  std::optional<std::int64_t> token_expires_at_ms;  // access token expiry, when known
  std::int64_t refresh_failed_at_ms = 0;            // last failed refresh (for the cooldown)
  std::int64_t version = 0;          // bumped by every update (optimistic concurrency)
  std::optional<std::int64_t> archived_at_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct ConnectionFilter {
  std::string workspace_id;
  std::string tenant_key;      // "" = every tenant (manager)
  std::string integration_id;  // "" = any
  std::string search;          // "" = any; substring of key or name, case-insensitive
  bool include_archived = false;
  std::int64_t after_created_ms = -1;  // the cursor: rows after (created_at, id)
  std::string after_id;
  int limit = 100;
};

// A pending browser connect: the token in clientAction.uiUrl and, once the person started the
// OAuth redirect, the state, PKCE verifier and browser binding that the callback checks.
struct ConnectSessionRecord {
  crypto::Digest token_hash{};
  std::string connection_id;
  std::string workspace_id;
  std::string tenant_key;
  std::optional<crypto::Digest> state_hash;    // set when the redirect started
  std::optional<crypto::Digest> browser_hash;  // the cookie that binds the callback to the browser
  std::string verifier_sealed;                 // PKCE code verifier, sealed
  std::string redirect_uri;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> used_at_ms;
};


// A reusable action. Its scope follows which ids are set: connection_id (connection-level: one
// connection; integration_id is then that connection's integration), else integration_id
// (integration-level: every connection of the integration), else neither (universal: every
// connection). A universal action is overridden on an integration by an integration-level
// action with the same key.
struct ActionRecord {
  std::string id;  // "act_…"
  std::string workspace_id;
  std::string key;  // "" when none (dispatched by id only)
  std::string name;
  std::string description;
  std::string type;                // "api-request-to-external-app"
  std::string integration_id;      // "" = universal (unless connection-level)
  std::string connection_id;       // "" unless connection-level
  std::string config_json;         // JSON object ({"request": {...}})
  std::string input_schema_json;   // JSON object, "" when none
  std::string output_schema_json;  // JSON object, "" when none
  std::optional<std::int64_t> archived_at_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct ActionFilter {
  std::string workspace_id;
  // The surface of a connection or an integration: when connection_id is set, the actions usable
  // on it (universal, integration-level of surface_integration_id, connection-level of
  // connection_id); when only surface_integration_id is set, universal and that integration's
  // integration-level actions. Both "" = every action of the workspace.
  std::string connection_id;
  std::string surface_integration_id;
  std::string key;  // "" = any; exact key
  bool include_archived = false;
  std::int64_t after_created_ms = -1;  // the cursor: rows after (created_at, id)
  std::string after_id;
  int limit = 100;
};

// One run of an action (or of an inline api request) through a connection.
struct ActionRunRecord {
  std::string id;  // "run_…"
  std::string workspace_id;
  std::string tenant_key;
  std::string action_id;   // "" for an inline api request
  std::string action_key;
  std::string connection_id;  // "" when the run failed before one was chosen
  std::string integration_id;
  std::string actor_kind;  // as in activity events: session, api_token, tenant_token, agent, mcp
  std::string actor_id;
  std::string agent_id;  // the agent that acted under a grant, "" otherwise
  std::string grant_id;  // the grant it acted under, "" otherwise
  std::string status;    // "success" or "error"
  std::string input_json;    // JSON, "" when none
  std::string output_json;   // JSON, "" when none
  std::string error_json;    // the Error answer's JSON object, "" on success
  std::string details_json;  // JSON object with the redacted HTTP exchanges, "" when none
  std::int64_t started_at_ms = 0;
  std::int64_t finished_at_ms = 0;
};

struct ActionRunFilter {
  std::string workspace_id;
  std::string tenant_key;     // "" = every tenant (manager)
  std::string agent_id;       // "" = any
  std::string action_id;      // "" = any
  std::string connection_id;  // "" = any
  std::string status;         // "" = any
  std::int64_t before_started_ms = -1;  // the cursor, newest first: rows before (started_at, id)
  std::string before_id;
  int limit = 100;
};

// One budget of a grant's scope, charged by a run: `amount` more of `field` in the window that
// starts at window_start_ms, allowed while the window's total stays within `limit`. Amounts are
// integers in the caller's fixed-point unit.
struct BudgetCharge {
  std::string grant_id;
  std::string field;
  std::int64_t window_start_ms = 0;
  std::int64_t amount = 0;
  std::int64_t limit = 0;
};

struct BudgetOutcome {
  bool charged = false;      // every charge was applied; otherwise none was
  std::size_t failed = 0;    // when not charged: the index of the first charge that did not fit
  std::vector<std::int64_t> used;  // per charge: the window's total after (or now, when refused)
};

// A permission request: an agent asks a person for a grant. The person approves (which makes
// the grant, in the same transaction) or declines; a request nobody decided lapses at
// expires_at. Only "pending" requests change, and only once.
struct PermissionRequestRecord {
  std::string id;              // "preq_<24 hex>"
  std::string agent_id;
  std::string action;
  std::string reason;
  std::string scope_json;      // what the agent asked for: serialized JSON object, "" when none
  std::string expires_in;      // the grant lifetime asked for ("7d"), "" when none
  std::string requested_from;  // the addressee's lower-case email
  std::string status = "pending";  // "pending", "approved", "declined" or "expired", as stored
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // when the request itself lapses
  std::optional<std::int64_t> decided_at_ms;
  std::string decided_by;      // the decider's email, "" while undecided
  std::string decline_reason;  // "" when none
  std::string grant_id;        // the grant an approval made, "" otherwise

  // The status as readers see it: a pending request past expires_at reads "expired" at once,
  // before housekeeping stores it so.
  std::string_view StatusAt(std::int64_t now_ms) const {
    return status == "pending" && expires_at_ms <= now_ms ? std::string_view("expired")
                                                          : std::string_view(status);
  }
};

struct PermissionRequestFilter {
  std::string requested_from;  // "" = any addressee
  std::string agent_id;        // "" = any agent
  std::string status;          // "" = any; otherwise as StatusAt reads it
  std::int64_t now_ms = 0;
  // The cursor, newest first: rows before (created_at, id).
  std::int64_t before_created_ms = std::numeric_limits<std::int64_t>::max();
  std::string before_id;
  int limit = 50;
};

enum class CreateRequestOutcome {
  kCreated,    // inserted, with its effects
  kDuplicate,  // the agent already has a live pending request for this action to this person
  kTooMany,    // the agent has max_pending live pending requests already
};

struct CreateRequestResult {
  CreateRequestOutcome outcome = CreateRequestOutcome::kCreated;
  PermissionRequestRecord request;  // the new one, or the existing duplicate
};

struct DecideRequestResult {
  bool decided = false;             // false: it was not pending (or had lapsed) at now_ms
  PermissionRequestRecord request;  // as stored after the call (nothing written when !decided)
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
  // Each write also records its effects (activity events, webhook events) atomically with it.
  virtual Status InsertAgent(const AgentRecord& agent, const Effects& effects) = 0;
  Status InsertAgent(const AgentRecord& agent) { return InsertAgent(agent, Effects{}); }
  virtual Status InsertGrant(const GrantRecord& grant, const Effects& effects) = 0;
  Status InsertGrant(const GrantRecord& grant) { return InsertGrant(grant, Effects{}); }
  // Marks each listed grant revoked unless it already is. Returns the ids it revoked now;
  // effects_for (may be empty) gives the effects of revoking exactly those, recorded in the same
  // transaction.
  using EffectsFor = std::function<Effects(const std::vector<std::string>& revoked)>;
  virtual Result<std::vector<std::string>> RevokeGrants(const std::vector<std::string>& ids,
                                                        std::int64_t at_ms,
                                                        const std::string& revoked_by,
                                                        const EffectsFor& effects_for) = 0;
  Result<std::vector<std::string>> RevokeGrants(const std::vector<std::string>& ids,
                                                std::int64_t at_ms,
                                                const std::string& revoked_by) {
    return RevokeGrants(ids, at_ms, revoked_by, EffectsFor());
  }
  virtual Result<std::optional<GrantRecord>> FindGrant(const std::string& id) = 0;
  // Newest first.
  virtual Result<std::vector<GrantRecord>> ListGrants(const GrantFilter& filter) = 0;
  // Newest first (created_at, then id, descending).
  virtual Result<std::vector<AgentListing>> ListAgentsOf(const AgentListFilter& filter) = 0;

  // The email of whoever granted this agent anything most recently (revoked and expired grants
  // count); nullopt when nobody ever did.
  virtual Result<std::optional<std::string>> LatestGranterOf(const std::string& agent_id) = 0;

  // --- permission requests --------------------------------------------------------------------
  // Inserts the request (and records effects) unless, at now_ms, the agent already has a live
  // pending request for the same action to the same person (kDuplicate: that one is returned) or
  // max_pending live pending requests (kTooMany). The tests and the insert are one atomic step.
  virtual Result<CreateRequestResult> CreatePermissionRequest(const PermissionRequestRecord& request,
                                                              int max_pending, std::int64_t now_ms,
                                                              const Effects& effects) = 0;
  virtual Result<std::optional<PermissionRequestRecord>> FindPermissionRequest(
      const std::string& id) = 0;
  // The live (unlapsed at now_ms) pending request of this agent for this action to this person.
  virtual Result<std::optional<PermissionRequestRecord>> FindPendingPermissionRequest(
      const std::string& agent_id, const std::string& action, const std::string& requested_from,
      std::int64_t now_ms) = 0;
  // How many live pending requests the agent has at now_ms.
  virtual Result<std::int64_t> CountPendingPermissionRequests(const std::string& agent_id,
                                                              std::int64_t now_ms) = 0;
  // Newest first, from the cursor.
  virtual Result<std::vector<PermissionRequestRecord>> ListPermissionRequests(
      const PermissionRequestFilter& filter) = 0;
  // Decides a request: only if it is pending and unlapsed at decision.decided_at_ms, sets status
  // ("approved" or "declined"), decided_at, decided_by, decline_reason and grant_id from
  // `decision`, inserts `grant` when given, and records effects — all in one transaction. Of
  // concurrent decisions exactly one wins; the others get decided == false and write nothing.
  virtual Result<DecideRequestResult> DecidePermissionRequest(
      const PermissionRequestRecord& decision, const std::optional<GrantRecord>& grant,
      const Effects& effects) = 0;
  // Stores up to limit pending requests lapsed at now_ms as "expired" and records
  // effects_for(them), atomically. Returns them (as stored now).
  using RequestEffectsFor = std::function<Effects(const std::vector<PermissionRequestRecord>&)>;
  virtual Result<std::vector<PermissionRequestRecord>> ExpirePermissionRequests(
      std::int64_t now_ms, int limit, const RequestEffectsFor& effects_for) = 0;

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

  // --- access tokens ----------------------------------------------------------------------------
  virtual Status InsertApiToken(const ApiTokenRecord& token, const Effects& effects) = 0;
  // Streams every token neither revoked nor expired at now_ms, with its owner.
  virtual Status LoadActiveApiTokens(std::int64_t now_ms,
                                     const std::function<void(ApiTokenRecord&&)>& sink) = 0;
  // The person's tokens, newest first (revoked ones too when include_revoked).
  virtual Result<std::vector<ApiTokenRecord>> ListApiTokens(const std::string& user_id,
                                                            bool include_revoked) = 0;
  virtual Result<std::optional<ApiTokenRecord>> FindApiToken(const std::string& id) = 0;
  // Marks the token revoked; false (and no effects recorded) when it already was.
  virtual Result<bool> RevokeApiToken(const std::string& id, std::int64_t at_ms,
                                      const Effects& effects) = 0;

  // --- activity -------------------------------------------------------------------------------
  // Appends events durably (for state changes that have no write of their own to ride on).
  virtual Status AppendActivity(const std::vector<ActivityEvent>& events) = 0;
  // Newest first.
  virtual Result<std::vector<ActivityEvent>> ListActivity(const ActivityFilter& filter) = 0;

  // --- webhooks -------------------------------------------------------------------------------
  // Endpoints; the subscriptions follow events_json.
  virtual Status InsertWebhook(const WebhookEndpoint& endpoint, const Effects& effects) = 0;
  // Replaces the endpoint's mutable fields. Disabling it fails its pending messages.
  virtual Status UpdateWebhook(const WebhookEndpoint& endpoint, const Effects& effects) = 0;
  // Deletes it (its log goes with it); false when there was none.
  virtual Result<bool> DeleteWebhook(const std::string& id, const Effects& effects) = 0;
  virtual Result<std::optional<WebhookEndpoint>> FindWebhook(const std::string& id) = 0;
  // Oldest first; user_id "" lists every endpoint.
  virtual Result<std::vector<WebhookEndpoint>> ListWebhooks(const std::string& user_id) = 0;
  // Queues an event for one endpoint only (a test event), whatever it subscribes to.
  virtual Status EnqueueWebhookMessage(const std::string& endpoint_id,
                                       const OutboundEvent& event, std::string_view trigger) = 0;
  // Takes up to limit pending messages due at now_ms (of enabled endpoints) and leases them
  // until lease_until_ms, so no other worker takes them meanwhile.
  virtual Result<std::vector<DueWebhookMessage>> ClaimDueWebhookMessages(
      std::int64_t now_ms, std::int64_t lease_until_ms, int limit) = 0;
  // Records an attempt and what follows from it, in one transaction.
  virtual Status RecordWebhookAttempt(const WebhookAttempt& attempt, AttemptOutcome outcome,
                                      std::int64_t next_attempt_at_ms,
                                      const std::string& disable_reason) = 0;
  // Newest first, before the given id/row (the cursor).
  virtual Result<std::vector<WebhookAttempt>> ListWebhookAttempts(const std::string& endpoint_id,
                                                                  std::int64_t before_id,
                                                                  int limit) = 0;
  virtual Result<std::vector<WebhookMessage>> ListWebhookMessages(const std::string& endpoint_id,
                                                                  std::int64_t before_row,
                                                                  int limit) = 0;
  // Queues a message again, now; false when the endpoint has no such message.
  virtual Result<bool> ReplayWebhookMessage(const std::string& endpoint_id,
                                            const std::string& msg_id, std::int64_t now_ms) = 0;
  // Grants whose expiry has passed (unrevoked) and that were not reported yet: marks up to limit
  // of them reported and records effects_for(them), atomically. Returns them.
  using GrantEffectsFor = std::function<Effects(const std::vector<GrantRecord>& expired)>;
  virtual Result<std::vector<GrantRecord>> ClaimExpiredGrants(std::int64_t now_ms, int limit,
                                                              const GrantEffectsFor& effects_for) = 0;

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

  // --- integration engine ------------------------------------------------------------------
  // Inserts the workspace unless one with its id exists; returns the stored one.
  virtual Result<WorkspaceRecord> EnsureWorkspace(const WorkspaceRecord& if_absent) = 0;
  virtual Result<std::vector<WorkspaceRecord>> ListWorkspaces() = 0;
  virtual Status UpdateWorkspaceSecret(const std::string& id, const std::string& secret_sealed,
                                       std::int64_t at_ms, const Effects& effects) = 0;
  // Creates the tenant, or refreshes last_seen (and name / fields when given).
  virtual Status TouchTenant(const TenantRecord& tenant) = 0;

  virtual Status InsertConnector(const ConnectorRecord& connector, const Effects& effects) = 0;
  virtual Result<std::vector<ConnectorRecord>> ListConnectors(const std::string& workspace_id) = 0;

  // Key unique per workspace (conflict otherwise).
  virtual Status InsertIntegration(const IntegrationRecord& integration,
                                   const Effects& effects) = 0;
  virtual Status UpdateIntegration(const IntegrationRecord& integration,
                                   const Effects& effects) = 0;
  // By id or key.
  virtual Result<std::optional<IntegrationRecord>> FindIntegration(
      const std::string& workspace_id, const std::string& id_or_key) = 0;
  // Oldest first.
  virtual Result<std::vector<IntegrationRecord>> ListIntegrations(const std::string& workspace_id,
                                                                  bool include_archived) = 0;

  // Key unique per workspace and tenant (conflict otherwise).
  virtual Status InsertConnection(const ConnectionRecord& connection, const Effects& effects) = 0;
  // Writes the connection if its stored version is still expected_version (the new record
  // carries expected_version + 1); false, and nothing written, when another write came first.
  virtual Result<bool> UpdateConnection(const ConnectionRecord& connection,
                                        std::int64_t expected_version,
                                        const Effects& effects) = 0;
  virtual Result<std::optional<ConnectionRecord>> FindConnection(const std::string& workspace_id,
                                                                 const std::string& id) = 0;
  virtual Result<std::optional<ConnectionRecord>> FindConnectionByKey(
      const std::string& workspace_id, const std::string& tenant_key, const std::string& key) = 0;
  // Oldest first, from the cursor.
  virtual Result<std::vector<ConnectionRecord>> ListConnections(
      const ConnectionFilter& filter) = 0;

  // Key unique (among unarchived actions) per workspace, integration and connection: conflict
  // otherwise. Update writes every field (restore = archived_at_ms cleared), conflict likewise.
  virtual Status InsertAction(const ActionRecord& action, const Effects& effects) = 0;
  virtual Status UpdateAction(const ActionRecord& action, const Effects& effects) = 0;
  virtual Result<std::optional<ActionRecord>> FindAction(const std::string& workspace_id,
                                                         const std::string& id) = 0;
  // Oldest first, from the cursor.
  virtual Result<std::vector<ActionRecord>> ListActions(const ActionFilter& filter) = 0;

  // Many runs (and their effects) in one transaction: run logs are written in batches.
  virtual Status InsertActionRuns(const std::vector<ActionRunRecord>& runs,
                                  const Effects& effects) = 0;
  Status InsertActionRun(const ActionRunRecord& run, const Effects& effects) {
    return InsertActionRuns({run}, effects);
  }
  virtual Result<std::optional<ActionRunRecord>> FindActionRun(const std::string& workspace_id,
                                                               const std::string& id) = 0;
  // Newest first, from the cursor.
  virtual Result<std::vector<ActionRunRecord>> ListActionRuns(const ActionRunFilter& filter) = 0;
  // Deletes runs that started before the cutoff; returns how many.
  virtual Result<std::int64_t> DeleteActionRunsBefore(std::int64_t before_ms) = 0;

  // Applies every charge, or none: atomically, so concurrent runs (on any node) never take a
  // window past its limit.
  virtual Result<BudgetOutcome> ChargeBudgets(const std::vector<BudgetCharge>& charges) = 0;
  // Gives charges back (a run that was refused before the app carried it out); never below 0.
  virtual Status RefundBudgets(const std::vector<BudgetCharge>& charges) = 0;
  // The window's total so far (0 when nothing was charged).
  virtual Result<std::int64_t> BudgetUsed(const std::string& grant_id, const std::string& field,
                                          std::int64_t window_start_ms) = 0;

  virtual Status InsertConnectSession(const ConnectSessionRecord& session) = 0;
  // Unused and unexpired at now_ms.
  virtual Result<std::optional<ConnectSessionRecord>> FindConnectSession(
      const crypto::Digest& token_hash, std::int64_t now_ms) = 0;
  // Records the start of the redirect (state, browser binding, verifier) on an unused session.
  virtual Result<bool> StartConnectSession(const crypto::Digest& token_hash,
                                           const crypto::Digest& state_hash,
                                           const crypto::Digest& browser_hash,
                                           const std::string& verifier_sealed,
                                           const std::string& redirect_uri,
                                           std::int64_t now_ms) = 0;
  // Marks the session whose redirect carried this state used, atomically, and returns it; nullopt
  // when there is none, it was used, or it expired.
  virtual Result<std::optional<ConnectSessionRecord>> ConsumeConnectSession(
      const crypto::Digest& state_hash, std::int64_t now_ms) = 0;
  // Ends every unused session of a connection (a finished form, a new connect).
  virtual Status EndConnectSessions(const std::string& connection_id, std::int64_t now_ms) = 0;

  // Re-seals every sealed value (webhook secrets, workspace secrets, OAuth client secrets,
  // connection credentials, PKCE verifiers) for which reseal returns a new text, in one
  // transaction. Returns how many values changed.
  using ResealFn = std::function<Result<std::optional<std::string>>(const std::string& sealed)>;
  virtual Result<std::int64_t> ResealAll(const ResealFn& reseal) = 0;

  // --- bookkeeping and statistics -------------------------------------------------------------
  virtual Status FlushBookkeeping(const Bookkeeping& batch) = 0;
  virtual Result<Counters> LoadCounters(std::int64_t utc_day) = 0;

  // Deletes expired magic links, sessions and idempotency records, and activity events (check
  // records among them) older than the cutoff.
  virtual Status Prune(std::int64_t now_ms, std::int64_t check_records_before_ms) = 0;
};

}  // namespace agentgate::store
