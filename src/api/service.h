// Service: the AgentPass API. Owns the permission index, rate limiters and check bookkeeping,
// and turns HTTP requests into store and index operations.
//
// Dependencies (store, clock, random source, logger, mailer) come in through the constructor and
// must outlive the Service. Handlers are registered on a Router; "inline" ones (checks, agent
// profile) touch memory only, the rest may wait for the store and run on the worker pool.
//
// Thread safety: after Load(), every handler and Flush() may run concurrently.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/access.h"
#include "authz/permission_index.h"
#include "authz/rate_limiter.h"
#include "core/log.h"
#include "engine/action.h"
#include "engine/connector.h"
#include "engine/oauth.h"
#include "core/time.h"
#include "crypto/random.h"
#include "crypto/seal.h"
#include "http/router.h"
#include "mail/mailer.h"
#include "mcp/server.h"
#include "store/store.h"
#include "webhooks/sender.h"

namespace agentgate::api {

inline constexpr std::string_view kVersion = "0.1.0";

struct ServiceOptions {
  std::string base_url = "http://127.0.0.1:8080";
  std::vector<std::string> admin_emails;  // lower case
  authz::RateLimitPolicy register_limit{"register", 10, 3'600'000, true};
  authz::RateLimitPolicy check_limit{"check", 1000, 60'000, true};
  authz::RateLimitPolicy magic_link_limit{"magic-link", 5, 900'000, true};
  // Emails about permission requests, per person asked: beyond it the requests are still made
  // (dashboard, webhook) but not mailed, so no agent can flood someone's inbox.
  authz::RateLimitPolicy request_email_limit{"request-email", 20, 3'600'000, true};
  std::int64_t session_ttl_ms = 30LL * 86'400'000;
  std::int64_t link_ttl_ms = 15LL * 60'000;
  std::int64_t token_ttl_ms = 90LL * 86'400'000;  // access tokens' default lifetime
  bool allow_private_egress = false;  // webhook URLs may point at private or loopback addresses
  bool record_checks = true;               // keep a record of every check
  // Browser origins (besides the server's own and loopback ones) allowed to call /mcp, each
  // "scheme://host[:port]" in lower case.
  std::vector<std::string> mcp_origins;
  // About 1.5 s of checks at full speed, ~35 MB; beyond it records (not counts) drop.
  std::size_t max_pending_checks = 200'000;
  // /act: how long one run may take with its retries (--act-timeout), and how long run logs are
  // kept (--action-run-retention).
  std::int64_t act_timeout_ms = 30'000;
  std::int64_t action_run_retention_ms = 30LL * 86'400'000;
  // How long a permission request waits for a decision before it lapses (--request-ttl).
  std::int64_t request_ttl_ms = 7LL * 86'400'000;
};

// Check records waiting to be written, in shards so concurrent checks rarely share a lock.
// Counting is never dropped; records beyond max_pending (shared out over the shards in use) are,
// and counted in dropped().
class CheckLog {
 public:
  void Record(store::CheckRecord&& record, std::int64_t day, bool keep_record);
  // Takes everything pending.
  store::Bookkeeping Drain();
  std::int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::size_t max_pending = 1'000'000;

 private:
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<store::CheckRecord> records;
    std::int64_t day = -1;
    std::int64_t day_count = 0;
    std::vector<std::pair<std::int64_t, std::int64_t>> other_days;
  };
  static constexpr std::size_t kShards = 16;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> next_shard_{0};
  std::atomic<std::int64_t> dropped_{0};
};

class Service {
 public:
  Service(ServiceOptions options, store::Store& store, const Clock& clock,
          crypto::Random& random, Logger& logger, mail::Mailer* mailer);

  // Builds the permission index from the store, and loads (on first start: makes) the default
  // workspace.
  Status Load();
  Status LoadEngine();
  void SetBaseUrl(std::string base_url);
  // Secrets the server reads back (webhook secrets, the workspace secret, OAuth client secrets,
  // connections' credentials) are sealed with this keyring, which POST /v1/keys/rotate rotates.
  void SetSealer(crypto::Keyring* sealer) { sealer_ = sealer; }
  // Called after a change queued webhook messages (wakes the dispatcher).
  void SetWebhookNotifier(std::function<void()> notify) { notify_webhooks_ = std::move(notify); }
  // Reports grants whose expiry passed (permission.expired events); called every second or so.
  void EmitExpiredGrants();
  // Puts a grant just stored into the permission index; false (logged) when it cannot.
  bool IndexNewGrant(const store::GrantRecord& g);
  // Stores lapsed permission requests as expired (permission_request.expired events); called
  // every second or so.
  void EmitExpiredRequests();
  const std::string& base_url() const { return options_.base_url; }
  void RegisterRoutes(http::Router& router);

  // Writes pending check bookkeeping in one transaction. Called periodically and at shutdown.
  Status Flush();
  // Prunes expired links, sessions and old check records; drops expired grants from memory.
  void Housekeeping(std::int64_t check_retention_ms);

  authz::PermissionIndex& index() { return index_; }

 private:
  // Who may call a route.
  enum class Access {
    kOpen,          // anyone; a token, if sent, must hold the route's ability
    kAgentOrToken,  // an agent by its secret, or an access token with the route's ability
    kPerson,        // a signed-in person: session cookie, or access token with the ability
    kSession,       // a session only (sign-out)
    // The integration engine: a tenant token, a manager token, or a person (their own tenant;
    // access tokens need the route's ability).
    kTenant,
    // Workspace administration: a manager token, or an admin person (an admin's access token
    // with workspace:manage).
    kManager,
    // As kTenant, and also an agent by its secret (which acts under its grants): /act.
    kTenantOrAgent,
    // As kPerson, and also an agent by its secret (resolved from the secret alone): permission
    // requests.
    kPersonOrAgent,
  };
  // One call in progress: its caller, and what its activity event should say.
  struct Call {
    Principal who;
    std::string_view action;  // the route's activity action, e.g. "permission.grant"
    std::string target;
    std::string agent_id;
    bool recorded = false;  // the event was already written, with the change it describes
  };
  using Handler = http::Response (Service::*)(http::Request&, Call&);
  struct RouteSpec {
    http::Method method;
    std::string_view pattern;
    http::Dispatch dispatch;
    std::string_view action;  // "" : not an activity event (health, docs, pages)
    Access access;
    std::uint32_t ability;  // needed by access tokens; 0: none
    bool idempotent;        // honours Idempotency-Key
    Handler handler;
  };
  void AddRoute(http::Router& router, const RouteSpec& spec);
  // Resolves the caller of a request for a route; an error when the route refuses it.
  Result<Principal> Identify(const http::Request& req, const RouteSpec& spec);
  Result<Principal> IdentifyCaller(const http::Request& req, const RouteSpec& spec);
  Error MissingAbility(const http::Request& req, const RouteSpec& spec) const;
  // The principal of a signed-in person's session.
  Principal PersonOf(const store::SessionInfo& session) const;

  // Handlers: AgentPass.
  http::Response Register(http::Request& req, Call& call);
  http::Response CheckGet(http::Request& req, Call& call);
  http::Response CheckPost(http::Request& req, Call& call);
  http::Response Grant(http::Request& req, Call& call);
  http::Response Revoke(http::Request& req, Call& call);
  http::Response ListPermissions(http::Request& req, Call& call);
  http::Response MagicLink(http::Request& req, Call& call);
  http::Response Verify(http::Request& req, Call& call);
  http::Response SessionInfo(http::Request& req, Call& call);
  http::Response Logout(http::Request& req, Call& call);
  http::Response AgentProfile(http::Request& req, Call& call);
  http::Response Health(http::Request& req, Call& call);
  http::Response Stats(http::Request& req, Call& call);
  // The dashboard (dashboard.cc): static page, script and style, embedded in the binary.
  http::Response Dashboard(http::Request& req, Call& call);
  http::Response DashboardScript(http::Request& req, Call& call);
  http::Response DashboardStyle(http::Request& req, Call& call);
  // Handlers: access tokens and the activity log (/v1).
  http::Response CreateToken(http::Request& req, Call& call);
  http::Response ListTokens(http::Request& req, Call& call);
  http::Response ListAgents(http::Request& req, Call& call);
  http::Response RevokeToken(http::Request& req, Call& call);
  http::Response ListActivity(http::Request& req, Call& call);
  // Handlers: webhooks (/v1/webhooks).
  http::Response CreateWebhook(http::Request& req, Call& call);
  http::Response ListWebhooks(http::Request& req, Call& call);
  http::Response GetWebhook(http::Request& req, Call& call);
  http::Response UpdateWebhook(http::Request& req, Call& call);
  http::Response DeleteWebhook(http::Request& req, Call& call);
  http::Response RotateWebhookSecret(http::Request& req, Call& call);
  http::Response TestWebhook(http::Request& req, Call& call);
  http::Response ListWebhookDeliveries(http::Request& req, Call& call);
  http::Response ListWebhookMessages(http::Request& req, Call& call);
  http::Response ReplayWebhookMessage(http::Request& req, Call& call);
  // Handlers: permission requests (/v1/permission-requests, permission_requests_api.cc).
  http::Response CreatePermissionRequest(http::Request& req, Call& call);
  http::Response ListPermissionRequests(http::Request& req, Call& call);
  http::Response GetPermissionRequest(http::Request& req, Call& call);
  http::Response ApprovePermissionRequest(http::Request& req, Call& call);
  http::Response DeclinePermissionRequest(http::Request& req, Call& call);
  // The request the path names, if the caller is its addressee and it is pending at now_ms.
  Result<store::PermissionRequestRecord> DecidableRequest(http::Request& req, Call& call,
                                                          std::int64_t now_ms);
  // The request as the API shows it; grant (or, when null, the stored grant) fills permission.
  json::object PermissionRequestJson(const store::PermissionRequestRecord& r, std::int64_t now_ms,
                                     const store::GrantRecord* grant);
  // Emails the addressee (or, without a mailer, logs a line without secrets).
  void NotifyAddressee(const store::PermissionRequestRecord& r, std::string_view agent_name);
  // The caller's endpoint named by the path, or not_found.
  Result<store::WebhookEndpoint> OwnWebhook(const http::Request& req, const Call& call);
  // That endpoint and the page (?limit, ?cursor) of a list under it.
  struct EndpointPage {
    store::WebhookEndpoint endpoint;
    int limit = 0;
    std::int64_t cursor = 0;
  };
  Result<EndpointPage> OwnWebhookPage(const http::Request& req, Call& call,
                                      std::string_view cursor_prefix);
  void NotifyWebhooks() const {
    if (notify_webhooks_ && webhook_endpoints_.load(std::memory_order_relaxed) > 0) {
      notify_webhooks_();
    }
  }

  // Runs a write with Idempotency-Key handling: the first response to a key (per credential,
  // method and path) is stored for 24 hours and replayed to retries; the same key with a
  // different body is refused; validation failures and server errors are not stored.
  http::Response RunIdempotent(http::Request& req, const std::function<http::Response()>& run);

  // The activity event of a call answered with status (errors carry their code).
  store::ActivityEvent EventOf(const http::Request& req, const Call& call, int status,
                               std::string_view error = {}) const;
  // Writes the event of a call that changed state without a write of its own to carry it.
  void RecordNow(const http::Request& req, Call& call, int status);
  // Queues the event of a call that changed nothing; written with the next flush.
  void RecordLater(store::ActivityEvent event);
  // Adds a webhook event to effects, unless no webhook endpoint exists.
  void AddEvent(store::Effects& effects, std::string_view type, json::object data,
                std::vector<std::string> user_ids, std::vector<std::string> emails = {});
  // A webhook event: {type, timestamp, data}, for the people it concerns.
  store::OutboundEvent EventFor(std::string_view type, json::object data,
                                std::vector<std::string> user_ids,
                                std::vector<std::string> emails = {});

  http::Response Fail(const http::Request& req, Error error) const;
  http::Response Json(int status, std::string body) const;
  http::Response Decide(http::Request& req, Call& call, std::string_view agent_id,
                        std::string_view action, const json::object* context);
  // The signed-in person, or unauthorized.
  Result<store::SessionInfo> RequireSession(const http::Request& req);
  // Refuses writes from other sites when the caller is authenticated by cookie.
  Status CheckOrigin(const http::Request& req, const Principal& who) const;
  // Refuses cookie-authenticated writes from other sites.
  Status CheckOrigin(const http::Request& req) const;
  // Whether a browser page at req.origin may call /mcp (the spec's DNS-rebinding guard).
  bool McpOriginAllowed(const http::Request& req) const;

  // MCP (mcp_api.cc): /mcp runs each tool call through the tool's own route.
  struct McpCaller {
    std::string principal;  // tok_…, ap_… or usr_…: sessions are bound to it
    std::string agent_id;   // when an agent's secret authenticated
    std::string user_id;    // the person behind a token or session
  };
  void RegisterMcpRoutes(http::Router& router);
  Result<McpCaller> IdentifyMcp(const http::Request& req);
  // The checks every /mcp request passes (server ready, Origin, credential): a refusal, or
  // nullopt with `caller` filled in.
  std::optional<http::Response> McpGate(const http::Request& req, McpCaller& caller);
  http::Response McpPost(http::Request& req);
  http::Response McpDelete(http::Request& req);
  http::Response McpRefusal(const http::Request& req, int status, int rpc_code,
                            std::string message, const Error* error = nullptr) const;
  http::Response WellKnownMcp(const http::Request& req) const;
  class McpToolHost;

  // The integration engine (engine_api.cc, connections_api.cc).
  struct EngineState;
  struct EngineWorkspace {
    std::string id, key, name, secret;
  };
  struct ConnectContext {
    store::ConnectSessionRecord session;
    store::ConnectionRecord connection;
    store::IntegrationRecord integration;
    engine::Connector connector;
  };
  EngineState& Engine() const;
  void RegisterEngineRoutes(http::Router& router);
  Result<Principal> IdentifyJwt(std::string_view token);
  void TouchTenant(const std::string& workspace_id, const std::string& tenant_key,
                   const std::string& name, const std::string& fields, std::int64_t now_ms);
  void ScopePerson(Principal& who) const;
  std::optional<EngineWorkspace> WorkspaceOf(const Principal& who) const;
  json::object CredentialsJson(const Principal& who) const;
  std::optional<engine::Connector> FindConnector(const std::string& workspace_id,
                                                 std::string_view key_or_id) const;
  std::vector<engine::Connector> ConnectorsOf(const std::string& workspace_id,
                                              std::string_view search) const;
  json::object IntegrationJson(const store::IntegrationRecord& i, bool manager) const;
  json::object ParametersJson(const store::IntegrationRecord& i) const;
  Result<store::IntegrationRecord> FindIntegrationOf(const Principal& who,
                                                     const std::string& id_or_key);
  Result<store::IntegrationRecord> IntegrationForConnector(http::Request& req, Call& call,
                                                           const engine::Connector& connector);
  Result<std::string> ParseParameters(const json::object& body, store::IntegrationRecord& i);
  http::Response SetIntegrationArchived(http::Request& req, Call& call, bool archived);
  std::vector<std::string> AudienceOf(const store::ConnectionRecord& c) const;
  json::object ConnectionJson(const store::ConnectionRecord& c,
                              const store::IntegrationRecord* integration,
                              const std::string& ui_url) const;
  json::object ConnectionJsonOf(const store::ConnectionRecord& c, const std::string& ui_url);
  Result<store::ConnectionRecord> OwnConnection(const Principal& who, const std::string& id_or_key,
                                                bool include_archived);
  Result<std::string> NewConnectLink(const store::ConnectionRecord& c);
  std::string SealCredentials(const json::object& credentials);
  Result<json::object> OpenCredentials(const store::ConnectionRecord& c) const;
  void ApplyTokens(store::ConnectionRecord& c, const engine::TokenSet& tokens,
                   const json::object& previous);
  Result<engine::OAuthClient> ClientOf(const store::IntegrationRecord& i,
                                       const engine::Connector& connector) const;
  std::vector<std::string> ScopesOf(const store::IntegrationRecord& i,
                                    const engine::Connector& connector) const;
  Result<bool> SaveConnection(http::Request& req, Call& call, store::ConnectionRecord& c,
                              int status, std::initializer_list<std::string_view> events);
  // The connection with a usable token: refreshed (single-flight per connection) when it
  // expires within a minute, or when force is set and its access token is still
  // stale_access_token (a 401 answered it).
  Result<store::ConnectionRecord> FreshConnection(const store::ConnectionRecord& given, bool force,
                                                  const std::string& stale_access_token,
                                                  bool ignore_cooldown);
  Result<ConnectContext> ConnectContextOf(std::string_view token);
  // Actions and runs (actions_api.cc, act_api.cc).
  struct ActRun;
  Result<store::ConnectionRecord> ResolveActConnection(const Principal& who,
                                                       const json::object& body,
                                                       const std::string& integration_hint);
  Result<store::ActionRecord> ActionForKey(const store::ConnectionRecord& c,
                                           const std::string& key);
  Result<webhooks::DeliveryResult> CallApp(ActRun& run, const engine::Connector& connector,
                                           const std::string& base,
                                           const engine::ApiRequest& request, bool repeatable);
  http::Response RunAct(http::Request& req, Call& call, const json::object& body,
                        std::string_view selector);
  http::Response RecordRun(http::Request& req, Call& call, ActRun& run, int status,
                           std::string body, std::string_view error_code,
                           std::string_view constraint);
  http::Response FailRun(http::Request& req, Call& call, ActRun& run, Error error,
                         json::object extra);
  json::object ActionJson(const store::ActionRecord& a);
  Status ParseActionFields(const json::object& body, store::ActionRecord& a, bool merge);
  Result<store::ActionRecord> FindActionOf(const Principal& who, std::string_view selector,
                                           const http::Query& hints, bool include_archived);
  http::Response WriteAction(http::Request& req, Call& call, bool merge);
  http::Response SetActionArchived(http::Request& req, Call& call, bool archived);
  json::object ActionRunJson(const store::ActionRunRecord& r, bool details);
  Result<store::ActionRunRecord> OwnActionRun(const Principal& who, std::string_view id);
  http::Response CreateAction(http::Request& req, Call& call);
  http::Response ListActions(http::Request& req, Call& call);
  http::Response GetAction(http::Request& req, Call& call);
  http::Response UpdateAction(http::Request& req, Call& call);
  http::Response ReplaceAction(http::Request& req, Call& call);
  http::Response DeleteAction(http::Request& req, Call& call);
  http::Response RestoreAction(http::Request& req, Call& call);
  http::Response RunAction(http::Request& req, Call& call);
  http::Response GetActionRun(http::Request& req, Call& call);
  http::Response GetActionRunDetails(http::Request& req, Call& call);
  http::Response ListActionRuns(http::Request& req, Call& call);
  http::Response ExportWorkspace(http::Request& req, Call& call);
  http::Response ImportWorkspace(http::Request& req, Call& call);
  http::Response GetCredentials(http::Request& req, Call& call);
  http::Response RotateWorkspaceSecret(http::Request& req, Call& call);
  http::Response MintTenantToken(http::Request& req, Call& call);
  http::Response RotateKeys(http::Request& req, Call& call);
  http::Response ListConnectors(http::Request& req, Call& call);
  http::Response CreateConnector(http::Request& req, Call& call);
  http::Response ListIntegrations(http::Request& req, Call& call);
  http::Response CreateIntegration(http::Request& req, Call& call);
  http::Response GetIntegration(http::Request& req, Call& call);
  http::Response UpdateIntegration(http::Request& req, Call& call);
  http::Response GetIntegrationParameters(http::Request& req, Call& call);
  http::Response UpdateIntegrationParameters(http::Request& req, Call& call);
  http::Response ArchiveIntegration(http::Request& req, Call& call);
  http::Response RestoreIntegration(http::Request& req, Call& call);
  http::Response ListConnections(http::Request& req, Call& call);
  http::Response GetConnection(http::Request& req, Call& call);
  http::Response CreateConnection(http::Request& req, Call& call);
  http::Response UpdateConnection(http::Request& req, Call& call);
  http::Response ArchiveConnection(http::Request& req, Call& call);
  http::Response RestoreConnection(http::Request& req, Call& call);
  http::Response RefreshConnection(http::Request& req, Call& call);
  http::Response ConnectHtml(http::Request& req, Call& call);
  http::Response ConnectScript(http::Request& req, Call& call);
  http::Response SdkScript(http::Request& req, Call& call);
  http::Response ConnectInfo(http::Request& req, Call& call);
  http::Response ConnectCredentials(http::Request& req, Call& call);
  http::Response ConnectAuthorize(http::Request& req, Call& call);
  http::Response OAuthCallback(http::Request& req, Call& call);
  http::Response Act(http::Request& req, Call& call);

  bool IsAdmin(const store::UserRecord& user) const;
  bool IsAdminEmail(std::string_view email) const;
  void AddRateHeaders(http::Response& res, const authz::RateLimiter& limiter,
                      const authz::RateLimitResult& r) const;

  ServiceOptions options_;
  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
  Logger& logger_;
  mail::Mailer* mailer_;  // null: links go to the log
  crypto::Keyring* sealer_ = nullptr;
  std::function<void()> notify_webhooks_;
  std::atomic<int> webhook_endpoints_{0};  // how many exist, so events cost nothing without any

  authz::PermissionIndex index_;
  TokenTable tokens_;
  std::mutex activity_mu_;
  std::vector<store::ActivityEvent> pending_activity_;  // guarded by activity_mu_
  std::int64_t activity_dropped_ = 0;                   // guarded by activity_mu_
  authz::RateLimiter register_limiter_;
  authz::RateLimiter check_limiter_;
  authz::RateLimiter magic_link_limiter_;
  authz::RateLimiter request_email_limiter_;
  CheckLog check_log_;
  const http::Router* router_ = nullptr;  // for MCP tool calls; set by RegisterRoutes
  std::unique_ptr<mcp::ToolRegistry> mcp_tools_;
  std::unique_ptr<mcp::McpServer> mcp_;
  struct EngineStateDeleter {
    void operator()(EngineState* state) const;
  };
  std::unique_ptr<EngineState, EngineStateDeleter> engine_;
  // Action runs waiting to be written (with their activity and webhook events), in batches like
  // the check records; reads of run logs flush them first.
  std::mutex runs_mu_;
  std::vector<store::ActionRunRecord> pending_runs_;  // guarded by runs_mu_
  store::Effects pending_run_effects_;                 // guarded by runs_mu_
  Status FlushRuns();
  std::mutex flush_mu_;  // held while pending checks move from memory to the store
  std::int64_t dropped_reported_ = 0;  // guarded by flush_mu_
};

// An activity event of the server itself (actor "system"), e.g. an expiry it reports.
store::ActivityEvent SystemEvent(std::int64_t at_ms, std::string_view action, std::string target,
                                 std::string agent_id);

}  // namespace agentgate::api
