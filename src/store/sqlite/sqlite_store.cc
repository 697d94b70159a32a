#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace agentgate::store {
namespace {

// The schema, one entry per version (version = index + 1). Entries are append-only: a released
// entry never changes, because databases in the field have already applied it.
constexpr std::string_view kMigrations[] = {
    // 1: people, agents and their grants.
    R"sql(
CREATE TABLE users(
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  is_admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
) STRICT;
-- Makes "is there an admin yet?" one index probe however many users there are.
CREATE INDEX users_admins ON users(is_admin) WHERE is_admin = 1;

CREATE TABLE agents(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  developer_email TEXT NOT NULL,
  metadata_json TEXT NOT NULL DEFAULT '',
  secret_hash BLOB NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
  status TEXT NOT NULL DEFAULT 'active',
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE grants(
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL REFERENCES agents(id),
  action TEXT NOT NULL,
  granted_by TEXT NOT NULL,
  granted_by_email TEXT NOT NULL,
  expires_at INTEGER,
  scope_json TEXT NOT NULL DEFAULT '',
  metadata_json TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revoked_by TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX grants_agent_action ON grants(agent_id, action);
-- Lists of one person's grants come newest first.
CREATE INDEX grants_granted_by ON grants(granted_by, created_at);
-- The unfiltered list stops after its limit instead of sorting every grant.
CREATE INDEX grants_created ON grants(created_at);
-- The unrevoked grants in rowid order: the start-up load walks it and so skips revoked history
-- while still reading the table sequentially (keying it by expires_at would not: it would visit
-- expiring grants in expiry order, all over the table).
CREATE INDEX grants_unrevoked ON grants(revoked_at) WHERE revoked_at IS NULL;
)sql",
    // 2: sign-in.
    R"sql(
CREATE TABLE magic_links(
  token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
  email TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX magic_links_expires ON magic_links(expires_at);

CREATE TABLE sessions(
  token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
  user_id TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);
)sql",
    // 3: check records and statistics.
    R"sql(
CREATE TABLE check_records(
  id INTEGER PRIMARY KEY,
  agent_id TEXT NOT NULL,
  action TEXT NOT NULL,
  allowed INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  latency_us INTEGER NOT NULL
) STRICT;
CREATE INDEX check_records_at ON check_records(at);

CREATE TABLE counters(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO counters(name, value) VALUES ('checks_total', 0);

CREATE TABLE daily_checks(
  day INTEGER PRIMARY KEY,
  count INTEGER NOT NULL
) STRICT;
)sql",
    // 4: Idempotency-Key records.
    R"sql(
CREATE TABLE idempotency(
  id INTEGER PRIMARY KEY,
  key BLOB NOT NULL UNIQUE CHECK(length(key) = 32),
  fingerprint BLOB NOT NULL CHECK(length(fingerprint) = 32),
  done INTEGER NOT NULL,
  status INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  headers TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_expires ON idempotency(expires_at);
)sql",
    // 5: personal access tokens, and the activity log (which takes over the check records).
    R"sql(
CREATE TABLE api_tokens(
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  abilities TEXT NOT NULL,
  token_hash BLOB NOT NULL UNIQUE CHECK(length(token_hash) = 32),
  token_prefix TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  last_used INTEGER NOT NULL,
  revoked_at INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens(user_id, created_at);

CREATE TABLE activity(
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  request_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  latency_us INTEGER NOT NULL
) STRICT;
CREATE INDEX activity_at ON activity(at);
CREATE INDEX activity_agent ON activity(agent_id, seq) WHERE agent_id <> '';
CREATE INDEX activity_user ON activity(user_id, seq) WHERE user_id <> '';
INSERT INTO activity(at, actor_kind, actor_id, user_id, action, target, agent_id, outcome,
                     status, error, request_id, ip, user_agent, latency_us)
  SELECT at, 'agent', agent_id, '', 'permission.check', action, agent_id,
         CASE WHEN allowed THEN 'success' ELSE 'denied' END, 200, reason, '', '', '', latency_us
  FROM check_records ORDER BY id;
DROP TABLE check_records;
)sql",
    // 6: outbound webhooks: endpoints, their subscriptions, the outbox and the attempts log.
    R"sql(
CREATE TABLE webhook_endpoints(
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  audience TEXT NOT NULL CHECK(audience IN ('own', 'all')),
  url TEXT NOT NULL,
  description TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  previous_secret TEXT NOT NULL,
  previous_secret_until INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('enabled', 'disabled')),
  disabled_reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_user ON webhook_endpoints(user_id, created_at);

CREATE TABLE webhook_subscriptions(
  event_type TEXT NOT NULL,
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  PRIMARY KEY(event_type, endpoint_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE webhook_messages(
  id INTEGER PRIMARY KEY,
  msg_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  leased_until INTEGER NOT NULL,
  last_status INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  next_trigger TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_messages_due ON webhook_messages(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint ON webhook_messages(endpoint_id, id);

CREATE TABLE webhook_attempts(
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
  endpoint_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  response_excerpt TEXT NOT NULL,
  trigger TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts(endpoint_id, id);
CREATE INDEX webhook_attempts_message ON webhook_attempts(message_id);
CREATE INDEX webhook_attempts_at ON webhook_attempts(at);

-- permission.expired is sent once per grant: grants remember whether it was.
ALTER TABLE grants ADD COLUMN expiry_reported INTEGER NOT NULL DEFAULT 0;
UPDATE grants SET expiry_reported = 1
  WHERE expires_at IS NOT NULL AND expires_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
CREATE INDEX grants_expiry_unreported ON grants(expires_at)
  WHERE expiry_reported = 0 AND expires_at IS NOT NULL AND revoked_at IS NULL;
)sql",
    // 7: the integration engine: workspaces, tenants, custom connectors, integrations,
    // connections and pending browser connects.
    R"sql(
CREATE TABLE workspaces(
  id TEXT PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tenants(
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  fields TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY(workspace_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE connectors(
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  key TEXT NOT NULL,
  spec TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE(workspace_id, key)
) STRICT;

CREATE TABLE integrations(
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  connector_key TEXT NOT NULL,
  parameters TEXT NOT NULL,
  client_secret TEXT NOT NULL,
  archived_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE(workspace_id, key)
) STRICT;

CREATE TABLE connections(
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  tenant_key TEXT NOT NULL,
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  integration_id TEXT NOT NULL REFERENCES integrations(id),
  state TEXT NOT NULL CHECK(state IN ('BUILDING', 'CLIENT_ACTION_REQUIRED', 'READY',
                                      'DISCONNECTED', 'CONFIGURATION_ERROR', 'SETUP_FAILED')),
  error TEXT NOT NULL,
  fields TEXT NOT NULL,
  credentials TEXT NOT NULL,
  token_expires_at INTEGER,
  refresh_failed_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  archived_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE(workspace_id, tenant_key, key)
) STRICT;
CREATE INDEX connections_tenant ON connections(workspace_id, tenant_key, created_at, id);
CREATE INDEX connections_integration ON connections(integration_id);

CREATE TABLE connect_sessions(
  token_hash BLOB PRIMARY KEY,
  connection_id TEXT NOT NULL REFERENCES connections(id),
  workspace_id TEXT NOT NULL,
  tenant_key TEXT NOT NULL,
  state_hash BLOB UNIQUE,
  browser_hash BLOB,
  verifier TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT;
CREATE INDEX connect_sessions_connection ON connect_sessions(connection_id);
CREATE INDEX connect_sessions_expiry ON connect_sessions(expires_at);
)sql",
    // 8: actions, their runs, and the budget windows runs charge.
    R"sql(
-- integration_id and connection_id are '' for "none" (universal, integration-level), so they
-- cannot be foreign keys; the engine checks them before it writes.
CREATE TABLE actions(
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  type TEXT NOT NULL,
  integration_id TEXT NOT NULL,
  connection_id TEXT NOT NULL,
  config TEXT NOT NULL,
  input_schema TEXT NOT NULL,
  output_schema TEXT NOT NULL,
  archived_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
-- A key names one action per scope (universal, one integration, one connection) among the
-- unarchived ones: archiving frees the key, and the same key may live at each level.
CREATE UNIQUE INDEX actions_key ON actions(workspace_id, key, integration_id, connection_id)
  WHERE key <> '' AND archived_at IS NULL;
CREATE INDEX actions_workspace ON actions(workspace_id, created_at, id);

-- A log: no foreign keys, so that a run is recorded whatever it referred to.
CREATE TABLE action_runs(
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  tenant_key TEXT NOT NULL,
  action_id TEXT NOT NULL,
  action_key TEXT NOT NULL,
  connection_id TEXT NOT NULL,
  integration_id TEXT NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('success', 'error')),
  input TEXT NOT NULL,
  output TEXT NOT NULL,
  error TEXT NOT NULL,
  details TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL
) STRICT;
-- Lists walk one of these backwards from the cursor (a manager's, a tenant's); the other
-- filters are checked on the rows met. started_at alone serves the retention delete.
CREATE INDEX action_runs_workspace ON action_runs(workspace_id, started_at, id);
CREATE INDEX action_runs_tenant ON action_runs(workspace_id, tenant_key, started_at, id);
CREATE INDEX action_runs_started ON action_runs(started_at);

-- What runs charged to each budget of a grant, per window. Rows of past windows stay: one tiny
-- row per grant, field and window, and the store cannot tell a past window from a long one (it
-- never learns the period). No foreign key to grants, for the same reason as the run log.
CREATE TABLE budget_windows(
  grant_id TEXT NOT NULL,
  field TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  used INTEGER NOT NULL CHECK(used >= 0),
  PRIMARY KEY(grant_id, field, window_start)
) STRICT, WITHOUT ROWID;
)sql",
    // 9: permission requests (an agent asks a person for a grant), and a person's own agents
    // for their dashboard (GET /v1/agents).
    R"sql(
CREATE TABLE permission_requests(
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL REFERENCES agents(id),
  action TEXT NOT NULL,
  reason TEXT NOT NULL,
  scope TEXT NOT NULL,
  expires_in TEXT NOT NULL,
  requested_from TEXT NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('pending', 'approved', 'declined', 'expired')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  decided_at INTEGER,
  decided_by TEXT NOT NULL,
  decline_reason TEXT NOT NULL,
  grant_id TEXT NOT NULL
) STRICT;
-- A person's list and an agent's list walk these backwards from the cursor.
CREATE INDEX permission_requests_addressee ON permission_requests(requested_from, created_at, id);
CREATE INDEX permission_requests_agent ON permission_requests(agent_id, created_at, id);
-- Housekeeping finds lapsed pending requests without reading decided history.
CREATE INDEX permission_requests_pending ON permission_requests(expires_at)
  WHERE status = 'pending';
-- "Who granted this agent anything last" is one probe.
CREATE INDEX grants_agent_created ON grants(agent_id, created_at);
CREATE INDEX agents_developer ON agents(developer_email, created_at, id);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Enough for the bursts of a busy server; beyond it, connections close after use instead of
// holding page caches nobody needs.
constexpr std::size_t kMaxIdleReaders = 16;

// --- statements -------------------------------------------------------------------------------

constexpr std::string_view kInsertAgent =
    "INSERT INTO agents(id, name, description, developer_email, metadata_json, secret_hash, "
    "status, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr std::string_view kLoadAgents =
    "SELECT id, name, description, developer_email, metadata_json, secret_hash, status, "
    "created_at, last_seen FROM agents";

constexpr std::string_view kInsertGrant =
    "INSERT INTO grants(id, agent_id, action, granted_by, granted_by_email, expires_at, "
    "scope_json, metadata_json, created_at, revoked_at, revoked_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr std::string_view kLoadActiveGrants =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants "
    "WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)";
constexpr std::string_view kFindGrant =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE id = ?1";
constexpr std::string_view kRevokeGrant =
    "UPDATE grants SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL "
    "RETURNING id";

// A person's agents: owned (developer_email), granted to (any grant by them, ever), or either;
// one text per relation, as for grants below. ?1 email, ?2 user id, ?3 now, ?4/?5 the cursor
// (created_at, id), ?6 the limit.
#define AGENTGATE_LIST_AGENTS_OF(WHERE)                                                        \
  "SELECT a.id, a.name, a.description, a.developer_email, a.metadata_json, a.status, "         \
  "a.created_at, a.last_seen, a.developer_email = ?1, "                                        \
  "EXISTS(SELECT 1 FROM grants g WHERE g.agent_id = a.id AND g.granted_by = ?2), "             \
  "(SELECT count(*) FROM grants g WHERE g.agent_id = a.id AND g.granted_by = ?2 AND "          \
  "g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > ?3)) "                     \
  "FROM agents a WHERE " WHERE " AND (a.created_at < ?4 OR (a.created_at = ?4 AND a.id < ?5)) " \
  "ORDER BY a.created_at DESC, a.id DESC LIMIT ?6"
constexpr std::string_view kListAgentsOwned = AGENTGATE_LIST_AGENTS_OF("a.developer_email = ?1");
constexpr std::string_view kListAgentsGranted =
    AGENTGATE_LIST_AGENTS_OF("a.id IN (SELECT agent_id FROM grants WHERE granted_by = ?2)");
constexpr std::string_view kListAgentsAny = AGENTGATE_LIST_AGENTS_OF(
    "(a.developer_email = ?1 OR a.id IN (SELECT agent_id FROM grants WHERE granted_by = ?2))");
#undef AGENTGATE_LIST_AGENTS_OF

// One text per filter combination rather than "(?1 = '' OR granted_by = ?1)", which would
// hide the indexes from the planner. All use the same parameter numbers.
constexpr std::string_view kListGrantsAll =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";
constexpr std::string_view kListGrantsByGranter =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "granted_by = ?1 AND "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";
constexpr std::string_view kListGrantsByAgent =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "agent_id = ?2 AND "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";
constexpr std::string_view kListGrantsByBoth =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "granted_by = ?1 AND agent_id = ?2 AND "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";

constexpr std::string_view kFindUserByEmail =
    "SELECT id, email, is_admin, created_at FROM users WHERE email = ?1";
constexpr std::string_view kInsertUser =
    "INSERT INTO users(id, email, is_admin, created_at) VALUES (?1, ?2, 0, ?3)";
constexpr std::string_view kPromoteIfNoAdmin =
    "UPDATE users SET is_admin = 1 WHERE id = ?1 "
    "AND NOT EXISTS (SELECT 1 FROM users WHERE is_admin = 1) RETURNING 1";

constexpr std::string_view kInsertMagicLink =
    "INSERT INTO magic_links(token_hash, email, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kConsumeMagicLink =
    "UPDATE magic_links SET used_at = ?2 "
    "WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING email";

constexpr std::string_view kInsertSession =
    "INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kFindSession =
    "SELECT u.id, u.email, u.is_admin, u.created_at, s.expires_at "
    "FROM sessions AS s JOIN users AS u ON u.id = s.user_id "
    "WHERE s.token_hash = ?1 AND s.expires_at > ?2";
constexpr std::string_view kDeleteSession = "DELETE FROM sessions WHERE token_hash = ?1";

constexpr std::string_view kInsertActivity =
    "INSERT INTO activity(at, actor_kind, actor_id, user_id, action, target, agent_id, outcome, "
    "status, error, request_id, ip, user_agent, latency_us) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
constexpr std::string_view kActivityColumns =
    "seq, at, actor_kind, actor_id, user_id, action, target, agent_id, outcome, status, error, "
    "request_id, ip, user_agent, latency_us";
// One outbox row per enabled endpoint subscribed to the event's type (or to '*') whose owner
// the event concerns: its audience names users by id (?5) or address (?6); 'all' endpoints
// (made by admins) get every event.
constexpr std::string_view kFanOutEvent =
    "INSERT INTO webhook_messages(msg_id, endpoint_id, event_type, payload, created_at, status, "
    "attempts, next_attempt_at, leased_until, last_status, last_error, next_trigger, updated_at) "
    "SELECT ?1, e.id, ?2, ?3, ?4, 'pending', 0, ?4, 0, 0, '', 'auto', ?4 "
    "FROM webhook_endpoints AS e WHERE e.status = 'enabled' AND EXISTS ("
    "  SELECT 1 FROM webhook_subscriptions AS s WHERE s.endpoint_id = e.id "
    "  AND s.event_type IN (?2, '*')) "
    "AND (e.audience = 'all' OR e.user_id IN (SELECT value FROM json_each(?5)) "
    "  OR e.user_id IN (SELECT u.id FROM users AS u "
    "                   WHERE u.email IN (SELECT value FROM json_each(?6))))";

#define AGENTGATE_WEBHOOK_COLUMNS                                                             \
  "id, user_id, audience, url, description, events, secret, previous_secret, "                \
  "previous_secret_until, status, disabled_reason, created_at, updated_at"
constexpr std::string_view kInsertWebhook =
    "INSERT INTO webhook_endpoints(" AGENTGATE_WEBHOOK_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
constexpr std::string_view kUpdateWebhook =
    "UPDATE webhook_endpoints SET url = ?4, description = ?5, events = ?6, secret = ?7, "
    "previous_secret = ?8, previous_secret_until = ?9, status = ?10, disabled_reason = ?11, "
    "updated_at = ?13 WHERE id = ?1";
constexpr std::string_view kFindWebhook =
    "SELECT " AGENTGATE_WEBHOOK_COLUMNS " FROM webhook_endpoints WHERE id = ?1";
constexpr std::string_view kListWebhooksAll =
    "SELECT " AGENTGATE_WEBHOOK_COLUMNS " FROM webhook_endpoints ORDER BY created_at, id";
constexpr std::string_view kListWebhooksOfUser =
    "SELECT " AGENTGATE_WEBHOOK_COLUMNS
    " FROM webhook_endpoints WHERE user_id = ?1 ORDER BY created_at, id";
constexpr std::string_view kDeleteWebhook = "DELETE FROM webhook_endpoints WHERE id = ?1";
constexpr std::string_view kClearSubscriptions =
    "DELETE FROM webhook_subscriptions WHERE endpoint_id = ?1";
constexpr std::string_view kSubscribe =
    "INSERT OR IGNORE INTO webhook_subscriptions(event_type, endpoint_id) "
    "SELECT value, ?1 FROM json_each(?2)";
constexpr std::string_view kFailPendingOfEndpoint =
    "UPDATE webhook_messages SET status = 'failed', last_error = ?2, leased_until = 0, "
    "updated_at = ?3 WHERE endpoint_id = ?1 AND status = 'pending'";
constexpr std::string_view kEnqueueDirect =
    "INSERT INTO webhook_messages(msg_id, endpoint_id, event_type, payload, created_at, status, "
    "attempts, next_attempt_at, leased_until, last_status, last_error, next_trigger, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?5, 0, 0, '', ?6, ?5)";
#define AGENTGATE_MESSAGE_COLUMNS                                                             \
  "m.id, m.msg_id, m.endpoint_id, m.event_type, m.payload, m.created_at, m.status, "          \
  "m.attempts, m.next_attempt_at, m.last_status, m.last_error, m.next_trigger"
constexpr std::string_view kSelectDue =
    "SELECT " AGENTGATE_MESSAGE_COLUMNS ", e.id, e.user_id, e.audience, e.url, e.description, "
    "e.events, e.secret, e.previous_secret, e.previous_secret_until, e.status, "
    "e.disabled_reason, e.created_at, e.updated_at "
    "FROM webhook_messages AS m JOIN webhook_endpoints AS e ON e.id = m.endpoint_id "
    "WHERE m.status = 'pending' AND m.next_attempt_at <= ?1 AND m.leased_until <= ?1 "
    "AND e.status = 'enabled' ORDER BY m.next_attempt_at, m.id LIMIT ?2";
constexpr std::string_view kAnyDue =
    "SELECT 1 FROM webhook_messages WHERE status = 'pending' AND next_attempt_at <= ?1 "
    "AND leased_until <= ?1 LIMIT 1";
constexpr std::string_view kLeaseMessage =
    "UPDATE webhook_messages SET leased_until = ?2 WHERE id = ?1";
constexpr std::string_view kInsertAttempt =
    "INSERT INTO webhook_attempts(message_id, endpoint_id, attempt, at, status, error, "
    "duration_ms, response_excerpt, trigger) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr std::string_view kFinishMessage =
    "UPDATE webhook_messages SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, "
    "leased_until = 0, last_status = ?4, last_error = ?5, next_trigger = 'auto', "
    "updated_at = ?6 WHERE id = ?1";
constexpr std::string_view kDisableWebhook =
    "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?2, updated_at = ?3 "
    "WHERE id = ?1";
constexpr std::string_view kListAttempts =
    "SELECT a.id, a.message_id, m.msg_id, m.event_type, a.endpoint_id, a.attempt, a.at, "
    "a.status, a.error, a.duration_ms, a.response_excerpt, a.trigger "
    "FROM webhook_attempts AS a JOIN webhook_messages AS m ON m.id = a.message_id "
    "WHERE a.endpoint_id = ?1 AND a.id < ?2 ORDER BY a.id DESC LIMIT ?3";
constexpr std::string_view kListMessages =
    "SELECT " AGENTGATE_MESSAGE_COLUMNS " FROM webhook_messages AS m "
    "WHERE m.endpoint_id = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3";
constexpr std::string_view kReplayMessage =
    "UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = ?3, "
    "leased_until = 0, next_trigger = 'replay', updated_at = ?3 WHERE endpoint_id = ?1 AND msg_id = ?2 "
    "RETURNING id";
constexpr std::string_view kSelectExpiredGrants =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants "
    "WHERE expiry_reported = 0 AND expires_at IS NOT NULL AND revoked_at IS NULL "
    "AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2";
constexpr std::string_view kMarkExpiryReported =
    "UPDATE grants SET expiry_reported = 1 WHERE id = ?1";
#undef AGENTGATE_MESSAGE_COLUMNS
#undef AGENTGATE_WEBHOOK_COLUMNS

constexpr std::string_view kInsertApiToken =
    "INSERT INTO api_tokens(id, user_id, name, abilities, token_hash, token_prefix, created_by, "
    "created_at, expires_at, last_used, revoked_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
#define AGENTGATE_TOKEN_COLUMNS                                                            \
  "t.id, t.user_id, t.name, t.abilities, t.token_hash, t.token_prefix, t.created_by, "     \
  "t.created_at, t.expires_at, t.last_used, t.revoked_at, u.email, u.is_admin "            \
  "FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id "
constexpr std::string_view kLoadActiveApiTokens =
    "SELECT " AGENTGATE_TOKEN_COLUMNS
    "WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?1)";
constexpr std::string_view kListApiTokens =
    "SELECT " AGENTGATE_TOKEN_COLUMNS
    "WHERE t.user_id = ?1 AND (?2 OR t.revoked_at IS NULL) ORDER BY t.created_at DESC, t.id";
constexpr std::string_view kFindApiToken = "SELECT " AGENTGATE_TOKEN_COLUMNS "WHERE t.id = ?1";
#undef AGENTGATE_TOKEN_COLUMNS
constexpr std::string_view kRevokeApiToken =
    "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL RETURNING id";
constexpr std::string_view kTouchApiToken =
    "UPDATE api_tokens SET last_used = ?2 WHERE id = ?1 AND last_used < ?2";
constexpr std::string_view kTouchAgent =
    "UPDATE agents SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2";
constexpr std::string_view kAddDailyChecks =
    "INSERT INTO daily_checks(day, count) VALUES (?1, ?2) "
    "ON CONFLICT(day) DO UPDATE SET count = count + excluded.count";
constexpr std::string_view kAddChecksTotal =
    "UPDATE counters SET value = value + ?1 WHERE name = 'checks_total'";
constexpr std::string_view kLoadCounters =
    "SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM grants), "
    "coalesce((SELECT value FROM counters WHERE name = 'checks_total'), 0), "
    "coalesce((SELECT count FROM daily_checks WHERE day = ?1), 0)";

constexpr std::string_view kPruneMagicLinks = "DELETE FROM magic_links WHERE expires_at <= ?1";
constexpr std::string_view kPruneSessions = "DELETE FROM sessions WHERE expires_at <= ?1";
constexpr std::string_view kPruneActivity = "DELETE FROM activity WHERE at < ?1";
// Finished outbox rows go with the activity (their attempts with them, by cascade).
constexpr std::string_view kPruneWebhookMessages =
    "DELETE FROM webhook_messages WHERE status <> 'pending' AND updated_at < ?1";

constexpr std::string_view kFindIdempotent =
    "SELECT fingerprint, done, status, content_type, headers, body, created_at, expires_at "
    "FROM idempotency WHERE key = ?1";
constexpr std::string_view kClaimIdempotent =
    "INSERT INTO idempotency(key, fingerprint, done, status, content_type, headers, body, "
    "created_at, expires_at) VALUES (?1, ?2, 0, 0, '', '{}', '', ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, done = 0, status = 0, "
    "content_type = '', headers = '{}', body = '', created_at = excluded.created_at, "
    "expires_at = excluded.expires_at";
constexpr std::string_view kFinishIdempotent =
    "UPDATE idempotency SET done = 1, status = ?2, content_type = ?3, headers = ?4, body = ?5 "
    "WHERE key = ?1";
constexpr std::string_view kAbandonIdempotent = "DELETE FROM idempotency WHERE key = ?1";
constexpr std::string_view kPruneIdempotency = "DELETE FROM idempotency WHERE expires_at <= ?1";

// --- integration engine ---
constexpr std::string_view kInsertWorkspaceIfAbsent =
    "INSERT INTO workspaces(id, key, name, secret, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING";
#define AGENTGATE_WORKSPACE_COLUMNS "id, key, name, secret, created_at, updated_at"
constexpr std::string_view kFindWorkspace =
    "SELECT " AGENTGATE_WORKSPACE_COLUMNS " FROM workspaces WHERE id = ?1";
constexpr std::string_view kListWorkspaces =
    "SELECT " AGENTGATE_WORKSPACE_COLUMNS " FROM workspaces ORDER BY created_at, id";
#undef AGENTGATE_WORKSPACE_COLUMNS
constexpr std::string_view kUpdateWorkspaceSecret =
    "UPDATE workspaces SET secret = ?2, updated_at = ?3 WHERE id = ?1";
constexpr std::string_view kTouchTenant =
    "INSERT INTO tenants(workspace_id, key, name, fields, created_at, last_seen) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(workspace_id, key) DO UPDATE SET "
    "last_seen = max(last_seen, excluded.last_seen), "
    "name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE name END, "
    "fields = CASE WHEN excluded.fields <> '' THEN excluded.fields ELSE fields END";
constexpr std::string_view kInsertConnector =
    "INSERT INTO connectors(id, workspace_id, key, spec, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr std::string_view kListConnectors =
    "SELECT id, workspace_id, key, spec, created_at, updated_at FROM connectors "
    "WHERE workspace_id = ?1 ORDER BY key";
#define AGENTGATE_INTEGRATION_COLUMNS                                                        \
  "id, workspace_id, key, name, connector_key, parameters, client_secret, archived_at, "     \
  "created_at, updated_at"
constexpr std::string_view kInsertIntegration =
    "INSERT INTO integrations(" AGENTGATE_INTEGRATION_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr std::string_view kUpdateIntegration =
    "UPDATE integrations SET key = ?3, name = ?4, connector_key = ?5, parameters = ?6, "
    "client_secret = ?7, archived_at = ?8, updated_at = ?10 WHERE id = ?1 AND workspace_id = ?2";
constexpr std::string_view kFindIntegration =
    "SELECT " AGENTGATE_INTEGRATION_COLUMNS
    " FROM integrations WHERE workspace_id = ?1 AND (id = ?2 OR key = ?2) "
    "ORDER BY id = ?2 DESC LIMIT 1";
constexpr std::string_view kListIntegrations =
    "SELECT " AGENTGATE_INTEGRATION_COLUMNS
    " FROM integrations WHERE workspace_id = ?1 AND (?2 OR archived_at IS NULL) "
    "ORDER BY created_at, id";
#undef AGENTGATE_INTEGRATION_COLUMNS
#define AGENTGATE_CONNECTION_COLUMNS                                                          \
  "id, workspace_id, tenant_key, key, name, integration_id, state, error, fields, "            \
  "credentials, token_expires_at, refresh_failed_at, version, archived_at, created_at, "       \
  "updated_at"
constexpr std::string_view kInsertConnection =
    "INSERT INTO connections(" AGENTGATE_CONNECTION_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
constexpr std::string_view kUpdateConnection =
    "UPDATE connections SET key = ?4, name = ?5, integration_id = ?6, state = ?7, error = ?8, "
    "fields = ?9, credentials = ?10, token_expires_at = ?11, refresh_failed_at = ?12, "
    "version = ?13, archived_at = ?14, updated_at = ?16 "
    "WHERE id = ?1 AND workspace_id = ?2 AND version = ?17";
constexpr std::string_view kFindConnection =
    "SELECT " AGENTGATE_CONNECTION_COLUMNS " FROM connections WHERE workspace_id = ?1 AND id = ?2";
constexpr std::string_view kFindConnectionByKey =
    "SELECT " AGENTGATE_CONNECTION_COLUMNS
    " FROM connections WHERE workspace_id = ?1 AND tenant_key = ?2 AND key = ?3";
constexpr std::string_view kListConnections =
    "SELECT " AGENTGATE_CONNECTION_COLUMNS
    " FROM connections WHERE workspace_id = ?1 AND (?2 = '' OR tenant_key = ?2) "
    "AND (?3 = '' OR integration_id = ?3) "
    "AND (?4 = '' OR instr(lower(key), lower(?4)) > 0 OR instr(lower(name), lower(?4)) > 0) "
    "AND (?5 OR archived_at IS NULL) AND (created_at > ?6 OR (created_at = ?6 AND id > ?7)) "
    "ORDER BY created_at, id LIMIT ?8";
#undef AGENTGATE_CONNECTION_COLUMNS
#define AGENTGATE_CONNECT_SESSION_COLUMNS                                                      \
  "token_hash, connection_id, workspace_id, tenant_key, state_hash, browser_hash, verifier, "  \
  "redirect_uri, created_at, expires_at, used_at"
constexpr std::string_view kInsertConnectSession =
    "INSERT INTO connect_sessions(" AGENTGATE_CONNECT_SESSION_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, ?6, ?7, ?8, NULL)";
constexpr std::string_view kFindConnectSession =
    "SELECT " AGENTGATE_CONNECT_SESSION_COLUMNS
    " FROM connect_sessions WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2";
constexpr std::string_view kStartConnectSession =
    "UPDATE connect_sessions SET state_hash = ?2, browser_hash = ?3, verifier = ?4, "
    "redirect_uri = ?5 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?6 "
    "RETURNING 1";
constexpr std::string_view kConsumeConnectSession =
    "UPDATE connect_sessions SET used_at = ?2 "
    "WHERE state_hash = ?1 AND used_at IS NULL AND expires_at > ?2 "
    "RETURNING " AGENTGATE_CONNECT_SESSION_COLUMNS;
#undef AGENTGATE_CONNECT_SESSION_COLUMNS
constexpr std::string_view kEndConnectSessions =
    "UPDATE connect_sessions SET used_at = ?2 WHERE connection_id = ?1 AND used_at IS NULL";
constexpr std::string_view kPruneConnectSessions =
    "DELETE FROM connect_sessions WHERE expires_at <= ?1";

#define AGENTGATE_ACTION_COLUMNS                                                            \
  "id, workspace_id, key, name, description, type, integration_id, connection_id, config, " \
  "input_schema, output_schema, archived_at, created_at, updated_at"
constexpr std::string_view kInsertAction =
    "INSERT INTO actions(" AGENTGATE_ACTION_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
// Every field but the identity (id, workspace) and created_at, which orders the list.
constexpr std::string_view kUpdateAction =
    "UPDATE actions SET key = ?3, name = ?4, description = ?5, type = ?6, integration_id = ?7, "
    "connection_id = ?8, config = ?9, input_schema = ?10, output_schema = ?11, "
    "archived_at = ?12, updated_at = ?14 WHERE id = ?1 AND workspace_id = ?2";
constexpr std::string_view kFindAction =
    "SELECT " AGENTGATE_ACTION_COLUMNS " FROM actions WHERE workspace_id = ?1 AND id = ?2";
// The surface (see ActionFilter): ?2 a connection, ?3 its integration. With neither, every
// action; otherwise the universal ones, ?3's integration-level ones and ?2's own (the test of
// ?2 is guarded: with ?2 = '', connection_id = ?2 would match every action without a connection).
constexpr std::string_view kListActions =
    "SELECT " AGENTGATE_ACTION_COLUMNS
    " FROM actions WHERE workspace_id = ?1 AND ((?2 = '' AND ?3 = '') "
    "OR (?2 <> '' AND connection_id = ?2) "
    "OR (connection_id = '' AND integration_id IN (?3, ''))) "
    "AND (?4 = '' OR key = ?4) AND (?5 OR archived_at IS NULL) "
    "AND (created_at, id) > (?6, ?7) ORDER BY created_at, id LIMIT ?8";
#undef AGENTGATE_ACTION_COLUMNS
#define AGENTGATE_ACTION_RUN_COLUMNS                                                     \
  "id, workspace_id, tenant_key, action_id, action_key, connection_id, integration_id, " \
  "actor_kind, actor_id, agent_id, grant_id, status, input, output, error, details, "    \
  "started_at, finished_at"
constexpr std::string_view kInsertActionRun =
    "INSERT INTO action_runs(" AGENTGATE_ACTION_RUN_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
constexpr std::string_view kFindActionRun =
    "SELECT " AGENTGATE_ACTION_RUN_COLUMNS " FROM action_runs WHERE workspace_id = ?1 AND id = ?2";
// Two texts, so that a tenant's list walks the tenant index (the planner cannot see that ?2 is
// set). The same parameter numbers in both; the row-value cursor is an index range.
#define AGENTGATE_ACTION_RUN_FILTERS                                  \
  "AND (?3 = '' OR agent_id = ?3) AND (?4 = '' OR action_id = ?4) "   \
  "AND (?5 = '' OR connection_id = ?5) AND (?6 = '' OR status = ?6) " \
  "AND (started_at, id) < (?7, ?8) ORDER BY started_at DESC, id DESC LIMIT ?9"
constexpr std::string_view kListActionRunsOfWorkspace =
    "SELECT " AGENTGATE_ACTION_RUN_COLUMNS
    " FROM action_runs WHERE workspace_id = ?1 " AGENTGATE_ACTION_RUN_FILTERS;
constexpr std::string_view kListActionRunsOfTenant =
    "SELECT " AGENTGATE_ACTION_RUN_COLUMNS
    " FROM action_runs WHERE workspace_id = ?1 AND tenant_key = ?2 " AGENTGATE_ACTION_RUN_FILTERS;
#undef AGENTGATE_ACTION_RUN_FILTERS
#undef AGENTGATE_ACTION_RUN_COLUMNS
constexpr std::string_view kDeleteActionRunsBefore =
    "DELETE FROM action_runs WHERE started_at < ?1";
constexpr std::string_view kBudgetUsed =
    "SELECT used FROM budget_windows WHERE grant_id = ?1 AND field = ?2 AND window_start = ?3";
constexpr std::string_view kSetBudgetUsed =
    "INSERT INTO budget_windows(grant_id, field, window_start, used) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(grant_id, field, window_start) DO UPDATE SET used = excluded.used";
constexpr std::string_view kRefundBudget =
    "UPDATE budget_windows SET used = max(used - ?4, 0) "
    "WHERE grant_id = ?1 AND field = ?2 AND window_start = ?3";


#define AGENTGATE_REQUEST_COLUMNS                                                             \
  "id, agent_id, action, reason, scope, expires_in, requested_from, status, created_at, "     \
  "expires_at, decided_at, decided_by, decline_reason, grant_id"
constexpr std::string_view kInsertRequest =
    "INSERT INTO permission_requests(" AGENTGATE_REQUEST_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
constexpr std::string_view kFindRequest =
    "SELECT " AGENTGATE_REQUEST_COLUMNS " FROM permission_requests WHERE id = ?1";
constexpr std::string_view kFindPendingRequest =
    "SELECT " AGENTGATE_REQUEST_COLUMNS " FROM permission_requests WHERE agent_id = ?1 "
    "AND action = ?2 AND requested_from = ?3 AND status = 'pending' AND expires_at > ?4 "
    "ORDER BY created_at DESC, id DESC LIMIT 1";
constexpr std::string_view kCountPendingRequests =
    "SELECT count(*) FROM permission_requests WHERE agent_id = ?1 AND status = 'pending' "
    "AND expires_at > ?2";
// ?3 the status as read at ?4 ('' any): a lapsed pending request reads 'expired'.
#define AGENTGATE_REQUEST_FILTERS                                                        \
  "AND (?2 = '' OR agent_id = ?2) "                                                      \
  "AND (?3 = '' "                                                                        \
  "  OR (?3 = 'pending' AND status = 'pending' AND expires_at > ?4) "                    \
  "  OR (?3 = 'expired' AND (status = 'expired' OR (status = 'pending' AND expires_at <= ?4))) " \
  "  OR (?3 IN ('approved', 'declined') AND status = ?3)) "                              \
  "AND (created_at, id) < (?5, ?6) ORDER BY created_at DESC, id DESC LIMIT ?7"
constexpr std::string_view kListRequestsOfAddressee =
    "SELECT " AGENTGATE_REQUEST_COLUMNS
    " FROM permission_requests WHERE requested_from = ?1 " AGENTGATE_REQUEST_FILTERS;
constexpr std::string_view kListRequestsOfAgent =
    "SELECT " AGENTGATE_REQUEST_COLUMNS
    " FROM permission_requests WHERE agent_id = ?2 AND ?1 = '' " AGENTGATE_REQUEST_FILTERS;
constexpr std::string_view kListRequestsAll =
    "SELECT " AGENTGATE_REQUEST_COLUMNS
    " FROM permission_requests WHERE ?1 = '' " AGENTGATE_REQUEST_FILTERS;
#undef AGENTGATE_REQUEST_FILTERS
// The conditional update that makes a decision: only a pending, unlapsed request changes.
constexpr std::string_view kDecideRequest =
    "UPDATE permission_requests SET status = ?2, decided_at = ?3, decided_by = ?4, "
    "decline_reason = ?5, grant_id = ?6 "
    "WHERE id = ?1 AND status = 'pending' AND expires_at > ?3 RETURNING " AGENTGATE_REQUEST_COLUMNS;
constexpr std::string_view kExpireRequests =
    "UPDATE permission_requests SET status = 'expired' WHERE id IN ("
    "  SELECT id FROM permission_requests WHERE status = 'pending' AND expires_at <= ?1 "
    "  ORDER BY expires_at LIMIT ?2) RETURNING " AGENTGATE_REQUEST_COLUMNS;
#undef AGENTGATE_REQUEST_COLUMNS
constexpr std::string_view kLatestGranter =
    "SELECT granted_by_email FROM grants WHERE agent_id = ?1 "
    "ORDER BY created_at DESC, rowid DESC LIMIT 1";

constexpr std::string_view kSchemaVersionQuery =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";
constexpr std::string_view kRecordMigration =
    "INSERT INTO schema_migrations(version, applied_at) VALUES (?1, ?2)";

// --- helpers ----------------------------------------------------------------------------------

Code CodeFor(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Code::kConflict;
    default:
      return Code::kServerError;
  }
}

Error SqlError(sqlite3* db, int rc) {
  // sqlite3_errmsg carries the detail ("UNIQUE constraint failed: agents.id") when db saw rc.
  const char* detail =
      db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return MakeError(CodeFor(rc), "sqlite: " + std::string(detail) + " (" + std::to_string(rc) + ")");
}

Error Annotate(std::string_view what, Error error) {
  error.message = std::string(what) + ": " + error.message;
  return error;
}

std::int64_t WallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// A prepared statement borrowed from a connection's cache for one use. Resets on destruction so
// that no statement keeps a read transaction (and with it an old snapshot) open, and clears the
// bindings, which point into the caller's strings.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Bind errors are kept and reported by the next Step, so call sites stay linear.
  void BindText(int index, std::string_view text) {
    // A null pointer would bind SQL NULL; an empty string_view may carry one.
    Note(sqlite3_bind_text64(stmt_, index, text.data() != nullptr ? text.data() : "", text.size(),
                             SQLITE_STATIC, SQLITE_UTF8));
  }
  void BindInt(int index, std::int64_t value) { Note(sqlite3_bind_int64(stmt_, index, value)); }
  void BindOptionalInt(int index, const std::optional<std::int64_t>& value) {
    Note(value ? sqlite3_bind_int64(stmt_, index, *value) : sqlite3_bind_null(stmt_, index));
  }
  void BindDigest(int index, const crypto::Digest& digest) {
    Note(sqlite3_bind_blob(stmt_, index, digest.data(), static_cast<int>(digest.size()),
                           SQLITE_STATIC));
  }

  // true: a row is ready; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqlError(nullptr, bind_rc_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc);
  }
  // Steps to the end, ignoring any rows.
  Status Run() {
    for (;;) {
      Result<bool> row = Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
    }
  }
  // Makes the statement ready to be bound and run again.
  void Reset() { sqlite3_reset(stmt_); }

  std::int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  bool Bool(int column) const { return sqlite3_column_int64(stmt_, column) != 0; }
  std::optional<std::int64_t> OptionalInt(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(stmt_, column);
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);  // after column_text, per the SQLite docs
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
  }
  Status ReadDigest(int column, crypto::Digest& out) const {
    const void* blob = sqlite3_column_blob(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    if (blob == nullptr || static_cast<std::size_t>(size) != out.size()) {
      return MakeError(Code::kServerError, "sqlite: stored digest is not 32 bytes");
    }
    __builtin_memcpy(out.data(), blob, out.size());
    return Ok();
  }

 private:
  void Note(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// Columns in kGrantColumns order.
GrantRecord ReadGrant(const Statement& row) {
  GrantRecord grant;
  grant.id = row.Text(0);
  grant.agent_id = row.Text(1);
  grant.action = row.Text(2);
  grant.granted_by = row.Text(3);
  grant.granted_by_email = row.Text(4);
  grant.expires_at_ms = row.OptionalInt(5);
  grant.scope_json = row.Text(6);
  grant.metadata_json = row.Text(7);
  grant.created_at_ms = row.Int(8);
  grant.revoked_at_ms = row.OptionalInt(9);
  grant.revoked_by = row.Text(10);
  return grant;
}

// Columns of the token queries, in their order.
ApiTokenRecord ReadApiToken(const Statement& row) {
  ApiTokenRecord t;
  t.id = row.Text(0);
  t.user_id = row.Text(1);
  t.name = row.Text(2);
  t.abilities_json = row.Text(3);
  (void)row.ReadDigest(4, t.token_hash);
  t.token_prefix = row.Text(5);
  t.created_by = row.Text(6);
  t.created_at_ms = row.Int(7);
  t.expires_at_ms = row.OptionalInt(8);
  t.last_used_ms = row.Int(9);
  t.revoked_at_ms = row.OptionalInt(10);
  t.user_email = row.Text(11);
  t.user_is_admin = row.Bool(12);
  return t;
}

// Columns in kActivityColumns order.
ActivityEvent ReadActivity(const Statement& row) {
  ActivityEvent e;
  e.seq = row.Int(0);
  e.at_ms = row.Int(1);
  e.actor_kind = row.Text(2);
  e.actor_id = row.Text(3);
  e.user_id = row.Text(4);
  e.action = row.Text(5);
  e.target = row.Text(6);
  e.agent_id = row.Text(7);
  e.outcome = row.Text(8);
  e.status = static_cast<int>(row.Int(9));
  e.error = row.Text(10);
  e.request_id = row.Text(11);
  e.ip = row.Text(12);
  e.user_agent = row.Text(13);
  e.latency_us = static_cast<std::int32_t>(row.Int(14));
  return e;
}

void BindActivity(Statement& stmt, const ActivityEvent& e) {
  stmt.BindInt(1, e.at_ms);
  stmt.BindText(2, e.actor_kind);
  stmt.BindText(3, e.actor_id);
  stmt.BindText(4, e.user_id);
  stmt.BindText(5, e.action);
  stmt.BindText(6, e.target);
  stmt.BindText(7, e.agent_id);
  stmt.BindText(8, e.outcome);
  stmt.BindInt(9, e.status);
  stmt.BindText(10, e.error);
  stmt.BindText(11, e.request_id);
  stmt.BindText(12, e.ip);
  stmt.BindText(13, e.user_agent);
  stmt.BindInt(14, e.latency_us);
}

// Columns in AGENTGATE_WEBHOOK_COLUMNS order, from `first`.
WebhookEndpoint ReadWebhook(const Statement& row, int first = 0) {
  WebhookEndpoint e;
  e.id = row.Text(first + 0);
  e.user_id = row.Text(first + 1);
  e.audience = row.Text(first + 2);
  e.url = row.Text(first + 3);
  e.description = row.Text(first + 4);
  e.events_json = row.Text(first + 5);
  e.secret_sealed = row.Text(first + 6);
  e.previous_secret_sealed = row.Text(first + 7);
  e.previous_secret_until_ms = row.Int(first + 8);
  e.status = row.Text(first + 9);
  e.disabled_reason = row.Text(first + 10);
  e.created_at_ms = row.Int(first + 11);
  e.updated_at_ms = row.Int(first + 12);
  return e;
}

void BindWebhook(Statement& stmt, const WebhookEndpoint& e) {
  stmt.BindText(1, e.id);
  stmt.BindText(2, e.user_id);
  stmt.BindText(3, e.audience);
  stmt.BindText(4, e.url);
  stmt.BindText(5, e.description);
  stmt.BindText(6, e.events_json);
  stmt.BindText(7, e.secret_sealed);
  stmt.BindText(8, e.previous_secret_sealed);
  stmt.BindInt(9, e.previous_secret_until_ms);
  stmt.BindText(10, e.status);
  stmt.BindText(11, e.disabled_reason);
  stmt.BindInt(12, e.created_at_ms);
  stmt.BindInt(13, e.updated_at_ms);
}

// Columns in AGENTGATE_MESSAGE_COLUMNS order.
WebhookMessage ReadMessage(const Statement& row) {
  WebhookMessage m;
  m.row = row.Int(0);
  m.msg_id = row.Text(1);
  m.endpoint_id = row.Text(2);
  m.event_type = row.Text(3);
  m.payload = row.Text(4);
  m.created_at_ms = row.Int(5);
  m.status = row.Text(6);
  m.attempts = static_cast<int>(row.Int(7));
  m.next_attempt_at_ms = row.Int(8);
  m.last_status = static_cast<int>(row.Int(9));
  m.last_error = row.Text(10);
  m.next_trigger = row.Text(11);
  return m;
}

// Columns in AGENTGATE_REQUEST_COLUMNS order.
PermissionRequestRecord ReadRequest(const Statement& row) {
  PermissionRequestRecord r;
  r.id = row.Text(0);
  r.agent_id = row.Text(1);
  r.action = row.Text(2);
  r.reason = row.Text(3);
  r.scope_json = row.Text(4);
  r.expires_in = row.Text(5);
  r.requested_from = row.Text(6);
  r.status = row.Text(7);
  r.created_at_ms = row.Int(8);
  r.expires_at_ms = row.Int(9);
  r.decided_at_ms = row.OptionalInt(10);
  r.decided_by = row.Text(11);
  r.decline_reason = row.Text(12);
  r.grant_id = row.Text(13);
  return r;
}

UserRecord ReadUser(const Statement& row) {
  UserRecord user;
  user.id = row.Text(0);
  user.email = row.Text(1);
  user.is_admin = row.Bool(2);
  user.created_at_ms = row.Int(3);
  return user;
}

}  // namespace

// --- Connection -------------------------------------------------------------------------------

// One SQLite handle and its prepared statements. Used by one thread at a time (the handle is
// opened without its own mutex); the reader pool and the writer thread guarantee that.
class SqliteStore::Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool create) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (create) flags |= SQLITE_OPEN_CREATE;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      Error error = SqlError(db, rc);
      sqlite3_close(db);  // a handle comes back even on failure, and must be closed
      return Annotate("open " + path, std::move(error));
    }
    auto connection = std::unique_ptr<Connection>(new Connection(db));
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    return connection;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // sql must be a single statement. Statements are cached by their text, so only constant text
  // belongs here: values always go through Bind*. A cached statement has one borrower at a
  // time: do not prepare the same text again while its Statement is alive.
  // Rows changed by the last statement.
  int Changes() const { return sqlite3_changes(db_); }
  // The extended result code of the last failed call, e.g. to tell which constraint failed.
  int LastErrorCode() const { return sqlite3_extended_errcode(db_); }

  Result<Statement> Prepare(std::string_view sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return Statement(db_, it->second);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return Annotate("prepare", SqlError(db_, rc));
    if (stmt == nullptr) return MakeError(Code::kServerError, "sqlite: empty statement");
    cache_.emplace(std::string(sql), stmt);
    return Statement(db_, stmt);
  }

  // Prepares (cached) and runs a statement without parameters.
  Status Exec(std::string_view sql) {
    Result<Statement> stmt = Prepare(sql);
    if (!stmt) return stmt.take_error();
    return stmt->Run();
  }

  // Runs a script of several statements once (migrations, pragmas): not worth caching.
  Status ExecScript(const std::string& sql) {
    char* message = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return Ok();
    Error error = SqlError(db_, rc);
    if (message != nullptr) {
      error.message = "sqlite: " + std::string(message) + " (" + std::to_string(rc) + ")";
      sqlite3_free(message);
    }
    return error;
  }

  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  // Straight to the C API: used on failure paths, including out of memory, so it must not throw.
  void RollbackIfOpen() noexcept {
    if (InTransaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  // Sets the writer's journal, durability and integrity pragmas.
  Status ConfigureWriter();
  // Brings the schema up to kSchemaVersion in one transaction.
  Status Migrate();

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
};

Status SqliteStore::Connection::ConfigureWriter() {
  Result<Statement> mode = Prepare("PRAGMA journal_mode = WAL");
  if (!mode) return mode.take_error();
  Result<bool> row = mode->Step();
  if (!row) return row.take_error();
  if (!*row || mode->Text(0) != "wal") {
    return MakeError(Code::kServerError, "sqlite: the database cannot use WAL journaling");
  }
  // FULL: the WAL is synced at every commit, so a returned write survives power loss.
  return ExecScript(
      "PRAGMA synchronous = FULL;"
      "PRAGMA foreign_keys = ON;"
      "PRAGMA journal_size_limit = 67108864;"
      // The writer touches index pages all over a large database; SQLite's default 2 MB page
      // cache made every grant re-read pages (measured: ~8 preads per grant at 1M grants).
      // 32 MiB: most of that gain, at a memory cost the 1M-grant budget can carry.
      "PRAGMA cache_size = -32768;");
}

Status SqliteStore::Connection::Migrate() {
  if (Status s = Exec("BEGIN IMMEDIATE"); !s) return s;
  auto migrate = [this]() -> Status {
    Status s = ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT");
    if (!s) return s;
    std::int64_t current = 0;
    {
      Result<Statement> stmt = Prepare(kSchemaVersionQuery);
      if (!stmt) return stmt.take_error();
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      current = *row ? stmt->Int(0) : 0;
    }
    if (current > kSchemaVersion) {
      return MakeError(Code::kServerError,
                       "the database has schema version " + std::to_string(current) +
                           " but this agentgate knows only up to " +
                           std::to_string(kSchemaVersion) + "; upgrade agentgate");
    }
    for (int version = static_cast<int>(current) + 1; version <= kSchemaVersion; ++version) {
      if (s = ExecScript(std::string(kMigrations[version - 1])); !s) {
        return Annotate("migration " + std::to_string(version), s.take_error());
      }
      Result<Statement> record = Prepare(kRecordMigration);
      if (!record) return record.take_error();
      record->BindInt(1, version);
      record->BindInt(2, WallClockMs());
      if (s = record->Run(); !s) return s;
    }
    return Exec("COMMIT");
  };
  Status s = migrate();
  if (!s) RollbackIfOpen();
  return s;
}

// --- ReaderPool -------------------------------------------------------------------------------

// Read connections, handed out one per concurrent read. Never blocks: when every connection is
// busy a new one is opened, and at most kMaxIdleReaders are kept for reuse.
class SqliteStore::ReaderPool {
 public:
  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (connection_ != nullptr) pool_->Release(std::move(connection_));
    }
    Connection& connection() { return *connection_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  static Result<std::unique_ptr<Connection>> OpenReader(const std::string& path) {
    Result<std::unique_ptr<Connection>> connection = Connection::Open(path, /*create=*/false);
    if (!connection) return connection;
    // Guards against a read method ever writing outside the group commit.
    if (Status s = (*connection)->ExecScript("PRAGMA query_only = ON"); !s) return s.take_error();
    return connection;
  }

  ReaderPool(std::string path, std::unique_ptr<Connection> first) : path_(std::move(path)) {
    idle_.reserve(kMaxIdleReaders);  // so that Release never allocates
    idle_.push_back(std::move(first));
  }

  Result<Lease> Acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Connection> connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
    }
    Result<std::unique_ptr<Connection>> connection = OpenReader(path_);
    if (!connection) return connection.take_error();
    return Lease(this, std::move(*connection));
  }

 private:
  void Release(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleReaders) idle_.push_back(std::move(connection));
  }

  const std::string path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

// --- Writer -----------------------------------------------------------------------------------

// The group commit. Owns the only write connection and the thread that uses it. Callers queue
// an op and sleep; the thread takes the whole queue, runs it as one transaction with one
// savepoint per op, commits (one fsync for the lot) and wakes each caller with its own result.
class SqliteStore::Writer {
 public:
  explicit Writer(std::unique_ptr<Connection> connection)
      : connection_(std::move(connection)), thread_([this] { Loop(); }) {}

  ~Writer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Blocks until the transaction holding op has committed or failed.
  Status Submit(const Op& op) {
    Pending pending(&op);
    std::unique_lock lock(mu_);
    if (stopping_) return MakeError(Code::kUnavailable, "the store is closing");
    queue_.push_back(&pending);
    wake_.notify_one();
    pending.cv.wait(lock, [&] { return pending.done; });
    return std::move(pending.result);
  }

 private:
  // Lives on the submitting thread's stack until done is set under mu_.
  struct Pending {
    explicit Pending(const Op* submitted) : op(submitted) {}

    const Op* op;
    Status result;
    bool done = false;
    std::condition_variable cv;
  };

  void Loop() {
    // The writer's big batches (a second's check records) yield to request handling when both
    // want the CPU; its small durable writes are unaffected when the CPU is free.
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 5);
    std::vector<Pending*> batch;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything queued has been answered
        batch.swap(queue_);
      }
      RunBatchOrFailIt(batch);
      {
        std::lock_guard lock(mu_);
        // Notify under the lock: once it is released the caller may return and destroy cv.
        for (Pending* pending : batch) {
          pending->done = true;
          pending->cv.notify_one();
        }
      }
      batch.clear();
    }
  }

  // An exception here (only std::bad_alloc is possible) must not kill the thread that every
  // writer waits on: the batch fails as a whole instead.
  void RunBatchOrFailIt(std::span<Pending* const> batch) {
    try {
      RunBatch(batch);
    } catch (...) {
      connection_->RollbackIfOpen();
      for (Pending* pending : batch) pending->result = Error{Code::kServerError, {}, {}};
    }
  }

  void RunBatch(std::span<Pending* const> batch) {
    Connection& c = *connection_;
    if (Status begin = c.Exec("BEGIN IMMEDIATE"); !begin) {
      for (Pending* pending : batch) pending->result = Annotate("begin", begin.error());
      return;
    }
    // Set when the transaction as a whole is lost: every op of the batch then fails.
    std::optional<Error> fatal;
    for (Pending* pending : batch) {
      if (fatal) {
        pending->result = *fatal;
      } else {
        pending->result = RunInSavepoint(*pending->op, fatal);
      }
    }
    if (!fatal) {
      if (Status commit = c.Exec("COMMIT"); !commit) fatal = Annotate("commit", commit.error());
    }
    if (fatal) {
      c.RollbackIfOpen();
      for (Pending* pending : batch) {
        if (pending->result.ok()) pending->result = *fatal;
      }
    }
  }

  // Runs op so that its failure undoes only its own changes.
  Status RunInSavepoint(const Op& op, std::optional<Error>& fatal) {
    Connection& c = *connection_;
    if (Status s = c.Exec("SAVEPOINT op"); !s) {
      fatal = Annotate("savepoint", s.error());
      return *fatal;
    }
    Status result = RunGuarded(op, c);
    if (result.ok()) {
      if (Status s = c.Exec("RELEASE op"); !s) {
        fatal = Annotate("release", s.error());
        return *fatal;
      }
      return result;
    }
    if (!c.InTransaction()) {
      // Errors such as SQLITE_FULL roll the whole transaction back, neighbours included.
      fatal = Annotate("transaction rolled back", result.error());
      return result;
    }
    Status undo = c.Exec("ROLLBACK TO op");
    Status release = undo.ok() ? c.Exec("RELEASE op") : undo;
    if (!release) fatal = Annotate("rollback to savepoint", release.error());
    return result;
  }

  static Status RunGuarded(const Op& op, Connection& c) {
    try {
      return op(c);
    } catch (const std::exception& e) {
      return MakeError(Code::kServerError, std::string("exception: ") + e.what());
    } catch (...) {
      return MakeError(Code::kServerError, "unknown exception");
    }
  }

  std::unique_ptr<Connection> connection_;  // used only by thread_
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Pending*> queue_;  // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  std::thread thread_;           // last: starts once everything above exists
};

// --- Open and migrations ----------------------------------------------------------------------

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  try {
    if (path.empty() || path == ":memory:" || path.starts_with("file:")) {
      return MakeError(Code::kServerError,
                       "sqlite: a file path is needed (the store shares the file between "
                       "connections), got \"" +
                           path + "\"");
    }
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return MakeError(Code::kServerError, "sqlite: cannot create directory " + parent.string() +
                                                 ": " + ec.message());
      }
    }
    Result<std::unique_ptr<Connection>> writer = Connection::Open(path, /*create=*/true);
    if (!writer) return writer.take_error();
    if (Status s = (*writer)->ConfigureWriter(); !s)
      return Annotate("open " + path, s.take_error());
    if (Status s = (*writer)->Migrate(); !s) return Annotate("open " + path, s.take_error());
    Result<std::unique_ptr<Connection>> reader = ReaderPool::OpenReader(path);
    if (!reader) return reader.take_error();
    auto readers = std::make_unique<ReaderPool>(path, std::move(*reader));
    auto writer_thread = std::make_unique<Writer>(std::move(*writer));
    return std::unique_ptr<SqliteStore>(
        new SqliteStore(std::move(readers), std::move(writer_thread)));
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, "sqlite: open " + path + ": " + e.what());
  }
}

SqliteStore::SqliteStore(std::unique_ptr<ReaderPool> readers, std::unique_ptr<Writer> writer)
    : writer_(std::move(writer)), readers_(std::move(readers)) {}

SqliteStore::~SqliteStore() = default;

Status SqliteStore::Read(std::string_view what, const Op& op) {
  try {
    Result<ReaderPool::Lease> lease = readers_->Acquire();
    if (!lease) return Annotate(what, lease.take_error());
    Status s = op(lease->connection());
    if (!s) return Annotate(what, s.take_error());
    return s;
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, std::string(what) + ": exception: " + e.what());
  } catch (...) {
    return MakeError(Code::kServerError, std::string(what) + ": unknown exception");
  }
}

Status SqliteStore::Write(std::string_view what, const Op& op) {
  try {
    Status s = writer_->Submit(op);
    if (!s) return Annotate(what, s.take_error());
    return s;
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, std::string(what) + ": exception: " + e.what());
  } catch (...) {
    return MakeError(Code::kServerError, std::string(what) + ": unknown exception");
  }
}

// --- start-up ---------------------------------------------------------------------------------

Status SqliteStore::LoadAgents(const std::function<void(AgentRecord&&)>& sink) {
  return Read("LoadAgents", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kLoadAgents);
    if (!stmt) return stmt.take_error();
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      AgentRecord agent;
      agent.id = stmt->Text(0);
      agent.name = stmt->Text(1);
      agent.description = stmt->Text(2);
      agent.developer_email = stmt->Text(3);
      agent.metadata_json = stmt->Text(4);
      if (Status s = stmt->ReadDigest(5, agent.secret_hash); !s) return s;
      agent.status = stmt->Text(6);
      agent.created_at_ms = stmt->Int(7);
      agent.last_seen_ms = stmt->Int(8);
      sink(std::move(agent));
    }
  });
}

Status SqliteStore::LoadActiveGrants(std::int64_t now_ms,
                                     const std::function<void(GrantRecord&&)>& sink) {
  return Read("LoadActiveGrants", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kLoadActiveGrants);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, now_ms);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      sink(ReadGrant(*stmt));
    }
  });
}

// --- agents and grants ------------------------------------------------------------------------

Status SqliteStore::ApplyEffects(Connection& c, const Effects& effects) {
  if (!effects.activity.empty()) {
    Result<Statement> insert = c.Prepare(kInsertActivity);
    if (!insert) return insert.take_error();
    for (const ActivityEvent& e : effects.activity) {
      BindActivity(*insert, e);
      if (Status s = insert->Run(); !s) return s;
      insert->Reset();
    }
  }
  if (!effects.events.empty()) {
    Result<Statement> fan_out = c.Prepare(kFanOutEvent);
    if (!fan_out) return fan_out.take_error();
    for (const OutboundEvent& e : effects.events) {
      fan_out->BindText(1, e.id);
      fan_out->BindText(2, e.type);
      fan_out->BindText(3, e.payload_json);
      fan_out->BindInt(4, e.at_ms);
      // Views, not temporaries: statements bind text without copying it (SQLITE_STATIC).
      constexpr std::string_view kNone = "[]";
      fan_out->BindText(5, e.audience_user_ids_json.empty() ? kNone
                                                            : std::string_view(e.audience_user_ids_json));
      fan_out->BindText(6, e.audience_emails_json.empty() ? kNone
                                                          : std::string_view(e.audience_emails_json));
      if (Status s = fan_out->Run(); !s) return s;
      fan_out->Reset();
    }
  }
  return Ok();
}

Status SqliteStore::InsertAgent(const AgentRecord& agent, const Effects& effects) {
  return Write("InsertAgent", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertAgent);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, agent.id);
    stmt->BindText(2, agent.name);
    stmt->BindText(3, agent.description);
    stmt->BindText(4, agent.developer_email);
    stmt->BindText(5, agent.metadata_json);
    stmt->BindDigest(6, agent.secret_hash);
    stmt->BindText(7, agent.status);
    stmt->BindInt(8, agent.created_at_ms);
    stmt->BindInt(9, agent.last_seen_ms);
    if (Status s = stmt->Run(); !s) return s;
    return ApplyEffects(c, effects);
  });
}

Status SqliteStore::InsertGrantRow(Connection& c, const GrantRecord& grant) {
  Result<Statement> stmt = c.Prepare(kInsertGrant);
  if (!stmt) return stmt.take_error();
  stmt->BindText(1, grant.id);
  stmt->BindText(2, grant.agent_id);
  stmt->BindText(3, grant.action);
  stmt->BindText(4, grant.granted_by);
  stmt->BindText(5, grant.granted_by_email);
  stmt->BindOptionalInt(6, grant.expires_at_ms);
  stmt->BindText(7, grant.scope_json);
  stmt->BindText(8, grant.metadata_json);
  stmt->BindInt(9, grant.created_at_ms);
  stmt->BindOptionalInt(10, grant.revoked_at_ms);
  stmt->BindText(11, grant.revoked_by);
  return stmt->Run();
}

Status SqliteStore::InsertGrant(const GrantRecord& grant, const Effects& effects) {
  return Write("InsertGrant", [&](Connection& c) -> Status {
    if (Status s = InsertGrantRow(c, grant); !s) return s;
    return ApplyEffects(c, effects);
  });
}

Result<std::vector<std::string>> SqliteStore::RevokeGrants(const std::vector<std::string>& ids,
                                                           std::int64_t at_ms,
                                                           const std::string& revoked_by,
                                                           const EffectsFor& effects_for) {
  std::vector<std::string> revoked;
  Status s = Write("RevokeGrants", [&](Connection& c) -> Status {
    revoked.clear();
    Result<Statement> stmt = c.Prepare(kRevokeGrant);
    if (!stmt) return stmt.take_error();
    for (const std::string& id : ids) {
      stmt->BindText(1, id);
      stmt->BindInt(2, at_ms);
      stmt->BindText(3, revoked_by);
      for (;;) {
        Result<bool> row = stmt->Step();
        if (!row) return row.take_error();
        if (!*row) break;
        revoked.push_back(stmt->Text(0));
      }
      stmt->Reset();
    }
    if (!effects_for || revoked.empty()) return Ok();
    return ApplyEffects(c, effects_for(revoked));
  });
  if (!s) return s.take_error();
  return revoked;
}

Result<std::optional<GrantRecord>> SqliteStore::FindGrant(const std::string& id) {
  std::optional<GrantRecord> found;
  Status s = Read("FindGrant", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindGrant);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = ReadGrant(*stmt);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<GrantRecord>> SqliteStore::ListGrants(const GrantFilter& filter) {
  std::vector<GrantRecord> grants;
  if (filter.limit <= 0) return grants;
  std::string_view sql = filter.granted_by.empty()
                             ? (filter.agent_id.empty() ? kListGrantsAll : kListGrantsByAgent)
                             : (filter.agent_id.empty() ? kListGrantsByGranter : kListGrantsByBoth);
  Status s = Read("ListGrants", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(sql);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.granted_by);
    stmt->BindText(2, filter.agent_id);
    stmt->BindInt(3, filter.active_only ? 1 : 0);
    stmt->BindInt(4, filter.now_ms);
    stmt->BindInt(5, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      grants.push_back(ReadGrant(*stmt));
    }
  });
  if (!s) return s.take_error();
  return grants;
}

Result<std::vector<AgentListing>> SqliteStore::ListAgentsOf(const AgentListFilter& filter) {
  std::vector<AgentListing> agents;
  if (filter.limit <= 0) return agents;
  using Relation = AgentListFilter::Relation;
  std::string_view sql = filter.relation == Relation::kOwned     ? kListAgentsOwned
                         : filter.relation == Relation::kGranted ? kListAgentsGranted
                                                                 : kListAgentsAny;
  // "No cursor" is past the newest agent: any created_at, then any id.
  std::int64_t before_at = filter.before ? filter.before->first
                                         : std::numeric_limits<std::int64_t>::max();
  const std::string before_id = filter.before ? filter.before->second : std::string();
  Status s = Read("ListAgentsOf", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(sql);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.email);
    stmt->BindText(2, filter.user_id);
    stmt->BindInt(3, filter.now_ms);
    stmt->BindInt(4, before_at);
    stmt->BindText(5, before_id);
    stmt->BindInt(6, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      AgentListing listing;
      listing.agent.id = stmt->Text(0);
      listing.agent.name = stmt->Text(1);
      listing.agent.description = stmt->Text(2);
      listing.agent.developer_email = stmt->Text(3);
      listing.agent.metadata_json = stmt->Text(4);
      listing.agent.status = stmt->Text(5);
      listing.agent.created_at_ms = stmt->Int(6);
      listing.agent.last_seen_ms = stmt->Int(7);
      listing.owned = stmt->Int(8) != 0;
      listing.granted = stmt->Int(9) != 0;
      listing.active_permissions = static_cast<int>(stmt->Int(10));
      agents.push_back(std::move(listing));
    }
  });
  if (!s) return s.take_error();
  return agents;
}

// --- people -----------------------------------------------------------------------------------

Result<UserRecord> SqliteStore::SignInUser(const std::string& email, const std::string& new_user_id,
                                           std::int64_t now_ms, bool promote_if_no_admin) {
  UserRecord user;
  // One op of the single writer inside BEGIN IMMEDIATE: no other writer, in this process or
  // another, can interleave between the admin test and the promotion.
  Status s = Write("SignInUser", [&](Connection& c) -> Status {
    bool found = false;
    {
      Result<Statement> find = c.Prepare(kFindUserByEmail);
      if (!find) return find.take_error();
      find->BindText(1, email);
      Result<bool> row = find->Step();
      if (!row) return row.take_error();
      if (*row) {
        user = ReadUser(*find);
        found = true;
      }
    }
    if (!found) {
      Result<Statement> insert = c.Prepare(kInsertUser);
      if (!insert) return insert.take_error();
      insert->BindText(1, new_user_id);
      insert->BindText(2, email);
      insert->BindInt(3, now_ms);
      if (Status st = insert->Run(); !st) return st;
      user = UserRecord{new_user_id, email, false, now_ms};
    }
    if (promote_if_no_admin && !user.is_admin) {
      Result<Statement> promote = c.Prepare(kPromoteIfNoAdmin);
      if (!promote) return promote.take_error();
      promote->BindText(1, user.id);
      Result<bool> row = promote->Step();
      if (!row) return row.take_error();
      user.is_admin = *row;
    }
    return Ok();
  });
  if (!s) return s.take_error();
  return user;
}

Status SqliteStore::InsertMagicLink(const crypto::Digest& token_hash, const std::string& email,
                                    std::int64_t created_at_ms, std::int64_t expires_at_ms) {
  return Write("InsertMagicLink", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertMagicLink);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindText(2, email);
    stmt->BindInt(3, created_at_ms);
    stmt->BindInt(4, expires_at_ms);
    return stmt->Run();
  });
}

Result<std::optional<std::string>> SqliteStore::ConsumeMagicLink(const crypto::Digest& token_hash,
                                                                 std::int64_t now_ms) {
  std::optional<std::string> email;
  Status s = Write("ConsumeMagicLink", [&](Connection& c) -> Status {
    email.reset();
    Result<Statement> stmt = c.Prepare(kConsumeMagicLink);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) email = stmt->Text(0);
    return Ok();
  });
  if (!s) return s.take_error();
  return email;
}

Status SqliteStore::InsertSession(const crypto::Digest& token_hash, const std::string& user_id,
                                  std::int64_t created_at_ms, std::int64_t expires_at_ms) {
  return Write("InsertSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindText(2, user_id);
    stmt->BindInt(3, created_at_ms);
    stmt->BindInt(4, expires_at_ms);
    return stmt->Run();
  });
}

Result<std::optional<SessionInfo>> SqliteStore::FindSession(const crypto::Digest& token_hash,
                                                            std::int64_t now_ms) {
  std::optional<SessionInfo> session;
  Status s = Read("FindSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) session = SessionInfo{ReadUser(*stmt), stmt->Int(4)};
    return Ok();
  });
  if (!s) return s.take_error();
  return session;
}

Status SqliteStore::DeleteSession(const crypto::Digest& token_hash) {
  return Write("DeleteSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kDeleteSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    return stmt->Run();
  });
}

// --- bookkeeping and statistics ---------------------------------------------------------------

Status SqliteStore::FlushBookkeeping(const Bookkeeping& batch) {
  if (batch.empty()) return Ok();  // not worth a commit
  return Write("FlushBookkeeping", [&](Connection& c) -> Status {
    if (!batch.checks.empty() || !batch.activity.empty()) {
      Result<Statement> insert = c.Prepare(kInsertActivity);
      if (!insert) return insert.take_error();
      auto insert_check = [&](const CheckRecord& check) {
        insert->BindInt(1, check.at_ms);
        insert->BindText(2, check.actor_kind);
        insert->BindText(3, check.actor_id().empty() ? check.agent_id() : check.actor_id());
        insert->BindText(4, check.user_id());
        insert->BindText(5, "permission.check");
        insert->BindText(6, check.action());
        insert->BindText(7, check.agent_id());
        insert->BindText(8, check.allowed ? "success" : "denied");
        insert->BindInt(9, 200);
        insert->BindText(10, check.reason());
        insert->BindText(11, check.request_id());
        insert->BindText(12, check.ip());
        insert->BindText(13, check.user_agent());
        insert->BindInt(14, check.latency_us);
        Status s = insert->Run();
        insert->Reset();
        return s;
      };
      auto insert_event = [&](const ActivityEvent& e) {
        BindActivity(*insert, e);
        Status s = insert->Run();
        insert->Reset();
        return s;
      };
      // Merged in arrival order, so sequence numbers follow it.
      auto check = batch.checks.begin();
      auto event = batch.activity.begin();
      while (check != batch.checks.end() || event != batch.activity.end()) {
        bool take_check = event == batch.activity.end() ||
                          (check != batch.checks.end() && check->order_ns <= event->order_ns);
        Status s = take_check ? insert_check(*check++) : insert_event(*event++);
        if (!s) return s;
      }
    }
    if (!batch.token_last_used.empty()) {
      Result<Statement> touch = c.Prepare(kTouchApiToken);
      if (!touch) return touch.take_error();
      for (const auto& [token_id, used_ms] : batch.token_last_used) {
        touch->BindText(1, token_id);
        touch->BindInt(2, used_ms);
        if (Status s = touch->Run(); !s) return s;
        touch->Reset();
      }
    }
    if (!batch.last_seen.empty()) {
      Result<Statement> touch = c.Prepare(kTouchAgent);
      if (!touch) return touch.take_error();
      for (const auto& [agent_id, seen_ms] : batch.last_seen) {
        touch->BindText(1, agent_id);
        touch->BindInt(2, seen_ms);
        if (Status s = touch->Run(); !s) return s;
        touch->Reset();
      }
    }
    std::int64_t total = 0;
    if (!batch.checks_per_day.empty()) {
      Result<Statement> add = c.Prepare(kAddDailyChecks);
      if (!add) return add.take_error();
      for (const auto& [day, delta] : batch.checks_per_day) {
        add->BindInt(1, day);
        add->BindInt(2, delta);
        if (Status s = add->Run(); !s) return s;
        add->Reset();
        total += delta;
      }
    }
    if (total != 0) {
      Result<Statement> add = c.Prepare(kAddChecksTotal);
      if (!add) return add.take_error();
      add->BindInt(1, total);
      return add->Run();
    }
    return Ok();
  });
}

Result<Counters> SqliteStore::LoadCounters(std::int64_t utc_day) {
  Counters counters;
  Status s = Read("LoadCounters", [&](Connection& c) -> Status {
    // One statement, so all four numbers come from the same snapshot.
    Result<Statement> stmt = c.Prepare(kLoadCounters);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, utc_day);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (!*row) return MakeError(Code::kServerError, "sqlite: counters query gave no row");
    counters.agents_registered = stmt->Int(0);
    counters.permissions_granted = stmt->Int(1);
    counters.checks_total = stmt->Int(2);
    counters.checks_today = stmt->Int(3);
    return Ok();
  });
  if (!s) return s.take_error();
  return counters;
}

// --- access tokens ------------------------------------------------------------------------------

Status SqliteStore::InsertApiToken(const ApiTokenRecord& token, const Effects& effects) {
  return Write("InsertApiToken", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertApiToken);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, token.id);
    stmt->BindText(2, token.user_id);
    stmt->BindText(3, token.name);
    stmt->BindText(4, token.abilities_json);
    stmt->BindDigest(5, token.token_hash);
    stmt->BindText(6, token.token_prefix);
    stmt->BindText(7, token.created_by);
    stmt->BindInt(8, token.created_at_ms);
    stmt->BindOptionalInt(9, token.expires_at_ms);
    stmt->BindInt(10, token.last_used_ms);
    stmt->BindOptionalInt(11, token.revoked_at_ms);
    if (Status s = stmt->Run(); !s) return s;
    return ApplyEffects(c, effects);
  });
}

Status SqliteStore::LoadActiveApiTokens(std::int64_t now_ms,
                                        const std::function<void(ApiTokenRecord&&)>& sink) {
  return Read("LoadActiveApiTokens", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kLoadActiveApiTokens);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, now_ms);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      sink(ReadApiToken(*stmt));
    }
  });
}

Result<std::vector<ApiTokenRecord>> SqliteStore::ListApiTokens(const std::string& user_id,
                                                               bool include_revoked) {
  std::vector<ApiTokenRecord> tokens;
  Status s = Read("ListApiTokens", [&](Connection& c) -> Status {
    tokens.clear();
    Result<Statement> stmt = c.Prepare(kListApiTokens);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, user_id);
    stmt->BindInt(2, include_revoked ? 1 : 0);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      tokens.push_back(ReadApiToken(*stmt));
    }
  });
  if (!s) return s.take_error();
  return tokens;
}

Result<std::optional<ApiTokenRecord>> SqliteStore::FindApiToken(const std::string& id) {
  std::optional<ApiTokenRecord> found;
  Status s = Read("FindApiToken", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindApiToken);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = ReadApiToken(*stmt);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<bool> SqliteStore::RevokeApiToken(const std::string& id, std::int64_t at_ms,
                                         const Effects& effects) {
  bool revoked = false;
  Status s = Write("RevokeApiToken", [&](Connection& c) -> Status {
    revoked = false;
    Result<Statement> stmt = c.Prepare(kRevokeApiToken);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    stmt->BindInt(2, at_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    revoked = *row;
    if (Status run = stmt->Run(); !run) return run;
    return revoked ? ApplyEffects(c, effects) : Ok();
  });
  if (!s) return s.take_error();
  return revoked;
}

// --- webhooks ---------------------------------------------------------------------------------

namespace {

Status Resubscribe(Statement& clear, Statement& subscribe, const WebhookEndpoint& e) {
  clear.BindText(1, e.id);
  if (Status s = clear.Run(); !s) return s;
  subscribe.BindText(1, e.id);
  subscribe.BindText(2, e.events_json);
  return subscribe.Run();
}

}  // namespace

Status SqliteStore::InsertWebhook(const WebhookEndpoint& endpoint, const Effects& effects) {
  return Write("InsertWebhook", [&](Connection& c) -> Status {
    Result<Statement> insert = c.Prepare(kInsertWebhook);
    if (!insert) return insert.take_error();
    BindWebhook(*insert, endpoint);
    if (Status s = insert->Run(); !s) return s;
    Result<Statement> clear = c.Prepare(kClearSubscriptions);
    if (!clear) return clear.take_error();
    Result<Statement> subscribe = c.Prepare(kSubscribe);
    if (!subscribe) return subscribe.take_error();
    if (Status s = Resubscribe(*clear, *subscribe, endpoint); !s) return s;
    return ApplyEffects(c, effects);
  });
}

Status SqliteStore::UpdateWebhook(const WebhookEndpoint& endpoint, const Effects& effects) {
  return Write("UpdateWebhook", [&](Connection& c) -> Status {
    Result<Statement> update = c.Prepare(kUpdateWebhook);
    if (!update) return update.take_error();
    BindWebhook(*update, endpoint);
    if (Status s = update->Run(); !s) return s;
    Result<Statement> clear = c.Prepare(kClearSubscriptions);
    if (!clear) return clear.take_error();
    Result<Statement> subscribe = c.Prepare(kSubscribe);
    if (!subscribe) return subscribe.take_error();
    if (Status s = Resubscribe(*clear, *subscribe, endpoint); !s) return s;
    if (endpoint.status != "enabled") {
      Result<Statement> fail = c.Prepare(kFailPendingOfEndpoint);
      if (!fail) return fail.take_error();
      const std::string reason = "endpoint disabled: " + endpoint.disabled_reason;
      fail->BindText(1, endpoint.id);
      fail->BindText(2, reason);
      fail->BindInt(3, endpoint.updated_at_ms);
      if (Status s = fail->Run(); !s) return s;
    }
    return ApplyEffects(c, effects);
  });
}

Result<bool> SqliteStore::DeleteWebhook(const std::string& id, const Effects& effects) {
  bool deleted = false;
  Status s = Write("DeleteWebhook", [&](Connection& c) -> Status {
    Result<Statement> del = c.Prepare(kDeleteWebhook);
    if (!del) return del.take_error();
    del->BindText(1, id);
    if (Status run = del->Run(); !run) return run;
    deleted = c.Changes() > 0;
    return deleted ? ApplyEffects(c, effects) : Ok();
  });
  if (!s) return s.take_error();
  return deleted;
}

Result<std::optional<WebhookEndpoint>> SqliteStore::FindWebhook(const std::string& id) {
  std::optional<WebhookEndpoint> found;
  Status s = Read("FindWebhook", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindWebhook);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = ReadWebhook(*stmt);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<WebhookEndpoint>> SqliteStore::ListWebhooks(const std::string& user_id) {
  std::vector<WebhookEndpoint> out;
  Status s = Read("ListWebhooks", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(user_id.empty() ? kListWebhooksAll : kListWebhooksOfUser);
    if (!stmt) return stmt.take_error();
    if (!user_id.empty()) stmt->BindText(1, user_id);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadWebhook(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::EnqueueWebhookMessage(const std::string& endpoint_id,
                                          const OutboundEvent& event, std::string_view trigger) {
  return Write("EnqueueWebhookMessage", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kEnqueueDirect);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, event.id);
    stmt->BindText(2, endpoint_id);
    stmt->BindText(3, event.type);
    stmt->BindText(4, event.payload_json);
    stmt->BindInt(5, event.at_ms);
    stmt->BindText(6, trigger);
    return stmt->Run();
  });
}

Result<std::vector<DueWebhookMessage>> SqliteStore::ClaimDueWebhookMessages(
    std::int64_t now_ms, std::int64_t lease_until_ms, int limit) {
  std::vector<DueWebhookMessage> out;
  // A cheap look on a read connection first: an idle outbox costs the writer nothing.
  bool any = false;
  Status peek = Read("ClaimDueWebhookMessages", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kAnyDue);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    any = *row;
    return Ok();
  });
  if (!peek) return peek.take_error();
  if (!any) return out;
  Status s = Write("ClaimDueWebhookMessages", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> select = c.Prepare(kSelectDue);
    if (!select) return select.take_error();
    select->BindInt(1, now_ms);
    select->BindInt(2, limit);
    for (;;) {
      Result<bool> row = select->Step();
      if (!row) return row.take_error();
      if (!*row) break;
      out.push_back({ReadMessage(*select), ReadWebhook(*select, 12)});
    }
    select->Reset();
    Result<Statement> lease = c.Prepare(kLeaseMessage);
    if (!lease) return lease.take_error();
    for (const auto& due : out) {
      lease->BindInt(1, due.message.row);
      lease->BindInt(2, lease_until_ms);
      if (Status st = lease->Run(); !st) return st;
      lease->Reset();
    }
    return Ok();
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::RecordWebhookAttempt(const WebhookAttempt& a, AttemptOutcome outcome,
                                         std::int64_t next_attempt_at_ms,
                                         const std::string& disable_reason) {
  return Write("RecordWebhookAttempt", [&](Connection& c) -> Status {
    Result<Statement> insert = c.Prepare(kInsertAttempt);
    if (!insert) return insert.take_error();
    insert->BindInt(1, a.message_row);
    insert->BindText(2, a.endpoint_id);
    insert->BindInt(3, a.attempt);
    insert->BindInt(4, a.at_ms);
    insert->BindInt(5, a.status);
    insert->BindText(6, a.error);
    insert->BindInt(7, a.duration_ms);
    insert->BindText(8, a.response_excerpt);
    insert->BindText(9, a.trigger);
    if (Status s = insert->Run(); !s) return s;
    Result<Statement> finish = c.Prepare(kFinishMessage);
    if (!finish) return finish.take_error();
    finish->BindInt(1, a.message_row);
    finish->BindText(2, outcome == AttemptOutcome::kDelivered ? "delivered"
                        : outcome == AttemptOutcome::kRetry   ? "pending"
                                                              : "failed");
    finish->BindInt(3, outcome == AttemptOutcome::kRetry ? next_attempt_at_ms : 0);
    finish->BindInt(4, a.status);
    finish->BindText(5, a.error);
    finish->BindInt(6, a.at_ms);
    if (Status s = finish->Run(); !s) return s;
    if (outcome != AttemptOutcome::kGone) return Ok();
    Result<Statement> disable = c.Prepare(kDisableWebhook);
    if (!disable) return disable.take_error();
    disable->BindText(1, a.endpoint_id);
    disable->BindText(2, disable_reason);
    disable->BindInt(3, a.at_ms);
    if (Status s = disable->Run(); !s) return s;
    Result<Statement> fail = c.Prepare(kFailPendingOfEndpoint);
    if (!fail) return fail.take_error();
    const std::string reason = "endpoint disabled: " + disable_reason;
    fail->BindText(1, a.endpoint_id);
    fail->BindText(2, reason);
    fail->BindInt(3, a.at_ms);
    return fail->Run();
  });
}

Result<std::vector<WebhookAttempt>> SqliteStore::ListWebhookAttempts(
    const std::string& endpoint_id, std::int64_t before_id, int limit) {
  std::vector<WebhookAttempt> out;
  Status s = Read("ListWebhookAttempts", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListAttempts);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, endpoint_id);
    stmt->BindInt(2, before_id);
    stmt->BindInt(3, limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      WebhookAttempt a;
      a.id = stmt->Int(0);
      a.message_row = stmt->Int(1);
      a.msg_id = stmt->Text(2);
      a.event_type = stmt->Text(3);
      a.endpoint_id = stmt->Text(4);
      a.attempt = static_cast<int>(stmt->Int(5));
      a.at_ms = stmt->Int(6);
      a.status = static_cast<int>(stmt->Int(7));
      a.error = stmt->Text(8);
      a.duration_ms = stmt->Int(9);
      a.response_excerpt = stmt->Text(10);
      a.trigger = stmt->Text(11);
      out.push_back(std::move(a));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Result<std::vector<WebhookMessage>> SqliteStore::ListWebhookMessages(
    const std::string& endpoint_id, std::int64_t before_row, int limit) {
  std::vector<WebhookMessage> out;
  Status s = Read("ListWebhookMessages", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListMessages);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, endpoint_id);
    stmt->BindInt(2, before_row);
    stmt->BindInt(3, limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadMessage(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Result<bool> SqliteStore::ReplayWebhookMessage(const std::string& endpoint_id,
                                               const std::string& msg_id, std::int64_t now_ms) {
  bool found = false;
  Status s = Write("ReplayWebhookMessage", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kReplayMessage);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, endpoint_id);
    stmt->BindText(2, msg_id);
    stmt->BindInt(3, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    found = *row;
    return stmt->Run();
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<GrantRecord>> SqliteStore::ClaimExpiredGrants(
    std::int64_t now_ms, int limit, const GrantEffectsFor& effects_for) {
  std::vector<GrantRecord> out;
  Status s = Write("ClaimExpiredGrants", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> select = c.Prepare(kSelectExpiredGrants);
    if (!select) return select.take_error();
    select->BindInt(1, now_ms);
    select->BindInt(2, limit);
    for (;;) {
      Result<bool> row = select->Step();
      if (!row) return row.take_error();
      if (!*row) break;
      out.push_back(ReadGrant(*select));
    }
    select->Reset();
    if (out.empty()) return Ok();
    Result<Statement> mark = c.Prepare(kMarkExpiryReported);
    if (!mark) return mark.take_error();
    for (const auto& g : out) {
      mark->BindText(1, g.id);
      if (Status st = mark->Run(); !st) return st;
      mark->Reset();
    }
    return effects_for ? ApplyEffects(c, effects_for(out)) : Ok();
  });
  if (!s) return s.take_error();
  return out;
}

// --- permission requests ----------------------------------------------------------------------

namespace {

void BindRequest(Statement& stmt, const PermissionRequestRecord& r) {
  stmt.BindText(1, r.id);
  stmt.BindText(2, r.agent_id);
  stmt.BindText(3, r.action);
  stmt.BindText(4, r.reason);
  stmt.BindText(5, r.scope_json);
  stmt.BindText(6, r.expires_in);
  stmt.BindText(7, r.requested_from);
  stmt.BindText(8, r.status);
  stmt.BindInt(9, r.created_at_ms);
  stmt.BindInt(10, r.expires_at_ms);
  stmt.BindOptionalInt(11, r.decided_at_ms);
  stmt.BindText(12, r.decided_by);
  stmt.BindText(13, r.decline_reason);
  stmt.BindText(14, r.grant_id);
}

}  // namespace

Result<std::optional<std::string>> SqliteStore::LatestGranterOf(const std::string& agent_id) {
  std::optional<std::string> found;
  Status s = Read("LatestGranterOf", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kLatestGranter);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, agent_id);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = stmt->Text(0);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<CreateRequestResult> SqliteStore::CreatePermissionRequest(
    const PermissionRequestRecord& request, int max_pending, std::int64_t now_ms,
    const Effects& effects) {
  CreateRequestResult out;
  // One op of the single writer: no other create can slip between the tests and the insert.
  Status s = Write("CreatePermissionRequest", [&](Connection& c) -> Status {
    {
      Result<Statement> dup = c.Prepare(kFindPendingRequest);
      if (!dup) return dup.take_error();
      dup->BindText(1, request.agent_id);
      dup->BindText(2, request.action);
      dup->BindText(3, request.requested_from);
      dup->BindInt(4, now_ms);
      Result<bool> row = dup->Step();
      if (!row) return row.take_error();
      if (*row) {
        out = {CreateRequestOutcome::kDuplicate, ReadRequest(*dup)};
        return Ok();
      }
    }
    {
      Result<Statement> count = c.Prepare(kCountPendingRequests);
      if (!count) return count.take_error();
      count->BindText(1, request.agent_id);
      count->BindInt(2, now_ms);
      Result<bool> row = count->Step();
      if (!row) return row.take_error();
      if (*row && count->Int(0) >= max_pending) {
        out = {CreateRequestOutcome::kTooMany, {}};
        return Ok();
      }
    }
    Result<Statement> insert = c.Prepare(kInsertRequest);
    if (!insert) return insert.take_error();
    BindRequest(*insert, request);
    if (Status st = insert->Run(); !st) return st;
    out = {CreateRequestOutcome::kCreated, request};
    return ApplyEffects(c, effects);
  });
  if (!s) return s.take_error();
  return out;
}

Result<std::optional<PermissionRequestRecord>> SqliteStore::FindPermissionRequest(
    const std::string& id) {
  std::optional<PermissionRequestRecord> found;
  Status s = Read("FindPermissionRequest", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindRequest);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = ReadRequest(*stmt);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::optional<PermissionRequestRecord>> SqliteStore::FindPendingPermissionRequest(
    const std::string& agent_id, const std::string& action, const std::string& requested_from,
    std::int64_t now_ms) {
  std::optional<PermissionRequestRecord> found;
  Status s = Read("FindPendingPermissionRequest", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindPendingRequest);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, agent_id);
    stmt->BindText(2, action);
    stmt->BindText(3, requested_from);
    stmt->BindInt(4, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = ReadRequest(*stmt);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::int64_t> SqliteStore::CountPendingPermissionRequests(const std::string& agent_id,
                                                                 std::int64_t now_ms) {
  std::int64_t n = 0;
  Status s = Read("CountPendingPermissionRequests", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kCountPendingRequests);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, agent_id);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) n = stmt->Int(0);
    return Ok();
  });
  if (!s) return s.take_error();
  return n;
}

Result<std::vector<PermissionRequestRecord>> SqliteStore::ListPermissionRequests(
    const PermissionRequestFilter& filter) {
  std::vector<PermissionRequestRecord> out;
  if (filter.limit <= 0) return out;
  std::string_view sql = !filter.requested_from.empty() ? kListRequestsOfAddressee
                         : !filter.agent_id.empty()     ? kListRequestsOfAgent
                                                        : kListRequestsAll;
  Status s = Read("ListPermissionRequests", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(sql);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.requested_from);
    stmt->BindText(2, filter.agent_id);
    stmt->BindText(3, filter.status);
    stmt->BindInt(4, filter.now_ms);
    stmt->BindInt(5, filter.before_created_ms);
    stmt->BindText(6, filter.before_id);
    stmt->BindInt(7, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadRequest(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Result<DecideRequestResult> SqliteStore::DecidePermissionRequest(
    const PermissionRequestRecord& decision, const std::optional<GrantRecord>& grant,
    const Effects& effects) {
  DecideRequestResult out;
  Status s = Write("DecidePermissionRequest", [&](Connection& c) -> Status {
    out = {};
    {
      Result<Statement> update = c.Prepare(kDecideRequest);
      if (!update) return update.take_error();
      update->BindText(1, decision.id);
      update->BindText(2, decision.status);
      update->BindInt(3, decision.decided_at_ms.value_or(0));
      update->BindText(4, decision.decided_by);
      update->BindText(5, decision.decline_reason);
      update->BindText(6, decision.grant_id);
      Result<bool> row = update->Step();
      if (!row) return row.take_error();
      if (*row) {
        out.decided = true;
        out.request = ReadRequest(*update);
      }
    }
    if (!out.decided) {
      // Lost: report the request as it stands, and write nothing.
      Result<Statement> find = c.Prepare(kFindRequest);
      if (!find) return find.take_error();
      find->BindText(1, decision.id);
      Result<bool> row = find->Step();
      if (!row) return row.take_error();
      if (*row) out.request = ReadRequest(*find);
      return Ok();
    }
    if (grant) {
      if (Status st = InsertGrantRow(c, *grant); !st) return st;
    }
    return ApplyEffects(c, effects);
  });
  if (!s) return s.take_error();
  return out;
}

Result<std::vector<PermissionRequestRecord>> SqliteStore::ExpirePermissionRequests(
    std::int64_t now_ms, int limit, const RequestEffectsFor& effects_for) {
  std::vector<PermissionRequestRecord> out;
  Status s = Write("ExpirePermissionRequests", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kExpireRequests);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, now_ms);
    stmt->BindInt(2, limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) break;
      out.push_back(ReadRequest(*stmt));
    }
    stmt->Reset();
    if (out.empty() || !effects_for) return Ok();
    return ApplyEffects(c, effects_for(out));
  });
  if (!s) return s.take_error();
  return out;
}

// --- activity ---------------------------------------------------------------------------------

Status SqliteStore::AppendActivity(const std::vector<ActivityEvent>& events) {
  if (events.empty()) return Ok();
  return Write("AppendActivity", [&](Connection& c) -> Status {
    return ApplyEffects(c, Effects{events, {}});
  });
}

Result<std::vector<ActivityEvent>> SqliteStore::ListActivity(const ActivityFilter& filter) {
  std::vector<ActivityEvent> events;
  if (filter.limit <= 0) return events;
  // The conditions present, with fixed parameter numbers, so the statement cache holds one text
  // per combination of filters.
  std::string sql = "SELECT " + std::string(kActivityColumns) +
                    " FROM activity WHERE seq < ?1 AND at >= ?2 AND at < ?3";
  if (!filter.actor_kind.empty()) sql += " AND actor_kind = ?4";
  if (!filter.actor_id.empty()) sql += " AND actor_id = ?5";
  if (!filter.agent_id.empty()) sql += " AND agent_id = ?6";
  if (!filter.action.empty()) sql += " AND action = ?7";
  if (!filter.outcome.empty()) sql += " AND outcome = ?8";
  if (!filter.visible_to_user_id.empty()) {
    sql +=
        " AND (user_id = ?9 OR (agent_id <> '' AND (agent_id IN (SELECT agent_id FROM grants "
        "WHERE granted_by = ?9) OR agent_id IN (SELECT id FROM agents WHERE developer_email = "
        "?10))))";
  }
  sql += " ORDER BY seq DESC LIMIT ?11";
  Status s = Read("ListActivity", [&](Connection& c) -> Status {
    events.clear();
    Result<Statement> stmt = c.Prepare(sql);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, filter.before_seq);
    stmt->BindInt(2, filter.since_ms);
    stmt->BindInt(3, filter.until_ms);
    if (!filter.actor_kind.empty()) stmt->BindText(4, filter.actor_kind);
    if (!filter.actor_id.empty()) stmt->BindText(5, filter.actor_id);
    if (!filter.agent_id.empty()) stmt->BindText(6, filter.agent_id);
    if (!filter.action.empty()) stmt->BindText(7, filter.action);
    if (!filter.outcome.empty()) stmt->BindText(8, filter.outcome);
    if (!filter.visible_to_user_id.empty()) {
      stmt->BindText(9, filter.visible_to_user_id);
      stmt->BindText(10, filter.visible_to_email);
    }
    stmt->BindInt(11, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      events.push_back(ReadActivity(*stmt));
    }
  });
  if (!s) return s.take_error();
  return events;
}

// --- idempotency ------------------------------------------------------------------------------

Result<IdempotencyOutcome> SqliteStore::BeginIdempotent(const crypto::Digest& key,
                                                        const crypto::Digest& fingerprint,
                                                        std::int64_t now_ms,
                                                        std::int64_t expires_at_ms,
                                                        std::int64_t stale_before_ms) {
  IdempotencyOutcome out;
  Status s = Write("BeginIdempotent", [&](Connection& c) -> Status {
    out = IdempotencyOutcome{};
    {
      Result<Statement> find = c.Prepare(kFindIdempotent);
      if (!find) return find.take_error();
      find->BindDigest(1, key);
      Result<bool> row = find->Step();
      if (!row) return row.take_error();
      if (*row && find->Int(7) > now_ms) {
        crypto::Digest stored{};
        bool same = find->ReadDigest(0, stored).ok() && stored == fingerprint;
        bool done = find->Int(1) != 0;
        if (!same) {
          out.state = IdempotencyState::kMismatch;
          return Ok();
        }
        if (done) {
          out.state = IdempotencyState::kReplay;
          out.status = static_cast<int>(find->Int(2));
          out.content_type = find->Text(3);
          out.headers_json = find->Text(4);
          out.body = find->Text(5);
          return Ok();
        }
        if (find->Int(6) >= stale_before_ms) {
          out.state = IdempotencyState::kInProgress;
          return Ok();
        }
      }
    }
    Result<Statement> claim = c.Prepare(kClaimIdempotent);
    if (!claim) return claim.take_error();
    claim->BindDigest(1, key);
    claim->BindDigest(2, fingerprint);
    claim->BindInt(3, now_ms);
    claim->BindInt(4, expires_at_ms);
    out.state = IdempotencyState::kStarted;
    return claim->Run();
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::FinishIdempotent(const crypto::Digest& key, int status,
                                     const std::string& content_type,
                                     const std::string& headers_json, const std::string& body) {
  return Write("FinishIdempotent", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFinishIdempotent);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, key);
    stmt->BindInt(2, status);
    stmt->BindText(3, content_type);
    stmt->BindText(4, headers_json);
    stmt->BindText(5, body);
    return stmt->Run();
  });
}

Status SqliteStore::AbandonIdempotent(const crypto::Digest& key) {
  return Write("AbandonIdempotent", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kAbandonIdempotent);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, key);
    return stmt->Run();
  });
}

// --- integration engine -----------------------------------------------------------------------

namespace {

WorkspaceRecord ReadWorkspace(const Statement& row) {
  WorkspaceRecord w;
  w.id = row.Text(0);
  w.key = row.Text(1);
  w.name = row.Text(2);
  w.secret_sealed = row.Text(3);
  w.created_at_ms = row.Int(4);
  w.updated_at_ms = row.Int(5);
  return w;
}

IntegrationRecord ReadIntegration(const Statement& row) {
  IntegrationRecord i;
  i.id = row.Text(0);
  i.workspace_id = row.Text(1);
  i.key = row.Text(2);
  i.name = row.Text(3);
  i.connector_key = row.Text(4);
  i.parameters_json = row.Text(5);
  i.client_secret_sealed = row.Text(6);
  i.archived_at_ms = row.OptionalInt(7);
  i.created_at_ms = row.Int(8);
  i.updated_at_ms = row.Int(9);
  return i;
}

void BindIntegration(Statement& stmt, const IntegrationRecord& i) {
  stmt.BindText(1, i.id);
  stmt.BindText(2, i.workspace_id);
  stmt.BindText(3, i.key);
  stmt.BindText(4, i.name);
  stmt.BindText(5, i.connector_key);
  stmt.BindText(6, i.parameters_json);
  stmt.BindText(7, i.client_secret_sealed);
  stmt.BindOptionalInt(8, i.archived_at_ms);
  stmt.BindInt(9, i.created_at_ms);
  stmt.BindInt(10, i.updated_at_ms);
}

ConnectionRecord ReadConnection(const Statement& row) {
  ConnectionRecord c;
  c.id = row.Text(0);
  c.workspace_id = row.Text(1);
  c.tenant_key = row.Text(2);
  c.key = row.Text(3);
  c.name = row.Text(4);
  c.integration_id = row.Text(5);
  c.state = row.Text(6);
  c.error_json = row.Text(7);
  c.fields_json = row.Text(8);
  c.credentials_sealed = row.Text(9);
  c.token_expires_at_ms = row.OptionalInt(10);
  c.refresh_failed_at_ms = row.Int(11);
  c.version = row.Int(12);
  c.archived_at_ms = row.OptionalInt(13);
  c.created_at_ms = row.Int(14);
  c.updated_at_ms = row.Int(15);
  return c;
}

void BindConnection(Statement& stmt, const ConnectionRecord& c) {
  stmt.BindText(1, c.id);
  stmt.BindText(2, c.workspace_id);
  stmt.BindText(3, c.tenant_key);
  stmt.BindText(4, c.key);
  stmt.BindText(5, c.name);
  stmt.BindText(6, c.integration_id);
  stmt.BindText(7, c.state);
  stmt.BindText(8, c.error_json);
  stmt.BindText(9, c.fields_json);
  stmt.BindText(10, c.credentials_sealed);
  stmt.BindOptionalInt(11, c.token_expires_at_ms);
  stmt.BindInt(12, c.refresh_failed_at_ms);
  stmt.BindInt(13, c.version);
  stmt.BindOptionalInt(14, c.archived_at_ms);
  stmt.BindInt(15, c.created_at_ms);
  stmt.BindInt(16, c.updated_at_ms);
}

Result<ConnectSessionRecord> ReadConnectSession(const Statement& row) {
  ConnectSessionRecord r;
  if (Status s = row.ReadDigest(0, r.token_hash); !s) return s.take_error();
  r.connection_id = row.Text(1);
  r.workspace_id = row.Text(2);
  r.tenant_key = row.Text(3);
  if (!row.IsNull(4)) {
    crypto::Digest d{};
    if (Status s = row.ReadDigest(4, d); !s) return s.take_error();
    r.state_hash = d;
  }
  if (!row.IsNull(5)) {
    crypto::Digest d{};
    if (Status s = row.ReadDigest(5, d); !s) return s.take_error();
    r.browser_hash = d;
  }
  r.verifier_sealed = row.Text(6);
  r.redirect_uri = row.Text(7);
  r.created_at_ms = row.Int(8);
  r.expires_at_ms = row.Int(9);
  r.used_at_ms = row.OptionalInt(10);
  return r;
}

// Runs a query that yields at most one row, read by read_row.
template <class T, class ReadRow>
Status ReadOne(Statement& stmt, std::optional<T>& out, ReadRow read_row) {
  Result<bool> row = stmt.Step();
  if (!row) return row.take_error();
  if (*row) out = read_row(stmt);
  return Ok();
}

}  // namespace

Result<WorkspaceRecord> SqliteStore::EnsureWorkspace(const WorkspaceRecord& if_absent) {
  Status s = Write("EnsureWorkspace", [&](Connection& c) -> Status {
    Result<Statement> insert = c.Prepare(kInsertWorkspaceIfAbsent);
    if (!insert) return insert.take_error();
    insert->BindText(1, if_absent.id);
    insert->BindText(2, if_absent.key);
    insert->BindText(3, if_absent.name);
    insert->BindText(4, if_absent.secret_sealed);
    insert->BindInt(5, if_absent.created_at_ms);
    insert->BindInt(6, if_absent.updated_at_ms);
    return insert->Run();
  });
  if (!s) return s.take_error();
  std::optional<WorkspaceRecord> found;
  s = Read("EnsureWorkspace", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindWorkspace);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, if_absent.id);
    return ReadOne(*stmt, found, ReadWorkspace);
  });
  if (!s) return s.take_error();
  if (!found) return MakeError(Code::kServerError, "EnsureWorkspace: the workspace vanished");
  return std::move(*found);
}

Result<std::vector<WorkspaceRecord>> SqliteStore::ListWorkspaces() {
  std::vector<WorkspaceRecord> out;
  Status s = Read("ListWorkspaces", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListWorkspaces);
    if (!stmt) return stmt.take_error();
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadWorkspace(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::UpdateWorkspaceSecret(const std::string& id, const std::string& secret_sealed,
                                          std::int64_t at_ms, const Effects& effects) {
  return Write("UpdateWorkspaceSecret", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kUpdateWorkspaceSecret);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    stmt->BindText(2, secret_sealed);
    stmt->BindInt(3, at_ms);
    if (Status run = stmt->Run(); !run) return run;
    if (c.Changes() == 0) return MakeError(Code::kNotFound, "no workspace " + id);
    return ApplyEffects(c, effects);
  });
}

Status SqliteStore::TouchTenant(const TenantRecord& tenant) {
  return Write("TouchTenant", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kTouchTenant);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, tenant.workspace_id);
    stmt->BindText(2, tenant.key);
    stmt->BindText(3, tenant.name);
    stmt->BindText(4, tenant.fields_json);
    stmt->BindInt(5, tenant.last_seen_ms);
    return stmt->Run();
  });
}

Status SqliteStore::InsertConnector(const ConnectorRecord& connector, const Effects& effects) {
  return Write("InsertConnector", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertConnector);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, connector.id);
    stmt->BindText(2, connector.workspace_id);
    stmt->BindText(3, connector.key);
    stmt->BindText(4, connector.spec_json);
    stmt->BindInt(5, connector.created_at_ms);
    stmt->BindInt(6, connector.updated_at_ms);
    if (Status run = stmt->Run(); !run) return run;
    return ApplyEffects(c, effects);
  });
}

Result<std::vector<ConnectorRecord>> SqliteStore::ListConnectors(const std::string& workspace_id) {
  std::vector<ConnectorRecord> out;
  Status s = Read("ListConnectors", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListConnectors);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ConnectorRecord{stmt->Text(0), stmt->Text(1), stmt->Text(2), stmt->Text(3),
                                    stmt->Int(4), stmt->Int(5)});
    }
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::InsertIntegration(const IntegrationRecord& integration,
                                      const Effects& effects) {
  return Write("InsertIntegration", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertIntegration);
    if (!stmt) return stmt.take_error();
    BindIntegration(*stmt, integration);
    if (Status run = stmt->Run(); !run) return run;
    return ApplyEffects(c, effects);
  });
}

Status SqliteStore::UpdateIntegration(const IntegrationRecord& integration,
                                      const Effects& effects) {
  return Write("UpdateIntegration", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kUpdateIntegration);
    if (!stmt) return stmt.take_error();
    BindIntegration(*stmt, integration);
    if (Status run = stmt->Run(); !run) return run;
    if (c.Changes() == 0) return MakeError(Code::kNotFound, "no integration " + integration.id);
    return ApplyEffects(c, effects);
  });
}

Result<std::optional<IntegrationRecord>> SqliteStore::FindIntegration(
    const std::string& workspace_id, const std::string& id_or_key) {
  std::optional<IntegrationRecord> found;
  Status s = Read("FindIntegration", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kFindIntegration);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    stmt->BindText(2, id_or_key);
    return ReadOne(*stmt, found, ReadIntegration);
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<IntegrationRecord>> SqliteStore::ListIntegrations(
    const std::string& workspace_id, bool include_archived) {
  std::vector<IntegrationRecord> out;
  Status s = Read("ListIntegrations", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListIntegrations);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    stmt->BindInt(2, include_archived ? 1 : 0);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadIntegration(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::InsertConnection(const ConnectionRecord& connection, const Effects& effects) {
  return Write("InsertConnection", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertConnection);
    if (!stmt) return stmt.take_error();
    BindConnection(*stmt, connection);
    if (Status run = stmt->Run(); !run) return run;
    return ApplyEffects(c, effects);
  });
}

Result<bool> SqliteStore::UpdateConnection(const ConnectionRecord& connection,
                                           std::int64_t expected_version,
                                           const Effects& effects) {
  bool updated = false;
  Status s = Write("UpdateConnection", [&](Connection& c) -> Status {
    updated = false;
    Result<Statement> stmt = c.Prepare(kUpdateConnection);
    if (!stmt) return stmt.take_error();
    BindConnection(*stmt, connection);
    stmt->BindInt(17, expected_version);
    if (Status run = stmt->Run(); !run) return run;
    updated = c.Changes() > 0;
    return updated ? ApplyEffects(c, effects) : Ok();
  });
  if (!s) return s.take_error();
  return updated;
}

Result<std::optional<ConnectionRecord>> SqliteStore::FindConnection(
    const std::string& workspace_id, const std::string& id) {
  std::optional<ConnectionRecord> found;
  Status s = Read("FindConnection", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kFindConnection);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    stmt->BindText(2, id);
    return ReadOne(*stmt, found, ReadConnection);
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::optional<ConnectionRecord>> SqliteStore::FindConnectionByKey(
    const std::string& workspace_id, const std::string& tenant_key, const std::string& key) {
  std::optional<ConnectionRecord> found;
  Status s = Read("FindConnectionByKey", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kFindConnectionByKey);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    stmt->BindText(2, tenant_key);
    stmt->BindText(3, key);
    return ReadOne(*stmt, found, ReadConnection);
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<ConnectionRecord>> SqliteStore::ListConnections(
    const ConnectionFilter& filter) {
  std::vector<ConnectionRecord> out;
  if (filter.limit <= 0) return out;
  Status s = Read("ListConnections", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListConnections);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.workspace_id);
    stmt->BindText(2, filter.tenant_key);
    stmt->BindText(3, filter.integration_id);
    stmt->BindText(4, filter.search);
    stmt->BindInt(5, filter.include_archived ? 1 : 0);
    stmt->BindInt(6, filter.after_created_ms);
    stmt->BindText(7, filter.after_id);
    stmt->BindInt(8, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadConnection(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::InsertConnectSession(const ConnectSessionRecord& session) {
  return Write("InsertConnectSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertConnectSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, session.token_hash);
    stmt->BindText(2, session.connection_id);
    stmt->BindText(3, session.workspace_id);
    stmt->BindText(4, session.tenant_key);
    stmt->BindText(5, session.verifier_sealed);
    stmt->BindText(6, session.redirect_uri);
    stmt->BindInt(7, session.created_at_ms);
    stmt->BindInt(8, session.expires_at_ms);
    return stmt->Run();
  });
}

Result<std::optional<ConnectSessionRecord>> SqliteStore::FindConnectSession(
    const crypto::Digest& token_hash, std::int64_t now_ms) {
  std::optional<ConnectSessionRecord> found;
  Status s = Read("FindConnectSession", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kFindConnectSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (!*row) return Ok();
    Result<ConnectSessionRecord> r = ReadConnectSession(*stmt);
    if (!r) return r.take_error();
    found = std::move(*r);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<bool> SqliteStore::StartConnectSession(const crypto::Digest& token_hash,
                                              const crypto::Digest& state_hash,
                                              const crypto::Digest& browser_hash,
                                              const std::string& verifier_sealed,
                                              const std::string& redirect_uri,
                                              std::int64_t now_ms) {
  bool started = false;
  Status s = Write("StartConnectSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kStartConnectSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindDigest(2, state_hash);
    stmt->BindDigest(3, browser_hash);
    stmt->BindText(4, verifier_sealed);
    stmt->BindText(5, redirect_uri);
    stmt->BindInt(6, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    started = *row;
    return stmt->Run();
  });
  if (!s) return s.take_error();
  return started;
}

Result<std::optional<ConnectSessionRecord>> SqliteStore::ConsumeConnectSession(
    const crypto::Digest& state_hash, std::int64_t now_ms) {
  std::optional<ConnectSessionRecord> found;
  Status s = Write("ConsumeConnectSession", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kConsumeConnectSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, state_hash);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (!*row) return Ok();
    Result<ConnectSessionRecord> r = ReadConnectSession(*stmt);
    if (!r) return r.take_error();
    found = std::move(*r);
    return stmt->Run();
  });
  if (!s) return s.take_error();
  return found;
}

Status SqliteStore::EndConnectSessions(const std::string& connection_id, std::int64_t now_ms) {
  return Write("EndConnectSessions", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kEndConnectSessions);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, connection_id);
    stmt->BindInt(2, now_ms);
    return stmt->Run();
  });
}

// --- actions, runs and budgets -----------------------------------------------------------------

namespace {

ActionRecord ReadAction(const Statement& row) {
  ActionRecord a;
  a.id = row.Text(0);
  a.workspace_id = row.Text(1);
  a.key = row.Text(2);
  a.name = row.Text(3);
  a.description = row.Text(4);
  a.type = row.Text(5);
  a.integration_id = row.Text(6);
  a.connection_id = row.Text(7);
  a.config_json = row.Text(8);
  a.input_schema_json = row.Text(9);
  a.output_schema_json = row.Text(10);
  a.archived_at_ms = row.OptionalInt(11);
  a.created_at_ms = row.Int(12);
  a.updated_at_ms = row.Int(13);
  return a;
}

void BindAction(Statement& stmt, const ActionRecord& a) {
  stmt.BindText(1, a.id);
  stmt.BindText(2, a.workspace_id);
  stmt.BindText(3, a.key);
  stmt.BindText(4, a.name);
  stmt.BindText(5, a.description);
  stmt.BindText(6, a.type);
  stmt.BindText(7, a.integration_id);
  stmt.BindText(8, a.connection_id);
  stmt.BindText(9, a.config_json);
  stmt.BindText(10, a.input_schema_json);
  stmt.BindText(11, a.output_schema_json);
  stmt.BindOptionalInt(12, a.archived_at_ms);
  stmt.BindInt(13, a.created_at_ms);
  stmt.BindInt(14, a.updated_at_ms);
}

// The only UNIQUE index of actions besides its primary key (which fails with
// SQLITE_CONSTRAINT_PRIMARYKEY) is the key's, so this failure is a key clash: say so.
Status ActionKeyClash(int extended_code, Status failed, const ActionRecord& a) {
  if (extended_code != SQLITE_CONSTRAINT_UNIQUE) return failed;
  std::string scope = !a.connection_id.empty()    ? "connection " + a.connection_id
                      : !a.integration_id.empty() ? "integration " + a.integration_id
                                                  : "the workspace (universal actions)";
  return MakeError(Code::kConflict,
                   "an unarchived action with key \"" + a.key + "\" already exists in " + scope);
}

ActionRunRecord ReadActionRun(const Statement& row) {
  ActionRunRecord r;
  r.id = row.Text(0);
  r.workspace_id = row.Text(1);
  r.tenant_key = row.Text(2);
  r.action_id = row.Text(3);
  r.action_key = row.Text(4);
  r.connection_id = row.Text(5);
  r.integration_id = row.Text(6);
  r.actor_kind = row.Text(7);
  r.actor_id = row.Text(8);
  r.agent_id = row.Text(9);
  r.grant_id = row.Text(10);
  r.status = row.Text(11);
  r.input_json = row.Text(12);
  r.output_json = row.Text(13);
  r.error_json = row.Text(14);
  r.details_json = row.Text(15);
  r.started_at_ms = row.Int(16);
  r.finished_at_ms = row.Int(17);
  return r;
}

void BindActionRun(Statement& stmt, const ActionRunRecord& r) {
  stmt.BindText(1, r.id);
  stmt.BindText(2, r.workspace_id);
  stmt.BindText(3, r.tenant_key);
  stmt.BindText(4, r.action_id);
  stmt.BindText(5, r.action_key);
  stmt.BindText(6, r.connection_id);
  stmt.BindText(7, r.integration_id);
  stmt.BindText(8, r.actor_kind);
  stmt.BindText(9, r.actor_id);
  stmt.BindText(10, r.agent_id);
  stmt.BindText(11, r.grant_id);
  stmt.BindText(12, r.status);
  stmt.BindText(13, r.input_json);
  stmt.BindText(14, r.output_json);
  stmt.BindText(15, r.error_json);
  stmt.BindText(16, r.details_json);
  stmt.BindInt(17, r.started_at_ms);
  stmt.BindInt(18, r.finished_at_ms);
}

void BindBudgetWindow(Statement& stmt, const BudgetCharge& charge) {
  stmt.BindText(1, charge.grant_id);
  stmt.BindText(2, charge.field);
  stmt.BindInt(3, charge.window_start_ms);
}

Status CheckAmounts(const std::vector<BudgetCharge>& charges) {
  for (const BudgetCharge& charge : charges) {
    if (charge.amount < 0) {
      return MakeError(Code::kServerError, "negative budget amount for " + charge.grant_id + "/" +
                                               charge.field + " (a caller bug)");
    }
  }
  return Ok();
}

}  // namespace

Status SqliteStore::InsertAction(const ActionRecord& action, const Effects& effects) {
  return Write("InsertAction", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertAction);
    if (!stmt) return stmt.take_error();
    BindAction(*stmt, action);
    if (Status run = stmt->Run(); !run)
      return ActionKeyClash(c.LastErrorCode(), std::move(run), action);
    return ApplyEffects(c, effects);
  });
}

Status SqliteStore::UpdateAction(const ActionRecord& action, const Effects& effects) {
  return Write("UpdateAction", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kUpdateAction);
    if (!stmt) return stmt.take_error();
    BindAction(*stmt, action);
    if (Status run = stmt->Run(); !run)
      return ActionKeyClash(c.LastErrorCode(), std::move(run), action);
    if (c.Changes() == 0) return MakeError(Code::kActionNotFound, "no action " + action.id);
    return ApplyEffects(c, effects);
  });
}

Result<std::optional<ActionRecord>> SqliteStore::FindAction(const std::string& workspace_id,
                                                            const std::string& id) {
  std::optional<ActionRecord> found;
  Status s = Read("FindAction", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kFindAction);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    stmt->BindText(2, id);
    return ReadOne(*stmt, found, ReadAction);
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<ActionRecord>> SqliteStore::ListActions(const ActionFilter& filter) {
  std::vector<ActionRecord> out;
  if (filter.limit <= 0) return out;
  Status s = Read("ListActions", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt = c.Prepare(kListActions);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.workspace_id);
    stmt->BindText(2, filter.connection_id);
    stmt->BindText(3, filter.surface_integration_id);
    stmt->BindText(4, filter.key);
    stmt->BindInt(5, filter.include_archived ? 1 : 0);
    stmt->BindInt(6, filter.after_created_ms);
    stmt->BindText(7, filter.after_id);
    stmt->BindInt(8, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadAction(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::InsertActionRuns(const std::vector<ActionRunRecord>& runs,
                                     const Effects& effects) {
  return Write("InsertActionRuns", [&](Connection& c) -> Status {
    for (const ActionRunRecord& run : runs) {
      Result<Statement> stmt = c.Prepare(kInsertActionRun);
      if (!stmt) return stmt.take_error();
      BindActionRun(*stmt, run);
      if (Status s = stmt->Run(); !s) return s;
    }
    return ApplyEffects(c, effects);
  });
}

Result<std::optional<ActionRunRecord>> SqliteStore::FindActionRun(const std::string& workspace_id,
                                                                  const std::string& id) {
  std::optional<ActionRunRecord> found;
  Status s = Read("FindActionRun", [&](Connection& c) -> Status {
    found.reset();
    Result<Statement> stmt = c.Prepare(kFindActionRun);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, workspace_id);
    stmt->BindText(2, id);
    return ReadOne(*stmt, found, ReadActionRun);
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<ActionRunRecord>> SqliteStore::ListActionRuns(const ActionRunFilter& filter) {
  std::vector<ActionRunRecord> out;
  if (filter.limit <= 0) return out;
  // No cursor: start before (max, ""), which every stored row precedes.
  const bool from_top = filter.before_started_ms < 0;
  const std::int64_t before_started =
      from_top ? std::numeric_limits<std::int64_t>::max() : filter.before_started_ms;
  const std::string_view before_id = from_top ? std::string_view() : filter.before_id;
  Status s = Read("ListActionRuns", [&](Connection& c) -> Status {
    out.clear();
    Result<Statement> stmt =
        c.Prepare(filter.tenant_key.empty() ? kListActionRunsOfWorkspace : kListActionRunsOfTenant);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.workspace_id);
    stmt->BindText(2, filter.tenant_key);
    stmt->BindText(3, filter.agent_id);
    stmt->BindText(4, filter.action_id);
    stmt->BindText(5, filter.connection_id);
    stmt->BindText(6, filter.status);
    stmt->BindInt(7, before_started);
    stmt->BindText(8, before_id);
    stmt->BindInt(9, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      out.push_back(ReadActionRun(*stmt));
    }
  });
  if (!s) return s.take_error();
  return out;
}

Result<std::int64_t> SqliteStore::DeleteActionRunsBefore(std::int64_t before_ms) {
  std::int64_t deleted = 0;
  Status s = Write("DeleteActionRunsBefore", [&](Connection& c) -> Status {
    deleted = 0;
    Result<Statement> stmt = c.Prepare(kDeleteActionRunsBefore);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, before_ms);
    if (Status run = stmt->Run(); !run) return run;
    deleted = c.Changes();
    return Ok();
  });
  if (!s) return s.take_error();
  return deleted;
}

// Atomic because it runs as one op of the writer: inside BEGIN IMMEDIATE, which holds the
// database's write lock from its start, so no other writer (thread or process) can charge
// between the reads and the writes below. Reads come first and nothing is written unless every
// charge fits, so a refusal leaves the windows untouched.
Result<BudgetOutcome> SqliteStore::ChargeBudgets(const std::vector<BudgetCharge>& charges) {
  if (Status s = CheckAmounts(charges); !s) return Annotate("ChargeBudgets", s.take_error());
  BudgetOutcome outcome;
  if (charges.empty()) {
    outcome.charged = true;
    return outcome;
  }
  Status s = Write("ChargeBudgets", [&](Connection& c) -> Status {
    outcome = BudgetOutcome{};
    // The total each charge's window would reach; charges of one window (unusual) add up.
    std::vector<std::int64_t> before(charges.size(), 0);
    std::vector<std::int64_t> after(charges.size(), 0);
    {
      Result<Statement> read = c.Prepare(kBudgetUsed);
      if (!read) return read.take_error();
      for (std::size_t i = 0; i < charges.size(); ++i) {
        const BudgetCharge& charge = charges[i];
        BindBudgetWindow(*read, charge);
        Result<bool> row = read->Step();
        if (!row) return row.take_error();
        before[i] = *row ? read->Int(0) : 0;
        read->Reset();
      }
    }
    for (std::size_t i = 0; i < charges.size(); ++i) {
      std::int64_t base = before[i];
      for (std::size_t j = 0; j < i; ++j) {  // an earlier charge of the same window
        if (charges[j].grant_id == charges[i].grant_id && charges[j].field == charges[i].field &&
            charges[j].window_start_ms == charges[i].window_start_ms) {
          base = after[j];
        }
      }
      std::int64_t total = 0;
      if (__builtin_add_overflow(base, charges[i].amount, &total) || total > charges[i].limit) {
        outcome.failed = i;
        outcome.used = std::move(before);
        return Ok();
      }
      after[i] = total;
    }
    Result<Statement> write = c.Prepare(kSetBudgetUsed);
    if (!write) return write.take_error();
    for (std::size_t i = 0; i < charges.size(); ++i) {
      BindBudgetWindow(*write, charges[i]);
      write->BindInt(4, after[i]);
      if (Status run = write->Run(); !run) return run;
      write->Reset();
    }
    outcome.charged = true;
    outcome.used = std::move(after);
    return Ok();
  });
  if (!s) return s.take_error();
  return outcome;
}

Status SqliteStore::RefundBudgets(const std::vector<BudgetCharge>& charges) {
  if (Status s = CheckAmounts(charges); !s) return Annotate("RefundBudgets", s.take_error());
  if (charges.empty()) return Ok();
  return Write("RefundBudgets", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kRefundBudget);
    if (!stmt) return stmt.take_error();
    for (const BudgetCharge& charge : charges) {
      BindBudgetWindow(*stmt, charge);
      stmt->BindInt(4, charge.amount);
      if (Status run = stmt->Run(); !run) return run;
      stmt->Reset();
    }
    return Ok();
  });
}

Result<std::int64_t> SqliteStore::BudgetUsed(const std::string& grant_id, const std::string& field,
                                             std::int64_t window_start_ms) {
  std::optional<std::int64_t> used;
  Status s = Read("BudgetUsed", [&](Connection& c) -> Status {
    used.reset();
    Result<Statement> stmt = c.Prepare(kBudgetUsed);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, grant_id);
    stmt->BindText(2, field);
    stmt->BindInt(3, window_start_ms);
    return ReadOne(*stmt, used, [](const Statement& row) { return row.Int(0); });
  });
  if (!s) return s.take_error();
  return used.value_or(0);
}

Result<std::int64_t> SqliteStore::ResealAll(const ResealFn& reseal) {
  // Each sealed column, named by table and key column(s); rowid identifies the row.
  // Idempotent answers are sealed only when they hold a secret (their body then starts with
  // the sealed form's version prefix). The tables of migration 8 hold nothing sealed: action
  // configs are request templates (credentials come from the connection at call time), run logs
  // are redacted before they are stored, and budget windows are numbers.
  struct Column {
    std::string_view table, column, only_if;
  };
  static constexpr Column kColumns[] = {
      {"webhook_endpoints", "secret", ""},
      {"webhook_endpoints", "previous_secret", ""},
      {"workspaces", "secret", ""},
      {"integrations", "client_secret", ""},
      {"connections", "credentials", ""},
      {"connect_sessions", "verifier", ""},
      {"idempotency", "body", " AND (substr(body, 1, 3) IN ('v1:', 'v2:'))"},
  };
  std::int64_t changed = 0;
  Status s = Write("ResealAll", [&](Connection& c) -> Status {
    changed = 0;
    for (const auto& [table, column, only_if] : kColumns) {
      std::string select = "SELECT rowid, " + std::string(column) + " FROM " +
                           std::string(table) + " WHERE " + std::string(column) + " <> ''" +
                           std::string(only_if);
      std::string update = "UPDATE " + std::string(table) + " SET " + std::string(column) +
                           " = ?2 WHERE rowid = ?1";
      std::vector<std::pair<std::int64_t, std::string>> rows;
      {
        Result<Statement> stmt = c.Prepare(select);
        if (!stmt) return stmt.take_error();
        for (;;) {
          Result<bool> row = stmt->Step();
          if (!row) return row.take_error();
          if (!*row) break;
          rows.emplace_back(stmt->Int(0), stmt->Text(1));
        }
      }
      for (const auto& [rowid, sealed] : rows) {
        Result<std::optional<std::string>> next = reseal(sealed);
        if (!next) {
          return Annotate(std::string(table) + "." + std::string(column), next.take_error());
        }
        if (!next->has_value()) continue;
        Result<Statement> stmt = c.Prepare(update);
        if (!stmt) return stmt.take_error();
        stmt->BindInt(1, rowid);
        stmt->BindText(2, **next);
        if (Status run = stmt->Run(); !run) return run;
        ++changed;
      }
    }
    return Ok();
  });
  if (!s) return s.take_error();
  return changed;
}

Status SqliteStore::Prune(std::int64_t now_ms, std::int64_t check_records_before_ms) {
  return Write("Prune", [&](Connection& c) -> Status {
    for (auto [sql, cutoff] :
         {std::pair{kPruneMagicLinks, now_ms}, std::pair{kPruneSessions, now_ms},
          std::pair{kPruneIdempotency, now_ms}, std::pair{kPruneConnectSessions, now_ms},
          std::pair{kPruneActivity, check_records_before_ms},
          std::pair{kPruneWebhookMessages, check_records_before_ms}}) {
      Result<Statement> stmt = c.Prepare(sql);
      if (!stmt) return stmt.take_error();
      stmt->BindInt(1, cutoff);
      if (Status s = stmt->Run(); !s) return s;
    }
    return Ok();
  });
}

}  // namespace agentgate::store
